//! On-CPU time in the scheduler's own accounting.
//!
//! `sched:sched_stat_runtime` reports each runtime delta exactly as the scheduler adds it to
//! `sum_exec_runtime`, the value behind /proc/PID/schedstat and wait4's rusage; timing
//! `sched_switch` slices instead would include hypervisor steal time. The raw tracepoint is used
//! because the delta may be reported for a task other than `current` (remote wakeups, /proc
//! readers), so the tgid is read from the task itself.

use core::ptr::addr_of_mut;

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use aya_ebpf::macros::raw_tracepoint;
use aya_ebpf::programs::RawTracePointContext;

use crate::maps::{add_to, config, current_tgid};

/// `sched_stat_runtime(struct task_struct *curr, u64 runtime)`: adds `runtime` ns to the
/// task's process. Minimum kernel: 6.8 (two-argument form).
#[raw_tracepoint(tracepoint = "sched_stat_runtime")]
pub fn sched_stat_runtime(ctx: RawTracePointContext) -> i32 {
    match try_sched_stat_runtime(&ctx) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

fn try_sched_stat_runtime(ctx: &RawTracePointContext) -> Result<(), i32> {
    let task: u64 = ctx.arg(0);
    let runtime: u64 = ctx.arg(1);
    // SAFETY: bpf_get_current_task only returns the current task's address.
    let tgid = if task == unsafe { bpf_get_current_task() } {
        current_tgid() as i32 // the common case, without a probe read
    } else {
        let offset = u64::from(config().task_tgid_offset);
        // SAFETY: `task` is the tracepoint's task_struct pointer and `offset` is
        // task_struct.tgid's offset from the running kernel's BTF; the read faults safely.
        unsafe { bpf_probe_read_kernel((task + offset) as *const i32) }?
    };
    add_to(tgid as u32, runtime, |p| {
        // SAFETY: `p` points to a live PROCS value.
        unsafe { addr_of_mut!((*p).counters.on_cpu_ns) }
    });
    Ok(())
}
