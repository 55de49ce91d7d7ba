//! trace-claw kernel programs: per-process on-CPU time, I/O and socket bytes, and the
//! fork/exec/exit lifecycle of the tracked process tree.
//!
//! Only tracepoints, raw tracepoints and a BTF tracepoint are used (no kprobes, no fentry), so
//! the programs load on kernels built without `CONFIG_KPROBES` and under lockdown (integrity).
//! Minimum kernel: 6.8 (two-argument `sched_stat_runtime`).
//!
//! - [`maps`]: every map and the load-time `CONFIG`.
//! - [`sched`]: on-CPU time from `sched:sched_stat_runtime`.
//! - [`io`]: block-layer read bytes.
//! - [`net`]: socket bytes sent and received.
//! - [`lifecycle`]: fork, exec and exit, and the tracked set they maintain.
//! - [`buckets`]: the tracked trees' counters per 5 ms, for per-action costs.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// Atomic add without compare-and-swap: the bpf target has no `AtomicU64::fetch_add`, only the
// intrinsic, which LLVM lowers to BPF_ATOMIC_ADD.
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    expect(internal_features, reason = "core_intrinsics for atomic_xadd")
)]

#[cfg(target_arch = "bpf")]
mod buckets;
#[cfg(target_arch = "bpf")]
mod io;
#[cfg(target_arch = "bpf")]
mod lifecycle;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod net;
#[cfg(target_arch = "bpf")]
mod sched;

/// The kernel only lets GPL programs call some helpers (`bpf_probe_read_kernel`, ring buffer).
#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: eBPF programs cannot panic at run time; the verifier rejects any path that would
    // reach this, so it is never executed.
    unsafe { core::hint::unreachable_unchecked() }
}

/// Host builds (`cargo test --workspace`) compile this crate as an empty program.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
