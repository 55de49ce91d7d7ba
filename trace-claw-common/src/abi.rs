//! Plain `#[repr(C)]` types shared with the kernel programs (map values, ring-buffer events).
//!
//! Fixed-width integers only, no implicit padding, `u32` flags instead of `bool`.

/// Per-process resource counters kept by the kernel programs, keyed by tgid.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcCounters {
    /// On-CPU nanoseconds summed from `sched:sched_stat_runtime`.
    pub on_cpu_ns: u64,
    /// Bytes returned by read-family syscalls.
    pub read_bytes: u64,
    /// Bytes accepted by write-family syscalls.
    pub write_bytes: u64,
    /// Bytes queued for read on block devices.
    pub block_read_bytes: u64,
    /// Socket bytes sent.
    pub net_sent_bytes: u64,
    /// Socket bytes received.
    pub net_recv_bytes: u64,
}
