//! Down-sampled resource series for the HTML report: each session's window is cut into
//! [`BUCKETS`] equal buckets; gauges keep their mean per bucket, counters their latest sample
//! (rates come from consecutive buckets). Fixed size whatever the number of samples.

use super::series::{Pt, Series, N_SERIES};

/// Buckets per session window.
pub const BUCKETS: usize = 240;

/// One bucket of one series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cell {
    /// Samples in the bucket.
    pub count: u32,
    /// Their sum.
    pub sum: f64,
    /// The latest sample.
    pub last: Option<Pt>,
}

/// The buckets of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Window start (Unix ns).
    pub start: i64,
    /// Window end (Unix ns).
    pub end: i64,
    /// `BUCKETS` cells per series.
    pub cells: Vec<[Cell; N_SERIES]>,
}

impl Buckets {
    /// Empty buckets over `[start, end]`.
    pub fn new(start: i64, end: i64) -> Self {
        Self {
            start,
            end: end.max(start + 1),
            cells: vec![[Cell::default(); N_SERIES]; BUCKETS],
        }
    }

    fn index(&self, t: i64) -> usize {
        let span = i128::from(self.end - self.start) + 1;
        let i = i128::from(t - self.start) * BUCKETS as i128 / span;
        i.clamp(0, BUCKETS as i128 - 1) as usize
    }

    /// Adds a sample.
    pub fn add(&mut self, series: Series, p: Pt) {
        let i = self.index(p.t);
        let c = &mut self.cells[i][series as usize];
        c.count += 1;
        c.sum += p.v;
        if c.last.is_none_or(|l| p.t >= l.t) {
            c.last = Some(p);
        }
    }

    /// Adds the buckets of another chunk over the same window.
    pub fn merge(&mut self, o: &Buckets) {
        for (mine, theirs) in self.cells.iter_mut().zip(&o.cells) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                m.count += t.count;
                m.sum += t.sum;
                if let Some(p) = t.last {
                    if m.last.is_none_or(|l| p.t >= l.t) {
                        m.last = Some(p);
                    }
                }
            }
        }
    }

    /// Mean per non-empty bucket, at the bucket's centre.
    pub fn gauge(&self, series: Series) -> Vec<(i64, f64)> {
        let width = (self.end - self.start) as f64 / BUCKETS as f64;
        self.cells
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c[series as usize];
                (c.count > 0).then(|| {
                    (
                        self.start + (width * (i as f64 + 0.5)) as i64,
                        c.sum / f64::from(c.count),
                    )
                })
            })
            .collect()
    }

    /// Per-second rate of a counter between the latest samples of consecutive non-empty
    /// buckets (decreases count as 0).
    pub fn rate(&self, series: Series) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut prev: Option<Pt> = None;
        for c in &self.cells {
            let Some(p) = c[series as usize].last else {
                continue;
            };
            if let Some(q) = prev {
                if p.t > q.t {
                    out.push((p.t, ((p.v - q.v) / ((p.t - q.t) as f64 / 1e9)).max(0.0)));
                }
            }
            prev = Some(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_consecutive_buckets() {
        let s = 1_000_000_000i64;
        let mut b = Buckets::new(0, 240 * s);
        for i in 0..=240 {
            b.add(
                Series::IoRead,
                Pt {
                    t: i * s,
                    v: 100.0 * i as f64,
                },
            );
            b.add(Series::ProcCpu, Pt { t: i * s, v: 50.0 });
        }
        let r = b.rate(Series::IoRead);
        assert!(!r.is_empty());
        assert!(r.iter().all(|&(_, v)| (v - 100.0).abs() < 1e-9), "{r:?}");
        assert!(b.gauge(Series::ProcCpu).iter().all(|&(_, v)| v == 50.0));
    }
}
