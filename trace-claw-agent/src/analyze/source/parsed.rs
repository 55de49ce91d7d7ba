//! What one input file (or chunk) contributes: actions, process events, notes, OTLP metric
//! points, id mappings and line counts. Per-file results are merged after the parallel read.

use serde::{Deserialize, Serialize};
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::time::Timestamp;

use super::action::Action;
use super::lines::LineStats;

/// A point-in-time observation worth showing in the full timeline (log errors and warnings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// When.
    pub timestamp: Timestamp,
    /// `error` or `warn`.
    pub level: String,
    /// The message.
    pub text: String,
    /// Session, when the source named one.
    pub session_id: Option<String>,
}

/// One data point of a cumulative OpenClaw OTLP metric.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Metric name (`openclaw.tokens`, ...).
    pub name: String,
    /// The data point's attributes, rendered `k=v,k=v` (sorted), identifying the series.
    pub series: String,
    /// `startTimeUnixNano`: a new value means the counter restarted.
    pub start: i64,
    /// `timeUnixNano`.
    pub time: i64,
    /// Sum value, or the histogram's sum.
    pub value: f64,
    /// Histogram count (0 for sums).
    pub count: u64,
    /// Whether it is a histogram point.
    pub histogram: bool,
}

/// What OpenClaw's own session store says about a session (`session_windows`, `session_nodes`
/// of its SQLite stores): its place among agents, channels and parent sessions, which the
/// actions alone do not tell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The agent it ran under (`main`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The channel it came in on (`webchat`, `telegram`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The model provider OpenClaw recorded for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    /// The model OpenClaw recorded for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// When OpenClaw started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When OpenClaw ended it (absent while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// How it was created (`channel`, `spawn` for a sub-agent, `cron`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_via: Option<String>,
    /// The session key of the session it belongs under (a sub-agent's or cron run's parent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_session_key: Option<String>,
    /// The session key of the session that spawned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spawned_by: Option<String>,
}

/// Everything read from one file or chunk.
#[derive(Debug, Default)]
pub struct Parsed {
    /// LLM, tool and other actions.
    pub actions: Vec<Action>,
    /// Process lifecycle events.
    pub process_events: Vec<ProcessEvent>,
    /// Log errors and warnings.
    pub notes: Vec<Note>,
    /// OTLP metric points.
    pub metric_points: Vec<MetricPoint>,
    /// OpenClaw run id -> session id, from `embedded run start` lines.
    pub run_sessions: Vec<(String, String)>,
    /// Session id -> session key, from `sessions.json` and `session state` lines.
    pub session_keys: Vec<(String, String)>,
    /// Session id -> what OpenClaw's SQLite store says about it.
    pub session_infos: Vec<(String, SessionInfo)>,
    /// Line counts.
    pub stats: LineStats,
}

impl Parsed {
    /// Appends another part's results (line counts are merged by the caller).
    pub fn extend(&mut self, other: Parsed) {
        self.actions.extend(other.actions);
        self.process_events.extend(other.process_events);
        self.notes.extend(other.notes);
        self.metric_points.extend(other.metric_points);
        self.run_sessions.extend(other.run_sessions);
        self.session_keys.extend(other.session_keys);
        self.session_infos.extend(other.session_infos);
    }
}
