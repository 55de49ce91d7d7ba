//! `analyze`: reads a trace directory (plus OpenClaw's logs and state, in place) and prints
//! per-session summaries, the action timeline with each action's resource cost, and the full
//! timeline.
//!
//! Two parallel passes (rayon, files and 8 MiB chunks): first everything but resource samples
//! (actions are few and kept in memory, then merged across sources), then the resource samples,
//! streamed into fixed-size aggregates keyed by the actions' start and end times.

pub mod action;
pub mod classify;
pub mod merge;
pub mod openclaw_log;
pub mod otlp;
pub mod parse;
pub mod parsed;
pub mod records;
pub mod report;
pub mod resources;
pub mod summary;
pub mod table;
pub mod timeline;
pub mod transcript;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rayon::prelude::*;

use crate::cli::{AnalyzeArgs, AnalyzeFormat};
use action::Action;
use classify::FileKind;
use parse::{Chunk, LineStats};
use parsed::{MetricPoint, Parsed};
use report::{Duplicates, InputFile, OtlpMetric, Report, Rows, Window};
use resources::{Aggregate, Lookup, Plan, Stat, N_STATS};
use timeline::ResourceCost;

/// Resource samples this close to a session's first start or last end still count for the
/// session (a short session may fall between two samples).
pub const SESSION_SLACK_NS: i64 = 5_000_000_000;

/// Rows per timeline when `--limit` is not given.
pub const DEFAULT_LIMIT: usize = 200;

/// Why an analysis could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file could not be read.
    #[error("cannot read '{path}'")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The report could not be written.
    #[error("cannot write the report to '{path}'")]
    Write {
        /// Where.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A flag has an invalid value.
    #[error("invalid {flag} '{value}': {reason}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl AnalyzeError {
    /// Whether the error is the user's invocation (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage { .. })
    }
}

/// Validated options.
#[derive(Debug, Clone)]
pub struct Options {
    /// trace-claw's output directory.
    pub trace_dir: PathBuf,
    /// OpenClaw's log directory.
    pub openclaw_logs: Option<PathBuf>,
    /// OpenClaw's state directory.
    pub openclaw_state: Option<PathBuf>,
    /// Window start (Unix ns), inclusive.
    pub since: i64,
    /// Window end (Unix ns), exclusive.
    pub until: i64,
    /// The flags as given, for the report.
    pub window: Window,
}

fn parse_flag_time(flag: &'static str, v: Option<&String>) -> Result<Option<i64>, AnalyzeError> {
    v.map(|s| {
        parse::parse_time(s)
            .map(|t| t.0)
            .ok_or_else(|| AnalyzeError::Usage {
                flag,
                value: s.clone(),
                reason: "expected an RFC 3339 time such as 2026-11-24T15:00:00Z".into(),
            })
    })
    .transpose()
}

impl Options {
    /// Validates the command-line flags.
    pub fn from_args(args: &AnalyzeArgs) -> Result<Self, AnalyzeError> {
        let since = parse_flag_time("--since", args.since.as_ref())?.unwrap_or(i64::MIN);
        let until = parse_flag_time("--until", args.until.as_ref())?.unwrap_or(i64::MAX);
        if since >= until {
            return Err(AnalyzeError::Usage {
                flag: "--until",
                value: args.until.clone().unwrap_or_default(),
                reason: "must be later than --since".into(),
            });
        }
        if args.limit == Some(0) {
            return Err(AnalyzeError::Usage {
                flag: "--limit",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            trace_dir: args.trace_dir.clone(),
            openclaw_logs: args.openclaw_logs.clone(),
            openclaw_state: args.openclaw_state.clone(),
            since,
            until,
            window: Window {
                since: args.since.clone(),
                until: args.until.clone(),
                session: args.session.clone(),
                limit: args.limit.unwrap_or(DEFAULT_LIMIT),
            },
        })
    }
}

/// Runs `analyze`: exit 0 when anything was analyzed, 1 when nothing could be.
pub fn run(args: &AnalyzeArgs) -> Result<ExitCode, AnalyzeError> {
    let opts = Options::from_args(args)?;
    for dir in std::iter::once(Some(&opts.trace_dir))
        .chain([opts.openclaw_logs.as_ref(), opts.openclaw_state.as_ref()])
        .flatten()
    {
        if !dir.is_dir() {
            log::warn!("'{}' is not a directory; skipping it", dir.display());
        }
    }
    let report = analyze(&opts)?;
    if !report.analyzed_anything() {
        for f in &report.inputs {
            for b in &f.first_bad {
                log::warn!("{b}");
            }
        }
        log::error!(
            "nothing to analyze: no readable trace-claw or OpenClaw records under '{}' ({} file(s) looked at)",
            opts.trace_dir.display(),
            report.inputs.len()
        );
        return Ok(ExitCode::from(1));
    }
    let format = if args.no_table && args.format == AnalyzeFormat::Table {
        AnalyzeFormat::Text
    } else {
        args.format
    };
    let to_file = args
        .output
        .clone()
        .or_else(|| (format == AnalyzeFormat::Html).then(|| opts.trace_dir.join("report.html")));
    let color = to_file.is_none()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut buf = Vec::new();
    let written = match format {
        AnalyzeFormat::Json => report.write_json(&mut buf),
        AnalyzeFormat::Table => table::write_tables(&report, color, &mut buf),
        AnalyzeFormat::Text => table::write_text(&report, &mut buf),
        AnalyzeFormat::Html => {
            return Err(AnalyzeError::Usage {
                flag: "--format",
                value: "html".into(),
                reason: "the HTML report is not available in this build".into(),
            })
        }
    };
    let place = to_file
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let write_err = |source| AnalyzeError::Write {
        path: place.clone(),
        source,
    };
    written.map_err(write_err)?;
    match &to_file {
        Some(p) => std::fs::write(p, &buf).map_err(write_err)?,
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&buf).and_then(|()| out.flush()) {
                Ok(()) => {}
                // a closed pipe (`| head`) is not an error of the analysis
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(write_err(e)),
            }
        }
    }
    for f in report.inputs.iter().filter(|f| f.bad_lines > 0) {
        log::warn!("{}: {} bad line(s) skipped", f.path, f.bad_lines);
    }
    Ok(ExitCode::SUCCESS)
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

/// Per file, chunk results in order folded into one [`LineStats`].
fn fold_stats(parts: Vec<(usize, LineStats)>) -> LineStats {
    let mut parts = parts;
    parts.sort_by_key(|(i, _)| *i);
    let mut total = LineStats::default();
    for (_, s) in parts {
        let offset = total.lines;
        total.absorb(s, offset);
    }
    total
}

fn unreadable(e: &AnalyzeError) -> LineStats {
    let mut s = LineStats::default();
    s.bad(0, format!("{e}: {}", error_source(e)));
    s
}

fn error_source(e: &AnalyzeError) -> String {
    std::error::Error::source(e).map_or_else(String::new, ToString::to_string)
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

    // Pass 1: everything but resource samples.
    let mut tasks = Vec::new();
    for (i, (p, k)) in files.iter().zip(&kinds).enumerate() {
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
        .map(|t| match t {
            Task::Whole(i) => {
                let r = read_whole(&files[i], kinds[i]);
                (
                    i,
                    0,
                    r.unwrap_or_else(|e| Parsed {
                        stats: unreadable(&e),
                        ..Parsed::default()
                    }),
                )
            }
            Task::Part(i, c) => {
                let r = if kinds[i] == FileKind::Events {
                    records::read_events(&c)
                } else {
                    records::read_process_events(&c)
                };
                (
                    i,
                    c.index,
                    r.unwrap_or_else(|e| Parsed {
                        stats: unreadable(&e),
                        ..Parsed::default()
                    }),
                )
            }
        })
        .collect();
    let mut per_file: HashMap<usize, Vec<(usize, LineStats)>> = HashMap::new();
    let mut all = Parsed::default();
    for (i, chunk, mut p) in results {
        per_file
            .entry(i)
            .or_default()
            .push((chunk, std::mem::take(&mut p.stats)));
        all.extend(p);
    }

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
    let mut sessions: Vec<(String, i64, i64)> = Vec::new();
    {
        let mut idx: HashMap<&str, usize> = HashMap::new();
        for a in &actions {
            let i = *idx.entry(a.session()).or_insert_with(|| {
                sessions.push((a.session().to_owned(), i64::MAX, i64::MIN));
                sessions.len() - 1
            });
            sessions[i].1 = sessions[i].1.min(a.start().0);
            sessions[i].2 = sessions[i].2.max(a.end().0);
        }
    }
    sessions.sort_by_key(|s| (s.1, s.0.clone()));
    let (mut since, mut until) = (opts.since, opts.until);
    if session_filter.is_some() {
        if let Some(s) = sessions.first() {
            since = since.max(s.1.saturating_sub(SESSION_SLACK_NS));
            until = until.min(s.2.saturating_add(SESSION_SLACK_NS + 1));
        } else {
            until = since.saturating_add(1).max(since);
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
            s.1.saturating_sub(SESSION_SLACK_NS),
            s.2.saturating_add(SESSION_SLACK_NS),
        )
    }));
    let plan = Plan {
        probes,
        windows,
        since,
        until,
        timeline_limit: limit,
    };

    // Pass 2: resource samples.
    let rtasks: Vec<(usize, Chunk)> = files
        .iter()
        .zip(&kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == FileKind::Resources)
        .flat_map(|(i, (p, _))| {
            parse::chunks(p, file_len(p))
                .into_iter()
                .map(move |c| (i, c))
        })
        .collect();
    let rresults: Vec<(usize, usize, Aggregate)> = rtasks
        .into_par_iter()
        .map(|(i, c)| {
            let agg = resources::read_chunk(&c, &plan).unwrap_or_else(|e| Aggregate {
                lines: unreadable(&e),
                ..Aggregate::default()
            });
            (i, c.index, agg)
        })
        .collect();
    let mut agg = Aggregate {
        stats: vec![[Stat::default(); N_STATS]; plan.windows.len()],
        ..Aggregate::default()
    };
    for (i, chunk, mut a) in rresults {
        per_file
            .entry(i)
            .or_default()
            .push((chunk, std::mem::take(&mut a.lines)));
        agg.merge(a, limit);
    }
    let lookup = Lookup::new(plan.probes.clone(), &agg);

    // Per action: snapshot and cost.
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
        .map(|(w, (id, _, _))| {
            let idx = by_session
                .get(id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut s = summary::summarize(
                id,
                idx.iter().map(|&i| (actions[i], costs[i].as_ref())),
                &agg.stats[w + 1],
            );
            s.session_key = session_keys.get(id).cloned();
            s
        })
        .collect();
    let action_rows: Vec<timeline::ActionRow> = actions
        .iter()
        .zip(&costs)
        .take(limit)
        .map(|(a, c)| timeline::ActionRow::new(a, timeline::snapshot(&lookup, a.start()), *c))
        .collect();
    let action_omitted = actions.len().saturating_sub(action_rows.len()) as u64;

    let notes: Vec<parsed::Note> = merge::dedupe_notes(std::mem::take(&mut all.notes))
        .into_iter()
        .filter(|n| merge::in_window(n.timestamp, since, until))
        .collect();
    let process_events: Vec<_> = all
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

    let inputs = files
        .iter()
        .zip(&kinds)
        .enumerate()
        .map(|(i, (p, k))| {
            let stats = fold_stats(per_file.remove(&i).unwrap_or_default());
            let path = p.display().to_string();
            InputFile {
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
        .collect();

    Ok(Report {
        schema_version: report::SCHEMA_VERSION,
        generated_by: format!("trace-claw {}", env!("CARGO_PKG_VERSION")),
        window: opts.window.clone(),
        inputs,
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
