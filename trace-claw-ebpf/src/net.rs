//! Socket bytes of IPv4 and IPv6 sockets (TCP, UDP, raw), as `sock_sendmsg` / `sock_recvmsg`
//! return them, whichever syscall (send*, recv*, read, write) reached the socket. Unix-domain
//! sockets are local IPC, not network, and are left out.

use core::ptr::addr_of_mut;

use aya_ebpf::macros::tracepoint;
use aya_ebpf::programs::TracePointContext;

use trace_claw_common::tracepoint::{
    AF_INET, AF_INET6, MSG_PEEK, SOCK_FAMILY, SOCK_FLAGS, SOCK_RET,
};

use trace_claw_common::abi::ProcCounters;

use crate::buckets::charge;
use crate::maps::{add_to, current_tgid, field};

/// `sock:sock_send_length` (kernel 6.3+): adds bytes sent.
#[tracepoint]
pub fn sock_send_length(ctx: TracePointContext) -> i32 {
    match socket_bytes(&ctx) {
        Ok(n) if n > 0 => {
            let field = |p: *mut ProcCounters| {
                // SAFETY: `p` points to live counters (a FAST, PROCS or BUCKETS value).
                unsafe { addr_of_mut!((*p).net_sent_bytes) }
            };
            charge(add_to(current_tgid(), n, field), n, field);
            0
        }
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// `sock:sock_recv_length` (kernel 6.3+): adds bytes received (not peeked).
#[tracepoint]
pub fn sock_recv_length(ctx: TracePointContext) -> i32 {
    match socket_bytes(&ctx) {
        Ok(n) if n > 0 => {
            let field = |p: *mut ProcCounters| {
                // SAFETY: `p` points to live counters (a FAST, PROCS or BUCKETS value).
                unsafe { addr_of_mut!((*p).net_recv_bytes) }
            };
            charge(add_to(current_tgid(), n, field), n, field);
            0
        }
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// Bytes moved by an IPv4/IPv6 socket call that consumed data, else 0.
fn socket_bytes(ctx: &TracePointContext) -> Result<u64, i32> {
    // SAFETY: `tracepoint` offsets, from /sys/kernel/tracing/events/sock/sock_send_length/format
    // (the recv format is identical).
    let ret: i32 = unsafe { field(ctx, SOCK_RET) };
    if ret <= 0 {
        return Ok(0);
    }
    // SAFETY: as above.
    let family: u16 = unsafe { field(ctx, SOCK_FAMILY) };
    // SAFETY: as above.
    let flags: i32 = unsafe { field(ctx, SOCK_FLAGS) };
    if (family != AF_INET && family != AF_INET6) || flags & MSG_PEEK != 0 {
        return Ok(0);
    }
    Ok(ret as u64)
}
