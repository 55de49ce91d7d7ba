//! Per-process polling: finds the target tree in the process table each tick and samples CPU,
//! memory, I/O and threads of every process in it, plus a `pid="total"` sum over the tree.
//!
//! Processes are keyed by (pid, start time), so a restart or a reused PID starts fresh, and the
//! tree totals stay continuous: the final counters of exited processes are kept in the sum.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use trace_claw_common::event::{ProcessEvent, ProcessEventKind, ProcessTotals};
use trace_claw_common::names::{self, labels, MetricDef};
use trace_claw_common::time::Timestamp;

use super::SampleBuffer;
use crate::target::{tracked_tree, NameMatcher, ProcessKey, Tracked};

/// What the process table says about one process at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    /// Identity.
    pub key: ProcessKey,
    /// Parent pid.
    pub ppid: u32,
    /// Process name (comm).
    pub comm: String,
    /// User + system CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Virtual size.
    pub vms_bytes: u64,
    /// Threads.
    pub threads: u64,
}

/// A platform's view of its processes.
pub trait ProcessTable: Send {
    /// Replaces `out` with every process currently alive.
    fn scan(&mut self, out: &mut Vec<ProcStat>);
    /// argv[0] and the executable path of a process, when readable.
    fn names(&self, pid: u32) -> (Option<String>, Option<String>);
    /// Storage read and write bytes of a process, when readable.
    fn io(&self, pid: u32) -> Option<(u64, u64)>;
}

/// The last reading of a tracked process.
#[derive(Debug, Clone)]
struct Seen {
    stat: ProcStat,
    io: (u64, u64),
}

/// Samples the traced process tree by polling a [`ProcessTable`].
pub struct ProcessCollector {
    table: Box<dyn ProcessTable>,
    matcher: NameMatcher,
    total_memory_bytes: u64,
    own_pid: u32,
    source: &'static str,
    /// (identity, comm) -> matched; comm is part of the key because exec changes it.
    match_cache: HashMap<(ProcessKey, String), bool>,
    seen: HashMap<ProcessKey, Seen>,
    scan_buf: Vec<ProcStat>,
    last_tick: Option<Instant>,
    /// Counters of tracked processes that have exited, so tree totals never go backwards.
    exited: ProcessTotals,
    prev_total_cpu_ns: u64,
    events: Vec<ProcessEvent>,
    ticks: u64,
}

impl ProcessCollector {
    /// Tracks processes matching `name` (and their descendants) in `table`.
    pub fn new(table: Box<dyn ProcessTable>, name: &str, total_memory_bytes: u64) -> Self {
        Self {
            table,
            matcher: NameMatcher::new(name),
            total_memory_bytes,
            own_pid: std::process::id(),
            source: labels::SOURCE_PROCFS,
            match_cache: HashMap::new(),
            seen: HashMap::new(),
            scan_buf: Vec::new(),
            last_tick: None,
            exited: ProcessTotals::default(),
            prev_total_cpu_ns: 0,
            events: Vec::new(),
            ticks: 0,
        }
    }

    /// Lifecycle events noticed since the last call (exits with final counters, new processes).
    pub fn drain_events(&mut self) -> Vec<ProcessEvent> {
        std::mem::take(&mut self.events)
    }

    /// Scans the table and pushes this tick's samples.
    pub fn collect(&mut self, buf: &mut SampleBuffer) {
        let now = Instant::now();
        let elapsed_ns = self
            .last_tick
            .map(|t| now.duration_since(t).as_nanos() as f64)
            .filter(|&ns| ns > 0.0);
        self.last_tick = Some(now);
        self.ticks += 1;

        let mut stats = std::mem::take(&mut self.scan_buf);
        self.table.scan(&mut stats);
        let triples: Vec<(u32, u32, bool)> = stats
            .iter()
            .map(|s| {
                (
                    s.key.pid,
                    s.ppid,
                    s.key.pid != self.own_pid && self.is_match(s),
                )
            })
            .collect();
        let tree = tracked_tree(&triples);
        let alive: HashSet<ProcessKey> = stats.iter().map(|s| s.key).collect();
        self.match_cache.retain(|(key, _), _| alive.contains(key));

        let mut current: HashMap<ProcessKey, Seen> = HashMap::with_capacity(tree.len());
        let mut live = ProcessTotals::default();
        let (mut rss, mut vms, mut threads) = (0u64, 0u64, 0u64);
        for stat in stats.iter().filter(|s| tree.contains_key(&s.key.pid)) {
            let tracked = tree[&stat.key.pid];
            let previous = self.seen.get(&stat.key);
            let io = self
                .table
                .io(stat.key.pid)
                .or(previous.map(|p| p.io))
                .unwrap_or((0, 0));
            let cpu_pct = match (previous, elapsed_ns) {
                (Some(p), Some(ns)) => {
                    Some(stat.cpu_ns.saturating_sub(p.stat.cpu_ns) as f64 / ns * 100.0)
                }
                _ => None,
            };
            if previous.is_none() && self.ticks > 1 {
                self.events
                    .push(self.event(ProcessEventKind::Exec, stat, buf.timestamp(), None));
            }
            self.push_process(buf, stat, tracked, io, cpu_pct);
            live.cpu_ns += stat.cpu_ns;
            live.read_bytes += io.0;
            live.write_bytes += io.1;
            rss += stat.rss_bytes;
            vms += stat.vms_bytes;
            threads += stat.threads;
            current.insert(
                stat.key,
                Seen {
                    stat: stat.clone(),
                    io,
                },
            );
        }
        for (key, gone) in self.seen.iter().filter(|(k, _)| !current.contains_key(k)) {
            let totals = ProcessTotals {
                cpu_ns: gone.stat.cpu_ns,
                read_bytes: gone.io.0,
                write_bytes: gone.io.1,
                ..ProcessTotals::default()
            };
            self.exited.cpu_ns += totals.cpu_ns;
            self.exited.read_bytes += totals.read_bytes;
            self.exited.write_bytes += totals.write_bytes;
            log::debug!("tracked process {} ({}) exited", key.pid, gone.stat.comm);
            self.events.push(self.event(
                ProcessEventKind::Exit,
                &gone.stat,
                buf.timestamp(),
                Some(totals),
            ));
        }
        self.seen = current;
        self.scan_buf = stats;

        let total_cpu_ns = live.cpu_ns + self.exited.cpu_ns;
        let total_pct = elapsed_ns
            .map(|ns| total_cpu_ns.saturating_sub(self.prev_total_cpu_ns) as f64 / ns * 100.0);
        self.prev_total_cpu_ns = total_cpu_ns;
        let total_labels = [
            (labels::PID, labels::PID_TOTAL),
            (labels::SOURCE, self.source),
        ];
        if let Some(pct) = total_pct {
            buf.push(&names::PROCESS_CPU_USAGE, pct, &total_labels);
        }
        let totals: [(&MetricDef, f64); 8] = [
            (&names::PROCESS_CPU_TIME, total_cpu_ns as f64 / 1e9),
            (&names::PROCESS_MEMORY_RSS, rss as f64),
            (&names::PROCESS_MEMORY_VMS, vms as f64),
            (
                &names::PROCESS_MEMORY_USAGE,
                memory_percent(rss, self.total_memory_bytes),
            ),
            (
                &names::PROCESS_IO_READ,
                (live.read_bytes + self.exited.read_bytes) as f64,
            ),
            (
                &names::PROCESS_IO_WRITE,
                (live.write_bytes + self.exited.write_bytes) as f64,
            ),
            (&names::PROCESS_THREADS, threads as f64),
            (&names::PROCESS_COUNT, self.seen.len() as f64),
        ];
        for (def, value) in totals {
            buf.push(def, value, &total_labels);
        }
    }

    fn is_match(&mut self, s: &ProcStat) -> bool {
        let cache_key = (s.key, s.comm.clone());
        if let Some(&m) = self.match_cache.get(&cache_key) {
            return m;
        }
        let m = self.matcher.matches_name(&s.comm) || {
            let (argv0, exe) = self.table.names(s.key.pid);
            self.matcher
                .matches(&s.comm, argv0.as_deref(), exe.as_deref())
        };
        self.match_cache.insert(cache_key, m);
        m
    }

    fn push_process(
        &self,
        buf: &mut SampleBuffer,
        s: &ProcStat,
        tracked: Tracked,
        io: (u64, u64),
        cpu_pct: Option<f64>,
    ) {
        let who = ProcessLabels {
            comm: &s.comm,
            tracked,
            source: self.source,
        };
        let counters = [
            (&names::PROCESS_CPU_TIME, s.cpu_ns as f64 / 1e9),
            (&names::PROCESS_IO_READ, io.0 as f64),
            (&names::PROCESS_IO_WRITE, io.1 as f64),
        ];
        push_process_samples(buf, &who, s, self.total_memory_bytes, cpu_pct, &counters);
    }

    fn event(
        &self,
        kind: ProcessEventKind,
        s: &ProcStat,
        at: Timestamp,
        totals: Option<ProcessTotals>,
    ) -> ProcessEvent {
        ProcessEvent {
            timestamp: at,
            kind,
            pid: s.key.pid,
            ppid: s.ppid,
            comm: s.comm.clone(),
            filename: None,
            exit_code: None,
            totals,
            source: self.source.to_owned(),
        }
    }
}

/// RSS as a percent of installed memory (0 when the total is unknown).
pub(crate) fn memory_percent(rss: u64, total_memory_bytes: u64) -> f64 {
    if total_memory_bytes == 0 {
        0.0
    } else {
        rss as f64 / total_memory_bytes as f64 * 100.0
    }
}

/// Who a process is, for the labels on its samples (pid and ppid come from its [`ProcStat`]).
pub(crate) struct ProcessLabels<'a> {
    /// Process name (comm).
    pub comm: &'a str,
    /// Why it is traced.
    pub tracked: Tracked,
    /// How it was measured (`ebpf` or `procfs`).
    pub source: &'a str,
}

/// Pushes one process's samples, shared by the polling and eBPF backends: CPU percent when
/// known, the backend's cumulative `counters`, then RSS, VMS, memory percent and threads.
pub(crate) fn push_process_samples(
    buf: &mut SampleBuffer,
    who: &ProcessLabels<'_>,
    stat: &ProcStat,
    total_memory_bytes: u64,
    cpu_pct: Option<f64>,
    counters: &[(&MetricDef, f64)],
) {
    let pid = stat.key.pid.to_string();
    let ppid = stat.ppid.to_string();
    let l = [
        (labels::PID, pid.as_str()),
        (labels::PPID, ppid.as_str()),
        (labels::PROCESS_NAME, who.comm),
        (labels::TRACKED, who.tracked.label()),
        (labels::SOURCE, who.source),
    ];
    if let Some(pct) = cpu_pct {
        buf.push(&names::PROCESS_CPU_USAGE, pct, &l);
    }
    let gauges = [
        (&names::PROCESS_MEMORY_RSS, stat.rss_bytes as f64),
        (&names::PROCESS_MEMORY_VMS, stat.vms_bytes as f64),
        (
            &names::PROCESS_MEMORY_USAGE,
            memory_percent(stat.rss_bytes, total_memory_bytes),
        ),
        (&names::PROCESS_THREADS, stat.threads as f64),
    ];
    for &(def, value) in counters.iter().chain(&gauges) {
        buf.push(def, value, &l);
    }
}
