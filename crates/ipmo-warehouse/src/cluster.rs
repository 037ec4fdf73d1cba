//! SQL over the warehouse on an Apache DataFusion Ballista cluster, and the cluster's two
//! roles (scheduler and executor) run from the same binary.
//!
//! The client registers the same tables and views as a local session, by the absolute paths of
//! the manifest's Parquet files, and sends the logical plan to the scheduler; the executors read
//! those paths themselves. So every executor must see the warehouse at the same path (one
//! machine, or shared storage mounted alike), and a month loaded after the query was planned is
//! not part of its answer.

use crate::query::{EmptyTables, OutputFormat, read_only, session_config, write_result};
use crate::{SchedulerUrl, Warehouse, WarehouseError};
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Most task slots one executor may offer: past a few per core they only queue for memory.
pub const MAX_EXECUTOR_SLOTS: usize = 256;

impl Warehouse {
    /// A session whose queries run on the cluster behind `scheduler`, with the same tables,
    /// views and settings as [`Warehouse::session`].
    pub async fn cluster_session(&self, scheduler: &SchedulerUrl) -> Result<SessionContext, WarehouseError> {
        let config = session_config().upgrade_for_ballista();
        let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
        let ctx = SessionContext::remote_with_state(&scheduler.to_string(), state)
            .await
            .map_err(|e| unreachable(scheduler, e))?;
        self.register(&ctx, EmptyTables::AsViews).await?;
        Ok(ctx)
    }

    /// [`Warehouse::query_to`] on a cluster: planned here, run by the cluster's executors, and
    /// streamed back to `out`.
    pub async fn query_to_cluster(
        &self,
        scheduler: &SchedulerUrl,
        sql: &str,
        format: OutputFormat,
        out: &mut dyn Write,
    ) -> Result<usize, WarehouseError> {
        let ctx = self.cluster_session(scheduler).await?;
        let frame = read_only(&ctx, sql).await?;
        write_result(frame, format, out).await.map_err(|e| match e {
            WarehouseError::Query(detail) if refused_connection(&detail) => unreachable(scheduler, detail),
            other => other,
        })
    }
}

/// Where a scheduler listens.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Address to listen on (`127.0.0.1` keeps it to this machine).
    pub bind: SocketAddr,
    /// Name the scheduler gives executors and clients for itself.
    pub external_host: String,
}

/// How an executor joins a cluster.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    /// The scheduler to register with.
    pub scheduler: SchedulerUrl,
    /// Address to listen on; the Arrow Flight port, from which other executors and the client
    /// fetch results.
    pub bind: SocketAddr,
    /// The executor's gRPC port, on which the scheduler pushes tasks.
    pub grpc_port: u16,
    /// Name other nodes reach this executor by.
    pub external_host: String,
    /// Tasks run at once (1 to [`MAX_EXECUTOR_SLOTS`]).
    pub slots: usize,
    /// Where shuffle files are written; a temporary directory when not given.
    pub work_dir: Option<PathBuf>,
}

/// Runs a scheduler until the process is stopped.
pub async fn run_scheduler(options: SchedulerOptions) -> Result<(), WarehouseError> {
    let mut config = SchedulerConfig::default().with_hostname(options.external_host).with_port(options.bind.port());
    config.bind_host = options.bind.ip().to_string();
    let cluster =
        BallistaCluster::new_from_config(&config).await.map_err(|e| WarehouseError::Cluster(e.to_string()))?;
    start_server(cluster, options.bind, Arc::new(config))
        .await
        .map_err(|e| WarehouseError::Cluster(format!("the scheduler on {} stopped: {e}", options.bind)))
}

/// Runs an executor until the process is stopped or its scheduler tells it to stop.
pub async fn run_executor(options: ExecutorOptions) -> Result<(), WarehouseError> {
    if !(1..=MAX_EXECUTOR_SLOTS).contains(&options.slots) {
        return Err(WarehouseError::Cluster(format!(
            "--slots {}: give 1 to {MAX_EXECUTOR_SLOTS} tasks at once (this machine has {} cores)",
            options.slots,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        )));
    }
    if let Some(dir) = &options.work_dir {
        std::fs::create_dir_all(dir).map_err(|e| WarehouseError::io(dir, e))?;
    }
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(options.external_host),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        // Wait for a scheduler started at the same moment rather than fail at once.
        scheduler_connect_timeout_seconds: 30,
        vcores: options.slots,
        work_dir: options.work_dir.map(|d| d.display().to_string()),
        print_thread_info: false,
        ..Default::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| WarehouseError::Cluster(format!("the executor of {} stopped: {e}", options.scheduler)))
}

/// True when a failure is a refused or failed connection rather than a fault in the query.
fn refused_connection(detail: &str) -> bool {
    ["Connection refused", "transport error", "tcp connect error", "GrpcConnectionError"]
        .iter()
        .any(|s| detail.contains(s))
}

fn unreachable(scheduler: &SchedulerUrl, e: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::Cluster(format!(
        "no Ballista scheduler answered at {scheduler} ({e}); start one with `ipmo cluster scheduler` \
         and at least one `ipmo cluster executor`, or leave out --cluster to run the query on this machine"
    ))
}
