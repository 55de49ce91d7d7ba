//! The analysis itself, in the order the data flows: discover and classify files, read
//! everything but resource samples in parallel (pass 1), merge sources and window, stream
//! resource samples into fixed-size aggregates keyed by the actions' times (pass 2), then
//! summarise into the [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use rayon::prelude::*;
use trace_claw_common::event::{ProcessEvent, ProcessEventKind};

use super::error::AnalyzeError;
use super::merge::actions::{self as merge, in_window};
use super::merge::lookup::Lookup;
use super::merge::sessions::{self, SessionSpan, SESSION_SLACK_NS};
use super::options::Options;
use super::source::action::Action;
use super::source::classify::{self, FileKind};
use super::source::passes::{self, FileStats};
use super::source::resources::aggregate::{Aggregate, Plan};
use super::summary::charts::{self, SessionChart, Tick};
use super::summary::metrics;
use super::summary::report::{self, Duplicates, InputFile, Report, Rows};
use super::summary::session::{self, Summary};
use super::summary::timeline::{self, ActionRow, ResourceCost};

/// The merged actions inside the analyzed window and what pass 2 found around them: what
/// every part of the report is built from.
struct Merged<'a> {
    /// Actions in the window, by start time.
    actions: Vec<&'a Action>,
    /// Per session id, the indices of its actions in `actions`.
    by_session: BTreeMap<&'a str, Vec<usize>>,
    /// Sessions by their first action; session `w` has stat window `w + 1`.
    sessions: Vec<SessionSpan>,
    /// Per action (same index), its resource cost.
    costs: Vec<Option<ResourceCost>>,
    /// Resource values at the actions' start and end times.
    lookup: Lookup,
    /// The aggregates of pass 2 (stats, chart buckets, the earliest samples).
    agg: Aggregate,
    /// Process events inside the window.
    process_events: Vec<ProcessEvent>,
}

impl Merged<'_> {
    /// The indices of session `id`'s actions.
    fn of_session(&self, id: &str) -> &[usize] {
        self.by_session.get(id).map_or(&[][..], Vec::as_slice)
    }

    /// The action timeline row of action `i`.
    fn row(&self, i: usize) -> ActionRow {
        let a = self.actions[i];
        ActionRow::new(
            a,
            timeline::snapshot(&self.lookup, a.start()),
            self.costs[i],
        )
    }
}

/// What pass 2 reads: the sample range (`--since`/`--until`, narrowed to the session and its
/// slack under `--session`), the actions' start and end times as probes, and the stat windows
/// (the whole range, then one per session).
fn plan(opts: &Options, actions: &[&Action], sessions: &[SessionSpan]) -> Plan {
    let (mut since, mut until) = (opts.since, opts.until);
    if opts.window.session.is_some() {
        match sessions.first() {
            Some(s) => {
                since = since.max(s.start.saturating_sub(SESSION_SLACK_NS));
                until = until.min(s.end.saturating_add(SESSION_SLACK_NS + 1));
            }
            // No such session: no samples either.
            None => until = since.saturating_add(1),
        }
    }
    let mut probes: Vec<i64> = actions
        .iter()
        .flat_map(|a| [a.start().0, a.end().0])
        .collect();
    probes.sort_unstable();
    probes.dedup();
    let mut windows = vec![(since, until.saturating_sub(1))];
    windows.extend(sessions.iter().map(SessionSpan::resource_window));
    Plan {
        probes,
        windows,
        since,
        until,
        timeline_limit: opts.window.limit,
        charts: opts.charts,
    }
}

/// One summary per session, in session order.
fn session_summaries(m: &Merged<'_>, session_keys: &HashMap<String, String>) -> Vec<Summary> {
    m.sessions
        .iter()
        .enumerate()
        .map(|(w, s)| {
            let mut sum = session::summarize(
                &s.id,
                m.of_session(&s.id)
                    .iter()
                    .map(|&i| (m.actions[i], m.costs[i].as_ref())),
                &m.agg.stats[w + 1],
            );
            sum.session_key = session_keys.get(&s.id).cloned();
            sum
        })
        .collect()
}

/// What the HTML page draws per session (the first [`charts::MAX_SESSIONS`]).
fn session_charts(m: &Merged<'_>) -> Vec<SessionChart> {
    m.sessions
        .iter()
        .enumerate()
        .take(charts::MAX_SESSIONS)
        .map(|(w, s)| {
            let idx = m.of_session(&s.id);
            let (a, b) = s.resource_window();
            let ticks: Vec<Tick> = m
                .process_events
                .iter()
                .filter(|p| p.timestamp.0 >= a && p.timestamp.0 <= b)
                .filter(|p| p.kind != ProcessEventKind::Fork)
                .map(Tick::new)
                .collect();
            SessionChart {
                session_id: s.id.clone(),
                actions: idx
                    .iter()
                    .take(charts::MAX_BARS)
                    .map(|&i| m.row(i))
                    .collect(),
                actions_total: idx.len(),
                panels: m
                    .agg
                    .charts
                    .get(w + 1)
                    .and_then(Option::as_ref)
                    .map(|b| charts::panels(b))
                    .unwrap_or_default(),
                ticks_total: ticks.len(),
                ticks: ticks.into_iter().take(charts::MAX_TICKS).collect(),
            }
        })
        .collect()
}

/// Process events per kind (`fork`, `exec`, `exit`).
fn process_event_counts(events: &[ProcessEvent]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for p in events {
        *counts
            .entry(format!("{:?}", p.kind).to_lowercase())
            .or_insert(0u64) += 1;
    }
    counts
}

/// One entry per file looked at, with its line counts and first bad lines.
fn inputs(files: &[PathBuf], kinds: &[FileKind], mut stats: FileStats) -> Vec<InputFile> {
    files
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (p, k))| {
            let stats = stats.take(i);
            let path = p.display().to_string();
            // Classification reads the file; one it could not open is `unknown` and says why.
            let error = (*k == FileKind::Unknown)
                .then(|| std::fs::File::open(p).err())
                .flatten()
                .map(|e| format!("{path}: {e}"));
            InputFile {
                error,
                first_bad: stats
                    .first_bad
                    .iter()
                    .map(|b| format!("{path}:{}: {}", b.line, b.reason))
                    .collect(),
                path,
                kind: *k,
                lines: stats.lines,
                records: stats.records,
                bad_lines: stats.bad,
            }
        })
        .collect()
}

/// Reads everything and builds the report.
pub fn analyze(opts: &Options) -> Result<Report, AnalyzeError> {
    let files = classify::discover(
        &opts.trace_dir,
        opts.openclaw_logs.as_deref(),
        opts.openclaw_state.as_deref(),
    );
    let kinds: Vec<FileKind> = files.par_iter().map(|p| classify::classify(p)).collect();
    let limit = opts.window.limit;
    let mut file_stats = FileStats::default();
    let mut all = passes::read_sources(&files, &kinds, &mut file_stats);

    // Merge sources, then window.
    let run_sessions: HashMap<String, String> = all.run_sessions.iter().cloned().collect();
    let session_keys: HashMap<String, String> = all.session_keys.iter().cloned().collect();
    let (merged, merge_stats) = merge::merge(std::mem::take(&mut all.actions), &run_sessions);
    let session_filter = opts.window.session.as_deref();
    let actions: Vec<&Action> = merged
        .iter()
        .filter(|a| in_window(a.start(), opts.since, opts.until))
        .filter(|a| session_filter.is_none_or(|s| a.session() == s))
        .collect();
    let sessions = sessions::sessions(&actions);
    let plan = plan(opts, &actions, &sessions);

    let mut agg = passes::read_resources(&files, &kinds, &plan, &mut file_stats);
    let lookup = Lookup::new(plan.probes.clone(), &mut agg);
    let costs: Vec<Option<ResourceCost>> = actions
        .iter()
        .map(|a| timeline::cost(&lookup, a.start(), a.end()))
        .collect();
    let mut by_session: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in actions.iter().enumerate() {
        by_session.entry(a.session()).or_default().push(i);
    }
    let (since, until) = (plan.since, plan.until);
    let mut m = Merged {
        process_events: all
            .process_events
            .iter()
            .filter(|p| in_window(p.timestamp, since, until))
            .cloned()
            .collect(),
        actions,
        by_session,
        sessions,
        costs,
        lookup,
        agg,
    };

    let mut overall = session::summarize(
        "all",
        m.actions
            .iter()
            .copied()
            .zip(m.costs.iter().map(Option::as_ref)),
        &m.agg.stats[0],
    );
    overall.sessions = m.sessions.len();
    let action_rows: Vec<ActionRow> = (0..m.actions.len().min(limit)).map(|i| m.row(i)).collect();
    let action_omitted = m.actions.len().saturating_sub(action_rows.len()) as u64;
    let notes: Vec<_> = merge::dedupe_notes(std::mem::take(&mut all.notes))
        .into_iter()
        .filter(|n| in_window(n.timestamp, since, until))
        .collect();
    let samples = std::mem::take(&mut m.agg.timeline).into_sorted_vec();
    let (rows, omitted) = timeline::full_timeline(
        &m.actions,
        &m.process_events,
        &notes,
        samples,
        m.agg.samples,
        limit,
    );

    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        generated_by: format!("trace-claw {}", env!("CARGO_PKG_VERSION")),
        window: opts.window.clone(),
        inputs: inputs(&files, &kinds, file_stats),
        sessions: session_summaries(&m, &session_keys),
        overall,
        duplicates: merge_stats
            .duplicates
            .into_iter()
            .map(|((d, k), count)| Duplicates {
                dropped: d.as_str().into(),
                kept: k.as_str().into(),
                count,
            })
            .collect(),
        openclaw_metrics: metrics::totals(&all.metric_points),
        process_events: process_event_counts(&m.process_events),
        resource_samples: m.agg.samples,
        action_timeline: Rows {
            rows: action_rows,
            omitted: action_omitted,
        },
        timeline: Rows { rows, omitted },
        charts: if opts.charts {
            session_charts(&m)
        } else {
            Vec::new()
        },
    })
}
