//! The polling process backend: finds the target tree in the process table each tick and
//! samples CPU, memory, I/O and threads of every process in it, plus a `pid="total"` sum over
//! the tree.
//!
//! Processes are keyed by (pid, start time), so a restart or a reused PID starts fresh, and the
//! tree totals stay continuous: the final counters of exited processes are kept in the sum.

use std::collections::{HashMap, HashSet};

use trace_claw_common::event::{ProcessEvent, ProcessEventKind, ProcessTotals};
use trace_claw_common::time::Timestamp;

use super::process::{Backend, ProcStat, ProcessTable, TreeSamples};
use super::SampleBuffer;
use crate::target::{tracked_tree, NameMatcher, ProcessKey};

/// The last reading of a tracked process.
#[derive(Debug)]
struct Seen {
    ppid: u32,
    comm: String,
    totals: ProcessTotals,
    /// The tick it was last in the tree.
    tick: u64,
}

/// Whether a process matched the target name, and the comm it had then (exec changes it).
#[derive(Debug)]
struct MatchedAs {
    comm: String,
    matched: bool,
}

/// Samples the traced process tree by polling a [`ProcessTable`].
pub struct ProcessCollector {
    table: Box<dyn ProcessTable>,
    matcher: NameMatcher,
    own_pid: u32,
    match_cache: HashMap<ProcessKey, MatchedAs>,
    seen: HashMap<ProcessKey, Seen>,
    scan_buf: Vec<ProcStat>,
    samples: TreeSamples,
    events: Vec<ProcessEvent>,
    ticks: u64,
}

impl ProcessCollector {
    /// Tracks processes matching `name` (and their descendants) in `table`.
    pub fn new(table: Box<dyn ProcessTable>, name: &str, total_memory_bytes: u64) -> Self {
        Self {
            table,
            matcher: NameMatcher::new(name),
            own_pid: std::process::id(),
            match_cache: HashMap::new(),
            seen: HashMap::new(),
            scan_buf: Vec::new(),
            samples: TreeSamples::new(&Backend::POLLING, total_memory_bytes),
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
        self.samples.start_tick();
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
        self.match_cache.retain(|key, _| alive.contains(key));

        for stat in stats.iter().filter(|s| tree.contains_key(&s.key.pid)) {
            let previous = self.seen.get(&stat.key);
            let (read_bytes, write_bytes) = self
                .table
                .io(stat.key.pid)
                .or(previous.map(|p| (p.totals.read_bytes, p.totals.write_bytes)))
                .unwrap_or((0, 0));
            let totals = ProcessTotals {
                cpu_ns: stat.cpu_ns,
                read_bytes,
                write_bytes,
                ..ProcessTotals::default()
            };
            let prev_cpu_ns = previous.map(|p| p.totals.cpu_ns);
            self.samples
                .push_process(buf, stat, tree[&stat.key.pid], &totals, prev_cpu_ns);
            match self.seen.get_mut(&stat.key) {
                Some(seen) => {
                    seen.ppid = stat.ppid;
                    if seen.comm != stat.comm {
                        seen.comm.clone_from(&stat.comm);
                    }
                    seen.totals = totals;
                    seen.tick = self.ticks;
                }
                None => {
                    let seen = Seen {
                        ppid: stat.ppid,
                        comm: stat.comm.clone(),
                        totals,
                        tick: self.ticks,
                    };
                    if self.ticks > 1 {
                        self.events.push(event(
                            ProcessEventKind::Exec,
                            stat.key.pid,
                            &seen,
                            buf.timestamp(),
                            None,
                        ));
                    }
                    self.seen.insert(stat.key, seen);
                }
            }
        }
        let (samples, events, tick, at) = (
            &mut self.samples,
            &mut self.events,
            self.ticks,
            buf.timestamp(),
        );
        self.seen.retain(|key, gone| {
            if gone.tick == tick {
                return true;
            }
            samples.add_exited(&gone.totals);
            log::debug!("tracked process {} ({}) exited", key.pid, gone.comm);
            events.push(event(
                ProcessEventKind::Exit,
                key.pid,
                gone,
                at,
                Some(gone.totals),
            ));
            false
        });
        self.scan_buf = stats;
        self.samples.push_totals(buf, &[]);
    }

    fn is_match(&mut self, s: &ProcStat) -> bool {
        if let Some(m) = self.match_cache.get(&s.key).filter(|m| m.comm == s.comm) {
            return m.matched;
        }
        let matched = self.matcher.matches_name(&s.comm) || {
            let (argv0, exe) = self.table.names(s.key.pid);
            self.matcher
                .matches(&s.comm, argv0.as_deref(), exe.as_deref())
        };
        self.match_cache.insert(
            s.key,
            MatchedAs {
                comm: s.comm.clone(),
                matched,
            },
        );
        matched
    }
}

/// A lifecycle event of the polling backend about process `pid`.
fn event(
    kind: ProcessEventKind,
    pid: u32,
    s: &Seen,
    at: Timestamp,
    totals: Option<ProcessTotals>,
) -> ProcessEvent {
    ProcessEvent {
        timestamp: at,
        kind,
        pid,
        ppid: s.ppid,
        comm: s.comm.clone(),
        filename: None,
        exit_code: None,
        totals,
        source: Backend::POLLING.source.to_owned(),
    }
}
