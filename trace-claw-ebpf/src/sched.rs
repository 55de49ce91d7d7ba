//! On-CPU time in the scheduler's own accounting.
//!
//! `sched:sched_stat_runtime` reports each runtime delta exactly as the scheduler adds it to
//! `sum_exec_runtime`, the value behind /proc/PID/schedstat and wait4's rusage; timing
//! `sched_switch` slices instead would include hypervisor steal time. The delta may be reported
//! for a task other than `current` (remote wakeups, /proc readers), so the tgid is read from the
//! task itself. A BTF tracepoint (`tp_btf`) rather than a raw one: the verifier knows the
//! argument is a `task_struct *`, so `task->tgid` is one plain load instead of a
//! `bpf_probe_read_kernel` call, and the program calls no helper on the untracked path. It runs several
//! times per context switch on every CPU, so every nanosecond here counts; only tracked tasks
//! go on to their tree's time bucket (`buckets`).

use core::ptr::{addr_of, addr_of_mut};

use aya_ebpf::macros::btf_tracepoint;
use aya_ebpf::programs::BtfTracePointContext;

use crate::buckets::{stage_runtime, thread_io_delta};
use crate::maps::{add_to, task_field, CONFIG};

/// `sched_stat_runtime(struct task_struct *curr, u64 runtime)`: adds `runtime` ns to the
/// task's process and, with what the thread's rchar/wchar grew since its last update, to its
/// tree's time bucket. Minimum kernel: 6.8 (two-argument form).
#[btf_tracepoint(function = "sched_stat_runtime")]
pub fn sched_stat_runtime(ctx: BtfTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    let runtime: u64 = ctx.arg(1);
    // SAFETY: `task` is the tracepoint's task_struct pointer (typed by BTF) and CONFIG, frozen
    // before load, holds task_struct.tgid's offset in the running kernel.
    let tgid: i32 = unsafe { task_field(task, addr_of!(CONFIG.task_tgid_offset)) };
    let root = add_to(tgid as u32, runtime, |p| {
        // SAFETY: `p` points to live counters (a FAST or PROCS value).
        unsafe { addr_of_mut!((*p).on_cpu_ns) }
    });
    if root == 0 {
        return 0;
    }
    // SAFETY: as above, for task_struct.pid and task_struct.ioac.{rchar,wchar}.
    let (tid, read, write): (i32, u64, u64) = unsafe {
        (
            task_field(task, addr_of!(CONFIG.task_pid_offset)),
            task_field(task, addr_of!(CONFIG.task_rchar_offset)),
            task_field(task, addr_of!(CONFIG.task_wchar_offset)),
        )
    };
    stage_runtime(root, runtime, thread_io_delta(tid as u32, read, write));
    0
}
