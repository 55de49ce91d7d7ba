//! The fixed-size aggregates one pass over resource samples builds, per chunk and then merged
//! across chunks: averages and peaks per time window (one per session plus the whole run), the
//! samples bracketing each probe time (action starts and ends) for interpolation and nearest
//! snapshots, the earliest samples for the full timeline and, for the HTML report, down-sampled
//! series per session. Nothing grows with the number of samples.

use std::collections::BinaryHeap;

use super::buckets::Buckets;
use super::edges::Edges;
use super::series::{Pt, Series};
use super::sweep::Sweep;
use crate::analyze::source::lines::LineStats;

/// Which averages/peaks are kept per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// System CPU percent.
    SysCpu = 0,
    /// System memory percent.
    SysMem,
    /// Tracked tree CPU percent (pid="total").
    ProcCpuTotal,
    /// Tracked tree RSS (pid="total").
    ProcRssTotal,
    /// Per-process CPU percent (used when there is no total series).
    ProcCpuPid,
    /// Per-process RSS (used when there is no total series).
    ProcRssPid,
}

/// Number of [`StatKind`]s.
pub const N_STATS: usize = 6;

/// Count, sum and maximum of one series over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Samples seen.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Their maximum.
    pub max: f64,
}

impl Default for Stat {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Stat {
    fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &Stat) {
        self.count += o.count;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// Mean, when any sample was seen.
    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Maximum, when any sample was seen.
    pub fn peak(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }
}

/// What the resource pass needs to know before reading.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Sorted, unique probe times (action starts and ends).
    pub probes: Vec<i64>,
    /// Sorted, unique probe times of the gauge series ([`Series::is_gauge`]), when fewer than
    /// `probes`: the starts of the actions whose snapshot is shown. `None`: `probes`.
    pub snapshot_probes: Option<Vec<i64>>,
    /// Stat windows `[start, end]`; index 0 is the whole analyzed range.
    pub windows: Vec<(i64, i64)>,
    /// Samples outside `[since, until)` are ignored.
    pub since: i64,
    /// See `since`.
    pub until: i64,
    /// How many samples the full timeline keeps.
    pub timeline_limit: usize,
    /// Whether to keep down-sampled series per session window (windows 1..) for charts.
    pub charts: bool,
}

impl Plan {
    /// The probe times that `series`' gaps lie between.
    pub fn probes_of(&self, series: Series) -> &[i64] {
        match &self.snapshot_probes {
            Some(p) if series.is_gauge() => p,
            _ => &self.probes,
        }
    }
}

/// A sample kept for the full timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineSample {
    /// When.
    pub t: i64,
    /// Metric name.
    pub name: String,
    /// Labels rendered `k=v` (pid, cpu, interface, process_name).
    pub labels: String,
    /// Value.
    pub value: f64,
}

impl Eq for TimelineSample {}
impl PartialOrd for TimelineSample {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimelineSample {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.t
            .cmp(&other.t)
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| self.labels.cmp(&other.labels))
    }
}

/// The aggregates of a chunk, or of all chunks merged.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    /// The samples next to the probe times.
    pub edges: Edges,
    /// Per window, per [`StatKind`].
    pub stats: Vec<[Stat; N_STATS]>,
    /// The earliest samples (max-heap on time, bounded).
    pub timeline: BinaryHeap<TimelineSample>,
    /// Samples inside the analyzed range.
    pub samples: u64,
    /// Line counts of this chunk.
    pub lines: LineStats,
    /// Line counts per (file index, chunk index), gathered while merging.
    pub chunk_lines: Vec<(usize, usize, LineStats)>,
    /// Down-sampled series per window (only with [`Plan::charts`]; allocated on first use).
    pub charts: Vec<Option<Box<Buckets>>>,
    /// The windows open at this chunk's latest sample.
    pub sweep: Sweep,
}

impl Aggregate {
    /// Empty aggregates for `plan`'s windows.
    pub fn new(plan: &Plan) -> Self {
        Self {
            stats: vec![[Stat::default(); N_STATS]; plan.windows.len()],
            charts: vec![None; if plan.charts { plan.windows.len() } else { 0 }],
            ..Self::default()
        }
    }

    /// Adds one sample at `t` inside the analyzed range: to the gap and chart buckets of
    /// `series`, to the window stats of `stat`, and to the full timeline while it is among the
    /// earliest (`timeline` builds that row only then).
    pub fn add(
        &mut self,
        plan: &Plan,
        Pt { t, v }: Pt,
        (series, stat): (Option<Series>, Option<StatKind>),
        timeline: impl FnOnce() -> TimelineSample,
    ) {
        self.samples += 1;
        let p = Pt { t, v };
        if let Some(series) = series {
            let gap = plan.probes_of(series).partition_point(|&q| q < t);
            self.edges.add(series as usize, gap, p);
        }
        if series.is_some() && plan.charts || stat.is_some() {
            for &w in self.sweep.at(&plan.windows, t) {
                if let (Some(series), true) = (series, plan.charts && w > 0) {
                    let (a, b) = plan.windows[w];
                    self.charts[w]
                        .get_or_insert_with(|| Box::new(Buckets::new(a, b)))
                        .add(series, p);
                }
                if let Some(stat) = stat {
                    self.stats[w][stat as usize].add(v);
                }
            }
        }
        if self.timeline.len() < plan.timeline_limit
            || self.timeline.peek().is_some_and(|top| t < top.t)
        {
            push_bounded(&mut self.timeline, timeline(), plan.timeline_limit);
        }
    }

    /// Adds the aggregate of a later chunk.
    pub fn merge(&mut self, mut o: Aggregate, limit: usize) {
        self.chunk_lines.append(&mut o.chunk_lines);
        if self.charts.len() < o.charts.len() {
            self.charts.resize(o.charts.len(), None);
        }
        for (mine, theirs) in self.charts.iter_mut().zip(o.charts) {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(&t),
                (None, Some(t)) => *mine = Some(t),
                _ => {}
            }
        }
        self.edges.merge(o.edges);
        if self.stats.len() < o.stats.len() {
            self.stats.resize(o.stats.len(), [Stat::default(); N_STATS]);
        }
        for (mine, theirs) in self.stats.iter_mut().zip(&o.stats) {
            for k in 0..N_STATS {
                mine[k].merge(&theirs[k]);
            }
        }
        for s in o.timeline {
            push_bounded(&mut self.timeline, s, limit);
        }
        self.samples += o.samples;
    }
}

fn push_bounded(heap: &mut BinaryHeap<TimelineSample>, s: TimelineSample, limit: usize) {
    if heap.len() < limit {
        heap.push(s);
    } else if heap.peek().is_some_and(|top| s < *top) {
        heap.pop();
        heap.push(s);
    }
}
