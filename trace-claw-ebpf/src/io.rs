//! File and pipe I/O: bytes moved by read-family and write-family syscalls (the kernel's
//! rchar/wchar), and bytes the block layer reads on a process's behalf.

use core::ptr::addr_of_mut;

use aya_ebpf::macros::tracepoint;
use aya_ebpf::programs::TracePointContext;

use crate::maps::{add_to, current_tgid, field};

/// `syscalls:sys_exit_*`: offset of `long ret`.
const SYS_EXIT_RET: usize = 16;
/// `block:block_bio_queue`: offset of `unsigned int nr_sector`.
const BIO_NR_SECTOR: usize = 24;
/// `block:block_bio_queue`: offset of `char rwbs[10]`.
const BIO_RWBS: usize = 28;

/// Attached to `sys_exit_read`, `readv`, `pread64`, `preadv`, `preadv2`: adds the bytes read.
#[tracepoint]
pub fn sys_exit_read(ctx: TracePointContext) -> i32 {
    match syscall_bytes(&ctx) {
        Ok(n) if n > 0 => {
            add_to(current_tgid(), n, |p| {
                // SAFETY: `p` points to a live PROCS value.
                unsafe { addr_of_mut!((*p).counters.read_bytes) }
            });
            0
        }
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// Attached to `sys_exit_write`, `writev`, `pwrite64`, `pwritev`, `pwritev2`: adds the bytes
/// written.
#[tracepoint]
pub fn sys_exit_write(ctx: TracePointContext) -> i32 {
    match syscall_bytes(&ctx) {
        Ok(n) if n > 0 => {
            add_to(current_tgid(), n, |p| {
                // SAFETY: `p` points to a live PROCS value.
                unsafe { addr_of_mut!((*p).counters.write_bytes) }
            });
            0
        }
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// The syscall's return value when it is a byte count, else 0.
fn syscall_bytes(ctx: &TracePointContext) -> Result<u64, i32> {
    // SAFETY: offset 16 is `long ret` in every syscalls:sys_exit_* format.
    let ret: i64 = unsafe { field(ctx, SYS_EXIT_RET) };
    Ok(if ret > 0 { ret as u64 } else { 0 })
}

/// `block:block_bio_queue`: adds the size of read bios submitted by a tracked process
/// (page-cache misses and readahead; writeback is submitted by kernel threads and not counted).
#[tracepoint]
pub fn block_bio_queue(ctx: TracePointContext) -> i32 {
    match try_block_bio_queue(&ctx) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

fn try_block_bio_queue(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: offsets from /sys/kernel/tracing/events/block/block_bio_queue/format.
    let op: u8 = unsafe { field(ctx, BIO_RWBS) };
    if op != b'R' {
        return Ok(());
    }
    // SAFETY: as above.
    let sectors: u32 = unsafe { field(ctx, BIO_NR_SECTOR) };
    add_to(current_tgid(), u64::from(sectors) * 512, |p| {
        // SAFETY: `p` points to a live PROCS value.
        unsafe { addr_of_mut!((*p).counters.block_read_bytes) }
    });
    Ok(())
}
