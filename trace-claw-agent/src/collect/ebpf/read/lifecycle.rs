//! The fork, exec and exit events of the kernel programs, applied to the tracked set: each
//! becomes a [`ProcessEvent`], an exit moves the process's final counters into the tree
//! totals, and the exits the kernel could not report are finished from its maps.

use std::time::{Duration, Instant};

use trace_claw_common::abi::{
    exit_code_from_status, ExitingProc, ProcCounters, ProcEvent, COMM_LEN, EVENT_EXEC, EVENT_EXIT,
    EVENT_FORK, FILENAME_LEN, TRACK_DESCENDANT, TRACK_EXEC_MATCH,
};
use trace_claw_common::event::{ProcessEvent, ProcessEventKind, ProcessTotals};
use trace_claw_common::time::Timestamp;

use super::{EbpfCollector, Live};
use crate::collect::process::{Backend, ProcessTable};

/// How long a tracked pid may be gone from /proc before userspace finishes its exit itself: the
/// kernel emits the exit event when the task is freed, an RCU grace period (milliseconds; up to
/// 10 s with lazy RCU on offloaded CPUs) after the reap that removed the /proc entry.
const EXIT_EVENT_GRACE: Duration = Duration::from_secs(2);

impl EbpfCollector {
    /// Applies the kernel events received since the last tick to the tracked set.
    pub(super) fn handle_events(&mut self) {
        let mut events = std::mem::take(&mut self.pending);
        events.extend(self.events_rx.try_iter());
        for e in &events {
            match e.kind {
                EVENT_FORK => self.on_fork(e),
                EVENT_EXEC => self.on_exec(e),
                EVENT_EXIT => self.on_exit(e),
                other => log::debug!("unknown eBPF event kind {other}"),
            }
        }
    }

    fn on_fork(&mut self, e: &ProcEvent) {
        let comm = c_string(&e.comm);
        self.live.insert(e.pid, Live::new(TRACK_DESCENDANT, &comm));
        log::trace!("fork {} -> {} ({comm})", e.ppid, e.pid);
        self.events
            .push(self.event(ProcessEventKind::Fork, e, comm, None, None));
    }

    fn on_exec(&mut self, e: &ProcEvent) {
        let comm = c_string(&e.comm);
        let filename = c_string(&e.filename);
        if e.flags & TRACK_EXEC_MATCH != 0 && !self.live.contains_key(&e.pid) {
            // The kernel compared at most 15 bytes of comm; confirm with argv[0] and exe.
            let (argv0, exe) = self.table.names(e.pid);
            let confirmed = self.selection.matches_exec(
                e.pid,
                &comm,
                argv0.as_deref(),
                exe.as_deref(),
                &filename,
            );
            if !confirmed {
                log::debug!(
                    "untracking pid {} ({comm}): argv[0]/exe do not match",
                    e.pid
                );
                // Already gone if it exited meanwhile.
                self.kernel.forget(e.pid);
                return;
            }
        }
        let live = self
            .live
            .entry(e.pid)
            .or_insert_with(|| Live::new(e.flags, &comm));
        live.comm.clone_from(&comm);
        log::trace!("exec {} {filename}", e.pid);
        let filename = (!filename.is_empty()).then_some(filename);
        self.events
            .push(self.event(ProcessEventKind::Exec, e, comm, filename, None));
    }

    fn on_exit(&mut self, e: &ProcEvent) {
        let comm = c_string(&e.comm);
        let mut totals = self.live.remove(&e.pid).map(|l| l.base).unwrap_or_default();
        self.missing.remove(&e.pid);
        totals += ProcessTotals::from(e.counters);
        self.samples.add_exited(&totals);
        log::trace!("exit {} ({comm}) status {:#x}", e.pid, e.exit_status);
        let mut event = self.event(ProcessEventKind::Exit, e, comm, None, Some(totals));
        event.exit_code = Some(exit_code_from_status(e.exit_status));
        self.events.push(event);
    }

    /// Finishes a tracked pid whose /proc entry has been missing for [`EXIT_EVENT_GRACE`] and
    /// is still in `PROCS`, so the kernel maps cannot leak:
    /// - its exit is in `EXITING` (the kernel's `sched_process_free` run never came): emits the
    ///   exit event from the maps, exact, since the process stopped running long ago;
    /// - it is not (the exit went unrecorded with `EXITING` full): counts it with its last
    ///   counters, without an event.
    pub(super) fn finish_if_gone(&mut self, pid: u32) {
        let since = *self.missing.entry(pid).or_insert_with(Instant::now);
        if since.elapsed() < EXIT_EVENT_GRACE {
            return;
        }
        self.missing.remove(&pid);
        let Some(tracked) = self.kernel.tracked(pid) else {
            return; // the kernel finished it meanwhile; its event is on the way
        };
        let recorded: Vec<(u32, ExitingProc)> = self
            .kernel
            .exiting
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, x)| x.tgid == pid)
            .collect();
        // Whoever removes the EXITING entry, the kernel or this, emits the event.
        let claimed = recorded
            .iter()
            .filter(|(tid, _)| self.kernel.exiting.remove(tid).is_ok())
            .map(|&(_, x)| x)
            .next_back();
        if !recorded.is_empty() && claimed.is_none() {
            return; // the kernel is emitting it
        }
        self.kernel.forget(pid);
        let Some(exit) = claimed else {
            let mut totals = self.live.remove(&pid).map(|l| l.base).unwrap_or_default();
            totals += ProcessTotals::from(tracked.counters);
            self.samples.add_exited(&totals);
            log::debug!(
                "pid {pid} vanished without a recorded exit; counted with its last counters"
            );
            return;
        };
        let mut comm = [0u8; COMM_LEN];
        if let Some(live) = self.live.get(&pid) {
            let name = live.comm.as_bytes();
            let n = name.len().min(COMM_LEN - 1);
            comm[..n].copy_from_slice(&name[..n]);
        }
        log::debug!("pid {pid}: exit event finished from the kernel maps");
        self.on_exit(&ProcEvent {
            timestamp_ns: exit.timestamp_ns,
            kind: EVENT_EXIT,
            pid,
            ppid: tracked.ppid,
            exit_status: exit.exit_status,
            flags: tracked.flags,
            _pad: 0,
            counters: ProcCounters {
                read_bytes: exit.read_bytes,
                write_bytes: exit.write_bytes,
                ..tracked.counters
            },
            comm,
            filename: [0; FILENAME_LEN],
        });
    }

    fn event(
        &self,
        kind: ProcessEventKind,
        e: &ProcEvent,
        comm: String,
        filename: Option<String>,
        totals: Option<ProcessTotals>,
    ) -> ProcessEvent {
        ProcessEvent {
            timestamp: Timestamp(self.clock_offset_ns.saturating_add(e.timestamp_ns as i64)),
            kind,
            pid: e.pid,
            ppid: e.ppid,
            comm,
            filename,
            exit_code: None,
            totals,
            source: Backend::EBPF.source.to_owned(),
        }
    }
}

/// The bytes before the first NUL, lossily decoded.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_string_stops_at_the_first_nul() {
        assert_eq!(c_string(b"sh\0\0junk"), "sh");
        assert_eq!(c_string(b"abc"), "abc");
    }
}
