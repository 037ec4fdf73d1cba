//! Helpers for IPMO's tests.
//!
//! Tests on real NHS data read `../shared/data/real/` beside the repository (or `IPMO_REAL_DATA`).
//! A developer without that folder still gets a green run with a printed notice; CI sets
//! `IPMO_REQUIRE_REAL_DATA=1`, which turns the absence into a failure so real-data tests cannot
//! silently stop running.

pub mod tidy;

use std::path::PathBuf;

/// The real-data folder, or `None` (after printing why) when the test should skip.
///
/// # Panics
/// When the folder is missing and `IPMO_REQUIRE_REAL_DATA=1`.
pub fn real_data(test: &str) -> Option<PathBuf> {
    // Resolved at run time: cargo runs each test with CARGO_MANIFEST_DIR set to the crate under
    // test, and a path baked in at compile time could point at another checkout that shared the
    // build directory.
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let dir = std::env::var_os("IPMO_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("../../../shared/data/real"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var("IPMO_REQUIRE_REAL_DATA").as_deref() == Ok("1") {
        panic!("{test}: real data not found at {} and IPMO_REQUIRE_REAL_DATA=1", dir.display());
    }
    eprintln!("NOTICE: {test} skipped: real data not found at {} (set IPMO_REAL_DATA)", dir.display());
    None
}

/// A file under the real-data folder.
pub fn real_file(test: &str, relative: &str) -> Option<PathBuf> {
    real_data(test).map(|d| d.join(relative))
}

/// The PostgreSQL server the tests may use (`IPMO_TEST_POSTGRES`, a URL whose user may create
/// databases; `scripts/test` starts one), or `None` (after printing why) when the test should
/// run on SQLite alone.
///
/// # Panics
/// When no server is named and `IPMO_REQUIRE_POSTGRES=1`, as CI sets, so the PostgreSQL half of
/// the store's tests cannot silently stop running.
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var("IPMO_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ if std::env::var("IPMO_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{test}: IPMO_TEST_POSTGRES is not set and IPMO_REQUIRE_POSTGRES=1 (scripts/test starts a server)")
        }
        _ => {
            eprintln!("NOTICE: {test}: PostgreSQL part skipped: IPMO_TEST_POSTGRES is not set (scripts/test sets it)");
            None
        }
    }
}

/// The server's URL with its database replaced by a new name unique to this test and process,
/// for a test to create and have to itself.
pub fn postgres_database(server: &str, test: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (base, query) = server.split_once('?').map_or((server, ""), |(b, q)| (b, q));
    let stem = base.rsplit_once('/').map_or(base, |(stem, _)| stem);
    let slug: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(30).collect();
    let name = format!("ipmo_{slug}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    if query.is_empty() { format!("{stem}/{name}") } else { format!("{stem}/{name}?{query}") }
}
