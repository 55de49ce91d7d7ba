//! The samples next to the probe times (the actions' starts and ends): for each series and each
//! gap between two consecutive probes that holds any of its samples, the earliest and the latest.
//! Gaps without samples take no room, and a series that a trace lacks takes none at all.
//! Resource files are time-ordered, so a chunk appends and chunks concatenate; samples out of
//! order are inserted in place and give the same result.

use super::series::{Pt, N_SERIES};

/// The earliest and latest sample of one series in one gap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// The gap: gap `j` holds the samples in `(probes[j-1], probes[j]]`.
    pub gap: usize,
    /// Its earliest sample (the first added, among equal times).
    pub first: Pt,
    /// Its latest sample (the last added, among equal times).
    pub last: Pt,
}

impl Edge {
    fn add(&mut self, p: Pt) {
        if p.t < self.first.t {
            self.first = p;
        }
        if p.t >= self.last.t {
            self.last = p;
        }
    }

    /// Adds a later-read edge of the same gap.
    fn absorb(&mut self, o: &Edge) {
        self.add(o.first);
        self.add(o.last);
    }
}

/// Per series, its [`Edge`]s by gap.
#[derive(Debug, Clone, Default)]
pub struct Edges(pub [Vec<Edge>; N_SERIES]);

impl Edges {
    /// Adds sample `p` of series `s` in gap `gap`.
    pub fn add(&mut self, s: usize, gap: usize, p: Pt) {
        let v = &mut self.0[s];
        match v.last_mut() {
            Some(e) if e.gap == gap => e.add(p),
            Some(e) if e.gap > gap => {
                let i = v.partition_point(|e| e.gap < gap);
                match v.get_mut(i) {
                    Some(e) if e.gap == gap => e.add(p),
                    _ => v.insert(
                        i,
                        Edge {
                            gap,
                            first: p,
                            last: p,
                        },
                    ),
                }
            }
            _ => v.push(Edge {
                gap,
                first: p,
                last: p,
            }),
        }
    }

    /// Adds the edges of later-read samples (a later chunk, or the same file's next part).
    pub fn merge(&mut self, o: Edges) {
        for (mine, theirs) in self.0.iter_mut().zip(o.0) {
            match (mine.last(), theirs.first()) {
                (None, _) => *mine = theirs,
                (Some(a), Some(b)) if a.gap < b.gap => mine.extend(theirs),
                // The usual seam between consecutive chunks: one gap spans it.
                (Some(a), Some(b)) if a.gap == b.gap => {
                    let mut theirs = theirs.into_iter();
                    if let (Some(last), Some(first)) = (mine.last_mut(), theirs.next()) {
                        last.absorb(&first);
                    }
                    mine.extend(theirs);
                }
                _ => *mine = merge_sorted(std::mem::take(mine), theirs),
            }
        }
    }

    /// The latest sample of series `s` at or before probe `j`, and its earliest after it.
    pub fn around(&self, s: usize, j: usize) -> (Option<Pt>, Option<Pt>) {
        let v = &self.0[s];
        let i = v.partition_point(|e| e.gap <= j);
        (
            i.checked_sub(1).map(|k| v[k].last),
            v.get(i).map(|e| e.first),
        )
    }
}

/// Two gap-sorted edge lists as one; `b`'s samples count as read after `a`'s.
fn merge_sorted(a: Vec<Edge>, b: Vec<Edge>) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let from_a = match (a.peek(), b.peek()) {
            (None, None) => return out,
            (Some(x), Some(y)) if x.gap == y.gap => {
                let mut x = *x;
                x.absorb(y);
                out.push(x);
                a.next();
                b.next();
                continue;
            }
            (Some(x), Some(y)) => x.gap < y.gap,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        out.extend(if from_a { a.next() } else { b.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t: i64, v: f64) -> Pt {
        Pt { t, v }
    }

    #[test]
    fn out_of_order_samples_and_chunks_give_the_in_order_edges() {
        let samples = [
            (1, 10),
            (1, 11),
            (3, 30),
            (3, 31),
            (3, 32),
            (6, 60),
            (8, 80),
        ];
        let gap = |t: i64| (t / 2) as usize;
        let mut in_order = Edges::default();
        for &(t, v) in &samples {
            in_order.add(0, gap(t), pt(t, f64::from(v)));
        }
        let mut shuffled = Edges::default();
        let mut later = Edges::default();
        for &(t, v) in [samples[5], samples[0], samples[2]].iter() {
            shuffled.add(0, gap(t), pt(t, f64::from(v)));
        }
        for &(t, v) in [samples[6], samples[1], samples[3], samples[4]].iter() {
            later.add(0, gap(t), pt(t, f64::from(v)));
        }
        shuffled.merge(later);
        assert_eq!(shuffled.0[0], in_order.0[0]);
        let gap1 = in_order.0[0][1];
        assert_eq!((gap1.first.v, gap1.last.v), (30.0, 32.0));
        assert_eq!(
            in_order.around(0, 2),
            (Some(pt(3, 32.0)), Some(pt(6, 60.0)))
        );
        assert_eq!(in_order.around(1, 2), (None, None));
    }

    #[test]
    fn consecutive_chunks_sharing_a_gap_join_there() {
        let gap = |t: i64| (t / 4) as usize;
        let (mut whole, mut first, mut second) =
            (Edges::default(), Edges::default(), Edges::default());
        for t in 0..12 {
            let p = pt(t, t as f64);
            whole.add(0, gap(t), p);
            // the seam at t = 6 is inside gap 1 (t = 4..7)
            if t < 6 { &mut first } else { &mut second }.add(0, gap(t), p);
        }
        first.merge(second);
        assert_eq!(first.0[0], whole.0[0]);
        assert_eq!(
            (first.0[0][1].first, first.0[0][1].last),
            (pt(4, 4.0), pt(7, 7.0))
        );
    }
}
