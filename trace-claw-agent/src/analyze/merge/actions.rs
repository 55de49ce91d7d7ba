//! One LLM or tool call is often seen several times: in the transcript, as an OTLP span, in the
//! file log and again as an OTLP log record. The merger keeps one action per call: sources are
//! taken in order of trust ([`Source`]); an action of a less trusted source that overlaps
//! (within [`TOLERANCE_NS`]) an already kept action of the same type and a compatible session is
//! dropped, and the kept one records that it was also seen there (and borrows fields it lacks).
//! Actions of the same source never merge with each other.

use std::collections::{BTreeMap, HashMap, HashSet};

use trace_claw_common::time::Timestamp;

use crate::analyze::source::action::{intern, Action, Source};
use crate::analyze::source::parsed::Note;

/// Slack when matching intervals across sources (clocks and log latency differ by ms).
pub const TOLERANCE_NS: i64 = 500_000_000;

/// How many actions of a source were dropped as copies of an action of another source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// (dropped source, winning source) -> count.
    pub duplicates: BTreeMap<(Source, Source), u64>,
}

fn compatible(a: &Action, b: &Action) -> bool {
    match (&a.event.session_id, &b.event.session_id) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Fills session ids of log actions from `run id -> session id`, then deduplicates. The
/// actions come in parts (per file or chunk, in reading order); each source's actions are
/// taken out of them in turn, and a part is released once it is empty, so the actions are
/// never held twice.
pub fn merge(
    mut parts: Vec<Vec<Action>>,
    run_sessions: &HashMap<String, String>,
) -> (Vec<Action>, MergeStats) {
    let mut counts: BTreeMap<Source, usize> = BTreeMap::new();
    for a in parts.iter_mut().flatten() {
        if a.event.session_id.is_none() {
            if let Some(s) = a.run_id.as_deref().and_then(|r| run_sessions.get(r)) {
                a.event.session_id = Some(intern(s));
            }
        }
        *counts.entry(a.source).or_default() += 1;
    }
    let mut kept: Vec<Action> = Vec::new();
    let mut stats = MergeStats::default();
    let mut max_ns: i64 = 0;
    for (source, count) in counts {
        // Room for every action of the level; pages that no survivor fills are never touched.
        let mut survivors = Vec::with_capacity(count);
        for part in &mut parts {
            let level: Vec<Action> = if part.iter().all(|a| a.source == source) {
                std::mem::take(part)
            } else {
                part.extract_if(.., |a| a.source == source).collect()
            };
            for a in level {
                match best_match(&kept, &a, max_ns) {
                    Some(i) => {
                        let w = &mut kept[i];
                        *stats.duplicates.entry((source, w.source)).or_default() += 1;
                        absorb(w, a);
                    }
                    None => survivors.push(a),
                }
            }
        }
        survivors.shrink_to_fit();
        for a in &survivors {
            max_ns = max_ns.max(a.end().0 - a.start().0);
        }
        if kept.is_empty() {
            kept = survivors;
        } else {
            kept.reserve_exact(survivors.len());
            kept.extend(survivors);
        }
        kept.sort_by_key(|a| (a.start(), a.source));
    }
    (kept, stats)
}

fn best_match(kept: &[Action], a: &Action, max_ns: i64) -> Option<usize> {
    let (s, e) = (a.start().0 - TOLERANCE_NS, a.end().0 + TOLERANCE_NS);
    // Kept actions starting after `e` cannot overlap; those starting before `s - max_ns` end
    // before `s`.
    let hi = kept.partition_point(|k| k.start().0 <= e);
    let mut best: Option<(i64, usize)> = None;
    for i in (0..hi).rev() {
        let k = &kept[i];
        if k.start().0 < s - max_ns {
            break;
        }
        if k.event.event_type != a.event.event_type || !compatible(k, a) || k.end().0 < s {
            continue;
        }
        if a.event.tool_name.is_some()
            && k.event.tool_name.is_some()
            && a.event.tool_name != k.event.tool_name
        {
            continue;
        }
        let distance = (k.start().0 - a.start().0).abs();
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, i));
        }
    }
    best.map(|(_, i)| i)
}

fn absorb(w: &mut Action, a: Action) {
    w.also_seen_in.insert(a.source);
    let e = &mut w.event;
    if e.model.is_none() {
        e.model = a.event.model;
    }
    if e.provider.is_none() {
        e.provider = a.event.provider;
    }
    if e.tool_name.is_none() {
        e.tool_name = a.event.tool_name;
    }
    if w.run_id.is_none() {
        w.run_id = a.run_id;
    }
}

/// Drops notes logged twice (file log and its OTLP copy): same millisecond, same text.
pub fn dedupe_notes(notes: Vec<Note>) -> Vec<Note> {
    let mut seen: HashSet<(i64, String)> = HashSet::new();
    let mut out: Vec<Note> = notes
        .into_iter()
        .filter(|n| seen.insert((n.timestamp.0 / 1_000_000, n.text.clone())))
        .collect();
    out.sort_by_key(|n| n.timestamp);
    out
}

/// Whether `t` lies in `[since, until)`.
pub fn in_window(t: Timestamp, since: i64, until: i64) -> bool {
    t.0 >= since && t.0 < until
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use trace_claw_common::event::ActionEvent;

    fn act(source: Source, start_ms: i64, dur_ms: f64, session: Option<&str>) -> Action {
        let mut e = ActionEvent::new("llm", Timestamp(start_ms * 1_000_000));
        e.duration_ms = dur_ms;
        e.session_id = session.map(str::to_owned);
        Action::new(e, source, &Arc::from("f"), 1)
    }

    #[test]
    fn keeps_the_transcript_copy_and_says_where_else_it_was_seen() {
        let actions = vec![
            act(Source::OtlpSpan, 1_007, 500.0, None),
            act(Source::Transcript, 1_000, 510.0, Some("s")),
            act(Source::OpenclawLog, 990, 530.0, Some("s")),
            act(Source::OpenclawLog, 9_000, 100.0, Some("s")),
            act(Source::OtlpLog, 990, 530.0, None),
        ];
        let (kept, stats) = merge(vec![actions], &HashMap::new());
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].source, Source::Transcript);
        assert_eq!(
            kept[0].also_seen_in.iter().collect::<Vec<_>>(),
            [Source::OtlpSpan, Source::OpenclawLog, Source::OtlpLog]
        );
        assert_eq!(kept[1].source, Source::OpenclawLog);
        assert_eq!(stats.duplicates.values().sum::<u64>(), 3);
    }

    #[test]
    fn does_not_merge_across_sessions_or_within_a_source() {
        let actions = vec![
            act(Source::Transcript, 1_000, 500.0, Some("a")),
            act(Source::Transcript, 1_000, 500.0, Some("a")),
            act(Source::OpenclawLog, 1_000, 500.0, Some("b")),
        ];
        let (kept, _) = merge(vec![actions], &HashMap::new());
        assert_eq!(kept.len(), 3);
    }
}
