//! Resource values at the actions' start and end times ("probes"), from the gaps of the merged
//! [`Aggregate`]'s edges: the nearest gauge sample for snapshots, counters interpolated for
//! costs.

use crate::analyze::source::resources::aggregate::Aggregate;
use crate::analyze::source::resources::edges::Edges;
use crate::analyze::source::resources::series::{Pt, Series};

/// Values of the series at the probe times, from the merged edges.
#[derive(Debug, Clone)]
pub struct Lookup {
    probes: Vec<i64>,
    /// The gauges' probes, when not `probes` (the plan's `snapshot_probes`).
    snapshot_probes: Option<Vec<i64>>,
    /// The samples next to the probes (taken from the merged aggregate).
    edges: Edges,
}

impl Lookup {
    /// A lookup over `probes` (and `snapshot_probes` for the gauges, as the plan had them),
    /// taking the merged edges from `agg`.
    pub fn new(probes: Vec<i64>, snapshot_probes: Option<Vec<i64>>, agg: &mut Aggregate) -> Self {
        Self {
            probes,
            snapshot_probes,
            edges: std::mem::take(&mut agg.edges),
        }
    }

    /// The latest sample at or before, and the earliest after, probe `t`.
    fn around(&self, series: Series, t: i64) -> Option<(Option<Pt>, Option<Pt>)> {
        let probes = match &self.snapshot_probes {
            Some(p) if series.is_gauge() => p,
            _ => &self.probes,
        };
        let j = probes.binary_search(&t).ok()?;
        Some(self.edges.around(series as usize, j))
    }

    /// The sample of a gauge series nearest to probe time `t`.
    pub fn nearest(&self, series: Series, t: i64) -> Option<Pt> {
        match self.around(series, t)? {
            (Some(b), Some(a)) => Some(if t - b.t <= a.t - t { b } else { a }),
            (b, a) => b.or(a),
        }
    }

    /// The counters at probe time `t`, read series by series from one search of the probes;
    /// `None` when `t` is not a probe.
    pub fn counters_at(&self, t: i64) -> Option<CounterProbe<'_>> {
        let j = self.probes.binary_search(&t).ok()?;
        Some(CounterProbe {
            edges: &self.edges,
            j,
            t,
        })
    }
}

/// A counter's value at a probe time and how far apart the samples it came from lie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The value, interpolated linearly between the samples around the probe time.
    pub value: f64,
    /// Nanoseconds between those samples (0 when one falls exactly on the probe time).
    pub spacing_ns: i64,
}

/// One probe time, found once for every counter series ([`Lookup::counters_at`]).
#[derive(Debug, Clone, Copy)]
pub struct CounterProbe<'a> {
    edges: &'a Edges,
    j: usize,
    t: i64,
}

impl CounterProbe<'_> {
    /// The reading of counter `series`; `None` unless samples exist on both sides of the
    /// probe time (or exactly at it).
    pub fn read(&self, series: Series) -> Option<Reading> {
        let (b, a) = self.edges.around(series as usize, self.j);
        let b = b?;
        if b.t == self.t {
            return Some(Reading {
                value: b.v,
                spacing_ns: 0,
            });
        }
        let a = a?;
        let span = a.t - b.t;
        Some(Reading {
            value: b.v + (a.v - b.v) * ((self.t - b.t) as f64 / span as f64),
            spacing_ns: span,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use trace_claw_common::names;
    use trace_claw_common::time::Timestamp;

    use crate::analyze::source::lines::Chunk;
    use crate::analyze::source::resources::aggregate::Plan;
    use crate::analyze::source::resources::read::read_chunk;

    fn sample(t: i64, name: &str, v: f64) -> String {
        format!(
            r#"{{"timestamp":"{}","name":"{name}","value":{v},"unit":"","labels":{{"pid":"total","source":"procfs"}}}}"#,
            Timestamp(t)
        )
    }

    /// Counter `series` at probe time `t`.
    fn interpolate(look: &Lookup, series: Series, t: i64) -> Option<f64> {
        look.counters_at(t)?.read(series).map(|r| r.value)
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
            snapshot_probes: None,
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
        let look = Lookup::new(plan.probes.clone(), None, &mut a);
        let start = interpolate(&look, Series::CpuTime, 2 * s + s / 2).expect("start");
        let end = interpolate(&look, Series::CpuTime, 7 * s).expect("end");
        assert!((start - 1.25).abs() < 1e-9, "{start}");
        assert!((end - 3.5).abs() < 1e-9, "{end}");
        assert_eq!(interpolate(&look, Series::IoRead, 7 * s), None);
    }

    /// The aggregate of one file of sample `lines` (all time, one window) probed at `probes`.
    pub(crate) fn read_samples(lines: &[String], probes: &[i64]) -> Aggregate {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        for l in lines {
            writeln!(f, "{l}").expect("w");
        }
        f.flush().expect("flush");
        let plan = Plan {
            probes: probes.to_vec(),
            snapshot_probes: None,
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
        read_chunk(&chunk, &plan).expect("read")
    }

    #[test]
    fn probes_before_the_first_sample_see_only_what_follows() {
        let s = 1_000_000_000i64;
        let lines: Vec<String> = (0..5)
            .map(|i| sample(i * s, names::PROCESS_IO_READ.name, 100.0 * i as f64))
            .collect();
        let probes = [-5 * s, s / 2, 10 * s];
        let mut a = read_samples(&lines, &probes);
        let gaps: Vec<usize> = a.edges.0[Series::IoRead as usize]
            .iter()
            .map(|e| e.gap)
            .collect();
        assert_eq!(gaps, [1, 2], "no sample precedes the first probe");
        let look = Lookup::new(probes.to_vec(), None, &mut a);
        assert_eq!(interpolate(&look, Series::IoRead, -5 * s), None);
        assert_eq!(look.nearest(Series::IoRead, -5 * s).map(|p| p.t), Some(0));
        assert_eq!(interpolate(&look, Series::IoRead, s / 2), Some(50.0));
        assert_eq!(interpolate(&look, Series::IoRead, 10 * s), None);
        assert_eq!(
            look.nearest(Series::IoRead, 10 * s).map(|p| p.v),
            Some(400.0)
        );
    }
}
