//! Block-layer reads on a process's behalf. (rchar/wchar need no program: the kernel keeps them
//! in `task_io_accounting`, read from /proc/PID/io while a process lives and by the exit
//! program when it ends; syscall tracepoints would tax every syscall on the host.)

use core::ptr::addr_of_mut;

use aya_ebpf::macros::tracepoint;
use aya_ebpf::programs::TracePointContext;

use trace_claw_common::tracepoint::{BIO_NR_SECTOR, BIO_RWBS, SECTOR_BYTES};

use trace_claw_common::abi::ProcCounters;

use crate::buckets::charge;
use crate::maps::{add_to, current_tgid, field, return_code};

/// `block:block_bio_queue`: adds the size of read bios submitted by a tracked process
/// (page-cache misses and readahead; writeback is submitted by kernel threads and not counted).
#[tracepoint]
pub fn block_bio_queue(ctx: TracePointContext) -> i32 {
    return_code(try_block_bio_queue(&ctx))
}

fn try_block_bio_queue(ctx: &TracePointContext) -> Result<(), i32> {
    // SAFETY: `tracepoint` offsets, from /sys/kernel/tracing/events/block/block_bio_queue/format.
    let op: u8 = unsafe { field(ctx, BIO_RWBS) };
    if op != b'R' {
        return Ok(());
    }
    // SAFETY: as above.
    let sectors: u32 = unsafe { field(ctx, BIO_NR_SECTOR) };
    let field = |p: *mut ProcCounters| {
        // SAFETY: `p` points to live counters (a FAST, PROCS or BUCKETS value).
        unsafe { addr_of_mut!((*p).block_read_bytes) }
    };
    let bytes = u64::from(sectors) * SECTOR_BYTES;
    charge(add_to(current_tgid(), bytes, field), bytes, field);
    Ok(())
}
