//! The analysis itself, in the order the data flows: discover and classify files, read
//! everything but resource samples in parallel (pass 1), merge sources and window, stream
//! resource samples into fixed-size aggregates keyed by the actions' times (pass 2), then
//! summarise into the [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use trace_claw_common::event::{ProcessEvent, ProcessEventKind};

use super::cost::charge::{self, Charged};
use super::cost::slots::TreeSlots;
use super::error::AnalyzeError;
use super::merge::actions::{self as merge, in_window};
use super::merge::lookup::Lookup;
use super::merge::sessions::{self, SessionSpan, SESSION_SLACK_NS};
use super::options::Options;
use super::source::action::Action;
use super::source::classify::{self, FileKind};
use super::source::daily;
use super::source::parsed::SessionInfo;
use super::source::passes::{self, FileStats};
use super::source::resources::aggregate::{Aggregate, Plan};
use super::summary::charts::{self, SessionChart, Tick};
use super::summary::metrics;
use super::summary::report::{self, Duplicates, InputFile, Report, Rows};
use super::summary::session::{Summary, SummaryBuilder};
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
    /// The tracked trees' time slots (eBPF) and the tree each action was charged to.
    slots: TreeSlots,
    charged: Charged,
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
    /// Fills in what the actions `idx` cost together and the idle cost of their trees over
    /// `window`, when time slots measured them.
    fn group_costs(&self, sum: &mut Summary, idx: &[usize], window: (i64, i64)) {
        if let Some((busy, idle)) =
            charge::group_costs(&self.slots, &self.actions, &self.charged, idx, window)
        {
            sum.action_cost = Some(busy);
            sum.idle_cost = Some(idle);
        }
    }

    /// Action `i`'s resource cost: measured from its tree's time slots, else interpolated
    /// between samples. Worked out when asked (twice per action: its session's summary and
    /// the overall one), not kept for every action.
    fn cost(&self, i: usize) -> Option<ResourceCost> {
        let a = self.actions[i];
        self.charged
            .costs
            .get(i)
            .copied()
            .flatten()
            .or_else(|| timeline::interpolated_cost(&self.lookup, a.start(), a.end()))
    }

    fn row(&self, i: usize) -> ActionRow {
        let a = self.actions[i];
        ActionRow::new(a, timeline::snapshot(&self.lookup, a.start()), self.cost(i))
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
    // Snapshots are shown for the first `--limit` actions only (and, on the HTML page, for
    // the charted sessions' bars: all starts then), so the gauges need no probes elsewhere.
    let snapshot_probes = (!opts.charts).then(|| {
        let mut starts: Vec<i64> = actions
            .iter()
            .take(opts.window.limit)
            .map(|a| a.start().0)
            .collect();
        starts.dedup();
        starts
    });
    let mut windows = vec![(since, until.saturating_sub(1))];
    windows.extend(sessions.iter().map(SessionSpan::resource_window));
    Plan {
        probes,
        snapshot_probes,
        windows,
        since,
        until,
        timeline_limit: opts.window.limit,
        charts: opts.charts,
    }
}

/// The overall summary and one per session (in session order), from one pass over the
/// actions in start order: each action's cost is worked out once, and a session's builder (two
/// latency histograms, up to a few hundred KiB) lives only from its first action to its last.
fn summaries(
    m: &Merged<'_>,
    session_keys: &HashMap<String, String>,
    session_infos: &HashMap<String, SessionInfo>,
    window: (i64, i64),
) -> (Summary, Vec<Summary>) {
    let slot: HashMap<&str, usize> = m
        .sessions
        .iter()
        .enumerate()
        .map(|(w, s)| (s.id.as_str(), w))
        .collect();
    // Per session: its builder and the number of its actions still to come, then its summary.
    let mut open: HashMap<usize, (SummaryBuilder, usize)> = HashMap::new();
    let mut done: Vec<Option<Summary>> = (0..m.sessions.len()).map(|_| None).collect();
    let mut overall = SummaryBuilder::new("all", &m.agg.stats[0]);
    for (i, a) in m.actions.iter().enumerate() {
        let cost = m.cost(i);
        overall.add(a, cost.as_ref());
        let Some(&w) = slot.get(a.session()) else {
            continue;
        };
        let s = &m.sessions[w];
        let (builder, left) = open.entry(w).or_insert_with(|| {
            let n = m.of_session(&s.id).len();
            (SummaryBuilder::new(&s.id, &m.agg.stats[w + 1]), n)
        });
        builder.add(a, cost.as_ref());
        *left -= 1;
        if *left == 0 {
            if let Some((builder, _)) = open.remove(&w) {
                let mut sum = builder.finish();
                sum.session_key = session_keys.get(&s.id).cloned();
                sum.openclaw = session_infos.get(&s.id).cloned();
                if let (Some(start), Some(end)) = (sum.start, sum.end) {
                    m.group_costs(&mut sum, m.of_session(&s.id), (start.0, end.0));
                }
                done[w] = Some(sum);
            }
        }
    }
    let mut overall = overall.finish();
    overall.sessions = m.sessions.len();
    let every_action: Vec<usize> = (0..m.actions.len()).collect();
    m.group_costs(&mut overall, &every_action, window);
    overall.other_trees = charge::other_trees(&m.slots, &m.charged, window);
    (overall, done.into_iter().flatten().collect())
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
                incomplete_last_line: stats
                    .incomplete_last_line
                    .map(|line| format!("{path}:{line}: {}", report::INCOMPLETE_LAST_LINE)),
                path,
                kind: *k,
                lines: stats.lines,
                records: stats.records,
                bad_lines: stats.bad,
            }
        })
        .collect()
}

/// The summed sizes of `files`.
fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Reads everything inside the window and builds the report.
pub fn analyze(opts: &Options) -> Result<Report, AnalyzeError> {
    let (files, unread): (Vec<PathBuf>, Vec<PathBuf>) = classify::discover(
        &opts.trace_dir,
        opts.openclaw_logs.as_deref(),
        opts.openclaw_state.as_deref(),
    )
    .into_iter()
    .partition(|p| !daily::outside(p, opts.since, opts.until));
    log::debug!(
        "reading {} file(s), {} bytes; {} daily file(s), {} bytes, outside the window left unread",
        files.len(),
        total_bytes(&files),
        unread.len(),
        total_bytes(&unread)
    );
    let kinds: Vec<FileKind> = files.par_iter().map(|p| classify::classify(p)).collect();
    let limit = opts.window.limit;
    let mut file_stats = FileStats::default();
    let (mut all, action_parts) = passes::read_sources(&files, &kinds, &mut file_stats);

    // Merge sources, then window.
    let run_sessions: HashMap<String, String> = all.run_sessions.iter().cloned().collect();
    let session_keys: HashMap<String, String> = all.session_keys.iter().cloned().collect();
    let session_infos: HashMap<String, SessionInfo> =
        std::mem::take(&mut all.session_infos).into_iter().collect();
    let (merged, merge_stats) = merge::merge(action_parts, &run_sessions);
    let session_filter = opts.window.session.as_deref();
    let actions: Vec<&Action> = merged
        .iter()
        .filter(|a| in_window(a.start(), opts.since, opts.until))
        .filter(|a| session_filter.is_none_or(|s| a.session() == s))
        .collect();
    let sessions = sessions::sessions(&actions);
    let mut plan = plan(opts, &actions, &sessions);

    let mut agg = passes::read_resources(&files, &kinds, &plan, &mut file_stats);
    let lookup = Lookup::new(
        std::mem::take(&mut plan.probes),
        plan.snapshot_probes.take(),
        &mut agg,
    );
    let tree_cost_files: Vec<(usize, &Path)> = files
        .iter()
        .zip(&kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == FileKind::TreeCosts)
        .map(|(i, (p, _))| (i, p.as_path()))
        .collect();
    let paths: Vec<&Path> = tree_cost_files.iter().map(|&(_, p)| p).collect();
    let (slots, slot_stats) = TreeSlots::read(&paths, plan.since, plan.until);
    for ((i, _), stats) in tree_cost_files.iter().zip(slot_stats) {
        file_stats.push(*i, 0, stats);
    }
    let charged = charge::charge(&slots, &actions);
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
        slots,
        charged,
        lookup,
        agg,
    };

    let (overall, sessions) = summaries(&m, &session_keys, &session_infos, (since, until));
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
        sessions,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use trace_claw_common::event::ActionEvent;

    use crate::analyze::source::action::Source;
    use trace_claw_common::names;
    use trace_claw_common::time::Timestamp;

    use crate::analyze::summary::report::Window;
    use crate::analyze::summary::timeline::Snapshot;

    const S: i64 = 1_000_000_000;
    /// 2026-11-18T22:13:20Z: all times below are seconds after it.
    const T0: i64 = 1_795_000_000 * S;

    fn write_jsonl(dir: &Path, name: &str, lines: &[String]) {
        std::fs::write(dir.join(name), lines.join("\n") + "\n").expect("write fixture");
    }

    fn action(at_s: i64, kind: &str, ms: f64, session: &str) -> ActionEvent {
        let mut e = ActionEvent::new(kind, Timestamp(T0 + at_s * S));
        e.duration_ms = ms;
        e.session_id = Some(session.into());
        e
    }

    /// Session `b` (an LLM call at 10 s for 2 s, a failed one at 30 s for 1 s) and session `a`
    /// (a tool call at 20 s for 1 s); every second from 0 to 40 s the tree's CPU time (0.5 s
    /// per second) and the system CPU (50 %); a fork and an exec at 11 and 12 s and an exit at
    /// 50 s.
    fn trace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut failed = action(30, "llm", 1000.0, "b");
        failed.error = Some("rate limited".into());
        let events = [
            action(10, "llm", 2000.0, "b"),
            action(20, "tool", 1000.0, "a"),
            failed,
        ];
        write_jsonl(
            dir.path(),
            "events-2026-11-18.jsonl",
            &events.map(|e| serde_json::to_string(&e).expect("json")),
        );
        let mut samples = Vec::new();
        for i in 0..=40 {
            let ts = Timestamp(T0 + i * S);
            let cpu = 0.5 * i as f64;
            samples.push(format!(
                r#"{{"timestamp":"{ts}","name":"{}","value":{cpu},"labels":{{"pid":"total"}}}}"#,
                names::PROCESS_CPU_TIME.name
            ));
            samples.push(format!(
                r#"{{"timestamp":"{ts}","name":"{}","value":50,"labels":{{"cpu":"total"}}}}"#,
                names::SYSTEM_CPU_USAGE.name
            ));
        }
        write_jsonl(dir.path(), "resources-2026-11-18.jsonl", &samples);
        let process = [
            (11, ProcessEventKind::Fork),
            (12, ProcessEventKind::Exec),
            (50, ProcessEventKind::Exit),
        ]
        .map(|(at_s, kind)| {
            serde_json::to_string(&ProcessEvent {
                timestamp: Timestamp(T0 + at_s * S),
                kind,
                pid: 7,
                ppid: 1,
                comm: "node".into(),
                filename: None,
                exit_code: None,
                totals: None,
                source: "procfs".into(),
            })
            .expect("json")
        });
        write_jsonl(dir.path(), "process-events-2026-11-18.jsonl", &process);
        dir
    }

    fn options(dir: &Path, session: Option<&str>, charts: bool) -> Options {
        Options {
            trace_dir: dir.to_owned(),
            openclaw_logs: None,
            openclaw_state: None,
            since: i64::MIN,
            until: i64::MAX,
            window: Window {
                since: None,
                until: None,
                session: session.map(str::to_owned),
                limit: 100,
            },
            charts,
        }
    }

    #[test]
    fn sessions_are_summarised_by_first_action_with_their_resource_costs() {
        let dir = trace();
        let r = analyze(&options(dir.path(), None, false)).expect("analyze");
        assert_eq!(r.overall.sessions, 2);
        assert_eq!((r.overall.llm_calls, r.overall.tool_calls), (2, 1));
        assert_eq!(r.overall.errors, 1);
        let ids: Vec<&str> = r.sessions.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        // b: 2 s + 1 s of actions at 0.5 CPU s per second
        let b_cpu = r.sessions[0].action_cost.and_then(|c| c.cpu_seconds);
        assert!((b_cpu.expect("cost") - 1.5).abs() < 1e-9, "{b_cpu:?}");
        assert_eq!(r.resource_samples, 82);
        assert_eq!(r.process_events.get("fork"), Some(&1));
        let first = &r.action_timeline.rows[0];
        assert_eq!(first.snapshot.cpu_percent, Some(50.0));
        assert!(r.charts.is_empty(), "charts only for the HTML page");
    }

    #[test]
    fn a_session_filter_reads_only_the_samples_near_that_session() {
        let dir = trace();
        let r = analyze(&options(dir.path(), Some("a"), false)).expect("analyze");
        assert_eq!(r.sessions.len(), 1);
        assert_eq!(r.overall.tool_calls, 1);
        assert_eq!(r.overall.llm_calls, 0);
        // 20 s to 21 s, 5 s slack either side: samples at 15..=26 s, two series
        assert_eq!(r.resource_samples, 24);
        let nobody = analyze(&options(dir.path(), Some("nobody"), false)).expect("analyze");
        assert!(nobody.sessions.is_empty());
        assert_eq!(nobody.resource_samples, 0);
        assert_eq!(nobody.overall.sessions, 0);
    }

    #[test]
    fn charts_cover_each_session_window_without_forks() {
        let dir = trace();
        let r = analyze(&options(dir.path(), None, true)).expect("analyze");
        assert_eq!(r.charts.len(), 2);
        let b = &r.charts[0];
        assert_eq!(b.session_id, "b");
        assert_eq!((b.actions.len(), b.actions_total), (2, 2));
        // the exec at 12 s; the fork is not drawn, the exit at 50 s is outside 5..=36 s
        let ticks: Vec<&str> = b.ticks.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(ticks, ["exec"]);
        assert!(b
            .panels
            .iter()
            .any(|p| p.lines.iter().any(|l| !l.points.is_empty())));
    }

    #[test]
    fn snapshots_read_at_the_shown_actions_only_are_those_read_at_every_edge() {
        let dir = trace();
        let mut opts = options(dir.path(), None, false);
        opts.window.limit = 2;
        let few = analyze(&opts).expect("analyze");
        // with charts every action start and end is a gauge probe
        opts.charts = true;
        let all = analyze(&opts).expect("analyze");
        let snaps = |r: &Report| -> Vec<Snapshot> {
            r.action_timeline.rows.iter().map(|a| a.snapshot).collect()
        };
        assert_eq!(snaps(&few).len(), 2);
        assert_eq!(snaps(&few), snaps(&all));
        assert!(snaps(&few).iter().all(|s| s.cpu_percent == Some(50.0)));
    }

    #[test]
    fn the_plan_probes_every_action_edge_once_and_widens_session_windows() {
        let events = [
            action(10, "llm", 2000.0, "b"),
            action(12, "tool", 1000.0, "b"),
        ];
        let actions: Vec<Action> = events
            .into_iter()
            .map(|e| Action::new(e, Source::EventLog, &std::sync::Arc::from("f"), 1))
            .collect();
        let refs: Vec<&Action> = actions.iter().collect();
        let spans = sessions::sessions(&refs);
        let opts = options(Path::new("."), None, false);
        let p = plan(&opts, &refs, &spans);
        assert_eq!(p.probes, [T0 + 10 * S, T0 + 12 * S, T0 + 13 * S]);
        assert_eq!(
            p.windows,
            [(i64::MIN, i64::MAX - 1), (T0 + 5 * S, T0 + 18 * S)]
        );
        assert_eq!((p.since, p.until), (i64::MIN, i64::MAX));
        assert_eq!(p.snapshot_probes, Some(vec![T0 + 10 * S, T0 + 12 * S]));
    }
}
