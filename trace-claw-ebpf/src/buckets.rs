//! Time buckets of the tracked trees' counters, so that an action's cost can be measured over
//! its own window instead of interpolated between ticks.
//!
//! Every delta the hot programs add to a tracked process's counters is also added to
//! `BUCKETS[(root of its tree, now / BUCKET_NS)]`. Only the tracked path pays for it, and only
//! buckets that something was added to exist. Userspace drains the closed slots every tick.
//!
//! Runtime updates, by far the most frequent (several per context switch), first go to their
//! CPU's `STAGED` bucket: a clock read, a per-CPU array load and plain adds while the same
//! tree and slot go on; the staged bucket is added to `BUCKETS` when the tree or the slot
//! changes. A CPU that stops running tracked tasks keeps its last bucket staged: before it
//! drains a slot, userspace runs [`flush_staged`] on every CPU whose staged slot is closed
//! (`BPF_PROG_TEST_RUN` on that CPU). Runtime updates run under a runqueue lock with
//! interrupts off, so nothing interrupts them; the flush, run on another CPU through an IPI,
//! runs with interrupts off too, but run on the caller's own CPU it can be interrupted by the
//! scheduler tick, whose runtime update then sees `busy` and charges `BUCKETS` directly.
//! Block and socket deltas (in contexts a runtime update can interrupt) always charge
//! `BUCKETS` directly.
//!
//! rchar/wchar are kept by the kernel per thread (`task->ioac`), not by a program: each
//! runtime update of a tracked thread charges what its rchar/wchar grew since the previous one
//! (`THREAD_IO`, direct-mapped by tid like `FAST`), and its exit charges the rest. A thread born to a tracked process starts
//! from zero; one that was running before tracking began is baselined at its first update.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use aya_ebpf::bindings::BPF_NOEXIST;
use aya_ebpf::helpers::bpf_ktime_get_ns;
use aya_ebpf::macros::raw_tracepoint;
use aya_ebpf::programs::RawTracePointContext;
use trace_claw_common::abi::{
    BucketKey, ProcCounters, SlotCounters, StagedSlot, ThreadIo, BUCKET_NS, STAT_BUCKETS_FULL,
};

use crate::maps::{add, bump_stat, config_fast_mask, BUCKETS, STAGED, THREAD_IO};

/// A part of a slot, `(from, to)` in `bpf_ktime_get_ns()` time; `NO_SPAN` for none.
type Span = (u64, u64);

/// No part of a slot: the delta moved no bytes.
const NO_SPAN: Span = (0, 0);

/// Widens the span at `from_at`, `to_at` (0 while empty) to take in `span`.
///
/// # Safety
/// Both pointers point to fields of a live map value.
#[inline(always)]
unsafe fn widen(from_at: *mut u64, to_at: *mut u64, span: Span) {
    // SAFETY: the caller's promise.
    unsafe {
        let from = read_volatile(from_at);
        if from == 0 || from > span.0 {
            write_volatile(from_at, span.0);
        }
        if read_volatile(to_at) < span.1 {
            write_volatile(to_at, span.1);
        }
    }
}

/// The counters of tree `root`'s bucket of `slot`, created empty if absent; its used span is
/// widened to `active`, and the span in which it moved bytes to `io` (unless `NO_SPAN`), both
/// within the slot. `None` when `BUCKETS` is full (counted in `STATS`).
#[inline(always)]
fn bucket(root: u32, slot: u64, active: Span, io: Span) -> Option<*mut ProcCounters> {
    let key = BucketKey {
        root,
        _pad: 0,
        slot,
    };
    let bucket = match BUCKETS.get_ptr_mut(&key) {
        Some(b) => Some(b),
        None => {
            let fresh = SlotCounters {
                active_from_ns: active.0,
                active_to_ns: active.1,
                counters: ProcCounters::default(),
                io_from_ns: io.0,
                io_to_ns: io.1,
            };
            // Another CPU may insert the same key first: ours then fails and the lookup
            // finds theirs.
            let _raced = BUCKETS.insert(&key, &fresh, u64::from(BPF_NOEXIST));
            BUCKETS.get_ptr_mut(&key)
        }
    };
    let Some(b) = bucket else {
        bump_stat(STAT_BUCKETS_FULL);
        return None;
    };
    // SAFETY: `b` points to a live BUCKETS value. Concurrent updates of the spans from other
    // CPUs race benignly: each stores a time within the slot.
    unsafe {
        widen(
            addr_of_mut!((*b).active_from_ns),
            addr_of_mut!((*b).active_to_ns),
            active,
        );
        if io != NO_SPAN {
            widen(
                addr_of_mut!((*b).io_from_ns),
                addr_of_mut!((*b).io_to_ns),
                io,
            );
        }
        Some(addr_of_mut!((*b).counters))
    }
}

/// Where a delta reported at `now` after `began_ns_ago` ns of use began: not before its slot.
#[inline(always)]
fn began(now: u64, began_ns_ago: u64, slot: u64) -> u64 {
    now.saturating_sub(began_ns_ago).max(slot * BUCKET_NS)
}

/// The counters of tree `root`'s bucket for the current slot, its span extended to now for a
/// delta that began `began_ns_ago` ns ago (its span of moved bytes too, if `moved_bytes`).
/// `None` for an unknown root (0) or a full `BUCKETS`.
#[inline(always)]
fn current_bucket(root: u32, began_ns_ago: u64, moved_bytes: bool) -> Option<*mut ProcCounters> {
    if root == 0 {
        return None;
    }
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let slot = now / BUCKET_NS;
    let span = (began(now, began_ns_ago, slot), now);
    bucket(root, slot, span, if moved_bytes { span } else { NO_SPAN })
}

/// Adds `bytes` (moved just now) to `field` of tree `root`'s current bucket.
#[inline(always)]
pub fn charge<F: Fn(*mut ProcCounters) -> *mut u64>(root: u32, bytes: u64, field: F) {
    if let Some(b) = current_bucket(root, 0, true) {
        add(field(b), bytes);
    }
}

/// Adds `c`'s counters to the bucket at `b` (shared with other CPUs: atomic adds).
#[inline(always)]
fn add_counters(b: *mut ProcCounters, c: &ProcCounters) {
    // SAFETY: `b` points to the counters of a live BUCKETS value.
    unsafe {
        add(addr_of_mut!((*b).on_cpu_ns), c.on_cpu_ns);
        if c.read_bytes != 0 {
            add(addr_of_mut!((*b).read_bytes), c.read_bytes);
        }
        if c.write_bytes != 0 {
            add(addr_of_mut!((*b).write_bytes), c.write_bytes);
        }
    }
}

/// The counters of a runtime update: `runtime` ns on CPU and the rchar/wchar growth `io`.
#[inline(always)]
fn runtime_counters(runtime: u64, io: (u64, u64)) -> ProcCounters {
    ProcCounters {
        on_cpu_ns: runtime,
        read_bytes: io.0,
        write_bytes: io.1,
        ..ProcCounters::default()
    }
}

/// Adds on-CPU `runtime` ns and the thread's rchar/wchar growth (see [`thread_io_delta`]),
/// both of the `runtime` just reported, to tree `root`'s current bucket in `BUCKETS`.
#[inline(always)]
pub fn charge_runtime(root: u32, runtime: u64, io: (u64, u64)) {
    if let Some(b) = current_bucket(root, runtime, io != (0, 0)) {
        add_counters(b, &runtime_counters(runtime, io));
    }
}

/// As [`charge_runtime`], through this CPU's staged bucket. Only for runtime updates (which
/// nothing on their CPU interrupts; see the module comment).
#[inline(always)]
pub fn stage_runtime(root: u32, runtime: u64, io: (u64, u64)) {
    if root == 0 {
        return;
    }
    let Some(s) = STAGED.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: `s` points to this CPU's live STAGED value, which only this CPU's programs
    // touch; `busy` is set only while `flush_staged`, which this update has interrupted, is
    // using it.
    unsafe {
        if read_volatile(addr_of_mut!((*s).busy)) != 0 {
            charge_runtime(root, runtime, io);
            return;
        }
        // SAFETY: bpf_ktime_get_ns has no preconditions.
        let now = bpf_ktime_get_ns();
        let slot = now / BUCKET_NS;
        let span = (began(now, runtime, slot), now);
        let io_span = if io == (0, 0) { NO_SPAN } else { span };
        if (*s).root != root || (*s).slot != slot {
            flush(&*s);
            *s = StagedSlot {
                root,
                busy: 0,
                slot,
                bucket: SlotCounters {
                    active_from_ns: span.0,
                    active_to_ns: now,
                    counters: runtime_counters(runtime, io),
                    io_from_ns: io_span.0,
                    io_to_ns: io_span.1,
                },
            };
            return;
        }
        let b = &mut (*s).bucket;
        b.active_to_ns = now;
        if io_span != NO_SPAN {
            if b.io_from_ns == 0 {
                b.io_from_ns = io_span.0;
            }
            b.io_to_ns = now;
        }
        b.counters.on_cpu_ns += runtime;
        b.counters.read_bytes += io.0;
        b.counters.write_bytes += io.1;
    }
}

/// Adds staged bucket `s` (if any) to `BUCKETS`.
#[inline(always)]
fn flush(s: &StagedSlot) {
    if s.root == 0 {
        return;
    }
    let b = &s.bucket;
    let active = (b.active_from_ns, b.active_to_ns);
    if let Some(c) = bucket(s.root, s.slot, active, (b.io_from_ns, b.io_to_ns)) {
        add_counters(c, &b.counters);
    }
}

/// Adds this CPU's staged bucket to `BUCKETS` and empties it. Never attached: userspace runs
/// it on a CPU (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_RUN_ON_CPU`, kernel 5.10+) whose staged
/// slot is closed, before it drains that slot.
#[raw_tracepoint(tracepoint = "flush_staged")]
pub fn flush_staged(_ctx: RawTracePointContext) -> i32 {
    let Some(s) = STAGED.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: `s` points to this CPU's live STAGED value. Every access between setting and
    // clearing `busy` is volatile, so none moves out of that window; a runtime update that
    // interrupts it leaves the value alone.
    let staged = unsafe {
        write_volatile(addr_of_mut!((*s).busy), 1);
        let staged = read_volatile(s);
        write_volatile(addr_of_mut!((*s).root), 0);
        write_volatile(addr_of_mut!((*s).busy), 0);
        staged
    };
    flush(&staged);
    0
}

/// What thread `tid`'s rchar/wchar (now `read`, `write`) grew since its last update, which
/// becomes this one. A thread seen for the first time (or whose entry another thread took) is
/// baselined: nothing is charged.
#[inline(always)]
pub fn thread_io_delta(tid: u32, read: u64, write: u64) -> (u64, u64) {
    let Some(e) = THREAD_IO.get_ptr_mut(tid & config_fast_mask()) else {
        return (0, 0);
    };
    // SAFETY: `e` points to a live THREAD_IO element. A task's runtime updates run under its
    // runqueue's lock, and its exit on its own CPU, so no two updates of one thread race; two
    // threads sharing an index take the entry over from each other (a lost delta, not a
    // wrong one).
    unsafe {
        let delta = if (*e).tid == tid {
            (
                read.saturating_sub((*e).read_bytes),
                write.saturating_sub((*e).write_bytes),
            )
        } else {
            (0, 0)
        };
        *e = ThreadIo {
            tid,
            _pad: 0,
            read_bytes: read,
            write_bytes: write,
        };
        delta
    }
}

/// Starts thread `tid` of a tracked process from zero (a new task's `ioac` is zeroed).
#[inline(always)]
pub fn thread_born(tid: u32) {
    if let Some(e) = THREAD_IO.get_ptr_mut(tid & config_fast_mask()) {
        // SAFETY: `e` points to a live THREAD_IO element; the new task has not run yet.
        unsafe {
            *e = ThreadIo {
                tid,
                ..ThreadIo::default()
            }
        };
    }
}

/// Charges what exiting thread `tid` (rchar/wchar now `read`, `write`) did since its last
/// runtime update to `root`'s current bucket, and frees its entry.
#[inline(always)]
pub fn thread_exit(root: u32, tid: u32, read: u64, write: u64) {
    let io = thread_io_delta(tid, read, write);
    thread_freed(tid);
    if io != (0, 0) {
        charge_runtime(root, 0, io);
    }
}

/// Frees thread `tid`'s entry, if it owns it (its task is freed).
#[inline(always)]
pub fn thread_freed(tid: u32) {
    if let Some(e) = THREAD_IO.get_ptr_mut(tid & config_fast_mask()) {
        // SAFETY: `e` points to a live THREAD_IO element.
        unsafe {
            if (*e).tid == tid {
                core::ptr::write_volatile(addr_of_mut!((*e).tid), 0);
            }
        }
    }
}
