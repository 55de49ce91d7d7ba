//! Turns the kernel programs' maps and lifecycle events into samples and process events.
//!
//! At start the tracked set is seeded from a procfs scan (the same name matching and tree walk
//! as the polling collector), then the programs are attached and the scan repeated to catch
//! children forked in between. Each tick: lifecycle events are drained (exits carry final
//! counters), then every tracked pid is read from /proc (stat: memory and threads; io: the
//! kernel's rchar/wchar) and from the `PROCS` map. A live process's on-CPU counter lags by the
//! slice its running threads have not yet been charged (at most a scheduler tick each).
//! Processes tracked from before the agent started get a baseline of the CPU time they had
//! already used, so totals are lifetime totals.
//!
//! One piece, though over 400 lines: seeding, the fork/exec/exit handlers, the finishing of
//! exits the kernel missed and the per-tick read all update the same tracked set (`live`, the
//! kernel's `PROCS`, the exited totals) and keep one invariant between them: every tracked
//! process is counted exactly once, live or exited.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use procfs::process::Process;
use trace_claw_common::abi::{
    exit_code_from_status, ExitingProc, ProcCounters, ProcEvent, TrackedProc, COMM_LEN, EVENT_EXEC,
    EVENT_EXIT, EVENT_FORK, FILENAME_LEN, STAT_EVENTS_DROPPED, STAT_TRACK_FULL, TRACK_DESCENDANT,
    TRACK_EXEC_MATCH, TRACK_MATCH,
};
use trace_claw_common::event::{ProcessEvent, ProcessEventKind, ProcessTotals};
use trace_claw_common::names;
use trace_claw_common::time::Timestamp;

use super::load::Kernel;
use super::proc_files::ProcFiles;
use super::reader::Reader;
use super::{EbpfError, EbpfOptions};
use crate::collect::process::{
    matches_target, tracked_in, Backend, ProcStat, ProcessTable, TreeSamples,
};
use crate::collect::procfs::ProcfsTable;
use crate::collect::SampleBuffer;
use crate::target::{NameMatcher, Tracked};

/// What userspace knows about one tracked, live process.
#[derive(Debug)]
struct Live {
    comm: String,
    tracked: Tracked,
    /// Usage before tracking began (seeded processes only).
    base: ProcessTotals,
    /// Lifetime totals at the last read.
    last: ProcessTotals,
    /// Whether `last` has been read at least once (for the CPU percent).
    read_once: bool,
}

/// Samples the tracked process tree from the kernel programs.
pub struct EbpfCollector {
    kernel: Kernel,
    matcher: NameMatcher,
    table: ProcfsTable,
    proc_root: PathBuf,
    /// Kept-open /proc/PID/stat and io files of the tracked processes.
    proc_files: ProcFiles,
    own_pid: u32,
    events_rx: Receiver<ProcEvent>,
    /// Held for its Drop, which stops and joins the ring-buffer thread.
    _reader: Reader,
    /// Events received by `wait_for_event` and not yet handled.
    pending: Vec<ProcEvent>,
    live: HashMap<u32, Live>,
    samples: TreeSamples,
    events: Vec<ProcessEvent>,
    /// Wall clock minus CLOCK_MONOTONIC, to date kernel events.
    clock_offset_ns: i64,
    dropped_warned: u64,
    /// Pids in `PROCS` whose /proc entry was missing at the last tick, and since when.
    missing: HashMap<u32, Instant>,
    pids_buf: Vec<u32>,
    /// The tracked processes read this tick (kept for its allocation).
    procs_buf: Vec<(u32, TrackedProc)>,
}

/// How long a tracked pid may be gone from /proc before userspace finishes its exit itself: the
/// kernel emits the exit event when the task is freed, an RCU grace period (milliseconds; up to
/// 10 s with lazy RCU on offloaded CPUs) after the reap that removed the /proc entry.
const EXIT_EVENT_GRACE: Duration = Duration::from_secs(2);

impl EbpfCollector {
    /// Loads and attaches the kernel programs and seeds the tracked set.
    pub fn start(options: &EbpfOptions) -> Result<Self, EbpfError> {
        if let Some(why) = super::probe() {
            return Err(why);
        }
        let mut kernel = Kernel::load(&options.process_name, options.fast_entries)?;
        let ring = kernel.events.take().ok_or(EbpfError::Map {
            name: "EVENTS",
            source: aya::maps::MapError::InvalidName {
                name: "EVENTS".to_owned(),
            },
        })?;
        let (tx, events_rx) = mpsc::channel();
        let reader = Reader::spawn(ring, tx).map_err(EbpfError::Reader)?;
        let mut collector = Self {
            kernel,
            matcher: NameMatcher::new(&options.process_name),
            table: ProcfsTable::new(&options.proc_root),
            proc_root: options.proc_root.clone(),
            proc_files: ProcFiles::new(&options.proc_root),
            own_pid: std::process::id(),
            events_rx,
            _reader: reader,
            pending: Vec::new(),
            live: HashMap::new(),
            samples: TreeSamples::new(&Backend::EBPF, options.total_memory_bytes),
            events: Vec::new(),
            clock_offset_ns: realtime_minus_monotonic_ns(),
            dropped_warned: 0,
            missing: HashMap::new(),
            pids_buf: Vec::new(),
            procs_buf: Vec::new(),
        };
        collector.seed();
        collector.kernel.attach()?;
        // Children forked between the scan and the attach are not in PROCS yet.
        collector.seed();
        Ok(collector)
    }

    /// Number of processes currently tracked by the kernel programs.
    pub fn tracked_count(&self) -> usize {
        self.kernel.procs.keys().filter(Result::is_ok).count()
    }

    /// Lifecycle events handled since the last call.
    pub fn drain_events(&mut self) -> Vec<ProcessEvent> {
        std::mem::take(&mut self.events)
    }

    /// Blocks up to `timeout` for the next kernel event and keeps it for the next
    /// [`collect`](Self::collect); false on timeout. For callers that wait on a process.
    pub fn wait_for_event(&mut self, timeout: Duration) -> bool {
        match self.events_rx.recv_timeout(timeout) {
            Ok(e) => {
                self.pending.push(e);
                true
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Lifecycle events the kernel could not deliver because the ring buffer was full.
    pub fn events_dropped(&self) -> u64 {
        self.kernel.stats.get(&STAT_EVENTS_DROPPED, 0).unwrap_or(0)
    }

    /// Handles pending events and pushes this tick's samples.
    pub fn collect(&mut self, buf: &mut SampleBuffer) {
        self.samples.start_tick();
        self.handle_events();

        let mut procs = std::mem::take(&mut self.procs_buf);
        if let Err(e) = self.kernel.tracked_all(&mut procs) {
            log::warn!("cannot read the eBPF process map: {e}");
        }
        for &(pid, tracked) in &procs {
            let Some((stat, io)) = self.proc_files.read(pid) else {
                self.finish_if_gone(pid);
                continue;
            };
            self.missing.remove(&pid);
            let live = self
                .live
                .entry(pid)
                .or_insert_with(|| Live::new(tracked.flags, &stat.comm));
            let mut totals = live.base;
            totals += ProcessTotals::from(tracked.counters);
            (totals.read_bytes, totals.write_bytes) =
                io.unwrap_or((live.last.read_bytes, live.last.write_bytes));
            let prev_cpu_ns = live.read_once.then_some(live.last.cpu_ns);
            live.last = totals;
            live.read_once = true;
            if live.comm != stat.comm {
                live.comm.clone_from(&stat.comm);
            }
            self.samples
                .push_process(buf, &stat, live.tracked, &totals, prev_cpu_ns);
        }
        let mut pids = std::mem::take(&mut self.pids_buf);
        pids.clear();
        pids.extend(procs.iter().map(|&(pid, _)| pid));
        pids.sort_unstable();
        self.proc_files.retain_sorted(&pids);
        self.pids_buf = pids;
        self.procs_buf = procs;

        let dropped = self.events_dropped() as f64;
        self.samples
            .push_totals(buf, &[(&names::EBPF_EVENTS_DROPPED, dropped)]);
        self.warn_about_losses();
    }

    /// Reads the process table and puts every matching process and its descendants into
    /// `PROCS` (those already there are left alone).
    fn seed(&mut self) {
        let mut stats = Vec::new();
        self.table.scan(&mut stats);
        let tree = tracked_in(&stats, |s| {
            self.live
                .get(&s.key.pid)
                .is_some_and(|l| l.tracked == Tracked::Match)
                || matches_target(&self.matcher, &self.table, s)
        });
        for s in &stats {
            let Some(&tracked) = tree.get(&s.key.pid) else {
                continue;
            };
            if s.key.pid == self.own_pid || self.kernel.procs.get(&s.key.pid, 0).is_ok() {
                continue;
            }
            let value = TrackedProc {
                counters: ProcCounters::default(),
                ppid: s.ppid,
                flags: match tracked {
                    Tracked::Match => TRACK_MATCH,
                    Tracked::Descendant => TRACK_DESCENDANT,
                },
            };
            if let Err(e) = self.kernel.mark_seeded(s.key.pid) {
                log::warn!("cannot track pid {} ({}): {e}", s.key.pid, s.comm);
                continue;
            }
            if let Err(e) = self.kernel.procs.insert(s.key.pid, value, 0) {
                log::warn!("cannot track pid {} ({}): {e}", s.key.pid, s.comm);
                continue;
            }
            // Read after inserting: a few microseconds may count twice, none are lost.
            let base = self.baseline(s);
            self.live.insert(
                s.key.pid,
                Live {
                    comm: s.comm.clone(),
                    tracked,
                    base,
                    last: base,
                    read_once: false,
                },
            );
        }
    }

    /// CPU time a process used before it was tracked (rchar/wchar are lifetime values anyway).
    fn baseline(&self, s: &ProcStat) -> ProcessTotals {
        let Ok(p) = Process::new_with_root(self.proc_root.join(s.key.pid.to_string())) else {
            return ProcessTotals::default();
        };
        // Per-thread sum_exec_runtime: exact where utime+stime is tick-rounded.
        let cpu_ns = p
            .tasks()
            .map(|tasks| {
                tasks
                    .filter_map(Result::ok)
                    .filter_map(|t| t.schedstat().ok())
                    .map(|s| s.sum_exec_runtime)
                    .sum()
            })
            .unwrap_or(s.cpu_ns);
        ProcessTotals {
            cpu_ns,
            ..ProcessTotals::default()
        }
    }

    fn handle_events(&mut self) {
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
            let confirmed = self
                .matcher
                .matches(&comm, argv0.as_deref(), exe.as_deref())
                || self.matcher.matches_name(&filename);
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
    fn finish_if_gone(&mut self, pid: u32) {
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

    fn warn_about_losses(&mut self) {
        let dropped = self.events_dropped();
        if dropped > self.dropped_warned {
            let full = self.kernel.stats.get(&STAT_TRACK_FULL, 0).unwrap_or(0);
            log::warn!(
                "eBPF ring buffer full: {dropped} lifecycle events dropped so far \
                 ({full} forks untracked because the map was full)"
            );
            self.dropped_warned = dropped;
        }
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

impl Live {
    /// A process the kernel tracks with `flags` (`TRACK_*`), with no usage before tracking.
    fn new(flags: u32, comm: &str) -> Self {
        Self {
            comm: comm.to_owned(),
            tracked: if flags & TRACK_MATCH != 0 {
                Tracked::Match
            } else {
                Tracked::Descendant
            },
            base: ProcessTotals::default(),
            last: ProcessTotals::default(),
            read_once: false,
        }
    }
}

/// The bytes before the first NUL, lossily decoded.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Offset that turns a `bpf_ktime_get_ns` value into Unix nanoseconds.
fn realtime_minus_monotonic_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)
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
