//! The analysis result as one serializable document: the `--format json` output (schema in
//! `docs/analyze-json.md`) and the input of every renderer. It knows no renderer.

use serde::Serialize;

use super::charts::SessionChart;
use super::metrics::OtlpMetric;
use super::session::Summary;
use super::timeline::{ActionRow, TimelineRow};
use crate::analyze::source::classify::FileKind;

/// Version of the JSON schema; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// One input file and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// Path as found.
    pub path: String,
    /// What it holds.
    pub kind: FileKind,
    /// Lines read.
    pub lines: u64,
    /// Lines holding a usable record.
    pub records: u64,
    /// Lines that could not be parsed.
    pub bad_lines: u64,
    /// The first few bad lines, `file:line: reason`.
    pub first_bad: Vec<String>,
    /// Why the file could not be opened at all, `file: reason` (absent when it could).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `file:line: incomplete last line, ...` when the last line had no newline yet (it was
    /// left unparsed; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_last_line: Option<String>,
}

/// What [`InputFile::incomplete_last_line`] says after `file:line: `.
pub const INCOMPLETE_LAST_LINE: &str = "incomplete last line, the file may still be being written";

/// Copies of one call dropped in favour of a more trusted source.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicates {
    /// The source whose copy was dropped.
    pub dropped: String,
    /// The source that was kept.
    pub kept: String,
    /// How many.
    pub count: u64,
}

/// A window of rows with the number left out.
#[derive(Debug, Clone, Serialize)]
pub struct Rows<T> {
    /// The rows.
    pub rows: Vec<T>,
    /// Rows not shown (beyond `--limit`).
    pub omitted: u64,
}

/// The time and session window that was analyzed.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// `--since`, as given.
    pub since: Option<String>,
    /// `--until`, as given.
    pub until: Option<String>,
    /// `--session`.
    pub session: Option<String>,
    /// `--limit` in effect.
    pub limit: usize,
}

/// Everything the analyzer found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `trace-claw <version>`.
    pub generated_by: String,
    /// What was analyzed.
    pub window: Window,
    /// Input files.
    pub inputs: Vec<InputFile>,
    /// All sessions together.
    pub overall: Summary,
    /// One per session, by start time.
    pub sessions: Vec<Summary>,
    /// Cross-source duplicates dropped.
    pub duplicates: Vec<Duplicates>,
    /// OpenClaw's own OTLP metrics.
    pub openclaw_metrics: Vec<OtlpMetric>,
    /// Process lifecycle event counts (`fork`, `exec`, `exit`).
    pub process_events: std::collections::BTreeMap<String, u64>,
    /// Resource samples inside the window.
    pub resource_samples: u64,
    /// LLM/tool/other actions with snapshots and resource costs.
    pub action_timeline: Rows<ActionRow>,
    /// Everything by time.
    pub timeline: Rows<TimelineRow>,
    /// Per-session drawings for the HTML report (only with `--format html`; not in the JSON).
    #[serde(skip)]
    pub charts: Vec<SessionChart>,
}

impl Report {
    /// Whether anything at all was analyzed (drives the exit code).
    pub fn analyzed_anything(&self) -> bool {
        self.inputs.iter().any(|f| f.records > 0)
    }
}
