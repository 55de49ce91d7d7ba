//! How the analyzer asks the C allocator to hand memory back.
//!
//! Every large buffer of an analysis (a file's actions, the merged actions, the resource
//! edges) is allocated once, often on a reader thread, and freed on another. glibc raises its
//! mmap threshold each time such a block is freed (up to 32 MiB), so later blocks come from
//! the threads' arenas, where freed space is kept rather than returned: measured on a 1 GB
//! dense trace, peak RSS ran 110 MB above the peak of live heap memory. A fixed threshold keeps
//! blocks from 256 KiB up in their own mappings, returned whole when freed.

/// Blocks of at least this many bytes get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 256 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] for this process (no-op elsewhere).
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's tuning; any value is accepted or
        // refused (return 0) without affecting memory already handed out.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok == 0 {
            log::debug!("mallopt(M_MMAP_THRESHOLD) refused; the allocator keeps its default");
        }
    }
}
