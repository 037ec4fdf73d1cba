//! `ipmo.toml`: settings an installation keeps beside its data, so the service runs as
//! `ipmo serve` with no flags. Precedence: a flag, then an environment variable, then the file,
//! then the built-in default. The file is `./ipmo.toml`, or the path in `IPMO_CONFIG`.
//!
//! ```toml
//! warehouse = "/srv/ipmo/data"   # --warehouse, IPMO_WAREHOUSE
//! measures = "/srv/ipmo/measures" # --measures, IPMO_MEASURES
//! bind = "127.0.0.1:8080"         # serve/demo --bind, IPMO_BIND
//! governance = "/srv/ipmo/governance.sqlite" # --governance, IPMO_GOVERNANCE (or postgres://…)
//! private = false                 # serve/demo --private: the dashboard needs sign-in too
//! secure_cookies = "auto"         # serve/demo --secure-cookies: auto, always or never
//! ```

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Settings read from the file; absent keys are None.
#[derive(Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Warehouse directory.
    pub warehouse: Option<PathBuf>,
    /// Measure library folder.
    pub measures: Option<PathBuf>,
    /// Address the dashboard listens on.
    pub bind: Option<String>,
    /// Governance database: a SQLite file or a `postgres://` URL.
    pub governance: Option<String>,
    /// Whether the prescribing dashboard needs sign-in too.
    pub private: Option<bool>,
    /// When session cookies are marked Secure: auto, always or never.
    pub secure_cookies: Option<String>,
}

/// The configuration file to read, if any: `IPMO_CONFIG` (which must exist) or `./ipmo.toml`.
pub(crate) fn path() -> Result<Option<PathBuf>> {
    match std::env::var_os("IPMO_CONFIG") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                bail!("IPMO_CONFIG names {}, which is not a file", p.display());
            }
            Ok(Some(p))
        }
        None => Ok(Some(PathBuf::from("ipmo.toml")).filter(|p| p.is_file())),
    }
}

/// Reads a configuration file; errors name the file and the key or line at fault.
pub(crate) fn read(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: Config = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}\nhint: the keys ipmo.toml accepts are warehouse, measures, bind, governance, private and secure_cookies",
            path.display(),
            e.to_string().trim_end()
        )
    })?;
    if let Some(bind) = &config.bind
        && bind.parse::<std::net::SocketAddr>().is_err()
    {
        bail!("{}: bind: \"{bind}\" is not an address and port such as 127.0.0.1:8080", path.display());
    }
    if let Some(v) = &config.secure_cookies
        && !["auto", "always", "never"].contains(&v.as_str())
    {
        bail!("{}: secure_cookies: \"{v}\" must be auto, always or never", path.display());
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_keys_and_names_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ipmo.toml");
        std::fs::write(&p, "warehouse = \"/srv/data\"\nbind = \"0.0.0.0:9000\"\n").unwrap();
        let c = read(&p).unwrap();
        assert_eq!(c.warehouse, Some(PathBuf::from("/srv/data")));
        assert_eq!(c.bind.as_deref(), Some("0.0.0.0:9000"));
        std::fs::write(&p, "warehuose = \"x\"\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("ipmo.toml") && e.contains("warehuose"), "{e}");
        std::fs::write(&p, "private = true\nsecure_cookies = \"always\"\ngovernance = \"/srv/g.sqlite\"\n").unwrap();
        let c = read(&p).unwrap();
        assert_eq!((c.private, c.secure_cookies.as_deref()), (Some(true), Some("always")));
        std::fs::write(&p, "secure_cookies = \"sometimes\"\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("secure_cookies:"));
        std::fs::write(&p, "bind = \"localhost\"\n").unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("bind:"));
    }
}
