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
//! The fork, exec and exit events are applied in `lifecycle`, a child module because it
//! updates the same tracked set (`live`, the kernel's `PROCS`, the exited totals) as the
//! seeding and the per-tick read here, keeping one invariant with them: every tracked process
//! is counted exactly once, live or exited.

mod lifecycle;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use procfs::process::Process;
use trace_claw_common::abi::{
    ProcCounters, ProcEvent, TrackedProc, STAT_EVENTS_DROPPED, STAT_TRACK_FULL, TRACK_DESCENDANT,
    TRACK_MATCH,
};
use trace_claw_common::event::{ProcessEvent, ProcessTotals};
use trace_claw_common::names;

use super::load::Kernel;
use super::proc_files::ProcFiles;
use super::ring_reader::RingReader;
use super::tree_costs::TreeCostLog;
use super::{EbpfError, EbpfOptions};
use crate::collect::process::{tracked_in, Backend, ProcStat, ProcessTable, TreeSamples};
use crate::collect::procfs::ProcfsTable;
use crate::collect::selection::TargetSelection;
use crate::collect::tree_costs::Tree;
use crate::collect::SampleBuffer;
use crate::target::Tracked;

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
    /// Its `/proc` files as last read: the stat, rchar/wchar, and the kernel's CPU counter
    /// and the time then.
    read: Option<ProcRead>,
}

/// One reading of a process's `/proc/PID/stat` and `/proc/PID/io`.
#[derive(Debug)]
struct ProcRead {
    stat: ProcStat,
    io: Option<(u64, u64)>,
    kernel_cpu_ns: u64,
    at: Instant,
}

/// How long the `/proc` reading of a process that has not run since is used again. A process
/// off the CPU cannot change its threads, its comm or its rchar/wchar, and its RSS only
/// through reclaim; the kernel's CPU counter says whether it ran. So an idle process costs a
/// map lookup per tick, not two file reads, and its RSS is at most this old.
const IDLE_REREAD: Duration = Duration::from_secs(10);

/// Samples the tracked process tree from the kernel programs.
pub struct EbpfCollector {
    kernel: Kernel,
    selection: TargetSelection,
    table: ProcfsTable,
    proc_root: PathBuf,
    /// Kept-open /proc/PID/stat and io files of the tracked processes.
    proc_files: ProcFiles,
    own_pid: u32,
    events_rx: Receiver<ProcEvent>,
    /// Held for its Drop, which stops and joins the ring-buffer thread.
    _reader: RingReader,
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
    /// The trees' time buckets, drained every tick.
    tree_costs: TreeCostLog,
    /// When the process table was last scanned for targets.
    last_seed: Instant,
}

/// How often the process table is scanned again when targets are picked by pod: the kernel
/// sees the descendants of a target, not a process a runtime starts in a picked pod (`kubectl
/// exec`, a restarted container), and a pod's labels can change without a new process.
const RESEED_EVERY: Duration = Duration::from_secs(5);

impl EbpfCollector {
    /// Loads and attaches the kernel programs and seeds the tracked set.
    pub fn start(options: &EbpfOptions) -> Result<Self, EbpfError> {
        if let Some(why) = super::probe() {
            return Err(why);
        }
        let mut kernel = Kernel::load(
            &options.process_name,
            options.fast_entries,
            &options.disabled_hooks,
        )?;
        let ring = kernel.events.take().ok_or(EbpfError::Map {
            name: "EVENTS",
            source: aya::maps::MapError::InvalidName {
                name: "EVENTS".to_owned(),
            },
        })?;
        let buckets = kernel.buckets.take().ok_or(EbpfError::Map {
            name: "BUCKETS",
            source: aya::maps::MapError::InvalidName {
                name: "BUCKETS".to_owned(),
            },
        })?;
        let staged = kernel.staged.take().ok_or(EbpfError::Map {
            name: "STAGED",
            source: aya::maps::MapError::InvalidName {
                name: "STAGED".to_owned(),
            },
        })?;
        let tree_costs = TreeCostLog::new(buckets, staged, options.tree_costs_dir.as_deref())
            .map_err(EbpfError::TreeCosts)?;
        let (tx, events_rx) = mpsc::channel();
        let reader = RingReader::spawn(ring, tx).map_err(EbpfError::Reader)?;
        let samples = TreeSamples::new(&Backend::EBPF, options.total_memory_bytes)
            .with_containers(&options.proc_root)
            .without(kernel.left_out().iter().map(|l| l.metric).collect());
        let mut collector = Self {
            kernel,
            selection: TargetSelection::new(
                &options.process_name,
                options.pod_selector.clone(),
                &options.proc_root,
            ),
            table: ProcfsTable::new(&options.proc_root),
            proc_root: options.proc_root.clone(),
            proc_files: ProcFiles::new(&options.proc_root),
            own_pid: std::process::id(),
            events_rx,
            _reader: reader,
            pending: Vec::new(),
            live: HashMap::new(),
            samples,
            events: Vec::new(),
            clock_offset_ns: realtime_minus_monotonic_ns(),
            dropped_warned: 0,
            missing: HashMap::new(),
            pids_buf: Vec::new(),
            procs_buf: Vec::new(),
            tree_costs,
            last_seed: Instant::now(),
        };
        collector.seed();
        collector.kernel.attach()?;
        // Children forked between the scan and the attach are not in PROCS yet.
        collector.seed();
        Ok(collector)
    }

    /// The optional programs left out, and why.
    pub fn left_out(&self) -> &[super::LeftOut] {
        self.kernel.left_out()
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
        if self.selection.by_pod()
            && (self.selection.pods_changed() || self.last_seed.elapsed() >= RESEED_EVERY)
        {
            self.seed();
        }

        let mut procs = std::mem::take(&mut self.procs_buf);
        if let Err(e) = self.kernel.tracked_all(&mut procs) {
            log::warn!("cannot read the eBPF process map: {e}");
        }
        for &(pid, tracked) in &procs {
            let kernel = ProcessTotals::from(tracked.counters);
            let last = self.live.get(&pid).and_then(|l| l.read.as_ref());
            let ran = last.is_none_or(|r| r.kernel_cpu_ns != kernel.cpu_ns);
            if ran || last.is_some_and(|r| r.at.elapsed() >= IDLE_REREAD) {
                // Off the CPU since, its rchar/wchar cannot have moved: only the RSS is read.
                let Some((stat, io)) = self.proc_files.read(pid, ran) else {
                    self.finish_if_gone(pid);
                    continue;
                };
                self.missing.remove(&pid);
                let live = self
                    .live
                    .entry(pid)
                    .or_insert_with(|| Live::new(tracked.flags, &stat.comm));
                if live.comm != stat.comm {
                    live.comm.clone_from(&stat.comm);
                }
                let io = if ran {
                    io
                } else {
                    live.read.as_ref().and_then(|r| r.io)
                };
                live.read = Some(ProcRead {
                    stat,
                    io,
                    kernel_cpu_ns: kernel.cpu_ns,
                    at: Instant::now(),
                });
            }
            let Some(live) = self.live.get_mut(&pid) else {
                continue;
            };
            let Some(read) = &live.read else {
                continue;
            };
            let mut totals = live.base;
            totals += kernel;
            (totals.read_bytes, totals.write_bytes) = read
                .io
                .unwrap_or((live.last.read_bytes, live.last.write_bytes));
            let prev_cpu_ns = live.read_once.then_some(live.last.cpu_ns);
            live.last = totals;
            live.read_once = true;
            self.samples
                .push_process(buf, &read.stat, live.tracked, &totals, prev_cpu_ns);
        }
        self.log_tree_costs(&procs);
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

    /// Lines of `tree-costs-*.jsonl` written so far.
    pub fn tree_cost_lines(&self) -> u64 {
        self.tree_costs.lines()
    }

    /// Drains the trees' closed time buckets, with the tracked processes `procs` of each tree.
    fn log_tree_costs(&mut self, procs: &[(u32, TrackedProc)]) {
        let mut trees: BTreeMap<u32, Tree> = BTreeMap::new();
        for &(pid, tracked) in procs {
            trees.entry(tracked.root).or_default().pids.push(pid);
        }
        for (root, tree) in &mut trees {
            tree.pids.sort_unstable();
            if let Some(live) = self.live.get(root) {
                tree.root_name.clone_from(&live.comm);
            }
        }
        let now = clock_ns(libc::CLOCK_MONOTONIC) as u64;
        let kernel = &self.kernel;
        self.tree_costs
            .tick(now, self.clock_offset_ns, &trees, |cpu| {
                kernel.flush_staged(cpu)
            });
    }

    /// Reads the process table and puts every matching process and its descendants into
    /// `PROCS` (those already there are left alone).
    fn seed(&mut self) {
        self.last_seed = Instant::now();
        self.selection.start_scan();
        let mut stats = Vec::new();
        self.table.scan(&mut stats);
        let tree = tracked_in(&stats, |s| {
            self.live
                .get(&s.key.pid)
                .is_some_and(|l| l.tracked == Tracked::Match)
                || self.selection.matches(&self.table, s)
        });
        let parents: HashMap<u32, u32> = stats.iter().map(|s| (s.key.pid, s.ppid)).collect();
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
                root: tree_root(&parents, &tree, s.key.pid),
                _pad: 0,
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
                    read: None,
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
            read: None,
        }
    }
}

/// The topmost tracked ancestor of tracked process `pid` (itself if its parent is not
/// tracked): the root of its tree, which its time buckets are charged to.
fn tree_root(parents: &HashMap<u32, u32>, tree: &HashMap<u32, Tracked>, pid: u32) -> u32 {
    let mut root = pid;
    // Bounded: a ppid cycle (pid reuse between two reads) cannot loop forever.
    for _ in 0..parents.len() {
        match parents.get(&root) {
            Some(&parent) if parent != root && tree.contains_key(&parent) => root = parent,
            _ => break,
        }
    }
    root
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
