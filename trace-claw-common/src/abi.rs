//! Plain `#[repr(C)]` types shared with the kernel programs (map keys and values, ring-buffer
//! events, load-time configuration).
//!
//! Fixed-width integers only, no implicit padding, `u32` flags instead of `bool`. The `Pod`
//! impls that let aya copy them in and out of maps exist only under feature `user` on Linux.

/// Capacity of the tracked-process map (`PROCS`); a fork beyond it is not tracked.
pub const MAX_TRACKED: u32 = 16_384;
/// Capacity of the map of processes between their exit and the freeing of their last thread.
pub const MAX_EXITING: u32 = 4_096;
/// Words of the tracked-tgid bitmaps as compiled (`PID_MAX_LIMIT` of 64-bit Linux / 64); the
/// loader shrinks them to the host's `pid_max`.
pub const PID_BITMAP_WORDS: u32 = (4 << 20) / 64;
/// Entries of the direct-mapped counters array (`FAST`) as compiled: a power of two, the most the
/// loader gives it; it shrinks it to the smallest power of two covering the host's `pid_max`.
pub const MAX_FAST: u32 = 1 << 16;
/// Size of the lifecycle ring buffer in bytes (a power of two, a multiple of the page size).
pub const EVENTS_RING_BYTES: u32 = 1 << 20;
/// Bytes of the exec'd filename kept in an event (longer paths are truncated).
pub const FILENAME_LEN: usize = 128;
/// Bytes of a task's comm (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// [`TrackedProc::flags`]: tracked because its comm matched at start or at exec.
pub const TRACK_MATCH: u32 = 1;
/// [`TrackedProc::flags`]: tracked because a tracked process forked it.
pub const TRACK_DESCENDANT: u32 = 2;
/// [`TrackedProc::flags`]: the kernel started tracking it at exec on a comm match; userspace
/// re-checks argv\[0\] and exe and may untrack it.
pub const TRACK_EXEC_MATCH: u32 = 4;

/// [`ProcEvent::kind`]: a tracked process forked a child process (`pid` is the child).
pub const EVENT_FORK: u32 = 1;
/// [`ProcEvent::kind`]: a tracked (or newly matching) process executed a program.
pub const EVENT_EXEC: u32 = 2;
/// [`ProcEvent::kind`]: the last thread of a tracked process finished; carries final counters.
pub const EVENT_EXIT: u32 = 3;

/// Index in the `STATS` array: lifecycle events lost because the ring buffer was full.
pub const STAT_EVENTS_DROPPED: u32 = 0;
/// Index in the `STATS` array: forks not tracked because `PROCS` was full.
pub const STAT_TRACK_FULL: u32 = 1;
/// Index in the `STATS` array: counter deltas not put in a time bucket because `BUCKETS` was
/// full (they still count in the per-process counters).
pub const STAT_BUCKETS_FULL: u32 = 2;
/// Number of slots in the `STATS` array.
pub const STAT_COUNT: u32 = 3;

/// Width of a time bucket of a tracked tree's counters (`BUCKETS`), in nanoseconds of
/// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
pub const BUCKET_NS: u64 = 5_000_000;
/// Capacity of the time-bucket map; userspace empties it every tick, so it holds about one
/// interval's busy buckets (200 per running tree at the default 2 s).
pub const MAX_BUCKETS: u32 = 16_384;

/// Per-process resource counters kept by the kernel programs, keyed by tgid.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcCounters {
    /// On-CPU nanoseconds summed from `sched:sched_stat_runtime`.
    pub on_cpu_ns: u64,
    /// The kernel's rchar (`task_io_accounting`), filled in at exit only; live values come
    /// from /proc/PID/io.
    pub read_bytes: u64,
    /// The kernel's wchar, filled in at exit only (as `read_bytes`).
    pub write_bytes: u64,
    /// Bytes queued for read on block devices.
    pub block_read_bytes: u64,
    /// Socket bytes sent.
    pub net_sent_bytes: u64,
    /// Socket bytes received.
    pub net_recv_bytes: u64,
}

impl ProcCounters {
    /// Field-by-field sum of `self` and `other`.
    #[inline(always)]
    pub const fn plus(&self, other: &Self) -> Self {
        Self {
            on_cpu_ns: self.on_cpu_ns.wrapping_add(other.on_cpu_ns),
            read_bytes: self.read_bytes.wrapping_add(other.read_bytes),
            write_bytes: self.write_bytes.wrapping_add(other.write_bytes),
            block_read_bytes: self.block_read_bytes.wrapping_add(other.block_read_bytes),
            net_sent_bytes: self.net_sent_bytes.wrapping_add(other.net_sent_bytes),
            net_recv_bytes: self.net_recv_bytes.wrapping_add(other.net_recv_bytes),
        }
    }
}

/// Value of the `FAST` array: the counters of the tracked process `tgid`, kept at index
/// `tgid & (len - 1)` so the hot programs reach them with an inlined array load instead of a
/// `PROCS` hash lookup. A process's counters are the sum of its `PROCS` and `FAST` ones.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastCounters {
    /// The tgid of the tracked process owning this entry; 0 if free. Claimed by the kernel
    /// (compare and swap from 0; 64 bits, the width BPF's compare and swap takes) the first time
    /// it counts for a tracked process whose entry is free.
    pub owner: u64,
    /// The root of the owner's tracked tree (see [`TrackedProc::root`]), copied from its
    /// `PROCS` value when the entry is claimed.
    pub root: u32,
    /// Explicit padding; always 0.
    pub _pad: u32,
    /// Counters added here since the entry was claimed.
    pub counters: ProcCounters,
}

/// Value of the `PROCS` map: one tracked process (tgid is the key).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackedProc {
    /// Counters since tracking began.
    pub counters: ProcCounters,
    /// Parent tgid when tracking began.
    pub ppid: u32,
    /// `TRACK_*` bits.
    pub flags: u32,
    /// The tgid of the process that roots its tracked tree: itself for a process that matched
    /// the target, its parent's root for a tracked process's child. Time buckets are per root.
    pub root: u32,
    /// Explicit padding; always 0.
    pub _pad: u32,
}

/// Key of the `BUCKETS` map: one tracked tree in one [`BUCKET_NS`] slot of time.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BucketKey {
    /// The tree's root tgid ([`TrackedProc::root`]).
    pub root: u32,
    /// Explicit padding; always 0.
    pub _pad: u32,
    /// `bpf_ktime_get_ns() / BUCKET_NS` when the counters were added.
    pub slot: u64,
}

/// Value of the `BUCKETS` map: a tree's counters in one slot, and the part of the slot in which
/// they were used, so that an action whose window cuts the slot is charged by that part (a
/// burst that ended before the action's end is charged whole, not pro rata of the slot).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotCounters {
    /// `bpf_ktime_get_ns()` at which the first delta of the slot began (for a runtime delta,
    /// the time it was reported minus its length; not before the slot's start).
    pub active_from_ns: u64,
    /// `bpf_ktime_get_ns()` of the last delta added.
    pub active_to_ns: u64,
    /// What the tree used in the slot.
    pub counters: ProcCounters,
    /// `bpf_ktime_get_ns()` at which the first delta that moved bytes began; 0 while none has.
    /// Bytes are charged by this narrower part: a slot whose CPU use goes on after the bytes
    /// were moved (the parent reaping a child that wrote them) does not spread them over it.
    pub io_from_ns: u64,
    /// `bpf_ktime_get_ns()` of the last delta that moved bytes; 0 while none has.
    pub io_to_ns: u64,
}

/// Value of the per-CPU `STAGED` array (one entry per CPU): the time bucket the runtime
/// updates reported on this CPU are adding to. It accumulates with plain adds while the same
/// tree and slot go on, and is added to `BUCKETS` when either changes, or when userspace runs
/// the `flush_staged` program on this CPU (before it drains a closed slot): the hot path's
/// `BUCKETS` hash lookup and three atomic adds to a line other CPUs also write become one
/// per-CPU array load and plain adds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StagedSlot {
    /// The tree's root tgid; 0 when nothing is staged.
    pub root: u32,
    /// Non-zero while `flush_staged` runs on this CPU: a runtime update interrupting it (the
    /// scheduler tick) charges `BUCKETS` directly instead.
    pub busy: u32,
    /// The slot (`bpf_ktime_get_ns() / BUCKET_NS`) of the staged counters.
    pub slot: u64,
    /// The staged counters and the part of the slot they were used in.
    pub bucket: SlotCounters,
}

/// Element of the `THREAD_IO` array, at index `tid & fast_mask` (direct-mapped like `FAST`): a
/// tracked thread's rchar and wchar as last charged to a time bucket, so the next runtime update
/// charges only what it added since.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadIo {
    /// The thread owning the entry; 0 if free. A thread finding another's entry takes it over
    /// (the other is baselined again at its next update).
    pub tid: u32,
    /// Explicit padding; always 0.
    pub _pad: u32,
    /// `task->ioac.rchar` at the last update.
    pub read_bytes: u64,
    /// `task->ioac.wchar` at the last update.
    pub write_bytes: u64,
}

/// Value of the `EXITING` map, keyed by the tid of the thread whose exit ended the group.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitingProc {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at the exit: the time of the exit event.
    pub timestamp_ns: u64,
    /// The process (tgid) that is ending.
    pub tgid: u32,
    /// `task_struct.exit_code`: a raw wait status.
    pub exit_status: i32,
    /// The process's rchar at exit (its own plus its dead threads').
    pub read_bytes: u64,
    /// The process's wchar at exit.
    pub write_bytes: u64,
}

/// One lifecycle record in the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcEvent {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when it happened.
    pub timestamp_ns: u64,
    /// `EVENT_*`.
    pub kind: u32,
    /// The process the event is about (tgid); for fork, the child.
    pub pid: u32,
    /// Parent tgid.
    pub ppid: u32,
    /// Raw wait status for exit events (`task_struct.exit_code`), else 0.
    pub exit_status: i32,
    /// `TRACK_*` bits of the process.
    pub flags: u32,
    /// Explicit padding; always 0.
    pub _pad: u32,
    /// Counters since tracking began: final values on exit, zero otherwise.
    pub counters: ProcCounters,
    /// Process name (NUL-padded).
    pub comm: [u8; COMM_LEN],
    /// Executed file for exec events (NUL-terminated, truncated), else empty.
    pub filename: [u8; FILENAME_LEN],
}

/// Load-time configuration of the kernel programs, the read-only global `CONFIG`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelConfig {
    /// Lower-case target name; an exec whose new comm contains it starts tracking.
    pub needle: [u8; COMM_LEN],
    /// Bytes of `needle` in use; 0 disables matching at exec.
    pub needle_len: u32,
    /// Byte offset of `task_struct.tgid`, from the kernel's BTF.
    pub task_tgid_offset: u32,
    /// Byte offset of `task_struct.exit_code`, from the kernel's BTF.
    pub task_exit_code_offset: u32,
    /// Byte offset of `task_struct.real_parent`, from the kernel's BTF.
    pub task_real_parent_offset: u32,
    /// Byte offset of `task_struct.signal`.
    pub task_signal_offset: u32,
    /// Byte offset of `task_struct.ioac` (this thread's I/O accounting).
    pub task_ioac_offset: u32,
    /// Byte offset of `signal_struct.ioac` (I/O of the process's dead threads).
    pub signal_ioac_offset: u32,
    /// Byte offset of `task_io_accounting.rchar`.
    pub ioac_rchar_offset: u32,
    /// Byte offset of `task_io_accounting.wchar`.
    pub ioac_wchar_offset: u32,
    /// Byte offset of `task_struct.pid` (the thread id).
    pub task_pid_offset: u32,
    /// Byte offset of `task_struct.comm`.
    pub task_comm_offset: u32,
    /// `FAST`'s length minus one (a power of two minus one): the mask that gives a tgid's index.
    pub fast_mask: u32,
    /// Byte offset of `task_struct.ioac.rchar` (the thread's own read bytes).
    pub task_rchar_offset: u32,
    /// Byte offset of `task_struct.ioac.wchar`.
    pub task_wchar_offset: u32,
    /// Byte offset of `signal_struct.live` (the process's live threads).
    pub signal_live_offset: u32,
    /// 1 when `sched:sched_process_exit` carries `group_dead` (6.16+); 0: the exit program
    /// reads `signal->live` instead, which do_exit has decremented before the tracepoint.
    pub exit_has_group_dead: u32,
}

impl KernelConfig {
    /// All zero: no target name, offsets unset.
    pub const fn zeroed() -> Self {
        Self {
            needle: [0; COMM_LEN],
            needle_len: 0,
            task_tgid_offset: 0,
            task_exit_code_offset: 0,
            task_real_parent_offset: 0,
            task_signal_offset: 0,
            task_ioac_offset: 0,
            signal_ioac_offset: 0,
            ioac_rchar_offset: 0,
            ioac_wchar_offset: 0,
            task_pid_offset: 0,
            task_comm_offset: 0,
            fast_mask: 0,
            task_rchar_offset: 0,
            task_wchar_offset: 0,
            signal_live_offset: 0,
            exit_has_group_dead: 0,
        }
    }
}

/// Converts a raw wait status into the exit code a shell reports: the `exit` value, or
/// 128 + signal number for a process killed by a signal.
pub const fn exit_code_from_status(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal == 0 {
        (status >> 8) & 0xff
    } else {
        128 + signal
    }
}

// SAFETY: every type below is `#[repr(C)]`, `Copy`, made only of integers and integer arrays,
// with no implicit padding (checked by `layouts_have_no_padding`), so any bit pattern is valid.
#[cfg(all(feature = "user", target_os = "linux"))]
mod pod {
    use super::{
        BucketKey, ExitingProc, FastCounters, KernelConfig, ProcCounters, ProcEvent, SlotCounters,
        StagedSlot, ThreadIo, TrackedProc,
    };

    // SAFETY: see the module comment.
    unsafe impl aya::Pod for ProcCounters {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for TrackedProc {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for FastCounters {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for ExitingProc {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for ProcEvent {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for KernelConfig {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for BucketKey {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for ThreadIo {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for SlotCounters {}
    // SAFETY: see the module comment.
    unsafe impl aya::Pod for StagedSlot {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(size_of::<ProcCounters>(), 6 * 8);
        assert_eq!(size_of::<TrackedProc>(), size_of::<ProcCounters>() + 16);
        assert_eq!(size_of::<BucketKey>(), 16);
        assert_eq!(size_of::<ThreadIo>(), 24);
        assert_eq!(size_of::<SlotCounters>(), 32 + size_of::<ProcCounters>());
        assert_eq!(size_of::<StagedSlot>(), 16 + size_of::<SlotCounters>());
        assert_eq!(size_of::<ExitingProc>(), 32);
        assert_eq!(size_of::<FastCounters>(), 16 + size_of::<ProcCounters>());
        assert_eq!(
            size_of::<ProcEvent>(),
            8 + 6 * 4 + size_of::<ProcCounters>() + COMM_LEN + FILENAME_LEN
        );
        assert_eq!(size_of::<KernelConfig>(), COMM_LEN + 16 * 4);
    }

    #[test]
    fn wait_status_becomes_shell_exit_code() {
        assert_eq!(exit_code_from_status(0), 0);
        assert_eq!(exit_code_from_status(3 << 8), 3);
        assert_eq!(exit_code_from_status(9), 137);
        assert_eq!(exit_code_from_status(0x80 | 11), 139);
    }
}
