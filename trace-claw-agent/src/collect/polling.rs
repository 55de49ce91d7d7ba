//! The polling process backend: finds the target tree in the process table each tick and
//! samples CPU, memory, I/O and threads of every process in it, plus a `pid="total"` sum over
//! the tree.
//!
//! Processes are keyed by (pid, start time), so a restart or a reused PID starts fresh, and the
//! tree totals stay continuous: the final counters of exited processes are kept in the sum.
//!
//! With an output directory, what each tracked tree (by its root, the topmost tracked
//! ancestor) used between two ticks also goes to `tree-costs-*.jsonl`, one slot per interval
//! marked `interpolated`, so that the analyzer charges each action its own tree's use (other
//! matching trees apart) at the resolution of the interval.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use trace_claw_common::event::{ProcessEvent, ProcessEventKind, ProcessTotals};
use trace_claw_common::time::Timestamp;

use super::process::{tracked_in, Backend, ProcStat, ProcessTable, TreeSamples};
use super::selection::TargetSelection;
use super::tree_costs::{Busy, Tree, TreeCostWriter};
use super::SampleBuffer;
use crate::export::ExportError;
use crate::target::{ProcessKey, Tracked};

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
    selection: TargetSelection,
    match_cache: HashMap<ProcessKey, MatchedAs>,
    seen: HashMap<ProcessKey, Seen>,
    scan_buf: Vec<ProcStat>,
    samples: TreeSamples,
    events: Vec<ProcessEvent>,
    ticks: u64,
    /// Per-tree use per interval, when written.
    tree_costs: Option<TreeCosts>,
}

/// The per-tree use of the current tick, and where it goes.
struct TreeCosts {
    out: TreeCostWriter,
    /// When the previous tick was (the start of this tick's slot).
    previous: Option<Timestamp>,
    /// Monotonic base of the writer's clock.
    started: Instant,
    /// Per root: the tree's processes and what they used since the previous tick.
    trees: BTreeMap<u32, (Tree, ProcessTotals)>,
}

impl ProcessCollector {
    /// Tracks the processes `selection` picks (and their descendants) in `table`.
    pub fn new(
        table: Box<dyn ProcessTable>,
        selection: TargetSelection,
        total_memory_bytes: u64,
    ) -> Self {
        let samples = TreeSamples::new(&Backend::POLLING, total_memory_bytes);
        let samples = match table.cgroup_root() {
            Some(root) => samples.with_containers(root),
            None => samples,
        };
        Self {
            table,
            selection,
            match_cache: HashMap::new(),
            seen: HashMap::new(),
            scan_buf: Vec::new(),
            samples,
            events: Vec::new(),
            ticks: 0,
            tree_costs: None,
        }
    }

    /// Also writes each tree's use per interval to `tree-costs-*.jsonl` in `dir`.
    pub fn write_tree_costs(&mut self, dir: &Path) -> Result<(), ExportError> {
        self.tree_costs = Some(TreeCosts {
            out: TreeCostWriter::new(Some(dir), true, 0)?,
            previous: None,
            started: Instant::now(),
            trees: BTreeMap::new(),
        });
        Ok(())
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
        if self.selection.pods_changed() {
            self.match_cache.clear();
        }
        self.selection.start_scan();
        let tree = tracked_in(&stats, |s| self.is_match(s));
        let alive: HashSet<ProcessKey> = stats.iter().map(|s| s.key).collect();
        self.match_cache.retain(|key, _| alive.contains(key));
        let roots = self
            .tree_costs
            .as_ref()
            .map(|_| roots_of(&stats, &tree))
            .unwrap_or_default();

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
            if let (Some(costs), Some(&root)) = (&mut self.tree_costs, roots.get(&stat.key.pid)) {
                // A process first seen after the first tick started in this interval.
                let before = previous
                    .map(|p| p.totals)
                    .or_else(|| (self.ticks == 1).then_some(totals));
                costs.add(root, stat, &totals, &before.unwrap_or_default());
            }
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
        if let Some(costs) = &mut self.tree_costs {
            costs.tick(buf.timestamp());
        }
    }

    fn is_match(&mut self, s: &ProcStat) -> bool {
        if let Some(m) = self.match_cache.get(&s.key).filter(|m| m.comm == s.comm) {
            return m.matched;
        }
        let matched = self.selection.matches(self.table.as_ref(), s);
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

impl TreeCosts {
    /// Adds process `stat` of tree `root`, now at `totals`, `before` at the previous tick.
    fn add(&mut self, root: u32, stat: &ProcStat, totals: &ProcessTotals, before: &ProcessTotals) {
        let (tree, used) = self.trees.entry(root).or_default();
        tree.pids.push(stat.key.pid);
        if stat.key.pid == root {
            tree.root_name.clone_from(&stat.comm);
        }
        used.cpu_ns += totals.cpu_ns.saturating_sub(before.cpu_ns);
        used.read_bytes += totals.read_bytes.saturating_sub(before.read_bytes);
        used.write_bytes += totals.write_bytes.saturating_sub(before.write_bytes);
    }

    /// Writes the lines of the tick at `now` (the slot from the previous tick to now).
    fn tick(&mut self, now: Timestamp) {
        let mut trees = BTreeMap::new();
        let mut busy = BTreeMap::new();
        let previous = self.previous.replace(now);
        for (root, (mut tree, used)) in std::mem::take(&mut self.trees) {
            tree.pids.sort_unstable();
            trees.insert(root, tree);
            let Some(from) = previous else {
                continue; // the first tick only sets the baseline
            };
            let slot_ms = ((now.0 - from.0).max(0) as u64).div_ceil(1_000_000) as u32;
            if used == ProcessTotals::default() || slot_ms == 0 {
                continue;
            }
            let slot = [
                0,
                used.cpu_ns,
                used.read_bytes,
                used.write_bytes,
                0,
                0,
                0,
                0,
                u64::from(slot_ms) * 1_000,
            ];
            busy.insert(
                root,
                Busy {
                    timestamp: from,
                    slot_ms,
                    slots: vec![slot],
                    io_active: Vec::new(),
                },
            );
        }
        let mono = self.started.elapsed().as_nanos() as u64;
        self.out.tick(mono, now, &trees, busy);
    }
}

/// The root of every tracked process of `stats` (those in `tree`): its topmost tracked
/// ancestor.
fn roots_of(stats: &[ProcStat], tree: &HashMap<u32, Tracked>) -> HashMap<u32, u32> {
    let parent: HashMap<u32, u32> = stats
        .iter()
        .filter(|s| tree.contains_key(&s.key.pid))
        .map(|s| (s.key.pid, s.ppid))
        .collect();
    parent
        .keys()
        .map(|&pid| {
            let mut root = pid;
            // Bounded: a pid cycle (impossible in a consistent scan) cannot loop forever.
            for _ in 0..parent.len() {
                match parent.get(&root) {
                    Some(&up) if up != root && parent.contains_key(&up) => root = up,
                    _ => break,
                }
            }
            (pid, root)
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use trace_claw_common::names::{self, labels, MetricDef};

    use super::*;

    /// One process of the in-memory table: its reading, exe path and io counters.
    #[derive(Clone)]
    struct Proc {
        stat: ProcStat,
        exe: Option<String>,
        io: Option<(u64, u64)>,
    }

    /// A process table whose contents the test sets before each tick.
    #[derive(Clone, Default)]
    struct Table(Arc<Mutex<Vec<Proc>>>);

    impl Table {
        fn set(&self, procs: Vec<Proc>) {
            *self.0.lock().expect("table lock") = procs;
        }

        fn find(&self, pid: u32) -> Option<Proc> {
            let procs = self.0.lock().expect("table lock");
            procs.iter().find(|p| p.stat.key.pid == pid).cloned()
        }
    }

    impl ProcessTable for Table {
        fn scan(&mut self, out: &mut Vec<ProcStat>) {
            out.clear();
            out.extend(
                self.0
                    .lock()
                    .expect("table lock")
                    .iter()
                    .map(|p| p.stat.clone()),
            );
        }

        fn names(&self, pid: u32) -> (Option<String>, Option<String>) {
            (None, self.find(pid).and_then(|p| p.exe))
        }

        fn io(&self, pid: u32) -> Option<(u64, u64)> {
            self.find(pid).and_then(|p| p.io)
        }
    }

    /// Process `pid` started at `start`, child of `ppid`, named `comm`, with `cpu_s` seconds
    /// of CPU, 1 MiB per second of CPU resident, and `io` read and written.
    fn proc(pid: u32, start: u64, ppid: u32, comm: &str, cpu_s: u64, io: (u64, u64)) -> Proc {
        Proc {
            stat: ProcStat {
                key: ProcessKey {
                    pid,
                    start_time: start,
                },
                ppid,
                comm: comm.to_owned(),
                cpu_ns: cpu_s * 1_000_000_000,
                rss_bytes: cpu_s << 20,
                vms_bytes: cpu_s << 21,
                threads: 2,
            },
            exe: None,
            io: Some(io),
        }
    }

    /// A collector tracking `openclaw` in `table`, with 100 MiB of memory installed.
    fn collector(table: &Table) -> ProcessCollector {
        ProcessCollector::new(
            Box::new(table.clone()),
            TargetSelection::new("openclaw", None, Path::new("/proc")),
            100 << 20,
        )
    }

    /// Runs one tick at `t` and returns its samples.
    fn tick(c: &mut ProcessCollector, t: i64) -> Vec<trace_claw_common::sample::MetricSample> {
        let mut buf = SampleBuffer::default();
        buf.start_tick(Timestamp(t));
        c.collect(&mut buf);
        buf.samples().to_vec()
    }

    /// The value of `metric` for `pid` (or `total`), if pushed.
    fn value(
        samples: &[trace_claw_common::sample::MetricSample],
        metric: &MetricDef,
        pid: &str,
    ) -> Option<f64> {
        samples
            .iter()
            .find(|s| s.name == metric.name && s.label(labels::PID) == Some(pid))
            .map(|s| s.value)
    }

    /// The pids that have samples, `total` left out, sorted.
    fn pids(samples: &[trace_claw_common::sample::MetricSample]) -> Vec<String> {
        let mut pids: Vec<String> = samples
            .iter()
            .filter_map(|s| s.label(labels::PID))
            .filter(|&p| p != labels::PID_TOTAL)
            .map(str::to_owned)
            .collect();
        pids.sort();
        pids.dedup();
        pids
    }

    #[test]
    fn every_tracked_process_is_rooted_at_its_topmost_tracked_ancestor() {
        let stats: Vec<ProcStat> = [
            proc(1, 1, 0, "init", 1, (0, 0)),
            proc(10, 2, 1, "openclaw", 1, (0, 0)),
            proc(11, 3, 10, "node", 1, (0, 0)),
            proc(12, 4, 11, "openclaw", 1, (0, 0)),
            proc(40, 5, 1, "openclaw", 1, (0, 0)),
        ]
        .into_iter()
        .map(|p| p.stat)
        .collect();
        let tree = tracked_in(&stats, |s| s.comm == "openclaw");
        let roots = roots_of(&stats, &tree);
        let mut got: Vec<(u32, u32)> = roots.into_iter().collect();
        got.sort_unstable();
        assert_eq!(got, [(10, 10), (11, 10), (12, 10), (40, 40)]);
    }

    #[test]
    fn spawned_children_join_the_tree_and_siblings_do_not() {
        let table = Table::default();
        let mut c = collector(&table);
        let (init, target, sibling) = (
            proc(1, 1, 0, "init", 1, (0, 0)),
            proc(10, 5, 1, "openclaw", 2, (0, 0)),
            proc(20, 6, 1, "bash", 3, (0, 0)),
        );
        table.set(vec![init.clone(), target.clone(), sibling.clone()]);
        let first = tick(&mut c, 1);
        assert_eq!(pids(&first), ["10"]);
        assert!(
            c.drain_events().is_empty(),
            "the first tick reports no exec"
        );

        let child = proc(11, 7, 10, "node", 1, (0, 0));
        let grandchild = proc(12, 8, 11, "sh", 1, (0, 0));
        let sibling_child = proc(21, 9, 20, "sh", 1, (0, 0));
        table.set(vec![
            init,
            target,
            sibling,
            child,
            grandchild,
            sibling_child,
        ]);
        let second = tick(&mut c, 2);
        assert_eq!(pids(&second), ["10", "11", "12"]);
        let tracked = |pid: &str| {
            second
                .iter()
                .find(|s| s.label(labels::PID) == Some(pid))
                .and_then(|s| s.label(labels::TRACKED))
        };
        assert_eq!(tracked("10"), Some(labels::TRACKED_MATCH));
        assert_eq!(tracked("12"), Some(labels::TRACKED_DESCENDANT));
        assert_eq!(value(&second, &names::PROCESS_COUNT, "total"), Some(3.0));
        let execs: Vec<(ProcessEventKind, u32, u32)> = c
            .drain_events()
            .iter()
            .map(|e| (e.kind, e.pid, e.ppid))
            .collect();
        assert_eq!(
            execs,
            [
                (ProcessEventKind::Exec, 11, 10),
                (ProcessEventKind::Exec, 12, 11)
            ]
        );
    }

    #[test]
    fn exited_processes_stay_in_the_tree_totals() {
        let table = Table::default();
        let mut c = collector(&table);
        let target = proc(10, 5, 1, "openclaw", 2, (100, 50));
        let child = proc(11, 7, 10, "node", 1, (10, 5));
        table.set(vec![target.clone(), child]);
        let first = tick(&mut c, 1);
        assert_eq!(value(&first, &names::PROCESS_CPU_TIME, "total"), Some(3.0));
        assert_eq!(value(&first, &names::PROCESS_IO_READ, "total"), Some(110.0));
        assert_eq!(
            value(&first, &names::PROCESS_MEMORY_RSS, "total"),
            Some(3.0 * 1048576.0)
        );
        assert_eq!(
            value(&first, &names::PROCESS_MEMORY_USAGE, "total"),
            Some(3.0)
        );
        assert_eq!(value(&first, &names::PROCESS_THREADS, "total"), Some(4.0));

        table.set(vec![proc(10, 5, 1, "openclaw", 4, (200, 60))]);
        let second = tick(&mut c, 2);
        assert_eq!(value(&second, &names::PROCESS_CPU_TIME, "total"), Some(5.0));
        assert_eq!(
            value(&second, &names::PROCESS_IO_READ, "total"),
            Some(210.0)
        );
        assert_eq!(
            value(&second, &names::PROCESS_IO_WRITE, "total"),
            Some(65.0)
        );
        assert_eq!(
            value(&second, &names::PROCESS_MEMORY_RSS, "total"),
            Some(4.0 * 1048576.0),
            "memory counts the living only"
        );
        assert_eq!(value(&second, &names::PROCESS_COUNT, "total"), Some(1.0));
        assert!(value(&second, &names::PROCESS_CPU_USAGE, "total").is_some());
        assert!(value(&second, &names::PROCESS_CPU_USAGE, "10").is_some());
        assert_eq!(value(&second, &names::PROCESS_CPU_TIME, "11"), None);
        let events = c.drain_events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind, events[0].pid),
            (ProcessEventKind::Exit, 11)
        );
        assert_eq!(events[0].comm, "node");
        let totals = events[0]
            .totals
            .expect("an exit carries its final counters");
        assert_eq!(
            (totals.cpu_ns, totals.read_bytes, totals.write_bytes),
            (1_000_000_000, 10, 5)
        );
    }

    #[test]
    fn the_first_tick_has_no_cpu_percent() {
        let table = Table::default();
        table.set(vec![proc(10, 5, 1, "openclaw", 2, (0, 0))]);
        let first = tick(&mut collector(&table), 1);
        assert_eq!(value(&first, &names::PROCESS_CPU_USAGE, "10"), None);
        assert_eq!(value(&first, &names::PROCESS_CPU_USAGE, "total"), None);
        assert_eq!(
            value(&first, &names::PROCESS_CPU_TIME, "10"),
            Some(2.0),
            "counters are there from the start"
        );
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let table = Table::default();
        let mut c = collector(&table);
        table.set(vec![proc(10, 5, 1, "openclaw", 2, (0, 0))]);
        tick(&mut c, 1);
        table.set(vec![proc(10, 99, 1, "openclaw", 1, (0, 0))]);
        let second = tick(&mut c, 2);
        let kinds: Vec<ProcessEventKind> = c.drain_events().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [ProcessEventKind::Exec, ProcessEventKind::Exit]);
        assert_eq!(
            value(&second, &names::PROCESS_CPU_USAGE, "10"),
            None,
            "no CPU percent against another process's counter"
        );
        assert_eq!(value(&second, &names::PROCESS_CPU_TIME, "total"), Some(3.0));
    }

    #[test]
    fn a_process_that_execs_into_the_target_starts_being_tracked() {
        let table = Table::default();
        let mut c = collector(&table);
        table.set(vec![proc(10, 5, 1, "bash", 2, (0, 0))]);
        assert!(pids(&tick(&mut c, 1)).is_empty());
        table.set(vec![proc(10, 5, 1, "openclaw", 2, (0, 0))]);
        assert_eq!(pids(&tick(&mut c, 2)), ["10"]);
        table.set(vec![proc(10, 5, 1, "bash", 2, (0, 0))]);
        assert!(
            pids(&tick(&mut c, 3)).is_empty(),
            "a cached match is for the comm it was made on"
        );
    }

    #[test]
    fn matches_by_executable_and_never_tracks_itself() {
        let table = Table::default();
        let mut c = collector(&table);
        let mut gateway = proc(10, 5, 1, "node-main", 2, (0, 0));
        gateway.exe = Some("/opt/openclaw/bin/openclaw".to_owned());
        let mut agent = proc(std::process::id(), 6, 1, "openclaw-agent", 2, (0, 0));
        agent.exe = Some("/usr/bin/trace-claw-agent".to_owned());
        table.set(vec![gateway, agent]);
        assert_eq!(pids(&tick(&mut c, 1)), ["10"]);
    }

    #[test]
    fn unreadable_io_keeps_the_last_values() {
        let table = Table::default();
        let mut c = collector(&table);
        table.set(vec![proc(10, 5, 1, "openclaw", 2, (100, 50))]);
        tick(&mut c, 1);
        let mut unreadable = proc(10, 5, 1, "openclaw", 3, (0, 0));
        unreadable.io = None;
        table.set(vec![unreadable]);
        let second = tick(&mut c, 2);
        assert_eq!(value(&second, &names::PROCESS_IO_READ, "10"), Some(100.0));
        assert_eq!(
            value(&second, &names::PROCESS_IO_WRITE, "total"),
            Some(50.0)
        );
    }
}
