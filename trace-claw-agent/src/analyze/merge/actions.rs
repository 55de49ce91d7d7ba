//! One LLM or tool call is often seen several times: in the transcript, as an OTLP span, in the
//! file log and again as an OTLP log record. The merger keeps one action per call: sources are
//! taken in order of trust ([`Source`]); an action of a less trusted source that overlaps
//! (within [`TOLERANCE_NS`]) an already kept action of the same type and a compatible session is
//! dropped, and the kept one records that it was also seen there (and borrows fields it lacks).
//! Actions of the same source never merge with each other.

use std::collections::{BTreeMap, HashMap, HashSet};

use trace_claw_common::time::Timestamp;

use super::ordered::TimeMerge;
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

/// Whether `k` and `a` can be one call: the same type, no two different sessions, no two
/// different tool names.
pub(super) fn can_merge(k: &Action, a: &Action) -> bool {
    let differ = |x: &Option<_>, y: &Option<_>| matches!((x, y), (Some(x), Some(y)) if x != y);
    k.event.event_type == a.event.event_type
        && !differ(&k.event.session_id, &a.event.session_id)
        && !differ(&k.event.tool_name, &a.event.tool_name)
}

/// Fills session ids of log actions from `run id -> session id`, then deduplicates in time
/// order ([`TimeMerge`]). The actions come in parts (per file or chunk, in reading order); a
/// part is released once the merge has passed its last action.
pub fn merge(
    mut parts: Vec<Vec<Action>>,
    run_sessions: &HashMap<String, String>,
) -> (Vec<Action>, MergeStats) {
    let mut total = 0;
    for a in parts.iter_mut().flatten() {
        if a.event.session_id.is_none() {
            if let Some(s) = a.run_id.as_deref().and_then(|r| run_sessions.get(r)) {
                a.event.session_id = Some(intern(s));
            }
        }
        total += 1;
    }
    let mut merged = TimeMerge::new(parts);
    // Room for every action: what copies leave unused is given back below, without a copy.
    let mut kept = Vec::with_capacity(total);
    kept.extend(merged.by_ref());
    kept.shrink_to_fit();
    let stats = merged.stats().clone();
    (kept, stats)
}

/// Merges `a` into the kept copy `w` of the same call: `w` records where else it was seen and
/// takes the fields it lacks.
pub(super) fn absorb(w: &mut Action, a: Action) {
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
