//! The IPMO warehouse: Parquet files described by a manifest, queried with Apache DataFusion.
//!
//! This is the only crate that depends on DataFusion (and so on Arrow and Parquet). Readers in
//! `ipmo-ingest` hand it typed rows; it writes them as Parquet (prescribing one file per month,
//! reference tables one file each), records every load in `manifest.json`, and answers SQL over
//! the current files. See the module docs of [`manifest`] for how a load stays atomic.

pub mod analyse;
mod error;
pub mod indicator_store;
mod load;
mod lock;
pub mod manifest;
pub mod measure_store;
pub mod membership;
mod parquet_io;
mod query;
pub mod release;
pub mod tables;
pub mod values;

pub use error::WarehouseError;
pub use indicator_store::{DEFAULT_SUPPRESS_AT, IndicatorDefinition};
pub use load::LoadOutcome;
pub use lock::WarehouseLock;
pub use manifest::{ComputeRecord, LoadRecord, Manifest};
pub use measure_store::{CountedCode, MeasureMonth, MeasureWriter, Membership};
pub use query::OutputFormat;
pub use values::{StoredValue, ValueFilter};

use std::path::{Path, PathBuf};

/// A warehouse directory.
#[derive(Clone, Debug)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// Opens (creating if need be) the warehouse at `root`.
    pub fn open(root: &Path) -> Result<Self, WarehouseError> {
        std::fs::create_dir_all(root).map_err(|e| WarehouseError::io(root, e))?;
        Ok(Self { root: root.to_path_buf() })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current manifest.
    pub fn manifest(&self) -> Result<Manifest, WarehouseError> {
        Manifest::read(&self.root)
    }
}
