//! The IPMO warehouse: Parquet files described by a manifest, queried with Apache DataFusion.
//!
//! This is the only crate that depends on DataFusion (and so on Arrow and Parquet). Readers in
//! `ipmo-ingest` hand it typed rows; it writes them as Parquet (prescribing one file per month,
//! reference tables one file each), records every load in `manifest.json`, and answers SQL over
//! the current files. See the module docs of [`manifest`] for how a load stays atomic.

pub mod analyse;
#[cfg(feature = "ballista")]
pub mod cluster;
pub mod cross_sector;
mod error;
pub mod groups;
mod hospital;
pub mod indicator_store;
mod load;
mod lock;
pub mod manifest;
pub mod measure_store;
pub mod medicine;
pub mod membership;
mod parquet_io;
pub mod ppu;
mod presentations;
mod price_costs;
mod prices;
mod query;
mod reference;
pub mod release;
mod scheduler_url;
mod substitution;
pub mod tables;
pub mod values;

pub use error::WarehouseError;
pub use indicator_store::{DEFAULT_SUPPRESS_AT, IndicatorDefinition};
pub use load::LoadOutcome;
pub use lock::{WarehouseLock, load_running};
pub use manifest::{ComputeRecord, LoadRecord, Manifest, ReleaseRecord};
pub use measure_store::{CountedCode, MeasureMonth, MeasureWriter, Membership, QuantitySplitRows};
pub use query::OutputFormat;
pub use scheduler_url::SchedulerUrl;
pub use values::{StoredValue, ValueFilter};

use std::path::{Path, PathBuf};

/// A warehouse directory.
#[derive(Clone, Debug)]
pub struct Warehouse {
    root: PathBuf,
    /// The writer's lock while [`Warehouse::lock_for_writing`]'s guard lives, so that loads in
    /// this process use it rather than asking for it again.
    held: std::sync::Arc<std::sync::Mutex<std::sync::Weak<lock::WarehouseLock>>>,
}

impl Warehouse {
    /// Opens (creating if need be) the warehouse at `root`.
    pub fn open(root: &Path) -> Result<Self, WarehouseError> {
        std::fs::create_dir_all(root).map_err(|e| WarehouseError::io(root, e))?;
        Ok(Self { root: root.to_path_buf(), held: Default::default() })
    }

    /// Takes the writer's lock now, before a load starts reading its files, and keeps it until
    /// the guard is dropped: a second `ipmo ingest` is refused at once rather than after reading
    /// gigabytes, and a small load cannot slip in while a big one reads.
    pub fn lock_for_writing(&self) -> Result<std::sync::Arc<lock::WarehouseLock>, WarehouseError> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = held.upgrade() {
            return Ok(lock);
        }
        let lock = std::sync::Arc::new(lock::WarehouseLock::acquire(&self.root)?);
        *held = std::sync::Arc::downgrade(&lock);
        Ok(lock)
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
