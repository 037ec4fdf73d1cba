//! The manifest: the single record of what the warehouse holds.
//!
//! Parquet files are never edited in place. A load writes new files under fresh names and then
//! replaces `manifest.json` (write aside, fsync, rename); readers see only the files the manifest
//! lists. The rename is the commit point, so a load that fails or is killed before it leaves the
//! previous manifest, and therefore the previous warehouse, exactly as it was.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::WarehouseError;

/// Bumped when the layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Everything the warehouse holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Layout version.
    pub format: u32,
    /// Id the next load will take.
    pub next_load_id: u64,
    /// Every file ever loaded, oldest first.
    pub loads: Vec<LoadRecord>,
    /// Current Parquet file of every partition of every table: table → partition → path
    /// relative to the warehouse root.
    pub tables: BTreeMap<String, BTreeMap<String, String>>,
    /// Measure results per month: what they were computed from, so that `ipmo measures
    /// compute` redoes only months whose inputs or definitions changed.
    #[serde(default)]
    pub computed: BTreeMap<String, ComputeRecord>,
    /// Files, membership choice and groups the stored PPU savings were computed from, so that
    /// `ipmo value compute` and the demo redo them only when one changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_inputs: Vec<String>,
    /// What each month's cross-sector measures were computed from (a fingerprint of the
    /// definitions and the files read), so that `ipmo measures cross-sector --compute` redoes
    /// only the months whose inputs changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cross_sector_inputs: BTreeMap<String, String>,
    /// The dm+d release the `dmd_*` tables hold (core files), if one was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmd_release: Option<ReleaseRecord>,
    /// The dm+d BNF/ATC/DDD supplement `dmd_bnf` holds, if one was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmd_supplement: Option<ReleaseRecord>,
}

/// Which reference release a set of tables holds, so an older one is not loaded over it unnoticed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ReleaseRecord {
    /// Release date (`YYYY-MM-DD`) from the release's file names.
    pub date: String,
    /// The release's name as shipped (zip or folder name).
    pub version: String,
    /// The load that stored it.
    pub load_id: u64,
}

/// How one month's measure results were made.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ComputeRecord {
    /// Hash over every computed definition ([`ipmo_measures::Library::hash`]).
    pub library_hash: String,
    /// `as_at` (membership at the month) or `latest` (today's organisations).
    pub membership: String,
    /// Files the results were computed from (prescribing partition, list sizes, membership,
    /// practices, BNF map, groups); a reload writes new file names, so any change shows here.
    pub inputs: Vec<String>,
    /// When computed (UTC, RFC 3339).
    pub computed_at: String,
}

/// One input file's load.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadRecord {
    /// Load id (shared by the files of one command).
    pub load_id: u64,
    /// What was loaded: `epd`, `orgs`, `list-sizes`, `bnf`, `imd`.
    pub kind: String,
    /// File name.
    pub file: String,
    /// Path as given.
    pub path: String,
    /// Layout recognised (e.g. EPD, DPI, PDPI, membership map, epraccur).
    pub layout: String,
    /// SHA-256 of the file as stored.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Data rows read.
    pub rows_read: u64,
    /// Rows kept.
    pub rows_kept: u64,
    /// Rows rejected under `--max-errors`.
    pub rows_rejected: u64,
    /// Rejects file relative to the root, when rows were rejected.
    pub rejects_file: Option<String>,
    /// Partitions written (months for prescribing).
    pub partitions: Vec<String>,
    /// When the load committed (UTC, RFC 3339).
    pub loaded_at: String,
}

impl Manifest {
    /// Reads the manifest, or an empty one for a new warehouse.
    pub fn read(root: &Path) -> Result<Self, WarehouseError> {
        let path = root.join("manifest.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| WarehouseError::Corrupt {
                    path: path.display().to_string(),
                    detail: format!("{e}; restore it from a backup or load the data into a new warehouse"),
                })?;
                if m.format > FORMAT_VERSION {
                    return Err(WarehouseError::Corrupt {
                        path: path.display().to_string(),
                        detail: format!("written by a newer ipmo (format {}); upgrade ipmo", m.format),
                    });
                }
                Ok(m)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Self { format: FORMAT_VERSION, next_load_id: 1, ..Default::default() })
            }
            Err(e) => Err(WarehouseError::io(&path, e)),
        }
    }

    /// Writes the manifest atomically.
    pub fn commit(&self, root: &Path) -> Result<(), WarehouseError> {
        let path = root.join("manifest.json");
        let tmp = root.join("manifest.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let mut f = std::fs::File::create(&tmp).map_err(|e| WarehouseError::io(&tmp, e))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(|e| WarehouseError::io(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| WarehouseError::io(&path, e))?;
        if let Ok(dir) = std::fs::File::open(root) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Files of a table, in partition order.
    pub fn files(&self, table: &str) -> Vec<&str> {
        self.tables.get(table).map(|t| t.values().map(String::as_str).collect()).unwrap_or_default()
    }

    /// Partitions of a table.
    pub fn partitions(&self, table: &str) -> Vec<&str> {
        self.tables.get(table).map(|t| t.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}
