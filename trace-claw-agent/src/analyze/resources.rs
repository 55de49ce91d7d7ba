//! Resource samples (`resources-*.jsonl`), streamed chunk by chunk into fixed-size aggregates:
//! averages and peaks per time window (one per session plus the whole run), the samples
//! bracketing each probe time (action starts and ends) for interpolation and nearest snapshots,
//! and the earliest samples for the full timeline. Nothing grows with the number of samples.

use std::borrow::Cow;
use std::collections::BinaryHeap;

use serde::Deserialize;
use trace_claw_common::names::{self, labels};
use trace_claw_common::time::Timestamp;

use super::charts::Buckets;
use super::parse::{self, json_reason, Chunk, LineStats};
use super::AnalyzeError;

/// Series used for snapshots and interpolation, all of the `pid="total"` tree sums except the
/// two system gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// system.cpu.usage_percent, cpu="total".
    SysCpu = 0,
    /// system.memory.usage_percent.
    SysMem,
    /// process.cpu.usage_percent, pid="total".
    ProcCpu,
    /// process.memory.rss_bytes, pid="total".
    ProcRss,
    /// process.cpu.time_seconds (counter).
    CpuTime,
    /// process.io.read_bytes (counter).
    IoRead,
    /// process.io.write_bytes (counter).
    IoWrite,
    /// process.io.block_read_bytes (counter).
    BlockRead,
    /// process.network.bytes_sent (counter).
    NetSent,
    /// process.network.bytes_recv (counter).
    NetRecv,
}

/// Number of [`Series`].
pub const N_SERIES: usize = 10;

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

/// A timestamped value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pt {
    /// Unix nanoseconds.
    pub t: i64,
    /// Value.
    pub v: f64,
}

/// A sample slot that may be empty, 16 bytes (an `Option<Pt>` takes 24): memory per action
/// matters when a trace holds many actions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot(Pt);

impl Slot {
    const EMPTY: Slot = Slot(Pt {
        t: i64::MIN,
        v: 0.0,
    });

    /// The sample, unless empty.
    pub fn get(self) -> Option<Pt> {
        (self.0.t != i64::MIN).then_some(self.0)
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// The earliest and latest sample of each series between two consecutive probe times.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gap {
    /// Earliest sample per series.
    pub first: [Slot; N_SERIES],
    /// Latest sample per series.
    pub last: [Slot; N_SERIES],
}

impl Gap {
    fn add(&mut self, s: usize, p: Pt) {
        if self.first[s].get().is_none_or(|f| p.t < f.t) {
            self.first[s] = Slot(p);
        }
        if self.last[s].get().is_none_or(|l| p.t >= l.t) {
            self.last[s] = Slot(p);
        }
    }

    fn merge(&mut self, o: &Gap) {
        for s in 0..N_SERIES {
            if let Some(p) = o.first[s].get() {
                self.add(s, p);
            }
            if let Some(p) = o.last[s].get() {
                self.add(s, p);
            }
        }
    }
}

/// What the resource pass needs to know before reading.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Sorted, unique probe times (action starts and ends).
    pub probes: Vec<i64>,
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
    /// Gaps `[base, base + gaps.len())`; gap `j` holds samples in `(probes[j-1], probes[j]]`.
    pub base: usize,
    /// See `base`.
    pub gaps: Vec<Gap>,
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
}

#[derive(Deserialize)]
struct RawSample<'a> {
    timestamp: Timestamp,
    #[serde(borrow)]
    name: Cow<'a, str>,
    value: f64,
    #[serde(default, borrow)]
    labels: RawLabels<'a>,
}

#[derive(Deserialize, Default)]
struct RawLabels<'a> {
    #[serde(borrow)]
    pid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cpu: Option<Cow<'a, str>>,
    #[serde(borrow)]
    interface: Option<Cow<'a, str>>,
    #[serde(borrow)]
    process_name: Option<Cow<'a, str>>,
}

/// Which series and stat a sample feeds.
fn route(name: &str, l: &RawLabels<'_>) -> (Option<Series>, Option<StatKind>) {
    let total = l.pid.as_deref() == Some(labels::PID_TOTAL);
    if name == names::SYSTEM_CPU_USAGE.name {
        if l.cpu.as_deref().is_none_or(|c| c == labels::CPU_TOTAL) {
            return (Some(Series::SysCpu), Some(StatKind::SysCpu));
        }
    } else if name == names::SYSTEM_MEMORY_USAGE.name {
        return (Some(Series::SysMem), Some(StatKind::SysMem));
    } else if name == names::PROCESS_CPU_USAGE.name {
        return if total {
            (Some(Series::ProcCpu), Some(StatKind::ProcCpuTotal))
        } else {
            (None, Some(StatKind::ProcCpuPid))
        };
    } else if name == names::PROCESS_MEMORY_RSS.name {
        return if total {
            (Some(Series::ProcRss), Some(StatKind::ProcRssTotal))
        } else {
            (None, Some(StatKind::ProcRssPid))
        };
    } else if total {
        let s = if name == names::PROCESS_CPU_TIME.name {
            Series::CpuTime
        } else if name == names::PROCESS_IO_READ.name {
            Series::IoRead
        } else if name == names::PROCESS_IO_WRITE.name {
            Series::IoWrite
        } else if name == names::PROCESS_IO_BLOCK_READ.name {
            Series::BlockRead
        } else if name == names::PROCESS_NET_SENT.name {
            Series::NetSent
        } else if name == names::PROCESS_NET_RECV.name {
            Series::NetRecv
        } else {
            return (None, None);
        };
        return (Some(s), None);
    }
    (None, None)
}

fn label_text(l: &RawLabels<'_>) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        (labels::PID, &l.pid),
        (labels::PROCESS_NAME, &l.process_name),
        (labels::CPU, &l.cpu),
        (labels::INTERFACE, &l.interface),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

impl Aggregate {
    fn gap(&mut self, g: usize) -> &mut Gap {
        if self.gaps.is_empty() {
            self.base = g;
        }
        if g < self.base {
            let mut front = vec![Gap::default(); self.base - g];
            front.append(&mut self.gaps);
            self.gaps = front;
            self.base = g;
        }
        let i = g - self.base;
        if i >= self.gaps.len() {
            self.gaps.resize(i + 1, Gap::default());
        }
        &mut self.gaps[i]
    }

    /// Adds another aggregate (a later or earlier chunk).
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
        for (i, g) in o.gaps.iter().enumerate() {
            self.gap(o.base + i).merge(g);
        }
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

/// Reads one chunk of a resources file.
pub fn read_chunk(chunk: &Chunk, plan: &Plan) -> Result<Aggregate, AnalyzeError> {
    let mut agg = Aggregate {
        stats: vec![[Stat::default(); N_STATS]; plan.windows.len()],
        charts: vec![None; if plan.charts { plan.windows.len() } else { 0 }],
        ..Aggregate::default()
    };
    let mut lines = LineStats::default();
    lines.lines = parse::for_each_line_in_chunk(chunk, |no, line| {
        if parse::is_blank(line) {
            return;
        }
        let s: RawSample<'_> = match serde_json::from_slice(line) {
            Ok(s) => s,
            Err(e) => return lines.bad(no, json_reason(&e)),
        };
        lines.records += 1;
        let t = s.timestamp.0;
        if t < plan.since || t >= plan.until || !s.value.is_finite() {
            return;
        }
        agg.samples += 1;
        let (series, stat) = route(&s.name, &s.labels);
        if let Some(series) = series {
            let p = Pt { t, v: s.value };
            let g = plan.probes.partition_point(|&q| q < t);
            agg.gap(g).add(series as usize, p);
            if plan.charts {
                for (w, &(a, b)) in plan.windows.iter().enumerate().skip(1) {
                    if t >= a && t <= b {
                        agg.charts[w]
                            .get_or_insert_with(|| Box::new(Buckets::new(a, b)))
                            .add(series, p);
                    }
                }
            }
        }
        if let Some(stat) = stat {
            for (w, &(a, b)) in plan.windows.iter().enumerate() {
                if t >= a && t <= b {
                    agg.stats[w][stat as usize].add(s.value);
                }
            }
        }
        if agg.timeline.len() < plan.timeline_limit
            || agg.timeline.peek().is_some_and(|top| t < top.t)
        {
            push_bounded(
                &mut agg.timeline,
                TimelineSample {
                    t,
                    name: s.name.into_owned(),
                    labels: label_text(&s.labels),
                    value: s.value,
                },
                plan.timeline_limit,
            );
        }
    })?;
    agg.lines = lines;
    Ok(agg)
}

/// No gap holds a sample of the series on that side.
const NO_GAP: u32 = u32::MAX;

/// Values of the series at the probe times, from the merged gaps.
#[derive(Debug, Clone)]
pub struct Lookup {
    probes: Vec<i64>,
    /// The merged gaps (from the first gap any sample fell into).
    gaps: Vec<Gap>,
    /// Per probe and series, the gap (index into `gaps`) holding the latest sample at or
    /// before the probe.
    before: Vec<[u32; N_SERIES]>,
    /// Per probe and series, the gap holding the earliest sample after the probe.
    after: Vec<[u32; N_SERIES]>,
}

impl Lookup {
    /// Prefix/suffix scans over the merged gaps, which it takes from `agg`.
    pub fn new(probes: Vec<i64>, agg: &mut Aggregate) -> Self {
        let n = probes.len();
        let base = agg.base;
        let gaps = std::mem::take(&mut agg.gaps);
        let local = |g: usize| g.checked_sub(base).filter(|i| *i < gaps.len());
        let mut before = vec![[NO_GAP; N_SERIES]; n];
        let mut cur = [NO_GAP; N_SERIES];
        for (j, slot) in before.iter_mut().enumerate() {
            if let Some(i) = local(j) {
                for (c, l) in cur.iter_mut().zip(gaps[i].last) {
                    if l.get().is_some() {
                        *c = i as u32;
                    }
                }
            }
            *slot = cur;
        }
        let mut after = vec![[NO_GAP; N_SERIES]; n];
        let mut cur = [NO_GAP; N_SERIES];
        for j in (0..n).rev() {
            if let Some(i) = local(j + 1) {
                for (c, f) in cur.iter_mut().zip(gaps[i].first) {
                    if f.get().is_some() {
                        *c = i as u32;
                    }
                }
            }
            after[j] = cur;
        }
        Self {
            probes,
            gaps,
            before,
            after,
        }
    }

    /// The latest sample at or before, and the earliest after, probe `t`.
    fn around(&self, series: Series, t: i64) -> Option<(Option<Pt>, Option<Pt>)> {
        let j = self.probes.binary_search(&t).ok()?;
        let s = series as usize;
        let pick = |i: u32, first: bool| {
            let g = self.gaps.get(i as usize)?;
            if first { g.first[s] } else { g.last[s] }.get()
        };
        Some((pick(self.before[j][s], false), pick(self.after[j][s], true)))
    }

    /// The sample of a gauge series nearest to probe time `t`.
    pub fn nearest(&self, series: Series, t: i64) -> Option<Pt> {
        match self.around(series, t)? {
            (Some(b), Some(a)) => Some(if t - b.t <= a.t - t { b } else { a }),
            (b, a) => b.or(a),
        }
    }

    /// A counter's value at probe time `t`, interpolated linearly between the samples around
    /// it; `None` unless samples exist on both sides (or exactly at `t`).
    pub fn interpolate(&self, series: Series, t: i64) -> Option<f64> {
        let (b, a) = self.around(series, t)?;
        let b = b?;
        if b.t == t {
            return Some(b.v);
        }
        let a = a?;
        let span = (a.t - b.t) as f64;
        Some(b.v + (a.v - b.v) * ((t - b.t) as f64 / span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample(t: i64, name: &str, v: f64) -> String {
        format!(
            r#"{{"timestamp":"{}","name":"{name}","value":{v},"unit":"","labels":{{"pid":"total","source":"procfs"}}}}"#,
            Timestamp(t)
        )
    }

    #[test]
    fn interpolates_a_counter_between_samples_from_two_chunks() {
        let s = 1_000_000_000i64;
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for i in 0..10 {
            // cpu time grows by 0.5 s per second
            writeln!(
                f,
                "{}",
                sample(i * s, names::PROCESS_CPU_TIME.name, 0.5 * i as f64)
            )
            .expect("w");
        }
        writeln!(f, "not json").expect("w");
        f.flush().expect("flush");
        let plan = Plan {
            probes: vec![2 * s + s / 2, 7 * s],
            windows: vec![(0, i64::MAX)],
            since: i64::MIN,
            until: i64::MAX,
            timeline_limit: 3,
            charts: false,
        };
        let len = f.as_file().metadata().expect("meta").len();
        let half = len / 2;
        let c1 = Chunk {
            path: f.path().into(),
            index: 0,
            start: 0,
            end: half,
        };
        let c2 = Chunk {
            path: f.path().into(),
            index: 1,
            start: half,
            end: u64::MAX,
        };
        let mut a = read_chunk(&c1, &plan).expect("c1");
        let b = read_chunk(&c2, &plan).expect("c2");
        assert_eq!(b.lines.bad, 1);
        a.merge(b, 3);
        assert_eq!(a.samples, 10);
        assert_eq!(a.timeline.len(), 3);
        let look = Lookup::new(plan.probes.clone(), &mut a);
        let start = look
            .interpolate(Series::CpuTime, 2 * s + s / 2)
            .expect("start");
        let end = look.interpolate(Series::CpuTime, 7 * s).expect("end");
        assert!((start - 1.25).abs() < 1e-9, "{start}");
        assert!((end - 3.5).abs() < 1e-9, "{end}");
        assert_eq!(look.interpolate(Series::IoRead, 7 * s), None);
    }

    #[test]
    fn probes_before_the_first_sample_see_only_what_follows() {
        let s = 1_000_000_000i64;
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for i in 0..5 {
            writeln!(
                f,
                "{}",
                sample(i * s, names::PROCESS_IO_READ.name, 100.0 * i as f64)
            )
            .expect("w");
        }
        f.flush().expect("flush");
        let plan = Plan {
            probes: vec![-5 * s, s / 2, 10 * s],
            windows: vec![(i64::MIN, i64::MAX)],
            since: i64::MIN,
            until: i64::MAX,
            timeline_limit: 1,
            charts: false,
        };
        let chunk = Chunk {
            path: f.path().into(),
            index: 0,
            start: 0,
            end: u64::MAX,
        };
        let mut a = read_chunk(&chunk, &plan).expect("read");
        assert_eq!(a.base, 1, "no sample precedes the first probe");
        let look = Lookup::new(plan.probes.clone(), &mut a);
        assert_eq!(look.interpolate(Series::IoRead, -5 * s), None);
        assert_eq!(look.nearest(Series::IoRead, -5 * s).map(|p| p.t), Some(0));
        assert_eq!(look.interpolate(Series::IoRead, s / 2), Some(50.0));
        assert_eq!(look.interpolate(Series::IoRead, 10 * s), None);
        assert_eq!(
            look.nearest(Series::IoRead, 10 * s).map(|p| p.v),
            Some(400.0)
        );
    }
}
