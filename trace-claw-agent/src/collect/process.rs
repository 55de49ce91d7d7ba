//! What the two process backends share: the polling one (`polling`) and the kernel programs
//! (`ebpf`) both read processes as [`ProcStat`]s, list them through a [`ProcessTable`], and
//! turn the tracked tree into samples with one [`TreeSamples`]: each process's samples, and a
//! `pid="total"` sum over the tree that keeps the final counters of exited processes, so tree
//! totals never go backwards.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use trace_claw_common::event::ProcessTotals;
use trace_claw_common::names::{self, labels, MetricDef};

use super::container::ContainerIds;
use super::SampleBuffer;
use crate::target::{tracked_tree, ProcessKey, Tracked};

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
    /// argv\[0\] and the executable path of a process, when readable.
    fn names(&self, pid: u32) -> (Option<String>, Option<String>);
    /// Storage read and write bytes of a process, when readable.
    fn io(&self, pid: u32) -> Option<(u64, u64)>;
    /// The procfs root whose `PID/cgroup` files name each process's container and pod; `None`
    /// where the platform has no cgroups.
    fn cgroup_root(&self) -> Option<&std::path::Path> {
        None
    }
}

/// The tracked tree in a scan of the process table: the processes for which `matched` holds
/// (never the agent itself) and their descendants, by pid.
pub fn tracked_in(
    stats: &[ProcStat],
    mut matched: impl FnMut(&ProcStat) -> bool,
) -> HashMap<u32, Tracked> {
    let own_pid = std::process::id();
    let triples: Vec<(u32, u32, bool)> = stats
        .iter()
        .map(|s| (s.key.pid, s.ppid, s.key.pid != own_pid && matched(s)))
        .collect();
    tracked_tree(&triples)
}

/// A cumulative byte counter of a process: its metric and its field of [`ProcessTotals`].
#[derive(Debug)]
pub struct ByteCounter {
    metric: &'static MetricDef,
    value: fn(&ProcessTotals) -> u64,
}

/// What a process backend measures, which shapes its samples.
#[derive(Debug)]
pub struct Backend {
    /// The `source` label of its samples.
    pub source: &'static str,
    /// Its byte counters, in the order they are pushed (CPU time is measured by every backend).
    byte_counters: &'static [ByteCounter],
}

/// Bytes read (rchar, or the table's read bytes).
const IO_READ: ByteCounter = ByteCounter {
    metric: &names::PROCESS_IO_READ,
    value: |t| t.read_bytes,
};
/// Bytes written (wchar, or the table's write bytes).
const IO_WRITE: ByteCounter = ByteCounter {
    metric: &names::PROCESS_IO_WRITE,
    value: |t| t.write_bytes,
};

impl Backend {
    /// Polling the process table: CPU time and the table's read and write bytes.
    pub const POLLING: Self = Self {
        source: labels::SOURCE_PROCFS,
        byte_counters: &[IO_READ, IO_WRITE],
    };
    /// The kernel programs: also block reads and socket bytes.
    #[cfg_attr(
        all(no_ebpf, not(test)),
        expect(dead_code, reason = "an agent built without eBPF has no eBPF backend")
    )]
    pub const EBPF: Self = Self {
        source: labels::SOURCE_EBPF,
        byte_counters: &[
            IO_READ,
            IO_WRITE,
            ByteCounter {
                metric: &names::PROCESS_IO_BLOCK_READ,
                value: |t| t.block_read_bytes,
            },
            ByteCounter {
                metric: &names::PROCESS_NET_SENT,
                value: |t| t.net_sent_bytes,
            },
            ByteCounter {
                metric: &names::PROCESS_NET_RECV,
                value: |t| t.net_recv_bytes,
            },
        ],
    };
}

/// Sums of the live tracked processes over one tick.
#[derive(Debug, Default)]
struct LiveSums {
    totals: ProcessTotals,
    rss_bytes: u64,
    vms_bytes: u64,
    threads: u64,
    count: u64,
}

/// Pushes the samples of the tracked tree, one tick at a time: [`start_tick`], then
/// [`push_process`] for every live tracked process and [`add_exited`] for every one that
/// ended, then [`push_totals`].
///
/// [`start_tick`]: Self::start_tick
/// [`push_process`]: Self::push_process
/// [`add_exited`]: Self::add_exited
/// [`push_totals`]: Self::push_totals
#[derive(Debug)]
pub struct TreeSamples {
    backend: &'static Backend,
    total_memory_bytes: u64,
    last_tick: Option<Instant>,
    /// Nanoseconds since the last tick; `None` on the first.
    elapsed_ns: Option<f64>,
    live: LiveSums,
    /// Counters of tracked processes that have exited, so tree totals never go backwards.
    exited: ProcessTotals,
    /// The tree's CPU time at the last tick.
    prev_cpu_ns: Option<u64>,
    /// The `pid` and `ppid` labels of the process being pushed (kept for their allocations).
    pid_label: String,
    ppid_label: String,
    /// Where the `container.id` and `k8s.pod.uid` labels come from; `None`: no such labels.
    containers: Option<ContainerIds>,
    /// Byte counters of the backend left out (their kernel hooks are missing).
    left_out: Vec<&'static MetricDef>,
}

impl TreeSamples {
    /// Samples of `backend`'s processes; `total_memory_bytes` (0 if unknown) is the base of
    /// the memory percentages.
    pub fn new(backend: &'static Backend, total_memory_bytes: u64) -> Self {
        Self {
            backend,
            total_memory_bytes,
            last_tick: None,
            elapsed_ns: None,
            live: LiveSums::default(),
            exited: ProcessTotals::default(),
            prev_cpu_ns: None,
            pid_label: String::new(),
            ppid_label: String::new(),
            containers: None,
            left_out: Vec::new(),
        }
    }

    /// Leaves the byte counters of `metrics` out of the samples (the eBPF backend without the
    /// hooks that count them).
    #[cfg_attr(
        all(no_ebpf, not(test)),
        expect(dead_code, reason = "an agent built without eBPF has no eBPF backend")
    )]
    pub fn without(mut self, metrics: Vec<&'static MetricDef>) -> Self {
        self.left_out = metrics;
        self
    }

    /// The backend's byte counters that are measured.
    fn byte_counters(&self) -> impl Iterator<Item = &'static ByteCounter> + '_ {
        let backend: &'static Backend = self.backend;
        backend
            .byte_counters
            .iter()
            .filter(|c| !self.left_out.iter().any(|m| m.name == c.metric.name))
    }

    /// Also labels each process with its container and pod (read from its cgroup file under
    /// `proc_root` once per process).
    pub fn with_containers(mut self, proc_root: &std::path::Path) -> Self {
        self.containers = Some(ContainerIds::new(proc_root));
        self
    }

    /// Starts a tick now: the time since the last one is the base of this tick's CPU percents.
    pub fn start_tick(&mut self) {
        let now = Instant::now();
        self.elapsed_ns = self
            .last_tick
            .map(|t| now.duration_since(t).as_nanos() as f64)
            .filter(|&ns| ns > 0.0);
        self.last_tick = Some(now);
        self.live = LiveSums::default();
        if let Some(containers) = self.containers.as_mut() {
            containers.start_tick();
        }
    }

    /// Pushes one live process's samples and counts it in the tree: CPU percent when its CPU
    /// time at the last tick is known (`prev_cpu_ns`), its cumulative `totals`, then RSS, VMS,
    /// memory percent and threads from `stat`.
    pub fn push_process(
        &mut self,
        buf: &mut SampleBuffer,
        stat: &ProcStat,
        tracked: Tracked,
        totals: &ProcessTotals,
        prev_cpu_ns: Option<u64>,
    ) {
        write_number(&mut self.pid_label, stat.key.pid);
        write_number(&mut self.ppid_label, stat.ppid);
        // The five labels of every process, then room for its container labels when it has
        // any: a fixed array, so pushing allocates nothing per process.
        let mut l = [
            (labels::PID, self.pid_label.as_str()),
            (labels::PPID, self.ppid_label.as_str()),
            (labels::PROCESS_NAME, stat.comm.as_str()),
            (labels::TRACKED, tracked.label()),
            (labels::SOURCE, self.backend.source),
            ("", ""),
            ("", ""),
            ("", ""),
            ("", ""),
            ("", ""),
        ];
        let mut n = 5;
        let container = self.containers.as_mut().and_then(|c| c.of(stat.key));
        let container_labels = container.as_deref().into_iter().flat_map(|c| c.labels());
        for (slot, label) in l[n..].iter_mut().zip(container_labels) {
            *slot = label;
            n += 1;
        }
        let l = &l[..n];
        if let Some(pct) = prev_cpu_ns.and_then(|prev| self.cpu_percent(totals.cpu_ns, prev)) {
            buf.push(&names::PROCESS_CPU_USAGE, pct, l);
        }
        buf.push(&names::PROCESS_CPU_TIME, totals.cpu_ns as f64 / 1e9, l);
        for c in self.byte_counters() {
            buf.push(c.metric, (c.value)(totals) as f64, l);
        }
        let gauges = [
            (&names::PROCESS_MEMORY_RSS, stat.rss_bytes as f64),
            (&names::PROCESS_MEMORY_VMS, stat.vms_bytes as f64),
            (
                &names::PROCESS_MEMORY_USAGE,
                self.memory_percent(stat.rss_bytes),
            ),
            (&names::PROCESS_THREADS, stat.threads as f64),
        ];
        for (def, value) in gauges {
            buf.push(def, value, l);
        }
        self.live.totals += *totals;
        self.live.rss_bytes += stat.rss_bytes;
        self.live.vms_bytes += stat.vms_bytes;
        self.live.threads += stat.threads;
        self.live.count += 1;
    }

    /// Keeps the final counters of a tracked process that has exited in the tree totals.
    pub fn add_exited(&mut self, totals: &ProcessTotals) {
        self.exited += *totals;
    }

    /// Pushes the `pid="total"` samples of this tick (the tree's CPU percent from the second
    /// tick on), then the backend's `extra` ones with the same labels.
    pub fn push_totals(&mut self, buf: &mut SampleBuffer, extra: &[(&MetricDef, f64)]) {
        let mut all = self.live.totals;
        all += self.exited;
        let l = [
            (labels::PID, labels::PID_TOTAL),
            (labels::SOURCE, self.backend.source),
        ];
        if let Some(pct) = self
            .prev_cpu_ns
            .and_then(|prev| self.cpu_percent(all.cpu_ns, prev))
        {
            buf.push(&names::PROCESS_CPU_USAGE, pct, &l);
        }
        self.prev_cpu_ns = Some(all.cpu_ns);
        let live = &self.live;
        buf.push(&names::PROCESS_CPU_TIME, all.cpu_ns as f64 / 1e9, &l);
        let memory = [
            (&names::PROCESS_MEMORY_RSS, live.rss_bytes as f64),
            (&names::PROCESS_MEMORY_VMS, live.vms_bytes as f64),
            (
                &names::PROCESS_MEMORY_USAGE,
                self.memory_percent(live.rss_bytes),
            ),
        ];
        for (def, value) in memory {
            buf.push(def, value, &l);
        }
        for c in self.byte_counters() {
            buf.push(c.metric, (c.value)(&all) as f64, &l);
        }
        let counts = [
            (&names::PROCESS_THREADS, live.threads as f64),
            (&names::PROCESS_COUNT, live.count as f64),
        ];
        for &(def, value) in counts.iter().chain(extra) {
            buf.push(def, value, &l);
        }
    }

    /// Percent of one core used between the last tick (`before_ns` of CPU time) and this one
    /// (`now_ns`); `None` on the first tick.
    fn cpu_percent(&self, now_ns: u64, before_ns: u64) -> Option<f64> {
        self.elapsed_ns
            .map(|ns| now_ns.saturating_sub(before_ns) as f64 / ns * 100.0)
    }

    /// RSS as a percent of installed memory (0 when the total is unknown).
    fn memory_percent(&self, rss_bytes: u64) -> f64 {
        if self.total_memory_bytes == 0 {
            0.0
        } else {
            rss_bytes as f64 / self.total_memory_bytes as f64 * 100.0
        }
    }
}

/// Sets `s` to the decimal digits of `n`, reusing its allocation.
fn write_number(s: &mut String, n: u32) {
    s.clear();
    // Writing to a String cannot fail.
    let _infallible = write!(s, "{n}");
}

#[cfg(test)]
mod tests {
    use trace_claw_common::time::Timestamp;

    use super::*;

    /// The metric names of `buf`'s samples labelled `pid`, in push order.
    fn names_of<'a>(buf: &'a SampleBuffer, pid: &str) -> Vec<&'a str> {
        buf.samples()
            .iter()
            .filter(|s| s.label(labels::PID) == Some(pid))
            .map(|s| s.name.as_str())
            .collect()
    }

    fn stat(pid: u32, rss_bytes: u64) -> ProcStat {
        ProcStat {
            key: ProcessKey { pid, start_time: 1 },
            ppid: 1,
            comm: "node".to_owned(),
            cpu_ns: 0,
            rss_bytes,
            vms_bytes: 2 * rss_bytes,
            threads: 3,
        }
    }

    #[test]
    fn series_left_out_are_absent_from_process_and_tree_not_zero() {
        let mut tree = TreeSamples::new(&Backend::EBPF, 1000)
            .without(vec![&names::PROCESS_NET_SENT, &names::PROCESS_NET_RECV]);
        let mut buf = SampleBuffer::default();
        buf.start_tick(Timestamp(1));
        tree.start_tick();
        let totals = ProcessTotals::default();
        tree.push_process(&mut buf, &stat(7, 100), Tracked::Match, &totals, None);
        tree.push_totals(&mut buf, &[]);
        for pid in ["7", labels::PID_TOTAL] {
            let names = names_of(&buf, pid);
            assert!(
                names.contains(&names::PROCESS_IO_BLOCK_READ.name),
                "{names:?}"
            );
            assert!(!names.contains(&names::PROCESS_NET_SENT.name), "{names:?}");
            assert!(!names.contains(&names::PROCESS_NET_RECV.name), "{names:?}");
        }
    }

    #[test]
    fn the_ebpf_backend_adds_block_and_socket_bytes_to_process_and_tree() {
        let mut tree = TreeSamples::new(&Backend::EBPF, 1000);
        let mut buf = SampleBuffer::default();
        let totals = ProcessTotals {
            cpu_ns: 2_000_000_000,
            read_bytes: 1,
            write_bytes: 2,
            block_read_bytes: 3,
            net_sent_bytes: 4,
            net_recv_bytes: 5,
        };
        for t in 1..=2 {
            buf.start_tick(Timestamp(t));
            tree.start_tick();
            tree.push_process(&mut buf, &stat(7, 100), Tracked::Match, &totals, Some(0));
            tree.add_exited(&totals);
            tree.push_totals(&mut buf, &[(&names::EBPF_EVENTS_DROPPED, 9.0)]);
        }
        assert_eq!(
            names_of(&buf, "7"),
            [
                names::PROCESS_CPU_USAGE.name,
                names::PROCESS_CPU_TIME.name,
                names::PROCESS_IO_READ.name,
                names::PROCESS_IO_WRITE.name,
                names::PROCESS_IO_BLOCK_READ.name,
                names::PROCESS_NET_SENT.name,
                names::PROCESS_NET_RECV.name,
                names::PROCESS_MEMORY_RSS.name,
                names::PROCESS_MEMORY_VMS.name,
                names::PROCESS_MEMORY_USAGE.name,
                names::PROCESS_THREADS.name,
            ]
        );
        assert_eq!(
            names_of(&buf, labels::PID_TOTAL),
            [
                names::PROCESS_CPU_USAGE.name,
                names::PROCESS_CPU_TIME.name,
                names::PROCESS_MEMORY_RSS.name,
                names::PROCESS_MEMORY_VMS.name,
                names::PROCESS_MEMORY_USAGE.name,
                names::PROCESS_IO_READ.name,
                names::PROCESS_IO_WRITE.name,
                names::PROCESS_IO_BLOCK_READ.name,
                names::PROCESS_NET_SENT.name,
                names::PROCESS_NET_RECV.name,
                names::PROCESS_THREADS.name,
                names::PROCESS_COUNT.name,
                names::EBPF_EVENTS_DROPPED.name,
            ]
        );
        let total = |metric: &MetricDef| {
            buf.samples()
                .iter()
                .find(|s| s.name == metric.name && s.label(labels::PID) == Some("total"))
                .map(|s| s.value)
        };
        // The live process plus two exits of the same counters.
        assert_eq!(total(&names::PROCESS_NET_RECV), Some(15.0));
        assert_eq!(total(&names::PROCESS_CPU_TIME), Some(6.0));
        assert_eq!(total(&names::PROCESS_MEMORY_USAGE), Some(10.0));
        assert_eq!(total(&names::PROCESS_COUNT), Some(1.0));
        assert!(buf
            .samples()
            .iter()
            .all(|s| s.label(labels::SOURCE) == Some(labels::SOURCE_EBPF)));
    }

    #[test]
    fn unknown_installed_memory_reads_as_zero_percent() {
        let mut tree = TreeSamples::new(&Backend::POLLING, 0);
        let mut buf = SampleBuffer::default();
        tree.start_tick();
        let totals = ProcessTotals::default();
        tree.push_process(&mut buf, &stat(7, 100), Tracked::Match, &totals, None);
        tree.push_totals(&mut buf, &[]);
        let usage: Vec<f64> = buf
            .samples()
            .iter()
            .filter(|s| s.name == names::PROCESS_MEMORY_USAGE.name)
            .map(|s| s.value)
            .collect();
        assert_eq!(usage, [0.0, 0.0]);
    }
}
