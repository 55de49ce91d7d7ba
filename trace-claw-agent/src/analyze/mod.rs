//! `analyze`: reads a trace directory (plus OpenClaw's logs and state, in place) and prints
//! per-session summaries, the action timeline with each action's resource cost, and the full
//! timeline.
//!
//! Two parallel passes (rayon, files and 8 MiB chunks): first everything but resource samples
//! (actions are few and kept in memory, then merged across sources), then the resource samples,
//! streamed into fixed-size aggregates keyed by the actions' start and end times.

pub mod action;
pub mod charts;
pub mod classify;
pub mod html;
pub mod merge;
pub mod openclaw_log;
pub mod otlp;
pub mod parse;
pub mod parsed;
pub mod pipeline;
pub mod records;
pub mod report;
pub mod resources;
pub mod summary;
pub mod table;
pub mod timeline;
pub mod transcript;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use trace_claw_common::time::Timestamp;

use crate::cli::{AnalyzeArgs, AnalyzeFormat};
pub use pipeline::analyze;
use report::Window;

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
    /// Whether to gather down-sampled series and all actions for the HTML report.
    pub charts: bool,
}

fn parse_flag_time(flag: &'static str, v: Option<&String>) -> Result<Option<i64>, AnalyzeError> {
    v.map(|s| {
        Timestamp::parse_rfc3339(s)
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
            charts: args.format == AnalyzeFormat::Html,
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
    for e in report.inputs.iter().filter_map(|f| f.error.as_ref()) {
        log::warn!("cannot read {e}");
    }
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
        AnalyzeFormat::Html => html::write_html(&report, &report.charts, &mut buf),
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
        Some(p) => {
            std::fs::write(p, &buf).map_err(write_err)?;
            log::info!("wrote {}", p.display());
        }
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
