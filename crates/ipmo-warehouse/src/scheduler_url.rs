//! Where a Ballista scheduler is, as `ipmo sql --cluster` is given it. Kept apart from
//! `cluster.rs` (built only with the `ballista` feature) so that every build reads the option the
//! same way and says what is wrong with it before saying whether the cluster is built in.

use crate::WarehouseError;

/// A scheduler's address as `ipmo sql --cluster` takes it: `df://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerUrl {
    /// Host name or address of the scheduler.
    pub host: String,
    /// Its gRPC port.
    pub port: u16,
}

impl SchedulerUrl {
    /// Reads `df://host:port`, saying what is wrong in terms of the option the user typed.
    pub fn parse(text: &str) -> Result<Self, WarehouseError> {
        let bad = |why: &str| {
            WarehouseError::Cluster(format!(
                "--cluster {text:?}: {why}; give the scheduler as df://HOST:PORT, e.g. df://127.0.0.1:50050"
            ))
        };
        let rest = text.strip_prefix("df://").ok_or_else(|| bad("it does not start with df://"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("it has no port"))?;
        if host.is_empty() || host.contains('/') {
            return Err(bad("the host is missing or has a path after it"));
        }
        let port = port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("the port is not 1–65535"))?;
        Ok(Self { host: host.to_string(), port })
    }
}

impl std::fmt::Display for SchedulerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "df://{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduler_url_is_df_host_port() {
        let url = SchedulerUrl::parse("df://10.0.0.5:50050").unwrap();
        assert_eq!(url, SchedulerUrl { host: "10.0.0.5".into(), port: 50050 });
        assert_eq!(url.to_string(), "df://10.0.0.5:50050");
        for bad in ["http://h:1", "df://h", "df://:1", "df://h:0", "df://h:70000", "df://h/x:1"] {
            let e = SchedulerUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("df://HOST:PORT"), "{bad}: {e}");
        }
    }
}
