//! Fork, exec and exit of tracked processes, and the tracked set they maintain.
//!
//! - fork (`task:task_newtask`, processes only): the child of a tracked process is tracked.
//! - exec (`sched:sched_process_exec`): a tracked process reports its new program; an untracked
//!   one whose new comm contains the target name starts being tracked.
//! - rename (`task:task_rename`): an untracked process renaming itself to a matching name
//!   starts being tracked.
//! - exit: `sched:sched_process_exit` of the thread that ends the group records the exit time,
//!   status and I/O; `sched_process_free` of that thread, when the scheduler has accounted its
//!   last slice, emits the exit event with the final counters and removes the process from
//!   every map.

use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns,
    bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_kernel_str_bytes,
};
use core::ptr::addr_of;

use aya_ebpf::macros::{btf_tracepoint, tracepoint};
use aya_ebpf::programs::{BtfTracePointContext, TracePointContext};
use aya_ebpf::EbpfContext;
use trace_claw_common::abi::{
    ExitingProc, KernelConfig, ProcCounters, ProcEvent, TrackedProc, COMM_LEN, EVENT_EXEC,
    EVENT_EXIT, EVENT_FORK, FILENAME_LEN, STAT_EVENTS_DROPPED, STAT_TRACK_FULL, TRACK_DESCENDANT,
    TRACK_EXEC_MATCH, TRACK_MATCH,
};
use trace_claw_common::tracepoint::{
    CLONE_THREAD, DATA_LOC_OFFSET_MASK, EXEC_FILENAME, EXIT_GROUP_DEAD, EXIT_PID, NEWTASK_COMM,
    NEWTASK_FLAGS, NEWTASK_PID, RENAME_NEWCOMM, RENAME_PID,
};

use crate::buckets::{thread_born, thread_exit, thread_freed};
use crate::maps::{
    bump_stat, config, config_field, current_tgid, field, maybe_tracked, return_code, root_of,
    take_fast, task_field, track, untrack, CONFIG, EVENTS, EXITING, PROCS,
};

/// `task:task_newtask`: a tracked process created a child process (tracked in its tree) or a
/// thread (whose I/O then counts from zero).
#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> i32 {
    return_code(try_task_newtask(&ctx))
}

fn try_task_newtask(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: `tracepoint` offsets, from /sys/kernel/tracing/events/task/task_newtask/format.
    let clone_flags: u64 = unsafe { field(ctx, NEWTASK_FLAGS) };
    let parent = current_tgid();
    let root = root_of(parent);
    if root == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let child: i32 = unsafe { field(ctx, NEWTASK_PID) };
    let child = child as u32;
    thread_born(child);
    if clone_flags & CLONE_THREAD != 0 {
        return Ok(());
    }
    let tracked = TrackedProc {
        counters: ProcCounters::default(),
        ppid: parent,
        flags: TRACK_DESCENDANT,
        root,
        _pad: 0,
    };
    if track(child, &tracked).is_err() {
        bump_stat(STAT_TRACK_FULL);
        return Ok(());
    }
    // SAFETY: as above.
    let comm: [u8; COMM_LEN] = unsafe { ctx.read_at(NEWTASK_COMM) }?;
    emit(EVENT_FORK, child, &tracked, comm, 0, |_| Ok(()));
    Ok(())
}

/// `sched:sched_process_exec`: a tracked process, or one whose new name matches, ran a program.
#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> i32 {
    return_code(try_sched_process_exec(&ctx))
}

fn try_sched_process_exec(ctx: &TracePointContext) -> Result<(), i32> {
    let tgid = current_tgid();
    let comm = bpf_get_current_comm()?;
    let tracked = match PROCS.get_ptr(tgid) {
        // SAFETY: `p` points to a live PROCS value; it is copied out at once.
        Some(p) => unsafe { *p },
        None => {
            if !comm_matches(&comm) {
                return Ok(());
            }
            let tracked = TrackedProc {
                counters: ProcCounters::default(),
                ppid: parent_tgid(),
                flags: TRACK_MATCH | TRACK_EXEC_MATCH,
                root: tgid,
                _pad: 0,
            };
            if track(tgid, &tracked).is_err() {
                bump_stat(STAT_TRACK_FULL);
                return Ok(());
            }
            tracked
        }
    };
    // SAFETY: EXEC_FILENAME is the filename's __data_loc (its low bits: offset in the record).
    let loc: u32 = unsafe { field(ctx, EXEC_FILENAME) };
    let record = ctx.as_ptr() as *const u8;
    emit(EVENT_EXEC, tgid, &tracked, comm, 0, |event| {
        // SAFETY: the record holds the NUL-terminated filename at that offset.
        unsafe {
            bpf_probe_read_kernel_str_bytes(
                record.add((loc & DATA_LOC_OFFSET_MASK) as usize),
                &mut event.filename,
            )
        }
        .map(|_| ())
    });
    Ok(())
}

/// `task:task_rename`: an untracked process whose main thread renames itself (prctl
/// `PR_SET_NAME`, as node does for `process.title`) to a name containing the target starts
/// being tracked; userspace picks it up from `PROCS` at the next tick.
#[tracepoint]
pub fn task_rename(ctx: TracePointContext) -> i32 {
    return_code(try_task_rename(&ctx))
}

fn try_task_rename(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: `tracepoint` offsets, from /sys/kernel/tracing/events/task/task_rename/format.
    let pid: i32 = unsafe { field(ctx, RENAME_PID) };
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((pid_tgid >> 32) as u32, pid_tgid as u32);
    // Only a main thread renaming itself: that is the process name /proc and polling see.
    if pid as u32 != tid || tid != tgid || PROCS.get_ptr(tgid).is_some() {
        return Ok(());
    }
    // SAFETY: as above.
    let comm: [u8; COMM_LEN] = unsafe { ctx.read_at(RENAME_NEWCOMM) }?;
    if !comm_matches(&comm) {
        return Ok(());
    }
    let tracked = TrackedProc {
        counters: ProcCounters::default(),
        ppid: parent_tgid(),
        flags: TRACK_MATCH,
        root: tgid,
        _pad: 0,
    };
    if track(tgid, &tracked).is_err() {
        bump_stat(STAT_TRACK_FULL);
    }
    Ok(())
}

/// `sched:sched_process_exit`: a tracked thread's last rchar/wchar growth goes to its tree's
/// time bucket; the thread ending a tracked process records its exit status.
#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> i32 {
    return_code(try_sched_process_exit(&ctx))
}

fn try_sched_process_exit(ctx: &TracePointContext) -> Result<(), i32> {
    let tgid = current_tgid();
    let root = root_of(tgid);
    if root == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    let tid: i32 = unsafe { field(ctx, EXIT_PID) };
    let cfg = config();
    // SAFETY: bpf_get_current_task has no preconditions.
    let task = unsafe { bpf_get_current_task() };
    let own = ioac(task + u64::from(cfg.task_ioac_offset), &cfg);
    thread_exit(root, tid as u32, own.0, own.1);
    if !group_dead(ctx, task, &cfg) {
        return Ok(());
    }
    // SAFETY: do_exit has stored the status in current->exit_code before this tracepoint; the
    // offset comes from the running kernel's BTF and the read faults safely regardless.
    let exit_status = unsafe {
        bpf_probe_read_kernel((task + u64::from(cfg.task_exit_code_offset)) as *const i32)
    }
    .unwrap_or(0);
    let (read_bytes, write_bytes) = process_io(task, own, &cfg);
    // With EXITING full the exit event is lost; userspace counts the process when its pid is
    // gone (`collect::ebpf::read`).
    let exiting = ExitingProc {
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        tgid,
        exit_status,
        read_bytes,
        write_bytes,
    };
    let _full = EXITING.insert(tid as u32, exiting, 0);
    Ok(())
}

/// `sched_process_free(struct task_struct *p)` (BTF tracepoint): a task is freed, after its
/// parent reaped it, its final context switch and an RCU grace period, so the scheduler has
/// accounted every nanosecond it ran. If it is the thread that ended a tracked process (see
/// `sched_process_exit`), emits the exit event with the final counters and forgets the process.
/// A rare event (once per task), so no program runs on context switches at all.
#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    let task: *const u8 = ctx.arg(0);
    // SAFETY: `task` is the tracepoint's task_struct pointer (typed by BTF) and CONFIG, frozen
    // before load, holds task_struct.tgid's offset in the running kernel.
    let tgid: i32 = unsafe { task_field(task, addr_of!(CONFIG.task_tgid_offset)) };
    // SAFETY: as above, for task_struct.pid (the thread id).
    let tid: i32 = unsafe { task_field(task, addr_of!(CONFIG.task_pid_offset)) };
    let tid = tid as u32;
    thread_freed(tid);
    if !maybe_tracked(tgid as u32) {
        return 0;
    }
    let Some(exiting) = EXITING.get_ptr(tid) else {
        if tid == tgid as u32 && PROCS.get_ptr(tid).is_none() {
            // The group leader goes last: an entry left by a process userspace stopped
            // tracking while it ran (a false exec match) is freed here.
            let _untracked = take_fast(tid);
        }
        return 0;
    };
    // SAFETY: `exiting` points to a live EXITING value; it is copied out at once.
    let exiting = unsafe { *exiting };
    // Userspace finishes exits the kernel missed (it removes the entry too): whoever removes
    // the entry emits the event, exactly once.
    if EXITING.remove(tid).is_err() {
        return 0;
    }
    if let Some(p) = PROCS.get_ptr(exiting.tgid) {
        // SAFETY: `p` points to a live PROCS value; it is copied out at once.
        let mut tracked = unsafe { *p };
        tracked.counters = tracked.counters.plus(&take_fast(exiting.tgid));
        tracked.counters.read_bytes = exiting.read_bytes;
        tracked.counters.write_bytes = exiting.write_bytes;
        let mut comm = [0u8; COMM_LEN];
        // SAFETY: as above, for task_struct.comm; a failed read leaves the comm empty.
        let _read = unsafe {
            bpf_probe_read_kernel_buf(task.add(config().task_comm_offset as usize), &mut comm)
        };
        emit(
            EVENT_EXIT,
            exiting.tgid,
            &tracked,
            comm,
            exiting.exit_status,
            |event| {
                event.timestamp_ns = exiting.timestamp_ns;
                Ok(())
            },
        );
    }
    untrack(exiting.tgid);
    0
}

/// Writes one event to the ring buffer, counting it as dropped when the buffer is full.
#[inline(always)]
fn emit<F: FnOnce(&mut ProcEvent) -> Result<(), i32>>(
    kind: u32,
    pid: u32,
    tracked: &TrackedProc,
    comm: [u8; COMM_LEN],
    exit_status: i32,
    fill: F,
) {
    let Some(mut entry) = EVENTS.reserve::<ProcEvent>(0) else {
        bump_stat(STAT_EVENTS_DROPPED);
        return;
    };
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points to a reserved, exclusively owned ProcEvent-sized slot; every field
    // is written before submit.
    unsafe {
        (*event).timestamp_ns = bpf_ktime_get_ns();
        (*event).kind = kind;
        (*event).pid = pid;
        (*event).ppid = tracked.ppid;
        (*event).exit_status = exit_status;
        (*event).flags = tracked.flags;
        (*event)._pad = 0;
        (*event).counters = tracked.counters;
        (*event).comm = comm;
        (*event).filename = [0; FILENAME_LEN];
        if fill(&mut *event).is_err() {
            (*event).filename = [0; FILENAME_LEN];
        }
    }
    entry.submit(0);
}

/// Whether `comm` contains the configured lower-case needle, ignoring ASCII case.
#[inline(always)]
fn comm_matches(comm: &[u8; COMM_LEN]) -> bool {
    let n = config_field(addr_of!(CONFIG.needle_len)) as usize;
    let needle: [u8; COMM_LEN] = config_field(addr_of!(CONFIG.needle));
    if n == 0 || n > COMM_LEN {
        return false;
    }
    let mut start = 0;
    while start + n <= COMM_LEN {
        let mut i = 0;
        while i < n && i < COMM_LEN && start + i < COMM_LEN {
            if comm[start + i].to_ascii_lowercase() != needle[i] {
                break;
            }
            i += 1;
        }
        if i == n {
            return true;
        }
        if comm[start] == 0 {
            return false;
        }
        start += 1;
    }
    false
}

/// rchar and wchar of the `task_io_accounting` at kernel address `ioac`.
#[inline(always)]
fn ioac(ioac: u64, cfg: &KernelConfig) -> (u64, u64) {
    // SAFETY: offsets from the running kernel's BTF; the reads fault safely regardless.
    unsafe {
        (
            bpf_probe_read_kernel((ioac + u64::from(cfg.ioac_rchar_offset)) as *const u64)
                .unwrap_or(0),
            bpf_probe_read_kernel((ioac + u64::from(cfg.ioac_wchar_offset)) as *const u64)
                .unwrap_or(0),
        )
    }
}

/// rchar and wchar of the process whose last thread is `task` (whose own are `own`): the
/// thread's own `task_io_accounting` plus the one its dead threads folded into `signal_struct`.
#[inline(always)]
fn process_io(task: u64, own: (u64, u64), cfg: &KernelConfig) -> (u64, u64) {
    // SAFETY: as in `ioac`.
    let signal: u64 =
        unsafe { bpf_probe_read_kernel((task + u64::from(cfg.task_signal_offset)) as *const u64) }
            .unwrap_or(0);
    if signal == 0 {
        return own;
    }
    let dead = ioac(signal + u64::from(cfg.signal_ioac_offset), cfg);
    (own.0 + dead.0, own.1 + dead.1)
}

/// Whether the exiting thread is the process's last: the tracepoint's `group_dead` (6.16+), or
/// before that `signal->live == 0` (do_exit decrements it before the tracepoint; two threads
/// exiting at once may both see 0, and the exit event is then still emitted once, by whichever
/// `sched_process_free` removes the `EXITING` entry of its thread first).
#[inline(always)]
fn group_dead(ctx: &TracePointContext, task: u64, cfg: &KernelConfig) -> bool {
    if cfg.exit_has_group_dead != 0 {
        // SAFETY: `tracepoint` offsets, from
        // /sys/kernel/tracing/events/sched/sched_process_exit/format (checked by the loader).
        let dead: u8 = unsafe { field(ctx, EXIT_GROUP_DEAD) };
        return dead != 0;
    }
    // SAFETY: offsets from the running kernel's BTF; both reads fault safely regardless.
    let signal: u64 =
        unsafe { bpf_probe_read_kernel((task + u64::from(cfg.task_signal_offset)) as *const u64) }
            .unwrap_or(0);
    if signal == 0 {
        return false;
    }
    // SAFETY: as above.
    let live: i32 = unsafe {
        bpf_probe_read_kernel((signal + u64::from(cfg.signal_live_offset)) as *const i32)
    }
    .unwrap_or(1);
    live == 0
}

/// Tgid of the current task's parent, read through `task_struct.real_parent`.
#[inline(always)]
fn parent_tgid() -> u32 {
    let real_parent = config_field(addr_of!(CONFIG.task_real_parent_offset));
    // SAFETY: offsets from the running kernel's BTF; both reads fault safely regardless.
    let parent: u64 = unsafe {
        let task = bpf_get_current_task();
        bpf_probe_read_kernel((task + u64::from(real_parent)) as *const u64)
    }
    .unwrap_or(0);
    if parent == 0 {
        return 0;
    }
    let mut tgid = [0u8; 4];
    // SAFETY: as above.
    let read = unsafe {
        bpf_probe_read_kernel_buf(
            (parent + u64::from(config_field(addr_of!(CONFIG.task_tgid_offset)))) as *const u8,
            &mut tgid,
        )
    };
    if read.is_err() {
        return 0;
    }
    u32::from_ne_bytes(tgid)
}
