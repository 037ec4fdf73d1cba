//! How the process takes memory from the operating system.

/// mimalloc rather than the system allocator: a server that loads a new data release beside the
/// one it serves frees the old one's gigabytes of small allocations, and mimalloc gives them back
/// to the operating system where glibc's allocator kept them (resident memory stayed at the peak
/// of the swap).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process, on Linux.
///
/// ipmo frees and allocates large buffers all the time: a Parquet batch's columns, a month of
/// measure values, a release's series as they grow. A server's mimalloc hands freed memory back
/// to the kernel within a second, and where the kernel maps fresh memory as 2 MB huge pages each
/// first touch zeroes a whole 2 MB page. On a 2-core machine whose kernel makes huge pages
/// always, a profile of `ipmo serve` loading sixty national months spent about half its time
/// in the kernel clearing pages, and `measures compute` a sixth. With them off the load took
/// 14–15 s of processor time instead of 17–21 s, and `measures compute` on two national
/// months 0.7–0.9 s of system time instead of 1.9–2.9 s, with no change in the pages' latency.
/// Failing to turn them off changes nothing but speed, so an error is ignored.
pub(crate) fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

/// mimalloc's number for its purge delay (`mi_option_purge_delay` in `mimalloc.h`; the same in
/// its v2 and v3). A test checks it against the option's documented default.
const PURGE_DELAY: std::ffi::c_int = 15;
/// mimalloc's default purge delay in milliseconds (v3, the version the `mimalloc` crate builds),
/// which [`PURGE_DELAY`] is checked against.
const DEFAULT_PURGE_DELAY_MS: std::ffi::c_long = 1000;

// The workspace denies `unsafe`; these calls into the allocator the binary already links are the
// one exception (a tidy test keeps it that way). Setting or reading an option and collecting
// freed memory have no memory-safety precondition.
#[allow(unsafe_code)]
mod mimalloc_options {
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
        #[cfg(test)]
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
        fn mi_collect(force: bool);
    }

    pub(super) fn set(option: std::ffi::c_int, value: std::ffi::c_long) {
        // SAFETY: an integer option of the linked allocator; mimalloc validates the number.
        unsafe { mi_option_set(option, value) }
    }

    #[cfg(test)]
    pub(super) fn get(option: std::ffi::c_int) -> std::ffi::c_long {
        // SAFETY: as above.
        unsafe { mi_option_get(option) }
    }

    pub(super) fn collect() {
        // SAFETY: frees what the allocator holds unused; callable from any thread at any time.
        unsafe { mi_collect(true) }
    }
}

/// Keeps freed memory in the process until it ends, for commands that run once over a lot of
/// data (`ingest`, `measures compute`, `value compute`, the index build).
///
/// By default mimalloc gives freed pages back to the kernel a second after they empty, and the next
/// Parquet batch or month of results takes fresh ones, which the kernel faults in and zeroes
/// again. `measures compute --all` on sixty national months spent 33.7 s of its 58.6 s in the
/// kernel that way; holding freed pages, 6.3 s of 40.0 s, with peak memory 1.84 GB instead of
/// 1.39 GB. A server keeps the default (see [`give_back_freed_memory`]), so that its resident
/// memory falls after a release is swapped out.
pub(crate) fn keep_freed_memory() {
    mimalloc_options::set(PURGE_DELAY, -1);
}

/// Returns freed memory to the operating system soon after it is freed (mimalloc's default), and
/// what was kept so far now, for a process that goes on to serve (`ipmo demo`).
pub(crate) fn give_back_freed_memory() {
    mimalloc_options::set(PURGE_DELAY, DEFAULT_PURGE_DELAY_MS);
    mimalloc_options::collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_number_mimalloc_h_gives() {
        // Tests run in one process; this one alone touches the option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(mimalloc_options::get(PURGE_DELAY), DEFAULT_PURGE_DELAY_MS);
        }
        keep_freed_memory();
        assert_eq!(mimalloc_options::get(PURGE_DELAY), -1);
        give_back_freed_memory();
        assert_eq!(mimalloc_options::get(PURGE_DELAY), DEFAULT_PURGE_DELAY_MS);
    }
}
