//! Time buckets of the tracked trees' counters, so that an action's cost can be measured over
//! its own window instead of interpolated between ticks.
//!
//! Every delta the hot programs add to a tracked process's counters is also added to
//! `BUCKETS[(root of its tree, now / BUCKET_NS)]`. Only the tracked path pays for it (a clock
//! read and a hash lookup; an insert for the first delta of a tree in a slot), and only
//! buckets that something was added to exist. Userspace drains the closed slots every tick.
//!
//! rchar/wchar are kept by the kernel per thread (`task->ioac`), not by a program: each
//! runtime update of a tracked thread charges what its rchar/wchar grew since the previous one
//! (`THREAD_IO`, direct-mapped by tid like `FAST`), and its exit charges the rest. A thread born to a tracked process starts
//! from zero; one that was running before tracking began is baselined at its first update.

use core::ptr::addr_of_mut;

use aya_ebpf::bindings::BPF_NOEXIST;
use aya_ebpf::helpers::bpf_ktime_get_ns;
use trace_claw_common::abi::{
    BucketKey, ProcCounters, SlotCounters, ThreadIo, BUCKET_NS, STAT_BUCKETS_FULL,
};

use crate::maps::{add, bump_stat, config_fast_mask, BUCKETS, THREAD_IO};

/// The counters of tree `root`'s bucket for the current slot, created empty if this is the
/// slot's first delta, which began `began_ns_ago` ns ago; the slot's active span is extended
/// to now. `None` for an unknown root (0) or when `BUCKETS` is full (counted in `STATS`).
#[inline(always)]
fn current_bucket(root: u32, began_ns_ago: u64) -> Option<*mut ProcCounters> {
    if root == 0 {
        return None;
    }
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let slot = now / BUCKET_NS;
    let key = BucketKey {
        root,
        _pad: 0,
        slot,
    };
    let bucket = match BUCKETS.get_ptr_mut(&key) {
        Some(b) => Some(b),
        None => {
            let fresh = SlotCounters {
                active_from_ns: now.saturating_sub(began_ns_ago).max(slot * BUCKET_NS),
                active_to_ns: now,
                counters: ProcCounters::default(),
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
    // SAFETY: `b` points to a live BUCKETS value. Concurrent updates of the span from other
    // CPUs race benignly: each stores a time within the slot.
    unsafe {
        if (*b).active_to_ns < now {
            core::ptr::write_volatile(addr_of_mut!((*b).active_to_ns), now);
        }
        Some(addr_of_mut!((*b).counters))
    }
}

/// Adds `value` (used just now) to `field` of tree `root`'s current bucket.
#[inline(always)]
pub fn charge<F: Fn(*mut ProcCounters) -> *mut u64>(root: u32, value: u64, field: F) {
    if let Some(b) = current_bucket(root, 0) {
        add(field(b), value);
    }
}

/// Adds on-CPU `runtime` ns and the thread's rchar/wchar growth (see [`thread_io_delta`]),
/// both of the `runtime` just reported, to tree `root`'s current bucket.
#[inline(always)]
pub fn charge_runtime(root: u32, runtime: u64, io: (u64, u64)) {
    let Some(b) = current_bucket(root, runtime) else {
        return;
    };
    // SAFETY: `b` points to the counters of a live BUCKETS value.
    unsafe {
        add(addr_of_mut!((*b).on_cpu_ns), runtime);
        if io.0 != 0 {
            add(addr_of_mut!((*b).read_bytes), io.0);
        }
        if io.1 != 0 {
            add(addr_of_mut!((*b).write_bytes), io.1);
        }
    }
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
