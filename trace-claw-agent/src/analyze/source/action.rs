//! An [`ActionEvent`] together with where it came from, the unit the merger deduplicates.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use trace_claw_common::event::{ActionEvent, STATUS_ERROR};
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

/// The sources that also saw a kept action, as a set: a merge absorbs copies source by source
/// in [`Source`] order, so listing the set in that order is the order they were seen in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceSet(u8);

impl SourceSet {
    /// Adds `s`.
    pub fn insert(&mut self, s: Source) {
        self.0 |= 1 << s as u8;
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The sources in the set, in [`Source`] order.
    pub fn iter(self) -> impl Iterator<Item = Source> {
        ALL_SOURCES
            .into_iter()
            .filter(move |s| self.0 & (1 << *s as u8) != 0)
    }
}

const ALL_SOURCES: [Source; 6] = [
    Source::Transcript,
    Source::SqliteTranscript,
    Source::EventLog,
    Source::OtlpSpan,
    Source::OpenclawLog,
    Source::OtlpLog,
];

thread_local! {
    /// The names this thread has seen (types, sessions, models, providers, tools, statuses):
    /// a few thousand distinct ones per trace, shared by all the actions that name them.
    static NAMES: RefCell<HashSet<Arc<str>>> = RefCell::new(HashSet::new());
}

/// `s` as a shared name: the one already seen on this thread, or a new one.
pub fn intern(s: &str) -> Arc<str> {
    NAMES.with_borrow_mut(|names| {
        if let Some(n) = names.get(s) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(s);
        names.insert(Arc::clone(&n));
        n
    })
}

fn intern_opt(s: Option<String>) -> Option<Arc<str>> {
    s.as_deref().map(intern)
}

/// What the report uses of an [`ActionEvent`], kept compact: one per action of a busy
/// gateway's month stays in memory, so names are shared ([`intern`]) and the free-form
/// attributes (which no report shows) are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When the action started.
    pub timestamp: Timestamp,
    /// `llm`, `tool`, or a free name.
    pub event_type: Arc<str>,
    /// Session the action belongs to.
    pub session_id: Option<Arc<str>>,
    /// Model name of an LLM call.
    pub model: Option<Arc<str>>,
    /// Provider of an LLM call.
    pub provider: Option<Arc<str>>,
    /// Tool name of a tool call.
    pub tool_name: Option<Arc<str>>,
    /// `ok` or `error`.
    pub status: Arc<str>,
    /// Error message of a failed action.
    pub error: Option<Box<str>>,
    /// Input tokens, excluding cache reads and writes.
    pub tokens_input: u64,
    /// Output tokens.
    pub tokens_output: u64,
    /// Input tokens served from the provider's prompt cache.
    pub tokens_cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub tokens_cache_write: u64,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// The process that ran (or logged) the action.
    pub pid: Option<u32>,
    /// All tokens ([`ActionEvent::tokens_total`]).
    tokens_total: u64,
    /// When it ended ([`ActionEvent::end`]).
    end: Timestamp,
}

impl Call {
    /// The compact form of `e`.
    pub fn new(e: ActionEvent) -> Self {
        Self {
            tokens_total: e.tokens_total(),
            end: e.end(),
            timestamp: e.timestamp,
            event_type: intern(&e.event_type),
            session_id: intern_opt(e.session_id),
            model: intern_opt(e.model),
            provider: intern_opt(e.provider),
            tool_name: intern_opt(e.tool_name),
            status: intern(&e.status),
            error: e.error.map(String::into_boxed_str),
            tokens_input: e.tokens_input,
            tokens_output: e.tokens_output,
            tokens_cache_read: e.tokens_cache_read,
            tokens_cache_write: e.tokens_cache_write,
            duration_ms: e.duration_ms,
            cost_usd: e.cost_usd,
            pid: e.pid,
        }
    }

    /// The action as trace-claw writes it (`events-*.jsonl`), without attributes.
    pub fn to_event(&self) -> ActionEvent {
        let text = |s: &Option<Arc<str>>| s.as_deref().map(str::to_owned);
        let mut e = ActionEvent::new(&*self.event_type, self.timestamp);
        e.session_id = text(&self.session_id);
        e.model = text(&self.model);
        e.provider = text(&self.provider);
        e.tool_name = text(&self.tool_name);
        e.status = self.status.to_string();
        e.error = self.error.as_deref().map(str::to_owned);
        e.tokens_input = self.tokens_input;
        e.tokens_output = self.tokens_output;
        e.tokens_cache_read = self.tokens_cache_read;
        e.tokens_cache_write = self.tokens_cache_write;
        e.duration_ms = self.duration_ms;
        e.cost_usd = self.cost_usd;
        e.pid = self.pid;
        e
    }

    /// When the action ended.
    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// All tokens the call consumed.
    pub fn tokens_total(&self) -> u64 {
        self.tokens_total
    }

    /// Whether the action failed.
    pub fn is_error(&self) -> bool {
        &*self.status == STATUS_ERROR || self.error.is_some()
    }
}

/// One action with its provenance.
#[derive(Debug, Clone)]
pub struct Action {
    /// The normalized action.
    pub event: Call,
    /// The source it was read from (after merging: the source that won).
    pub source: Source,
    /// File it was read from.
    pub file: Arc<str>,
    /// Line of that file.
    pub line: u64,
    /// OpenClaw run id, when the source named one (logs); used to find the session.
    pub run_id: Option<Box<str>>,
    /// Other sources that saw the same action and were merged into this one.
    pub also_seen_in: SourceSet,
}

impl Action {
    /// A new action read from `file:line`.
    pub fn new(event: ActionEvent, source: Source, file: &Arc<str>, line: u64) -> Self {
        Self {
            event: Call::new(event),
            source,
            file: Arc::clone(file),
            line,
            run_id: None,
            also_seen_in: SourceSet::default(),
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

#[cfg(test)]
mod tests {
    use trace_claw_common::event::EVENT_LLM;

    use super::*;

    #[test]
    fn a_call_gives_back_the_event_it_was_made_from_less_its_attributes() {
        let mut e = ActionEvent::new(EVENT_LLM, Timestamp(5_000));
        e.session_id = Some("s".into());
        e.model = Some("m".into());
        e.provider = Some("p".into());
        e.error = Some("HTTP 500".into());
        e.status = "error".into();
        e.tokens_input = 1;
        e.tokens_output = 2;
        e.tokens_cache_read = 3;
        e.tokens_cache_write = 4;
        e.duration_ms = 12.5;
        e.cost_usd = 0.25;
        e.pid = Some(7);
        let back = Call::new(e.clone()).to_event();
        assert_eq!(back, e);
        e.attributes.insert("k".into(), "v".into());
        assert!(Call::new(e).to_event().attributes.is_empty());
    }
}
