//! Every map of the kernel programs, the load-time `CONFIG`, and the helpers that update them.

use core::intrinsics::{atomic_xadd, AtomicOrdering};

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap, RingBuf};
use aya_ebpf::programs::TracePointContext;
use aya_ebpf::EbpfContext;
use trace_claw_common::abi::{
    ExitingProc, KernelConfig, TrackedProc, EVENTS_RING_BYTES, MAX_EXITING, MAX_TRACKED, STAT_COUNT,
};

/// Tracked processes and their counters, keyed by tgid. Seeded by userspace, extended on fork
/// and matching exec, emptied on exit.
#[map]
pub static PROCS: HashMap<u32, TrackedProc> = HashMap::with_max_entries(MAX_TRACKED, 0);

/// Tracked processes whose last thread is exiting, keyed by that thread's tid, until its final
/// context switch (when the scheduler has accounted its last slice).
#[map]
pub static EXITING: HashMap<u32, ExitingProc> = HashMap::with_max_entries(MAX_EXITING, 0);

/// Lifecycle events for userspace.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

/// Counters about the programs themselves (`STAT_*` indexes).
#[map]
pub static STATS: Array<u64> = Array::with_max_entries(STAT_COUNT, 0);

/// Target name and `task_struct` offsets, written by the loader before load.
#[unsafe(no_mangle)]
static CONFIG: KernelConfig = KernelConfig::zeroed();

/// The load-time configuration (read volatile so the compiler keeps the loader's value).
#[inline(always)]
pub fn config() -> KernelConfig {
    // SAFETY: CONFIG is a plain static; the loader rewrites its bytes before the program runs.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

/// The current task's process id (tgid).
#[inline(always)]
pub fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// Atomically adds `value` to the counter at `field`.
#[inline(always)]
pub fn add(field: *mut u64, value: u64) {
    // SAFETY: `field` points into a live map value (from `get_ptr_mut`), 8-byte aligned; map
    // values may be updated concurrently from other CPUs, hence the atomic add.
    let _previous = unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(field, value) };
}

/// Adds to `field` of the counters of the process `tgid`, if it is tracked.
#[inline(always)]
pub fn add_to<F: FnOnce(*mut TrackedProc) -> *mut u64>(tgid: u32, value: u64, field: F) {
    if let Some(p) = PROCS.get_ptr_mut(tgid) {
        add(field(p), value);
    }
}

/// Bumps one `STATS` slot.
#[inline(always)]
pub fn bump_stat(index: u32) {
    if let Some(slot) = STATS.get_ptr_mut(index) {
        add(slot, 1);
    }
}

/// Reads the field at `offset` of a tracepoint record directly from the context (a plain load,
/// no helper call; the verifier checks bounds and `offset % size_of::<T>() == 0`).
///
/// # Safety
/// `offset` must be the offset of a field of type `T` in the attached tracepoint's format.
#[inline(always)]
pub unsafe fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: per the caller, a `T` lives at `offset` of the record the context points to.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}
