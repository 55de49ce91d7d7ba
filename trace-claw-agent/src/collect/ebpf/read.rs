//! Turns the kernel programs' maps and ring buffer into samples and process events.
//!
//! At start the tracked set is seeded from a procfs scan (the same name matching and tree walk
//! as the polling collector), then the programs are attached and the scan repeated to catch
//! children forked in between. Each tick: lifecycle events are drained (exits carry final
//! counters), then every tracked pid is read from /proc (stat: memory and threads; io: the
//! kernel's rchar/wchar) and from the `PROCS` map. A live process's on-CPU counter lags by the
//! slice its running threads have not yet been charged (at most a scheduler tick each). Processes tracked from before the agent
//! started get a baseline of the CPU time they had already used, so totals are lifetime totals.

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
use trace_claw_common::names::{self, labels, MetricDef};
use trace_claw_common::time::Timestamp;

use super::load::Kernel;
use super::reader::Reader;
use super::{EbpfError, EbpfOptions};
use crate::collect::process::{
    memory_percent, push_process_samples, ProcStat, ProcessLabels, ProcessTable,
};
use crate::collect::procfs::{ProcFiles, ProcfsTable};
use crate::collect::SampleBuffer;
use crate::target::{tracked_tree, NameMatcher, Tracked};

/// What userspace knows about one tracked, live process.
#[derive(Debug, Clone)]
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
    total_memory_bytes: u64,
    /// Kept-open /proc/PID/stat and io files of the tracked processes.
    proc_files: ProcFiles,
    own_pid: u32,
    events_rx: Receiver<ProcEvent>,
    /// Held for its Drop, which stops and joins the ring-buffer thread.
    _reader: Reader,
    /// Events received by `wait_for_event` and not yet handled.
    pending: Vec<ProcEvent>,
    live: HashMap<u32, Live>,
    /// Totals of tracked processes that have exited, so tree totals never go backwards.
    exited: ProcessTotals,
    prev_total_cpu_ns: Option<u64>,
    last_tick: Option<Instant>,
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
            total_memory_bytes: options.total_memory_bytes,
            proc_files: ProcFiles::new(&options.proc_root),
            own_pid: std::process::id(),
            events_rx,
            _reader: reader,
            pending: Vec::new(),
            live: HashMap::new(),
            exited: ProcessTotals::default(),
            prev_total_cpu_ns: None,
            last_tick: None,
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
        let now = Instant::now();
        let elapsed_ns = self
            .last_tick
            .map(|t| now.duration_since(t).as_nanos() as f64)
            .filter(|&ns| ns > 0.0);
        self.last_tick = Some(now);
        self.handle_events();

        let mut procs = std::mem::take(&mut self.procs_buf);
        if let Err(e) = self.kernel.tracked_all(&mut procs) {
            log::warn!("cannot read the eBPF process map: {e}");
        }
        let mut tree = ProcessTotals::default();
        let (mut rss, mut vms, mut threads, mut count) = (0u64, 0u64, 0u64, 0u64);
        for &(pid, tracked) in &procs {
            let Some((stat, io)) = self.proc_files.read(pid) else {
                self.finish_if_gone(pid);
                continue;
            };
            self.missing.remove(&pid);
            let live = self
                .live
                .entry(pid)
                .or_insert_with(|| Live::from_kernel(&tracked, &stat.comm));
            let mut totals = add(&live.base, &tracked.counters);
            (totals.read_bytes, totals.write_bytes) =
                io.unwrap_or((live.last.read_bytes, live.last.write_bytes));
            let cpu_pct = match (live.read_once, elapsed_ns) {
                (true, Some(ns)) => {
                    Some(totals.cpu_ns.saturating_sub(live.last.cpu_ns) as f64 / ns * 100.0)
                }
                _ => None,
            };
            live.last = totals;
            live.read_once = true;
            live.comm.clone_from(&stat.comm);
            let live = live.clone();
            self.push_process(buf, &live, &stat, &totals, cpu_pct);
            tree = add_totals(&tree, &totals);
            rss += stat.rss_bytes;
            vms += stat.vms_bytes;
            threads += stat.threads;
            count += 1;
        }
        let mut pids = std::mem::take(&mut self.pids_buf);
        pids.clear();
        pids.extend(procs.iter().map(|&(pid, _)| pid));
        pids.sort_unstable();
        self.proc_files.retain_sorted(&pids);
        self.pids_buf = pids;
        self.procs_buf = procs;

        let all = add_totals(&tree, &self.exited);
        let total_labels = [
            (labels::PID, labels::PID_TOTAL),
            (labels::SOURCE, labels::SOURCE_EBPF),
        ];
        if let (Some(prev), Some(ns)) = (self.prev_total_cpu_ns, elapsed_ns) {
            let pct = all.cpu_ns.saturating_sub(prev) as f64 / ns * 100.0;
            buf.push(&names::PROCESS_CPU_USAGE, pct, &total_labels);
        }
        self.prev_total_cpu_ns = Some(all.cpu_ns);
        let values: [(&MetricDef, f64); 12] = [
            (&names::PROCESS_CPU_TIME, all.cpu_ns as f64 / 1e9),
            (&names::PROCESS_MEMORY_RSS, rss as f64),
            (&names::PROCESS_MEMORY_VMS, vms as f64),
            (
                &names::PROCESS_MEMORY_USAGE,
                memory_percent(rss, self.total_memory_bytes),
            ),
            (&names::PROCESS_IO_READ, all.read_bytes as f64),
            (&names::PROCESS_IO_WRITE, all.write_bytes as f64),
            (&names::PROCESS_IO_BLOCK_READ, all.block_read_bytes as f64),
            (&names::PROCESS_NET_SENT, all.net_sent_bytes as f64),
            (&names::PROCESS_NET_RECV, all.net_recv_bytes as f64),
            (&names::PROCESS_THREADS, threads as f64),
            (&names::PROCESS_COUNT, count as f64),
            (&names::EBPF_EVENTS_DROPPED, self.events_dropped() as f64),
        ];
        for (def, value) in values {
            buf.push(def, value, &total_labels);
        }
        self.warn_about_losses();
    }

    /// Reads the process table and puts every matching process and its descendants into
    /// `PROCS` (those already there are left alone).
    fn seed(&mut self) {
        let mut stats = Vec::new();
        self.table.scan(&mut stats);
        let triples: Vec<(u32, u32, bool)> = stats
            .iter()
            .map(|s| {
                let pid = s.key.pid;
                let matched = pid != self.own_pid
                    && (self
                        .live
                        .get(&pid)
                        .is_some_and(|l| l.tracked == Tracked::Match)
                        || self.matcher.matches_name(&s.comm)
                        || {
                            let (argv0, exe) = self.table.names(pid);
                            self.matcher
                                .matches(&s.comm, argv0.as_deref(), exe.as_deref())
                        });
                (pid, s.ppid, matched)
            })
            .collect();
        let tree = tracked_tree(&triples);
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
        self.live.insert(
            e.pid,
            Live {
                comm: comm.clone(),
                tracked: Tracked::Descendant,
                base: ProcessTotals::default(),
                last: ProcessTotals::default(),
                read_once: false,
            },
        );
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
            .or_insert_with(|| Live::from_event(e, &comm));
        live.comm.clone_from(&comm);
        log::trace!("exec {} {filename}", e.pid);
        let filename = (!filename.is_empty()).then_some(filename);
        self.events
            .push(self.event(ProcessEventKind::Exec, e, comm, filename, None));
    }

    fn on_exit(&mut self, e: &ProcEvent) {
        let comm = c_string(&e.comm);
        let base = self.live.remove(&e.pid).map(|l| l.base).unwrap_or_default();
        self.missing.remove(&e.pid);
        let totals = add(&base, &e.counters);
        self.exited = add_totals(&self.exited, &totals);
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
            let base = self.live.remove(&pid).map(|l| l.base).unwrap_or_default();
            self.exited = add_totals(&self.exited, &add(&base, &tracked.counters));
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

    fn push_process(
        &self,
        buf: &mut SampleBuffer,
        live: &Live,
        stat: &ProcStat,
        totals: &ProcessTotals,
        cpu_pct: Option<f64>,
    ) {
        let who = ProcessLabels {
            comm: &live.comm,
            tracked: live.tracked,
            source: labels::SOURCE_EBPF,
        };
        let counters = [
            (&names::PROCESS_CPU_TIME, totals.cpu_ns as f64 / 1e9),
            (&names::PROCESS_IO_READ, totals.read_bytes as f64),
            (&names::PROCESS_IO_WRITE, totals.write_bytes as f64),
            (
                &names::PROCESS_IO_BLOCK_READ,
                totals.block_read_bytes as f64,
            ),
            (&names::PROCESS_NET_SENT, totals.net_sent_bytes as f64),
            (&names::PROCESS_NET_RECV, totals.net_recv_bytes as f64),
        ];
        push_process_samples(buf, &who, stat, self.total_memory_bytes, cpu_pct, &counters);
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
            source: labels::SOURCE_EBPF.to_owned(),
        }
    }
}

impl Live {
    fn from_kernel(t: &TrackedProc, comm: &str) -> Self {
        Self {
            comm: comm.to_owned(),
            tracked: tracked_of(t.flags),
            base: ProcessTotals::default(),
            last: ProcessTotals::default(),
            read_once: false,
        }
    }

    fn from_event(e: &ProcEvent, comm: &str) -> Self {
        Self {
            comm: comm.to_owned(),
            tracked: tracked_of(e.flags),
            base: ProcessTotals::default(),
            last: ProcessTotals::default(),
            read_once: false,
        }
    }
}

fn tracked_of(flags: u32) -> Tracked {
    if flags & TRACK_MATCH != 0 {
        Tracked::Match
    } else {
        Tracked::Descendant
    }
}

/// `base` plus the kernel's counters.
fn add(base: &ProcessTotals, c: &ProcCounters) -> ProcessTotals {
    let kernel = ProcessTotals {
        cpu_ns: c.on_cpu_ns,
        read_bytes: c.read_bytes,
        write_bytes: c.write_bytes,
        block_read_bytes: c.block_read_bytes,
        net_sent_bytes: c.net_sent_bytes,
        net_recv_bytes: c.net_recv_bytes,
    };
    add_totals(base, &kernel)
}

fn add_totals(a: &ProcessTotals, b: &ProcessTotals) -> ProcessTotals {
    ProcessTotals {
        cpu_ns: a.cpu_ns + b.cpu_ns,
        read_bytes: a.read_bytes + b.read_bytes,
        write_bytes: a.write_bytes + b.write_bytes,
        block_read_bytes: a.block_read_bytes + b.block_read_bytes,
        net_sent_bytes: a.net_sent_bytes + b.net_sent_bytes,
        net_recv_bytes: a.net_recv_bytes + b.net_recv_bytes,
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

    #[test]
    fn totals_add_field_by_field() {
        let base = ProcessTotals {
            cpu_ns: 10,
            read_bytes: 1,
            ..ProcessTotals::default()
        };
        let c = ProcCounters {
            on_cpu_ns: 5,
            net_recv_bytes: 7,
            ..ProcCounters::default()
        };
        let t = add(&base, &c);
        assert_eq!((t.cpu_ns, t.read_bytes, t.net_recv_bytes), (15, 1, 7));
    }
}
