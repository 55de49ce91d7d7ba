//! Every map of the kernel programs, the load-time `CONFIG`, and the helpers that update them.

use core::intrinsics::{atomic_and, atomic_cxchg, atomic_or, atomic_xadd, AtomicOrdering};
use core::ptr::addr_of_mut;

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use aya_ebpf::macros::map;
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::TracePointContext;
use aya_ebpf::EbpfContext;
use trace_claw_common::abi::{
    BucketKey, ExitingProc, FastCounters, KernelConfig, ProcCounters, SlotCounters, StagedSlot,
    ThreadIo, TrackedProc, EVENTS_RING_BYTES, MAX_BUCKETS, MAX_EXITING, MAX_FAST, MAX_TRACKED,
    PID_BITMAP_WORDS, STAT_COUNT,
};

/// Tracked processes and their counters, keyed by tgid. Seeded by userspace, extended on fork
/// and matching exec, emptied on exit.
#[map]
pub static PROCS: HashMap<u32, TrackedProc> = HashMap::with_max_entries(MAX_TRACKED, 0);

/// Tracked processes whose last thread has exited, keyed by that thread's tid, until the
/// thread's `task_struct` is freed (when the scheduler has accounted its last slice).
#[map]
pub static EXITING: HashMap<u32, ExitingProc> = HashMap::with_max_entries(MAX_EXITING, 0);

/// Tgids that may be in `PROCS`, one bit each (word `tgid / 64`, bit `tgid % 64`): set by the
/// kernel programs before they insert a process into `PROCS`, cleared after they remove it. With
/// [`SEEDED_BITS`] it lets the hot programs skip the `PROCS` hash lookup for untracked tasks with
/// an inlined array load. The loader sizes it to the host's `pid_max`; a tgid beyond it is
/// looked up in `PROCS` as before.
#[map]
pub static KERNEL_BITS: Array<u64> = Array::with_max_entries(PID_BITMAP_WORDS, 0);

/// The same for the processes userspace seeds into `PROCS` (it is the only writer of this map,
/// so its read-modify-write never races with the kernel's atomic updates of `KERNEL_BITS`).
#[map]
pub static SEEDED_BITS: Array<u64> = Array::with_max_entries(PID_BITMAP_WORDS, 0);

/// Counters of tracked processes at index `tgid & CONFIG.fast_mask` (see [`FastCounters`]):
/// the hot programs' inlined array load instead of a `PROCS` hash lookup. The loader sizes it
/// to cover the host's `pid_max` when it can, so two live tgids rarely share an index; the one
/// that comes second counts in `PROCS`.
#[map]
pub static FAST: Array<FastCounters> = Array::with_max_entries(MAX_FAST, 0);

/// The tracked trees' counters per 5 ms of time (see `buckets`); drained by userspace.
#[map]
pub static BUCKETS: HashMap<BucketKey, SlotCounters> = HashMap::with_max_entries(MAX_BUCKETS, 0);

/// Each CPU's staged time bucket of runtime updates (one entry per CPU; see `buckets`).
#[map]
pub static STAGED: PerCpuArray<StagedSlot> = PerCpuArray::with_max_entries(1, 0);

/// rchar/wchar of each tracked thread at its last runtime update, at index
/// `tid & CONFIG.fast_mask` (see `buckets`); the loader sizes it as `FAST`.
#[map]
pub static THREAD_IO: Array<ThreadIo> = Array::with_max_entries(MAX_FAST, 0);

/// Lifecycle events for userspace.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

/// Counters about the programs themselves (`STAT_*` indexes).
#[map]
pub static STATS: Array<u64> = Array::with_max_entries(STAT_COUNT, 0);

/// Target name and `task_struct` offsets, written by the loader before load.
#[unsafe(no_mangle)]
pub static CONFIG: KernelConfig = KernelConfig::zeroed();

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

/// Whether `tgid` may be in `PROCS`: false only if it certainly is not (both bitmaps have its
/// bit clear), which spares untracked tasks the hash lookup.
#[inline(always)]
pub fn maybe_tracked(tgid: u32) -> bool {
    let word = tgid / 64;
    match (KERNEL_BITS.get_ptr(word), SEEDED_BITS.get_ptr(word)) {
        // SAFETY: both point to live array elements.
        (Some(k), Some(s)) => unsafe { (*k | *s) & (1u64 << (tgid % 64)) != 0 },
        _ => true, // beyond the bitmaps: ask PROCS
    }
}

/// Inserts `tracked` into `PROCS` under `tgid`, setting its `KERNEL_BITS` bit first and
/// dropping a `FAST` entry a previous process with this pid may have left (one userspace
/// stopped tracking while it ran, whose task was never seen freed).
#[inline(always)]
pub fn track(tgid: u32, tracked: &TrackedProc) -> Result<(), i32> {
    if let Some(word) = KERNEL_BITS.get_ptr_mut(tgid / 64) {
        // SAFETY: `word` points to a live array element, 8-byte aligned; other CPUs update
        // other bits of it concurrently, hence the atomic or.
        let _previous =
            unsafe { atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(word, 1u64 << (tgid % 64)) };
    }
    let _stale = take_fast(tgid);
    PROCS.insert(tgid, tracked, 0)
}

/// Removes `tgid` from `PROCS`, then clears its `KERNEL_BITS` bit.
#[inline(always)]
pub fn untrack(tgid: u32) {
    let _gone = PROCS.remove(tgid);
    if let Some(word) = KERNEL_BITS.get_ptr_mut(tgid / 64) {
        // SAFETY: as in `track`.
        let _previous = unsafe {
            atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(word, !(1u64 << (tgid % 64)))
        };
    }
}

/// Adds to `field` of the counters of the process `tgid`, if it is tracked: in its `FAST`
/// entry if it owns it (the common case: two array loads for the bitmaps, one for the entry);
/// else, if it is in `PROCS`, in the `FAST` entry it claims if that is free, or in `PROCS`.
/// Returns the root of its tree (0 if it is not tracked).
#[inline(always)]
pub fn add_to<F: Fn(*mut ProcCounters) -> *mut u64>(tgid: u32, value: u64, field: F) -> u32 {
    if !maybe_tracked(tgid) {
        return 0;
    }
    let fast = FAST.get_ptr_mut(tgid & config_fast_mask());
    if let Some(e) = fast {
        // SAFETY: `e` points to a live FAST element.
        if unsafe { (*e).owner } == u64::from(tgid) {
            // SAFETY: as above.
            add(field(unsafe { addr_of_mut!((*e).counters) }), value);
            // SAFETY: as above.
            return unsafe { (*e).root };
        }
    }
    let Some(p) = PROCS.get_ptr_mut(tgid) else {
        return 0; // a stale bitmap bit
    };
    // SAFETY: `p` points to a live PROCS value.
    let root = unsafe { (*p).root };
    if let Some(e) = fast {
        // SAFETY: `e` points to a live FAST element, 8-byte aligned; other CPUs may claim it
        // at the same time, hence the compare and swap. A free entry's counters are zero.
        let (_, claimed) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::SeqCst }, { AtomicOrdering::SeqCst }>(
                addr_of_mut!((*e).owner),
                0,
                u64::from(tgid),
            )
        };
        if claimed {
            // SAFETY: as above; the entry is now this process's. Another CPU reading the
            // root before this store sees 0, and that one delta misses its time bucket.
            unsafe { core::ptr::write_volatile(addr_of_mut!((*e).root), root) };
            // SAFETY: as above.
            add(field(unsafe { addr_of_mut!((*e).counters) }), value);
            return root;
        }
    }
    // SAFETY: `p` points to a live PROCS value.
    add(field(unsafe { addr_of_mut!((*p).counters) }), value);
    root
}

/// The root of tracked process `tgid`'s tree, 0 if it is not tracked.
#[inline(always)]
pub fn root_of(tgid: u32) -> u32 {
    if !maybe_tracked(tgid) {
        return 0;
    }
    // SAFETY: a live PROCS value, copied out at once.
    PROCS.get_ptr(tgid).map_or(0, |p| unsafe { (*p).root })
}

/// Frees the `FAST` entry of `tgid` if it owns it, returning the counters it held (zero if
/// it owned none): at the process's exit, once it no longer runs, and when a pid starts being
/// tracked (whatever an entry it owns holds is from before). Userspace never writes `FAST`.
#[inline(always)]
pub fn take_fast(tgid: u32) -> ProcCounters {
    let Some(e) = FAST.get_ptr_mut(tgid & config_fast_mask()) else {
        return ProcCounters::default();
    };
    // SAFETY: `e` points to a live FAST element; its counters are cleared before the entry
    // is freed, so the next owner starts from zero.
    unsafe {
        if (*e).owner != u64::from(tgid) {
            return ProcCounters::default();
        }
        let counters = (*e).counters;
        core::ptr::write_volatile(addr_of_mut!((*e).counters), ProcCounters::default());
        core::ptr::write_volatile(addr_of_mut!((*e).root), 0);
        core::ptr::write_volatile(addr_of_mut!((*e).owner), 0);
        counters
    }
}

/// `CONFIG.fast_mask` (read volatile so the compiler keeps the loader's value).
#[inline(always)]
pub fn config_fast_mask() -> u32 {
    config_field(core::ptr::addr_of!(CONFIG.fast_mask))
}

/// One field of `CONFIG`, `field` pointing into it, read volatile like [`config`] but without
/// copying the whole struct to the stack (kernels before 6.10 allow a program and the
/// functions it calls 512 bytes of stack together).
#[inline(always)]
pub fn config_field<T: Copy>(field: *const T) -> T {
    // SAFETY: `field` points into CONFIG, a plain static the loader rewrites before load.
    unsafe { core::ptr::read_volatile(field) }
}

/// Bumps one `STATS` slot.
#[inline(always)]
pub fn bump_stat(index: u32) {
    if let Some(slot) = STATS.get_ptr_mut(index) {
        add(slot, 1);
    }
}

/// What a tracepoint program returns for its `try_` function's result: 0, or the error.
#[inline(always)]
pub fn return_code(result: Result<(), i32>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => e,
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

/// Reads the field of a BTF-typed `task_struct *` whose offset is at `offset` in the frozen
/// `CONFIG` (a plain load: the verifier knows the offset's value and checks it against the
/// struct, and the load faults safely).
///
/// # Safety
/// `task` must be a `task_struct *` argument of a BTF tracepoint and `offset` a `CONFIG` field
/// holding the offset of a `T` in `task_struct`.
#[inline(always)]
pub unsafe fn task_field<T: Copy>(task: *const u8, offset: *const u32) -> T {
    // SAFETY: per the caller; CONFIG is read-only and frozen before load.
    unsafe {
        let offset = core::ptr::read_volatile(offset);
        core::ptr::read(task.add(offset as usize).cast::<T>())
    }
}
