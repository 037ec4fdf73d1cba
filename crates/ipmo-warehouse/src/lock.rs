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

/// How long a writer waits for the lock before saying who holds it: long enough to outlast a
/// server's look at whether a load is running (a shared lock held for microseconds), far shorter
/// than any load.
const WAIT_FOR_READERS: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a load is running in the warehouse at `root` now (another process holds the writer's
/// lock). Looking takes a shared lock for an instant; a writer starting at that instant waits
/// for it (see [`WarehouseLock::acquire`]).
pub fn load_running(root: &Path) -> bool {
    let Ok(file) = File::open(root.join(".lock")) else { return false };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}

impl WarehouseLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(root: &Path) -> Result<Self, WarehouseError> {
        let started = std::time::Instant::now();
        loop {
            match Self::try_acquire(root) {
                Err(WarehouseError::Locked { .. }) if started.elapsed() < WAIT_FOR_READERS => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    fn try_acquire(root: &Path) -> Result<Self, WarehouseError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_load_is_seen_and_looking_does_not_keep_a_writer_out() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!load_running(dir.path()), "no lock file yet");
        let held = WarehouseLock::acquire(dir.path()).unwrap();
        assert!(load_running(dir.path()));
        drop(held);
        assert!(!load_running(dir.path()));
        // A writer arriving while someone looks waits for the look to end.
        let look = File::open(dir.path().join(".lock")).unwrap();
        look.try_lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(look);
        });
        assert!(WarehouseLock::acquire(dir.path()).is_ok());
        release.join().unwrap();
    }
}
