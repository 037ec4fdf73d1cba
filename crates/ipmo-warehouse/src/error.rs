//! Warehouse errors.

use std::path::Path;

/// Why a warehouse operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// Parquet could not be written or read.
    #[error("{path}: Parquet error: {detail}")]
    Parquet {
        /// The file.
        path: String,
        /// The library's description.
        detail: String,
    },
    /// A warehouse file is not what it should be.
    #[error("{path} is damaged: {detail}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// Another process is loading.
    #[error(
        "the warehouse {path} is being loaded by another ipmo process ({holder}); wait for that load to finish, then run this again"
    )]
    Locked {
        /// The warehouse.
        path: String,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// An input file was bad; nothing was stored.
    #[error("{0}\nNothing was loaded; the warehouse is unchanged.")]
    Ingest(#[from] ipmo_ingest::IngestError),
    /// A query failed.
    #[error("query failed: {0}")]
    Query(String),
    /// The prescribing index could not be built, read or queried.
    #[error("{0}")]
    Index(String),
    /// A Ballista cluster could not be reached, started or used.
    #[error("{0}")]
    Cluster(String),
}

impl WarehouseError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn parquet(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Parquet { path: path.display().to_string(), detail: e.to_string() }
    }
}

impl From<datafusion::error::DataFusionError> for WarehouseError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Query(e.to_string())
    }
}
