//! `ipmo cluster scheduler|executor` and `ipmo sql --cluster`: the two roles of an Apache
//! DataFusion Ballista cluster and its client, from this binary when it is built with the
//! `ballista` feature. Without it the commands exist and say how to get them.

use anyhow::Result;
use clap::Subcommand;
use ipmo_warehouse::{OutputFormat, SchedulerUrl, Warehouse, WarehouseError};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The two roles of a query cluster.
#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start a scheduler: it turns each query into stages and hands their tasks to executors.
    Scheduler {
        /// Address and port to listen on (0.0.0.0 for other machines, behind a firewall).
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
        /// Name that executors and clients reach this machine by (default: the --bind address).
        #[arg(long)]
        external_host: Option<String>,
    },
    /// Start an executor: it runs tasks, reading the warehouse's Parquet files at the paths the
    /// client sends, so it must see the warehouse at the same path as the client.
    Executor {
        /// The scheduler to join.
        #[arg(long, default_value = "df://127.0.0.1:50050", value_name = "df://HOST:PORT")]
        scheduler: String,
        /// Address and Arrow Flight port to listen on; results are fetched from it.
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: SocketAddr,
        /// gRPC port on which the scheduler sends tasks.
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Name that the scheduler and other executors reach this machine by (default: the --bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Tasks run at once (default: this machine's cores; at most 256).
        #[arg(long)]
        slots: Option<usize>,
        /// Directory for shuffle files between stages (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

/// The name a node gives others for itself: the one given, or the address it listens on, which
/// is useless to others when it is 0.0.0.0.
#[cfg_attr(not(feature = "ballista"), allow(dead_code))]
fn external_host(bind: SocketAddr, given: Option<String>) -> Result<String> {
    match given {
        Some(host) => Ok(host),
        None if bind.ip().is_unspecified() => anyhow::bail!(
            "--bind {bind} listens on every address, so other nodes need a name to reach this one by: \
             add --external-host HOST"
        ),
        None => Ok(bind.ip().to_string()),
    }
}

#[cfg(feature = "ballista")]
pub(crate) fn run(command: ClusterCommand, quiet: bool) -> Result<()> {
    use anyhow::Context;
    use ipmo_warehouse::cluster::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Deep plans recurse while they are (de)serialised; Ballista's own binaries use 32 MiB.
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .context("cannot start the cluster runtime")?;
    match command {
        ClusterCommand::Scheduler { bind, external_host: given } => {
            let external_host = external_host(bind, given)?;
            if !quiet {
                eprintln!(
                    "ipmo cluster scheduler: listening on {bind}; clients run `ipmo sql --cluster df://{external_host}:{}`; \
                     stop with Ctrl+C",
                    bind.port()
                );
            }
            runtime.block_on(run_scheduler(SchedulerOptions { bind, external_host }))?;
        }
        ClusterCommand::Executor { scheduler, bind, grpc_port, external_host: given, slots, work_dir } => {
            let scheduler = SchedulerUrl::parse(&scheduler)?;
            let external_host = external_host(bind, given)?;
            let slots = slots.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            if !quiet {
                eprintln!(
                    "ipmo cluster executor: joining {scheduler} with {slots} task slots, Flight on {bind}, \
                     gRPC on port {grpc_port}; stop with Ctrl+C"
                );
            }
            runtime.block_on(run_executor(ExecutorOptions {
                scheduler,
                bind,
                grpc_port,
                external_host,
                slots,
                work_dir,
            }))?;
        }
    }
    Ok(())
}

#[cfg(not(feature = "ballista"))]
pub(crate) fn run(_command: ClusterCommand, _quiet: bool) -> Result<()> {
    Err(not_built().into())
}

/// Runs a read-only query on the cluster behind `scheduler` and prints its result.
pub(crate) async fn query(
    wh: &Warehouse,
    scheduler: &str,
    sql: &str,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<usize, WarehouseError> {
    let scheduler = SchedulerUrl::parse(scheduler)?;
    #[cfg(feature = "ballista")]
    return wh.query_to_cluster(&scheduler, sql, format, out).await;
    #[cfg(not(feature = "ballista"))]
    {
        let _ = (wh, scheduler, sql, format, out);
        Err(not_built())
    }
}

#[cfg(not(feature = "ballista"))]
fn not_built() -> WarehouseError {
    WarehouseError::Cluster(
        "this ipmo was built without Ballista; build it with `cargo build --release --features ipmo-cli/ballista` \
         (see docs/cluster.md), or leave out --cluster to run the query on this machine"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_listening_everywhere_must_be_given_a_name() {
        let any: SocketAddr = "0.0.0.0:50050".parse().unwrap();
        assert!(external_host(any, None).unwrap_err().to_string().contains("--external-host"));
        assert_eq!(external_host(any, Some("sched.example".into())).unwrap(), "sched.example");
        assert_eq!(external_host("127.0.0.1:50050".parse().unwrap(), None).unwrap(), "127.0.0.1");
    }
}
