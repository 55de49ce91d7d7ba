//! The analysis itself: discover and classify files, read everything but resource samples in
//! parallel (pass 1), merge sources and window, stream resource samples into fixed-size
//! aggregates keyed by the actions' times (pass 2), then build the [`Report`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use trace_claw_common::event::{ProcessEvent, ProcessEventKind};

use super::action::Action;
use super::classify::{self, FileKind};
use super::parse::{self, Chunk, LineStats};
use super::parsed::{MetricPoint, Parsed};
use super::report::{self, Duplicates, InputFile, OtlpMetric, Report, Rows};
use super::resources::{self, Aggregate, Lookup, Plan, Stat, N_STATS};
use super::timeline::{self, ActionRow, ResourceCost};
use super::{
    charts, html, merge, openclaw_log, otlp, records, summary, transcript, AnalyzeError, Options,
    SESSION_SLACK_NS,
};

/// Line counts per file index, per chunk index.
type PerFile = HashMap<usize, Vec<(usize, LineStats)>>;

/// A session and the span of its actions (Unix ns).
struct SessionSpan {
    id: String,
    start: i64,
    end: i64,
}

enum Task {
    Whole(usize),
    Part(usize, Chunk),
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn read_whole(path: &Path, kind: FileKind) -> Result<Parsed, AnalyzeError> {
    let file = parse::open(path)?;
    match kind {
        FileKind::Transcript => transcript::read(path, file),
        FileKind::SessionIndex => transcript::read_index(path, file),
        FileKind::OpenclawLog => openclaw_log::read(path, file),
        FileKind::OtlpCapture => otlp::read(path, file),
        _ => Ok(Parsed::default()),
    }
}

/// A file that could not be read counts as one bad line saying why.
fn unreadable(e: &AnalyzeError) -> LineStats {
    let mut s = LineStats::default();
    let cause = std::error::Error::source(e).map_or_else(String::new, ToString::to_string);
    s.bad(0, format!("{e}: {cause}"));
    s
}

/// Pass 1: everything but resource samples, files (and chunks of event files) in parallel.
fn read_sources(files: &[PathBuf], kinds: &[FileKind], per_file: &mut PerFile) -> Parsed {
    let mut tasks = Vec::new();
    for (i, (p, k)) in files.iter().zip(kinds).enumerate() {
        match k {
            FileKind::Events | FileKind::ProcessEvents => tasks.extend(
                parse::chunks(p, file_len(p))
                    .into_iter()
                    .map(|c| Task::Part(i, c)),
            ),
            FileKind::Transcript
            | FileKind::SessionIndex
            | FileKind::OpenclawLog
            | FileKind::OtlpCapture => tasks.push(Task::Whole(i)),
            _ => {}
        }
    }
    let results: Vec<(usize, usize, Parsed)> = tasks
        .into_par_iter()
        .map(|t| {
            let (i, chunk, r) = match t {
                Task::Whole(i) => (i, 0, read_whole(&files[i], kinds[i])),
                Task::Part(i, c) if kinds[i] == FileKind::Events => {
                    (i, c.index, records::read_events(&c))
                }
                Task::Part(i, c) => (i, c.index, records::read_process_events(&c)),
            };
            let parsed = r.unwrap_or_else(|e| Parsed {
                stats: unreadable(&e),
                ..Parsed::default()
            });
            (i, chunk, parsed)
        })
        .collect();
    let mut all = Parsed::default();
    for (i, chunk, mut p) in results {
        per_file
            .entry(i)
            .or_default()
            .push((chunk, std::mem::take(&mut p.stats)));
        all.extend(p);
    }
    all
}

/// Sessions in order of their first action.
fn sessions_of(actions: &[&Action]) -> Vec<SessionSpan> {
    let mut sessions: Vec<SessionSpan> = Vec::new();
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for a in actions {
        let i = *idx.entry(a.session()).or_insert_with(|| {
            sessions.push(SessionSpan {
                id: a.session().to_owned(),
                start: i64::MAX,
                end: i64::MIN,
            });
            sessions.len() - 1
        });
        sessions[i].start = sessions[i].start.min(a.start().0);
        sessions[i].end = sessions[i].end.max(a.end().0);
    }
    sessions.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    sessions
}

/// Pass 2: resource samples, chunks in parallel, merged as they finish (rayon reduce) so
/// partial aggregates never pile up.
fn read_resources(
    files: &[PathBuf],
    kinds: &[FileKind],
    plan: &Plan,
    per_file: &mut PerFile,
) -> Aggregate {
    let tasks: Vec<(usize, Chunk)> = files
        .iter()
        .zip(kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == FileKind::Resources)
        .flat_map(|(i, (p, _))| {
            parse::chunks(p, file_len(p))
                .into_iter()
                .map(move |c| (i, c))
        })
        .collect();
    let empty = || Aggregate {
        stats: vec![[Stat::default(); N_STATS]; plan.windows.len()],
        ..Aggregate::default()
    };
    let mut agg = tasks
        .into_par_iter()
        .map(|(i, c)| {
            let mut a = resources::read_chunk(&c, plan).unwrap_or_else(|e| Aggregate {
                lines: unreadable(&e),
                ..Aggregate::default()
            });
            let lines = std::mem::take(&mut a.lines);
            a.chunk_lines.push((i, c.index, lines));
            a
        })
        .reduce(empty, |mut a, b| {
            a.merge(b, plan.timeline_limit);
            a
        });
    for (i, chunk, lines) in std::mem::take(&mut agg.chunk_lines) {
        per_file.entry(i).or_default().push((chunk, lines));
    }
    agg
}

/// What the HTML page draws per session (the first [`html::MAX_SESSIONS`]).
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one analysis, passed instead of a one-off struct"
)]
fn session_charts(
    sessions: &[SessionSpan],
    by_session: &BTreeMap<&str, Vec<usize>>,
    actions: &[&Action],
    costs: &[Option<ResourceCost>],
    lookup: &Lookup,
    plan: &Plan,
    agg: &Aggregate,
    process_events: &[ProcessEvent],
) -> Vec<html::SessionChart> {
    sessions
        .iter()
        .enumerate()
        .take(html::MAX_SESSIONS)
        .map(|(w, s)| {
            let idx = by_session.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
            let (a, b) = plan.windows[w + 1];
            let ticks: Vec<html::Tick> = process_events
                .iter()
                .filter(|p| p.timestamp.0 >= a && p.timestamp.0 <= b)
                .filter(|p| p.kind != ProcessEventKind::Fork)
                .map(|p| html::Tick {
                    time: p.timestamp,
                    kind: format!("{:?}", p.kind).to_lowercase(),
                    label: format!(
                        "{:?} pid {} {}{}",
                        p.kind,
                        p.pid,
                        p.comm,
                        p.exit_code
                            .map(|c| format!(" exit {c}"))
                            .unwrap_or_default()
                    ),
                })
                .collect();
            html::SessionChart {
                session_id: s.id.clone(),
                actions: idx
                    .iter()
                    .take(html::MAX_BARS)
                    .map(|&i| {
                        let a = actions[i];
                        ActionRow::new(a, timeline::snapshot(lookup, a.start()), costs[i])
                    })
                    .collect(),
                actions_total: idx.len(),
                panels: agg
                    .charts
                    .get(w + 1)
                    .and_then(Option::as_ref)
                    .map(|b| charts::panels(b))
                    .unwrap_or_default(),
                ticks_total: ticks.len(),
                ticks: ticks.into_iter().take(html::MAX_TICKS).collect(),
            }
        })
        .collect()
}

/// Per file, chunk results in order folded into one [`LineStats`].
fn fold_stats(mut parts: Vec<(usize, LineStats)>) -> LineStats {
    parts.sort_by_key(|(i, _)| *i);
    let mut total = LineStats::default();
    for (_, s) in parts {
        let offset = total.lines;
        total.absorb(s, offset);
    }
    total
}

fn inputs(files: &[PathBuf], kinds: &[FileKind], mut per_file: PerFile) -> Vec<InputFile> {
    files
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (p, k))| {
            let stats = fold_stats(per_file.remove(&i).unwrap_or_default());
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
    let mut per_file = PerFile::new();
    let mut all = read_sources(&files, &kinds, &mut per_file);

    // Merge sources, then window.
    let run_sessions: HashMap<String, String> = all.run_sessions.iter().cloned().collect();
    let session_keys: HashMap<String, String> = all.session_keys.iter().cloned().collect();
    let (merged, merge_stats) = merge::merge(std::mem::take(&mut all.actions), &run_sessions);
    let session_filter = opts.window.session.as_deref();
    let actions: Vec<&Action> = merged
        .iter()
        .filter(|a| merge::in_window(a.start(), opts.since, opts.until))
        .filter(|a| session_filter.is_none_or(|s| a.session() == s))
        .collect();
    let sessions = sessions_of(&actions);
    let (mut since, mut until) = (opts.since, opts.until);
    if session_filter.is_some() {
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
    windows.extend(sessions.iter().map(|s| {
        (
            s.start.saturating_sub(SESSION_SLACK_NS),
            s.end.saturating_add(SESSION_SLACK_NS),
        )
    }));
    let plan = Plan {
        probes,
        windows,
        since,
        until,
        timeline_limit: limit,
        charts: opts.charts,
    };

    let mut agg = read_resources(&files, &kinds, &plan, &mut per_file);
    let lookup = Lookup::new(plan.probes.clone(), &mut agg);

    // Per action: cost; then summaries.
    let costs: Vec<Option<ResourceCost>> = actions
        .iter()
        .map(|a| timeline::cost(&lookup, a.start(), a.end()))
        .collect();
    let mut overall = summary::summarize(
        "all",
        actions
            .iter()
            .copied()
            .zip(costs.iter().map(Option::as_ref)),
        &agg.stats[0],
    );
    overall.sessions = sessions.len();
    let mut by_session: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, a) in actions.iter().enumerate() {
        by_session.entry(a.session()).or_default().push(i);
    }
    let session_summaries = sessions
        .iter()
        .enumerate()
        .map(|(w, s)| {
            let idx = by_session.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
            let mut sum = summary::summarize(
                &s.id,
                idx.iter().map(|&i| (actions[i], costs[i].as_ref())),
                &agg.stats[w + 1],
            );
            sum.session_key = session_keys.get(&s.id).cloned();
            sum
        })
        .collect();
    let action_rows: Vec<ActionRow> = actions
        .iter()
        .zip(&costs)
        .take(limit)
        .map(|(a, c)| ActionRow::new(a, timeline::snapshot(&lookup, a.start()), *c))
        .collect();
    let action_omitted = actions.len().saturating_sub(action_rows.len()) as u64;

    let notes: Vec<_> = merge::dedupe_notes(std::mem::take(&mut all.notes))
        .into_iter()
        .filter(|n| merge::in_window(n.timestamp, since, until))
        .collect();
    let process_events: Vec<ProcessEvent> = all
        .process_events
        .iter()
        .filter(|p| merge::in_window(p.timestamp, since, until))
        .cloned()
        .collect();
    let mut pe_counts = BTreeMap::new();
    for p in &process_events {
        *pe_counts
            .entry(format!("{:?}", p.kind).to_lowercase())
            .or_insert(0u64) += 1;
    }
    let samples = std::mem::take(&mut agg.timeline).into_sorted_vec();
    let (rows, omitted) = timeline::full_timeline(
        &actions,
        &process_events,
        &notes,
        samples,
        agg.samples,
        limit,
    );
    let charts = if opts.charts {
        session_charts(
            &sessions,
            &by_session,
            &actions,
            &costs,
            &lookup,
            &plan,
            &agg,
            &process_events,
        )
    } else {
        Vec::new()
    };

    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        generated_by: format!("trace-claw {}", env!("CARGO_PKG_VERSION")),
        window: opts.window.clone(),
        inputs: inputs(&files, &kinds, per_file),
        overall,
        sessions: session_summaries,
        duplicates: merge_stats
            .duplicates
            .into_iter()
            .map(|((d, k), count)| Duplicates {
                dropped: d.as_str().into(),
                kept: k.as_str().into(),
                count,
            })
            .collect(),
        openclaw_metrics: otlp_metrics(&all.metric_points),
        process_events: pe_counts,
        resource_samples: agg.samples,
        action_timeline: Rows {
            rows: action_rows,
            omitted: action_omitted,
        },
        timeline: Rows { rows, omitted },
        charts,
    })
}

/// Cumulative points -> per series, the last value of each counter lifetime, summed.
fn otlp_metrics(points: &[MetricPoint]) -> Vec<OtlpMetric> {
    let mut last: BTreeMap<(&str, &str, i64), &MetricPoint> = BTreeMap::new();
    for p in points {
        let e = last.entry((&p.name, &p.series, p.start)).or_insert(p);
        if p.time >= e.time {
            *e = p;
        }
    }
    let mut out: BTreeMap<(&str, &str), OtlpMetric> = BTreeMap::new();
    for ((name, series, _), p) in last {
        let m = out.entry((name, series)).or_insert_with(|| OtlpMetric {
            name: name.to_owned(),
            series: series.to_owned(),
            kind: if p.histogram { "histogram" } else { "sum" },
            total: 0.0,
            count: 0,
        });
        m.total += p.value;
        m.count += p.count;
    }
    out.into_values().collect()
}
