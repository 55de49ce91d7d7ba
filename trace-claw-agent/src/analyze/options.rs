//! The `analyze` flags, validated.

use std::path::PathBuf;

use trace_claw_common::time::Timestamp;

use super::error::AnalyzeError;
use super::summary::report::Window;
use crate::cli::{AnalyzeArgs, AnalyzeFormat};

/// Rows per timeline when `--limit` is not given.
pub const DEFAULT_LIMIT: usize = 200;

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

/// `~/.openclaw`, where OpenClaw keeps its state unless told otherwise, when it exists.
fn default_openclaw_state() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("HOME")?).join(".openclaw");
    dir.is_dir().then(|| {
        log::info!(
            "reading OpenClaw's state in '{}' (--no-openclaw-state to leave it out)",
            dir.display()
        );
        dir
    })
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
            openclaw_state: if args.no_openclaw_state {
                None
            } else {
                args.openclaw_state.clone().or_else(default_openclaw_state)
            },
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
