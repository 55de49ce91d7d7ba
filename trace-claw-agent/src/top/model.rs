//! What `top` shows, kept up to date from each tick's samples, process events and actions:
//! the host, the tracked processes with their rates, the exec/exit strip, the last actions and
//! the tree's CPU and RSS history.

use std::collections::{BTreeMap, HashMap, VecDeque};

use trace_claw_common::event::{ActionEvent, ProcessEvent, ProcessEventKind};
use trace_claw_common::names::{self, labels};
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

/// Ticks of history the sparklines keep.
pub const HISTORY: usize = 300;
/// Exec/exit events the strip keeps.
const STRIP: usize = 64;

/// One tracked process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcRow {
    /// Process id.
    pub pid: u32,
    /// Parent pid.
    pub ppid: u32,
    /// Its comm.
    pub name: String,
    /// CPU, percent of one core, over the last tick.
    pub cpu_pct: f64,
    /// Resident set size.
    pub rss: f64,
    /// Bytes per second read, written, sent and received over the last tick.
    pub rates: [f64; 4],
    /// The cumulative counters behind `rates` and when they were read.
    totals: Option<([f64; 4], Timestamp)>,
}

/// The column the process table is sorted by (`s` cycles them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// CPU %, highest first.
    Cpu,
    /// RSS, largest first.
    Rss,
    /// Read + write rate, highest first.
    Io,
    /// Send + receive rate, highest first.
    Net,
    /// Pid, lowest first.
    Pid,
    /// Name, A to Z.
    Name,
}

impl SortBy {
    /// The next column.
    pub fn next(self) -> Self {
        match self {
            Self::Cpu => Self::Rss,
            Self::Rss => Self::Io,
            Self::Io => Self::Net,
            Self::Net => Self::Pid,
            Self::Pid => Self::Name,
            Self::Name => Self::Cpu,
        }
    }

    /// Its name in the header.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cpu => "CPU%",
            Self::Rss => "RSS",
            Self::Io => "DISK",
            Self::Net => "NET",
            Self::Pid => "PID",
            Self::Name => "NAME",
        }
    }
}

/// One line of the exec/exit strip.
#[derive(Debug, Clone, PartialEq)]
pub struct StripEntry {
    /// When.
    pub at: Timestamp,
    /// The line.
    pub text: String,
}

/// Everything on screen.
#[derive(Debug)]
pub struct Model {
    /// Host CPU percent.
    pub host_cpu: f64,
    /// Host memory used and total, bytes.
    pub host_mem: (f64, f64),
    /// `ebpf` or `procfs`, and the agent's socket when attached.
    pub source: String,
    /// Kernel events lost so far.
    pub dropped: f64,
    /// The tracked processes by pid.
    pub procs: BTreeMap<u32, ProcRow>,
    /// Newest last.
    pub strip: VecDeque<StripEntry>,
    /// Finished actions, newest last, each with the tree's CPU seconds over its window.
    pub actions: VecDeque<(ActionEvent, Option<f64>)>,
    /// How many actions are kept.
    pub actions_kept: usize,
    /// (time, tree CPU %, tree RSS bytes), oldest first.
    pub history: VecDeque<(Timestamp, f64, f64)>,
    /// (time, tree CPU seconds so far): for actions' CPU between two ticks.
    cpu_seconds: VecDeque<(Timestamp, f64)>,
    /// Sort column.
    pub sort: SortBy,
    /// Show parents above children, indented.
    pub tree: bool,
    /// Only names containing this (lower case).
    pub filter: String,
    /// Index of the selected row.
    pub selected: usize,
    /// Updates are held.
    pub paused: bool,
}

impl Model {
    /// An empty view for `source`, keeping `actions_kept` finished actions.
    pub fn new(source: String, actions_kept: usize) -> Self {
        Self {
            host_cpu: 0.0,
            host_mem: (0.0, 0.0),
            source,
            dropped: 0.0,
            procs: BTreeMap::new(),
            strip: VecDeque::new(),
            actions: VecDeque::new(),
            actions_kept,
            history: VecDeque::new(),
            cpu_seconds: VecDeque::new(),
            sort: SortBy::Cpu,
            tree: true,
            filter: String::new(),
            selected: 0,
            paused: false,
        }
    }

    /// Takes one tick's samples: the host, each tracked process (those gone are dropped), the
    /// tree's totals.
    pub fn tick(&mut self, at: Timestamp, samples: &[MetricSample]) {
        let mut seen: HashMap<u32, ProcRow> = HashMap::new();
        let mut tree = (0.0, 0.0, None);
        for s in samples {
            let name = s.name.as_str();
            if name == names::SYSTEM_CPU_USAGE.name
                && s.label(labels::CPU) == Some(labels::CPU_TOTAL)
            {
                self.host_cpu = s.value;
            } else if name == names::SYSTEM_MEMORY_USED.name {
                self.host_mem.0 = s.value;
            } else if name == names::SYSTEM_MEMORY_TOTAL.name {
                self.host_mem.1 = s.value;
            } else if name == names::EBPF_EVENTS_DROPPED.name {
                self.dropped = s.value;
            }
            let Some(pid) = s.label(labels::PID) else {
                continue;
            };
            if pid == labels::PID_TOTAL {
                match name {
                    n if n == names::PROCESS_CPU_USAGE.name => tree.0 = s.value,
                    n if n == names::PROCESS_MEMORY_RSS.name => tree.1 = s.value,
                    n if n == names::PROCESS_CPU_TIME.name => tree.2 = Some(s.value),
                    _ => {}
                }
                continue;
            }
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            let row = seen.entry(pid).or_insert_with(|| ProcRow {
                pid,
                ppid: s
                    .label(labels::PPID)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                name: s.label(labels::PROCESS_NAME).unwrap_or("?").to_owned(),
                ..ProcRow::default()
            });
            let counters = [
                names::PROCESS_IO_READ.name,
                names::PROCESS_IO_WRITE.name,
                names::PROCESS_NET_SENT.name,
                names::PROCESS_NET_RECV.name,
            ];
            if name == names::PROCESS_CPU_USAGE.name {
                row.cpu_pct = s.value;
            } else if name == names::PROCESS_MEMORY_RSS.name {
                row.rss = s.value;
            } else if let Some(i) = counters.iter().position(|c| *c == name) {
                let totals = row.totals.get_or_insert(([0.0; 4], at));
                totals.0[i] = s.value;
            }
        }
        for (pid, row) in &mut seen {
            let Some((now, _)) = row.totals else {
                continue;
            };
            if let Some((before, then)) = self.procs.get(pid).and_then(|r| r.totals) {
                let secs = (at.0 - then.0) as f64 / 1e9;
                if secs > 0.0 {
                    for i in 0..4 {
                        row.rates[i] = ((now[i] - before[i]) / secs).max(0.0);
                    }
                }
            }
        }
        self.procs = seen.into_iter().collect();
        self.history.push_back((at, tree.0, tree.1));
        if let Some(cpu) = tree.2 {
            self.cpu_seconds.push_back((at, cpu));
        }
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        while self.cpu_seconds.len() > HISTORY {
            self.cpu_seconds.pop_front();
        }
    }

    /// Adds exec and exit events to the strip (a child that lived 1 ms shows, as its events do).
    pub fn events(&mut self, events: &[ProcessEvent]) {
        for e in events {
            let text = match e.kind {
                ProcessEventKind::Exec => format!(
                    "exec {} {} (parent {}){}",
                    e.comm,
                    e.pid,
                    e.ppid,
                    e.filename
                        .as_deref()
                        .map_or(String::new(), |f| format!(" {f}"))
                ),
                ProcessEventKind::Exit => {
                    let cpu = e.totals.map_or(String::new(), |t| {
                        format!(", {:.1} ms CPU", t.cpu_ns as f64 / 1e6)
                    });
                    let code = e.exit_code.map_or(String::new(), |c| format!(" code {c}"));
                    format!("exit {} {}{code}{cpu}", e.comm, e.pid)
                }
                ProcessEventKind::Fork => continue,
            };
            self.strip.push_back(StripEntry {
                at: e.timestamp,
                text,
            });
        }
        while self.strip.len() > STRIP {
            self.strip.pop_front();
        }
    }

    /// Adds finished actions, with the tree's CPU seconds over each one's window where the
    /// history covers it (interpolated between ticks: `~` on screen).
    pub fn actions(&mut self, actions: Vec<ActionEvent>) {
        for a in actions {
            let cpu = self.tree_cpu_between(a.timestamp, a.end());
            self.actions.push_back((a, cpu));
        }
        while self.actions.len() > self.actions_kept {
            self.actions.pop_front();
        }
    }

    /// The tree's CPU seconds from `from` to `to`, by linear interpolation of its cumulative
    /// CPU time between ticks; `None` outside the history.
    fn tree_cpu_between(&self, from: Timestamp, to: Timestamp) -> Option<f64> {
        let at = |t: Timestamp| -> Option<f64> {
            let after = self.cpu_seconds.iter().position(|(x, _)| *x >= t)?;
            let (t1, v1) = self.cpu_seconds[after];
            if after == 0 {
                return (t1 == t).then_some(v1);
            }
            let (t0, v0) = self.cpu_seconds[after - 1];
            let span = (t1.0 - t0.0) as f64;
            Some(v0 + (v1 - v0) * ((t.0 - t0.0) as f64 / span))
        };
        Some((at(to)? - at(from)?).max(0.0))
    }

    /// The RSS growth of the tree over the history, bytes per hour.
    pub fn rss_growth_per_hour(&self) -> Option<f64> {
        let (first, last) = (self.history.front()?, self.history.back()?);
        let hours = (last.0 .0 - first.0 .0) as f64 / 3.6e12;
        (hours > 0.0).then(|| (last.2 - first.2) / hours)
    }

    /// The rows to show, filtered and sorted, each with its depth in the tree.
    pub fn rows(&self) -> Vec<(usize, &ProcRow)> {
        let visible: Vec<&ProcRow> = self
            .procs
            .values()
            .filter(|r| self.filter.is_empty() || r.name.to_lowercase().contains(&self.filter))
            .collect();
        let mut sorted = visible.clone();
        sorted.sort_by(|a, b| self.compare(a, b));
        if !self.tree {
            return sorted.into_iter().map(|r| (0, r)).collect();
        }
        // Children under their parents, siblings in sort order; roots are the rows whose parent
        // is not shown.
        let shown: std::collections::HashSet<u32> = visible.iter().map(|r| r.pid).collect();
        let mut children: HashMap<u32, Vec<&ProcRow>> = HashMap::new();
        let mut roots = Vec::new();
        for r in sorted {
            if shown.contains(&r.ppid) && r.ppid != r.pid {
                children.entry(r.ppid).or_default().push(r);
            } else {
                roots.push(r);
            }
        }
        let mut out = Vec::new();
        let mut stack: Vec<(usize, &ProcRow)> = roots.into_iter().rev().map(|r| (0, r)).collect();
        while let Some((depth, r)) = stack.pop() {
            out.push((depth, r));
            if let Some(kids) = children.get(&r.pid) {
                stack.extend(kids.iter().rev().map(|k| (depth + 1, *k)));
            }
        }
        out
    }

    fn compare(&self, a: &ProcRow, b: &ProcRow) -> std::cmp::Ordering {
        let desc = |x: f64, y: f64| y.total_cmp(&x);
        match self.sort {
            SortBy::Cpu => desc(a.cpu_pct, b.cpu_pct),
            SortBy::Rss => desc(a.rss, b.rss),
            SortBy::Io => desc(a.rates[0] + a.rates[1], b.rates[0] + b.rates[1]),
            SortBy::Net => desc(a.rates[2] + a.rates[3], b.rates[2] + b.rates[3]),
            SortBy::Pid => a.pid.cmp(&b.pid),
            SortBy::Name => a.name.cmp(&b.name),
        }
        .then(a.pid.cmp(&b.pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, value: f64, pid: &str, ppid: &str, comm: &str) -> MetricSample {
        MetricSample {
            timestamp: Timestamp(0),
            name: name.to_owned(),
            value,
            unit: String::new(),
            labels: [
                (labels::PID.to_owned(), pid.to_owned()),
                (labels::PPID.to_owned(), ppid.to_owned()),
                (labels::PROCESS_NAME.to_owned(), comm.to_owned()),
            ]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn rates_come_from_counter_differences_and_the_tree_nests_children() {
        let mut m = Model::new("procfs".to_owned(), 5);
        let tick = |read: f64, cpu_total: f64| {
            vec![
                sample(names::PROCESS_CPU_USAGE.name, 50.0, "10", "1", "gateway"),
                sample(names::PROCESS_IO_READ.name, read, "10", "1", "gateway"),
                sample(names::PROCESS_CPU_USAGE.name, 5.0, "11", "10", "sh"),
                sample(names::PROCESS_CPU_USAGE.name, 90.0, "12", "1", "other"),
                sample(names::PROCESS_CPU_TIME.name, cpu_total, "total", "", ""),
            ]
        };
        m.tick(Timestamp(1_000_000_000), &tick(1000.0, 1.0));
        m.tick(Timestamp(3_000_000_000), &tick(5000.0, 3.0));
        assert_eq!(m.procs[&10].rates[0], 2000.0, "4000 bytes in 2 s");
        let rows: Vec<(usize, u32)> = m.rows().iter().map(|(d, r)| (*d, r.pid)).collect();
        assert_eq!(
            rows,
            [(0, 12), (0, 10), (1, 11)],
            "by CPU, children under parents"
        );
        m.tree = false;
        m.sort = SortBy::Pid;
        let flat: Vec<u32> = m.rows().iter().map(|(_, r)| r.pid).collect();
        assert_eq!(flat, [10, 11, 12]);
        m.filter = "sh".into();
        assert_eq!(m.rows().len(), 1);
        // An action from 1.5 s to 2.5 s: a second of the tree's 1 CPU-s per s.
        let mut a = ActionEvent::new("tool", Timestamp(1_500_000_000));
        a.duration_ms = 1000.0;
        m.actions(vec![a]);
        let cpu = m.actions[0].1.expect("covered");
        assert!((cpu - 1.0).abs() < 1e-9, "{cpu}");
    }
}
