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
/// measure values, a release's series as they grow. mimalloc hands freed memory back to the
/// kernel within milliseconds, and where the kernel maps fresh memory as 2 MB huge pages each
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
