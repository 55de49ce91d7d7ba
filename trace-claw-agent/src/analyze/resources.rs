//! Resource samples (`resources-*.jsonl`), streamed chunk by chunk into fixed-size aggregates:
//! averages and peaks per time window (one per session plus the whole run), the samples
//! bracketing each probe time (action starts and ends) for interpolation and nearest snapshots,
//! and the earliest samples for the full timeline. Nothing grows with the number of samples.

use std::borrow::Cow;
use std::collections::BinaryHeap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use trace_claw_common::names::{self, labels};
use trace_claw_common::time::Timestamp;

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

/// The earliest and latest sample of each series between two consecutive probe times.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gap {
    /// Earliest sample per series.
    pub first: [Option<Pt>; N_SERIES],
    /// Latest sample per series.
    pub last: [Option<Pt>; N_SERIES],
}

impl Gap {
    fn add(&mut self, s: usize, p: Pt) {
        if self.first[s].is_none_or(|f| p.t < f.t) {
            self.first[s] = Some(p);
        }
        if self.last[s].is_none_or(|l| p.t >= l.t) {
            self.last[s] = Some(p);
        }
    }

    fn merge(&mut self, o: &Gap) {
        for s in 0..N_SERIES {
            if let Some(p) = o.first[s] {
                self.add(s, p);
            }
            if let Some(p) = o.last[s] {
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
    /// Line counts.
    pub lines: LineStats,
}

struct Time(Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds/ms/ns")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Time, E> {
                parse::parse_time(s)
                    .map(Time)
                    .ok_or_else(|| E::custom(format!("invalid time '{s}'")))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Time, E> {
                Timestamp::from_unix_number(n)
                    .map(Time)
                    .ok_or_else(|| E::custom("invalid time"))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Time, E> {
                self.visit_f64(n as f64)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Time, E> {
                self.visit_f64(n as f64)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct RawSample<'a> {
    timestamp: Time,
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
    pub fn merge(&mut self, o: Aggregate, limit: usize) {
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
        let t = s.timestamp.0 .0;
        if t < plan.since || t >= plan.until || !s.value.is_finite() {
            return;
        }
        agg.samples += 1;
        let (series, stat) = route(&s.name, &s.labels);
        if let Some(series) = series {
            let g = plan.probes.partition_point(|&q| q < t);
            agg.gap(g).add(series as usize, Pt { t, v: s.value });
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

/// Values of the series at the probe times, from the merged gaps.
#[derive(Debug, Clone)]
pub struct Lookup {
    probes: Vec<i64>,
    /// Per probe, the latest sample at or before it.
    before: Vec<[Option<Pt>; N_SERIES]>,
    /// Per probe, the earliest sample after it.
    after: Vec<[Option<Pt>; N_SERIES]>,
}

impl Lookup {
    /// Prefix/suffix scans over the merged gaps.
    pub fn new(probes: Vec<i64>, agg: &Aggregate) -> Self {
        let n = probes.len();
        let gap =
            |g: usize| -> Option<&Gap> { g.checked_sub(agg.base).and_then(|i| agg.gaps.get(i)) };
        let mut before = vec![[None; N_SERIES]; n];
        let mut cur = [None; N_SERIES];
        for (j, slot) in before.iter_mut().enumerate() {
            if let Some(g) = gap(j) {
                for (c, l) in cur.iter_mut().zip(g.last) {
                    if l.is_some() {
                        *c = l;
                    }
                }
            }
            *slot = cur;
        }
        let mut after = vec![[None; N_SERIES]; n];
        let mut cur = [None; N_SERIES];
        for j in (0..n).rev() {
            if let Some(g) = gap(j + 1) {
                for (c, f) in cur.iter_mut().zip(g.first) {
                    if f.is_some() {
                        *c = f;
                    }
                }
            }
            after[j] = cur;
        }
        Self {
            probes,
            before,
            after,
        }
    }

    fn index(&self, t: i64) -> Option<usize> {
        self.probes.binary_search(&t).ok()
    }

    /// The sample of a gauge series nearest to probe time `t`.
    pub fn nearest(&self, series: Series, t: i64) -> Option<Pt> {
        let j = self.index(t)?;
        let s = series as usize;
        match (self.before[j][s], self.after[j][s]) {
            (Some(b), Some(a)) => Some(if t - b.t <= a.t - t { b } else { a }),
            (b, a) => b.or(a),
        }
    }

    /// A counter's value at probe time `t`, interpolated linearly between the samples around
    /// it; `None` unless samples exist on both sides (or exactly at `t`).
    pub fn interpolate(&self, series: Series, t: i64) -> Option<f64> {
        let j = self.index(t)?;
        let s = series as usize;
        let b = self.before[j][s]?;
        if b.t == t {
            return Some(b.v);
        }
        let a = self.after[j][s]?;
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
        let look = Lookup::new(plan.probes.clone(), &a);
        let start = look
            .interpolate(Series::CpuTime, 2 * s + s / 2)
            .expect("start");
        let end = look.interpolate(Series::CpuTime, 7 * s).expect("end");
        assert!((start - 1.25).abs() < 1e-9, "{start}");
        assert!((end - 3.5).abs() < 1e-9, "{end}");
        assert_eq!(look.interpolate(Series::IoRead, 7 * s), None);
    }
}
