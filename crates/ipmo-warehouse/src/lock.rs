//! One writer at a time.

use crate::WarehouseError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// Held while a load runs; the operating system releases it if the process dies, so a crash never
/// leaves the warehouse locked.
pub struct WarehouseLock {
    _file: File,
}

impl WarehouseLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(root: &Path) -> Result<Self, WarehouseError> {
        let path = root.join(".lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| WarehouseError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.set_len(0);
                let _ = writeln!(file, "pid {}", std::process::id());
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                Err(WarehouseError::Locked { path: root.display().to_string(), holder: holder.trim().to_string() })
            }
            Err(TryLockError::Error(e)) => Err(WarehouseError::io(&path, e)),
        }
    }
}
