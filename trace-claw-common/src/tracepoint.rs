//! The tracepoint records the kernel programs read at fixed offsets, and the kernel flag values
//! they test: the one place these kernel-facing facts are written down.
//!
//! Offsets are those of `/sys/kernel/tracing/events/<category>/<event>/format`. The ones whose
//! layout changed across the kernels the programs support are listed in [`CHECKED_FIELDS`],
//! which the agent compares with the running kernel's format files before loading anything.

/// A tracepoint field as its format file declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracepointField {
    /// `<category>/<event>`, the tracepoint's directory under `events/`.
    pub event: &'static str,
    /// The field's declaration, as after `field:` in the format file (`bool group_dead`).
    pub declaration: &'static str,
    /// Byte offset of the field in the record.
    pub offset: usize,
}

/// `task:task_newtask`: offset of `pid_t pid` (the new task).
pub const NEWTASK_PID: usize = 8;
/// `task:task_newtask`: offset of `char comm[16]`.
pub const NEWTASK_COMM: usize = 12;
/// `task:task_newtask`: offset of `u64 clone_flags`.
pub const NEWTASK_FLAGS: usize = 32;
/// `CLONE_THREAD` in `clone_flags`: the new task is a thread of the caller's process.
pub const CLONE_THREAD: u64 = 0x0001_0000;

/// `sched:sched_process_exec`: offset of `__data_loc char[] filename`.
pub const EXEC_FILENAME: usize = 8;
/// The bits of a `__data_loc` field that give its data's offset in the record (the high 16 are
/// its length).
pub const DATA_LOC_OFFSET_MASK: u32 = 0xffff;

/// `task:task_rename`: offset of `pid_t pid` (the renamed task).
pub const RENAME_PID: usize = 8;
/// `task:task_rename`: offset of `char newcomm[16]`.
pub const RENAME_NEWCOMM: usize = 28;

/// `sched:sched_process_exit`: offset of `pid_t pid` (the exiting thread).
pub const EXIT_PID: usize = 24;
/// `sched:sched_process_exit`: offset of `bool group_dead`. Minimum kernel: 6.16.
pub const EXIT_GROUP_DEAD: usize = 32;

/// `sock:sock_send_length` and `sock:sock_recv_length` (same layout): offset of
/// `__u16 family`. Minimum kernel: 6.3.
pub const SOCK_FAMILY: usize = 16;
/// `sock:sock_{send,recv}_length`: offset of `int ret` (bytes moved, or a negative errno).
pub const SOCK_RET: usize = 20;
/// `sock:sock_{send,recv}_length`: offset of `int flags` (`MSG_*`).
pub const SOCK_FLAGS: usize = 24;
/// `AF_INET` in `family`.
pub const AF_INET: u16 = 2;
/// `AF_INET6` in `family`.
pub const AF_INET6: u16 = 10;
/// `MSG_PEEK` in `flags`: the data was looked at, not consumed.
pub const MSG_PEEK: i32 = 2;

/// `block:block_bio_queue`: offset of `unsigned int nr_sector`.
pub const BIO_NR_SECTOR: usize = 24;
/// `block:block_bio_queue`: offset of `char rwbs[10]` (`R` first for a read).
pub const BIO_RWBS: usize = 28;
/// Bytes of a sector, the unit of `nr_sector` whatever the device's block size.
pub const SECTOR_BYTES: u64 = 512;

/// Fields whose layout differs between the kernels the programs may meet, checked by the agent
/// against the running kernel before loading: `group_dead` is new in 6.16 and the `sock`
/// tracepoints in 6.3.
pub const CHECKED_FIELDS: [TracepointField; 2] = [
    TracepointField {
        event: "sched/sched_process_exit",
        declaration: "bool group_dead",
        offset: EXIT_GROUP_DEAD,
    },
    TracepointField {
        event: "sock/sock_send_length",
        declaration: "int ret",
        offset: SOCK_RET,
    },
];
