//! An [`ActionEvent`] together with where it came from, the unit the merger deduplicates.

use std::sync::Arc;

use serde::Serialize;
use trace_claw_common::event::ActionEvent;
use trace_claw_common::time::Timestamp;

/// Where an action was read, in order of trust: when one call is seen in several sources, the
/// earliest variant here wins (transcripts carry complete per-call usage and cost; the event
/// logger is what the user recorded; spans have exact timing but no session; logs have neither
/// usage nor, for OTLP log records, session ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An OpenClaw session transcript (`agents/*/sessions/*.jsonl`).
    Transcript,
    /// The same transcript events kept in OpenClaw's SQLite store
    /// (`agents/*/agent/*.sqlite`, OpenClaw 2026.5 and later): a copy of a call also seen in a
    /// JSONL transcript (an exported or not yet migrated one) merges into that one.
    SqliteTranscript,
    /// trace-claw's `events-*.jsonl` (log-event / EventLogger).
    EventLog,
    /// An OTLP span captured by the receiver.
    OtlpSpan,
    /// OpenClaw's JSONL file log.
    OpenclawLog,
    /// An OTLP log record captured by the receiver (a copy of a file-log line).
    OtlpLog,
}

impl Source {
    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transcript => "transcript",
            Self::SqliteTranscript => "sqlite_transcript",
            Self::EventLog => "event_log",
            Self::OtlpSpan => "otlp_span",
            Self::OpenclawLog => "openclaw_log",
            Self::OtlpLog => "otlp_log",
        }
    }
}

/// One action with its provenance.
#[derive(Debug, Clone)]
pub struct Action {
    /// The normalized action.
    pub event: ActionEvent,
    /// The source it was read from (after merging: the source that won).
    pub source: Source,
    /// File it was read from.
    pub file: Arc<str>,
    /// Line of that file.
    pub line: u64,
    /// OpenClaw run id, when the source named one (logs); used to find the session.
    pub run_id: Option<String>,
    /// Other sources that saw the same action and were merged into this one.
    pub also_seen_in: Vec<Source>,
}

impl Action {
    /// A new action read from `file:line`.
    pub fn new(event: ActionEvent, source: Source, file: &Arc<str>, line: u64) -> Self {
        Self {
            event,
            source,
            file: Arc::clone(file),
            line,
            run_id: None,
            also_seen_in: Vec::new(),
        }
    }

    /// Start time.
    pub fn start(&self) -> Timestamp {
        self.event.timestamp
    }

    /// End time.
    pub fn end(&self) -> Timestamp {
        self.event.end()
    }

    /// The session it belongs to (`default` when none).
    pub fn session(&self) -> &str {
        self.event.session_id.as_deref().unwrap_or(DEFAULT_SESSION)
    }
}

/// The session of actions that name none.
pub const DEFAULT_SESSION: &str = "default";
