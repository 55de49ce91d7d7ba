//! The thread that moves lifecycle events from the kernel ring buffer into a channel as they
//! arrive, so bursts (an exec storm) never wait for the next tick.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use aya::maps::{MapData, RingBuf};
use trace_claw_common::abi::ProcEvent;

/// The ring-buffer reader thread. Stopped and joined on drop.
pub struct RingReader {
    /// Written once to wake the thread and make it return.
    stop: OwnedFd,
    handle: Option<JoinHandle<()>>,
}

impl RingReader {
    /// Starts the thread. It sleeps in `poll` on the ring buffer and the stop eventfd, without
    /// a timeout: an idle agent's reader costs nothing (a 100 ms poll timeout was 18% of the
    /// idle eBPF agent's CPU).
    pub fn spawn(mut ring: RingBuf<MapData>, tx: Sender<ProcEvent>) -> std::io::Result<Self> {
        // SAFETY: eventfd has no memory preconditions; the result is checked below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created eventfd that nothing else owns.
        let stop = unsafe { OwnedFd::from_raw_fd(raw) };
        let stop_fd = stop.as_raw_fd();
        let handle = std::thread::Builder::new()
            .name("ebpf-events".to_owned())
            .spawn(move || {
                let ring_fd = ring.as_raw_fd();
                loop {
                    let mut fds = [
                        libc::pollfd {
                            fd: ring_fd,
                            events: libc::POLLIN,
                            revents: 0,
                        },
                        libc::pollfd {
                            fd: stop_fd,
                            events: libc::POLLIN,
                            revents: 0,
                        },
                    ];
                    // SAFETY: `fds` are two valid pollfds for fds that outlive this thread (the
                    // eventfd is closed only after the join). An error (EINTR) just means
                    // draining now and polling again.
                    let _ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                    while let Some(item) = ring.next() {
                        if item.len() < std::mem::size_of::<ProcEvent>() {
                            continue;
                        }
                        // SAFETY: the item holds at least one ProcEvent written by the kernel
                        // programs; ProcEvent is plain data valid for any bytes.
                        let event =
                            unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ProcEvent>()) };
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                    if fds[1].revents != 0 {
                        return;
                    }
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to the eventfd this struct owns.
        let written = unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), 8) };
        if written != 8 {
            log::error!(
                "cannot stop the eBPF event reader: {}",
                std::io::Error::last_os_error()
            );
            return; // joining would hang; the thread ends with the process
        }
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                log::error!("eBPF event reader thread panicked");
            }
        }
    }
}
