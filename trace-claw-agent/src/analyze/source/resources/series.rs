//! The resource series the analyzer follows through time, and one timestamped value of them.

/// Series used for snapshots and interpolation, all of the `pid="total"` tree sums except the
/// two system gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// system.cpu.usage_percent, cpu="total".
    SysCpu = 0,
    /// system.memory.usage_percent.
    SysMem,
    /// process.cpu.usage_percent, pid="total".
    ProcCpu,
    /// process.memory.rss_bytes, pid="total".
    ProcRss,
    /// process.cpu.time_seconds (counter).
    CpuTime,
    /// process.io.read_bytes (counter).
    IoRead,
    /// process.io.write_bytes (counter).
    IoWrite,
    /// process.io.block_read_bytes (counter).
    BlockRead,
    /// process.network.bytes_sent (counter).
    NetSent,
    /// process.network.bytes_recv (counter).
    NetRecv,
}

impl Series {
    /// Whether it is a gauge, read at one time for snapshots (the others are counters,
    /// interpolated for costs).
    pub fn is_gauge(self) -> bool {
        matches!(
            self,
            Self::SysCpu | Self::SysMem | Self::ProcCpu | Self::ProcRss
        )
    }
}

/// Number of [`Series`].
pub const N_SERIES: usize = 10;

/// A timestamped value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    /// Unix nanoseconds.
    pub t: i64,
    /// Value.
    pub v: f64,
}
