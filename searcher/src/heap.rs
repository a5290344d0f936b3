//! Keeps freed activation buffers in the process instead of handing them back
//! to the kernel.
//!
//! A training step allocates and frees several hundred MB of activations and
//! gradients. With glibc's defaults every buffer above 128 KiB is a fresh
//! `mmap`, so each step faults all those pages in again (zero-filled by the
//! kernel), and with two threads the faults serialise on the address-space
//! lock. Measured with `tunas-searcher bench` (tiny28 largest, batch 64): 1
//! thread 265 → 298 images/s, 2 threads 371–421 → 498–523 images/s once freed
//! memory is kept (docs/measurements.md, "The supernet engine").

/// Raises glibc's mmap threshold to its maximum (32 MiB) and stops trimming
/// the heap, so freed buffers are reused by the next step. Call once at
/// start-up, before any thread is spawned. Does nothing on other C libraries.
pub fn keep_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets allocator parameters; it is called from the
    // main thread before any other thread exists, with documented options
    // and values in range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
