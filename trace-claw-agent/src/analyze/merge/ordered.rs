//! The cross-source merge as a stream in time order: each source's actions come as runs sorted
//! by start time (one per file or chunk), merged k-way; the sources are then taken in order of
//! trust as a cascade of stages, each deduplicating its source's actions against the stream of
//! the more trusted ones through a window of recent actions. A window holds no more than the
//! actions that a later action of its source could still match: those ending less than
//! [`TOLERANCE_NS`] before that action starts leave it, in start order. Its width is the longest
//! open action plus twice the tolerance, whatever the number of actions.
//!
//! The result is the batch merge's, taken source by source: an action is compared only with
//! the kept actions of more trusted sources, the nearest start wins (the later one on a tie),
//! and the output is sorted by start time, then source, then reading order. Within one source
//! the actions are matched in start order (reading order on a tie).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use trace_claw_common::time::Timestamp;

use super::actions::{absorb, can_merge, MergeStats, TOLERANCE_NS};
use crate::analyze::source::action::{Action, Source};

/// An action and its place in reading order (part, then position in the part).
#[derive(Debug)]
struct Item {
    action: Action,
    seq: u64,
}

impl Item {
    /// The output order: start time, source, reading order.
    fn key(&self) -> (Timestamp, Source, u64) {
        (self.action.start(), self.action.source, self.seq)
    }

    fn duration_ns(&self) -> i64 {
        self.action.end().0 - self.action.start().0
    }
}

/// One source's runs (each sorted by start time, then reading order), merged k-way.
#[derive(Debug, Default)]
struct Runs {
    runs: Vec<std::vec::IntoIter<Item>>,
    /// The head of each run that has one: `((start, seq), run)`, earliest first.
    heads: BinaryHeap<Reverse<((Timestamp, u64), usize)>>,
}

impl Runs {
    fn new(runs: Vec<Vec<Item>>) -> Self {
        let mut r = Self {
            runs: runs.into_iter().map(Vec::into_iter).collect(),
            heads: BinaryHeap::new(),
        };
        for i in 0..r.runs.len() {
            r.push_head(i);
        }
        r
    }

    fn push_head(&mut self, run: usize) {
        match self.runs[run].as_slice().first() {
            Some(it) => self.heads.push(Reverse(((it.action.start(), it.seq), run))),
            // An emptied run gives its buffer back at once.
            None => self.runs[run] = Vec::new().into_iter(),
        }
    }

    /// The start of the next action.
    fn peek_start(&self) -> Option<Timestamp> {
        self.heads.peek().map(|Reverse(((t, _), _))| *t)
    }

    fn next(&mut self) -> Option<Item> {
        let Reverse((_, run)) = self.heads.pop()?;
        let item = self.runs[run].next();
        self.push_head(run);
        item
    }
}

/// One less trusted source deduplicated against the stream of the more trusted ones.
#[derive(Debug)]
struct Stage {
    source: Source,
    level: Runs,
    /// Actions of the upstream and this source's survivors, sorted by [`Item::key`].
    window: VecDeque<Item>,
    /// The next upstream action, read but starting after everything matched so far.
    ahead: Option<Item>,
    /// The longest upstream action seen.
    max_ns: i64,
}

impl Stage {
    /// Whether the window's first action can leave it: no later action of this source can
    /// overlap it.
    fn front_done(&self) -> bool {
        self.window.front().is_some_and(|f| {
            self.level
                .peek_start()
                .is_none_or(|next| f.action.end().0 < next.0 - TOLERANCE_NS)
        })
    }

    /// The upstream action in the window that `a` merges into: among those overlapping it
    /// within the tolerance, the nearest start; on a tie the latest in output order.
    fn best_match(&self, a: &Action) -> Option<usize> {
        let (s, e) = (a.start().0 - TOLERANCE_NS, a.end().0 + TOLERANCE_NS);
        let hi = self.window.partition_point(|k| k.action.start().0 <= e);
        let mut best: Option<(i64, usize)> = None;
        for i in (0..hi).rev() {
            let k = &self.window[i].action;
            // Those starting before `s - max_ns` end before `s`.
            if k.start().0 < s - self.max_ns {
                break;
            }
            if k.source == self.source || k.end().0 < s || !can_merge(k, a) {
                continue;
            }
            let distance = (k.start().0 - a.start().0).abs();
            if best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, i));
            }
        }
        best.map(|(_, i)| i)
    }
}

/// The merged actions, in start order, as an iterator; [`TimeMerge::stats`] counts the copies
/// dropped so far.
#[derive(Debug)]
pub struct TimeMerge {
    /// The most trusted source's actions.
    first: Runs,
    /// One stage per further source, in order of trust.
    stages: Vec<Stage>,
    stats: MergeStats,
}

impl TimeMerge {
    /// A merge of `parts` (per file or chunk, in reading order; within each, actions in any
    /// order).
    pub fn new(parts: Vec<Vec<Action>>) -> Self {
        let mut by_source: Vec<(Source, Vec<Vec<Item>>)> = Vec::new();
        for (p, part) in parts.into_iter().enumerate() {
            let mut runs: Vec<(Source, Vec<Item>)> = Vec::new();
            for a in &part {
                if runs.iter().all(|(s, _)| *s != a.source) {
                    let n = part.iter().filter(|b| b.source == a.source).count();
                    runs.push((a.source, Vec::with_capacity(n)));
                }
            }
            for (i, action) in part.into_iter().enumerate() {
                let seq = ((p as u64) << 32) | i as u64;
                if let Some((_, run)) = runs.iter_mut().find(|(s, _)| *s == action.source) {
                    run.push(Item { action, seq });
                }
            }
            for (source, mut run) in runs {
                // Already sorted in most files: the sort only checks.
                run.sort_by_key(|it| (it.action.start(), it.seq));
                match by_source.iter_mut().find(|(s, _)| *s == source) {
                    Some((_, all)) => all.push(run),
                    None => by_source.push((source, vec![run])),
                }
            }
        }
        by_source.sort_by_key(|(s, _)| *s);
        let mut levels = by_source.into_iter();
        let first = levels
            .next()
            .map(|(_, runs)| Runs::new(runs))
            .unwrap_or_default();
        let stages = levels
            .map(|(source, runs)| Stage {
                source,
                level: Runs::new(runs),
                window: VecDeque::new(),
                ahead: None,
                max_ns: 0,
            })
            .collect();
        Self {
            first,
            stages,
            stats: MergeStats::default(),
        }
    }

    /// The copies dropped so far (all of them once the iterator is done).
    pub fn stats(&self) -> &MergeStats {
        &self.stats
    }

    /// The next action out of stage `depth` (0: the most trusted source alone; `d`: after
    /// `stages[d - 1]`).
    fn pull(&mut self, depth: usize) -> Option<Item> {
        let Some(j) = depth.checked_sub(1) else {
            return self.first.next();
        };
        loop {
            if self.stages[j].front_done() {
                return self.stages[j].window.pop_front();
            }
            match self.stages[j].level.next() {
                Some(a) => self.place(j, a),
                None => {
                    // This source is done: the window, then the upstream unchanged.
                    let stage = &mut self.stages[j];
                    return match stage.window.pop_front() {
                        Some(it) => Some(it),
                        None => stage.ahead.take().or_else(|| self.pull(j)),
                    };
                }
            }
        }
    }

    /// Matches `a`, of stage `j`'s source, against the upstream actions that can overlap it
    /// (read into the window first): merged into the best one, or kept.
    fn place(&mut self, j: usize, a: Item) {
        let reach = a.action.end().0 + TOLERANCE_NS;
        loop {
            let next = match self.stages[j].ahead.take() {
                Some(it) => it,
                None => match self.pull(j) {
                    Some(it) => it,
                    None => break,
                },
            };
            let stage = &mut self.stages[j];
            if next.action.start().0 > reach {
                stage.ahead = Some(next);
                break;
            }
            stage.max_ns = stage.max_ns.max(next.duration_ns());
            // Upstream actions come in order, after every survivor kept so far.
            stage.window.push_back(next);
        }
        let stage = &mut self.stages[j];
        match stage.best_match(&a.action) {
            Some(i) => {
                let w = &mut stage.window[i].action;
                *self
                    .stats
                    .duplicates
                    .entry((stage.source, w.source))
                    .or_default() += 1;
                absorb(w, a.action);
            }
            None => {
                let key = a.key();
                let at = stage.window.partition_point(|k| k.key() <= key);
                stage.window.insert(at, a);
            }
        }
    }
}

impl Iterator for TimeMerge {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.pull(self.stages.len()).map(|it| it.action)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use trace_claw_common::event::ActionEvent;

    use super::*;

    const MS: i64 = 1_000_000;

    /// The batch rule, by brute force: each source in order of trust, its actions in start
    /// order, each compared with every kept action of the more trusted sources.
    fn batch(parts: Vec<Vec<Action>>) -> (Vec<Action>, MergeStats) {
        let mut items: Vec<Item> = Vec::new();
        for (p, part) in parts.into_iter().enumerate() {
            for (i, action) in part.into_iter().enumerate() {
                items.push(Item {
                    action,
                    seq: ((p as u64) << 32) | i as u64,
                });
            }
        }
        let mut sources: Vec<Source> = items.iter().map(|it| it.action.source).collect();
        sources.sort();
        sources.dedup();
        let mut kept: Vec<Item> = Vec::new();
        let mut stats = MergeStats::default();
        for source in sources {
            let (mut level, rest): (Vec<Item>, Vec<Item>) =
                items.into_iter().partition(|it| it.action.source == source);
            items = rest;
            level.sort_by_key(|it| (it.action.start(), it.seq));
            let mut survivors = Vec::new();
            for a in level {
                let (s, e) = (
                    a.action.start().0 - TOLERANCE_NS,
                    a.action.end().0 + TOLERANCE_NS,
                );
                let best = kept
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| {
                        let k = &k.action;
                        k.start().0 <= e && k.end().0 >= s && can_merge(k, &a.action)
                    })
                    .map(|(i, k)| ((k.action.start().0 - a.action.start().0).abs(), i))
                    // nearest, then the last in output order
                    .min_by_key(|&(d, i)| (d, Reverse(i)));
                match best {
                    Some((_, i)) => {
                        let w = &mut kept[i].action;
                        *stats.duplicates.entry((source, w.source)).or_default() += 1;
                        absorb(w, a.action);
                    }
                    None => survivors.push(a),
                }
            }
            kept.extend(survivors);
            kept.sort_by_key(Item::key);
        }
        (kept.into_iter().map(|it| it.action).collect(), stats)
    }

    /// A small deterministic generator (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.below(from.len() as u64) as usize]
        }
    }

    /// Actions of four sources in a few parts, crowded into a minute so that copies, near
    /// misses, ties, long actions and conflicting sessions and tool names all occur.
    fn crowd(seed: u64) -> Vec<Vec<Action>> {
        let mut rng = Rng(seed);
        let sources = [
            Source::Transcript,
            Source::EventLog,
            Source::OpenclawLog,
            Source::OtlpLog,
        ];
        let file: Arc<str> = Arc::from("f");
        let mut parts = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let mut part = Vec::new();
            for line in 0..rng.below(60) {
                let start = rng.below(60_000) as i64 / 100 * 100;
                let mut e = ActionEvent::new(rng.pick(&["llm", "tool"]), Timestamp(start * MS));
                e.duration_ms = match rng.below(10) {
                    0 => 0.0,
                    1 => 20_000.0,
                    _ => rng.below(3_000) as f64,
                };
                e.session_id = Some(rng.pick(&["", "a", "b"]))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                e.tool_name = Some(rng.pick(&["", "x", "y"]))
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                e.model = (rng.below(2) == 0).then(|| "m".to_owned());
                let source = sources[rng.below(4) as usize];
                part.push(Action::new(e, source, &file, line));
            }
            parts.push(part);
        }
        parts
    }

    /// What tells two merged actions apart.
    fn shown(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| {
                format!(
                    "{:?} {:?} {}:{} {:?}",
                    a.source,
                    a.event,
                    a.file,
                    a.line,
                    a.also_seen_in.iter().collect::<Vec<_>>()
                )
            })
            .collect()
    }

    #[test]
    fn the_stream_keeps_what_the_batch_rule_keeps_in_the_same_order() {
        let mut dropped = 0;
        for seed in 0..300 {
            let parts = crowd(seed);
            let (want, want_stats) = batch(parts.clone());
            let mut merge = TimeMerge::new(parts);
            let got: Vec<Action> = merge.by_ref().collect();
            assert_eq!(shown(&got), shown(&want), "seed {seed}");
            assert_eq!(merge.stats(), &want_stats, "seed {seed}");
            dropped += want_stats.duplicates.values().sum::<u64>();
        }
        assert!(dropped > 1_000, "the crowd has copies to drop: {dropped}");
    }

    #[test]
    fn the_window_holds_only_the_actions_still_open() {
        // An hour of calls, one a second, each seen by the event log and the file log.
        let file: Arc<str> = Arc::from("f");
        let seen_by = |source| -> Vec<Action> {
            (0..3_600)
                .map(|i| {
                    let mut e = ActionEvent::new("llm", Timestamp(i * 1_000 * MS));
                    e.duration_ms = 800.0;
                    Action::new(e, source, &file, i as u64)
                })
                .collect()
        };
        let mut merge = TimeMerge::new(vec![
            seen_by(Source::EventLog),
            seen_by(Source::OpenclawLog),
        ]);
        let mut widest = 0;
        let mut kept = 0;
        while merge.next().is_some() {
            kept += 1;
            widest = widest.max(merge.stages[0].window.len());
        }
        assert_eq!(kept, 3_600);
        // 0.8 s calls 1 s apart, 0.5 s tolerance: the open call and its neighbours
        assert!(widest <= 3, "window of {widest} actions");
    }
}
