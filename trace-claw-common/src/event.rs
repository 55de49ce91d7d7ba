//! Action and process-lifecycle records: lines of `events-*.jsonl` and
//! `process-events-*.jsonl`.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::abi::ProcCounters;
use crate::time::Timestamp;

/// `event_type` of an LLM call.
pub const EVENT_LLM: &str = "llm";
/// `event_type` of a tool call.
pub const EVENT_TOOL: &str = "tool";
/// `status` of a successful action.
pub const STATUS_OK: &str = "ok";
/// `status` of a failed action.
pub const STATUS_ERROR: &str = "error";

/// One LLM call, tool call or other named step of an AI-assistant workflow.
///
/// Written by `log-event` and the `EventLogger` API, and the analyzer's normalized form of every
/// source (OpenClaw logs, transcripts, OTLP). `timestamp` is the start; the end is
/// `timestamp + duration_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    /// When the action started.
    pub timestamp: Timestamp,
    /// `llm`, `tool`, or a free name.
    pub event_type: String,
    /// Session the action belongs to; `None` groups it under `default`.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Model name of an LLM call.
    #[serde(default)]
    pub model: Option<String>,
    /// Provider of an LLM call.
    #[serde(default)]
    pub provider: Option<String>,
    /// Input tokens, excluding cache reads and writes.
    #[serde(default)]
    pub tokens_input: u64,
    /// Output tokens.
    #[serde(default)]
    pub tokens_output: u64,
    /// Input tokens served from the provider's prompt cache.
    #[serde(default)]
    pub tokens_cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    #[serde(default)]
    pub tokens_cache_write: u64,
    /// Duration in milliseconds.
    #[serde(default)]
    pub duration_ms: f64,
    /// Cost in US dollars.
    #[serde(default)]
    pub cost_usd: f64,
    /// `ok` or `error`.
    #[serde(default = "default_status")]
    pub status: String,
    /// Error message of a failed action.
    #[serde(default)]
    pub error: Option<String>,
    /// Tool name of a tool call.
    #[serde(default)]
    pub tool_name: Option<String>,
    /// The process that ran (or logged) the action: its resource cost is charged to the
    /// tracked process tree holding this pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Anything else the source said about the action.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

fn default_status() -> String {
    STATUS_OK.to_owned()
}

impl ActionEvent {
    /// A new successful action of the given type starting at `timestamp`, all counts zero.
    pub fn new(event_type: impl Into<String>, timestamp: Timestamp) -> Self {
        Self {
            timestamp,
            event_type: event_type.into(),
            session_id: None,
            model: None,
            provider: None,
            tokens_input: 0,
            tokens_output: 0,
            tokens_cache_read: 0,
            tokens_cache_write: 0,
            duration_ms: 0.0,
            cost_usd: 0.0,
            status: default_status(),
            error: None,
            tool_name: None,
            pid: None,
            attributes: BTreeMap::new(),
        }
    }

    /// When the action ended; a negative or NaN duration counts as zero, and an end beyond the
    /// representable range is clamped to it.
    pub fn end(&self) -> Timestamp {
        let nanos = (self.duration_ms.max(0.0) * 1e6) as i64;
        Timestamp(self.timestamp.0.saturating_add(nanos))
    }

    /// Whether the action failed.
    pub fn is_error(&self) -> bool {
        self.status == STATUS_ERROR || self.error.is_some()
    }

    /// All tokens the call consumed: input, output and cache reads/writes.
    pub fn tokens_total(&self) -> u64 {
        self.tokens_input
            .saturating_add(self.tokens_output)
            .saturating_add(self.tokens_cache_read)
            .saturating_add(self.tokens_cache_write)
    }
}

/// What happened to a tracked process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessEventKind {
    /// A tracked process created a child process.
    Fork,
    /// A tracked process (or one whose new name matches) executed a program.
    Exec,
    /// A tracked process exited; carries its final counters.
    Exit,
}

/// Resource counters of one process since it started (or since tracking began).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTotals {
    /// On-CPU time in nanoseconds as the scheduler accounts it.
    pub cpu_ns: u64,
    /// Bytes returned by read-family syscalls (rchar).
    pub read_bytes: u64,
    /// Bytes accepted by write-family syscalls (wchar).
    pub write_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Socket bytes sent.
    pub net_sent_bytes: u64,
    /// Socket bytes received.
    pub net_recv_bytes: u64,
}

impl AddAssign for ProcessTotals {
    /// Adds `other` field by field.
    fn add_assign(&mut self, other: Self) {
        self.cpu_ns += other.cpu_ns;
        self.read_bytes += other.read_bytes;
        self.write_bytes += other.write_bytes;
        self.block_read_bytes += other.block_read_bytes;
        self.net_sent_bytes += other.net_sent_bytes;
        self.net_recv_bytes += other.net_recv_bytes;
    }
}

impl From<ProcCounters> for ProcessTotals {
    /// The kernel programs' counters of a process (`on_cpu_ns` is its CPU time).
    fn from(c: ProcCounters) -> Self {
        Self {
            cpu_ns: c.on_cpu_ns,
            read_bytes: c.read_bytes,
            write_bytes: c.write_bytes,
            block_read_bytes: c.block_read_bytes,
            net_sent_bytes: c.net_sent_bytes,
            net_recv_bytes: c.net_recv_bytes,
        }
    }
}

/// One line of `process-events-YYYY-MM-DD.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// When it happened.
    pub timestamp: Timestamp,
    /// fork, exec or exit.
    pub kind: ProcessEventKind,
    /// Process id (tgid) the event is about; for fork, the child.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Process name (comm) after the event.
    pub comm: String,
    /// Executed file for exec events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Exit code for exit events (the value `wait` reports, or 128 + signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Final counters for exit events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<ProcessTotals>,
    /// `ebpf` or `procfs`.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_field_by_field() {
        let mut t = ProcessTotals {
            cpu_ns: 10,
            read_bytes: 1,
            ..ProcessTotals::default()
        };
        t += ProcessTotals::from(ProcCounters {
            on_cpu_ns: 5,
            write_bytes: 2,
            block_read_bytes: 3,
            net_sent_bytes: 4,
            net_recv_bytes: 7,
            ..ProcCounters::default()
        });
        let expected = ProcessTotals {
            cpu_ns: 15,
            read_bytes: 1,
            write_bytes: 2,
            block_read_bytes: 3,
            net_sent_bytes: 4,
            net_recv_bytes: 7,
        };
        assert_eq!(t, expected);
    }

    #[test]
    fn reads_a_minimal_event_and_fills_defaults() {
        let e: ActionEvent = serde_json::from_str(
            r#"{"timestamp":"2026-11-24T10:00:00Z","event_type":"llm","tokens_input":100,"duration_ms":1500.0}"#,
        )
        .expect("valid");
        assert_eq!(e.status, STATUS_OK);
        assert_eq!(e.tokens_total(), 100);
        assert_eq!(e.end().0 - e.timestamp.0, 1_500_000_000);
        assert!(!e.is_error());
    }

    #[test]
    fn end_of_a_huge_duration_clamps_instead_of_overflowing() {
        // A start near 2262 plus a long duration overflowed i64 (panic in debug builds).
        let e: ActionEvent = serde_json::from_str(
            r#"{"timestamp":"2262-04-11T23:47:16.854Z","event_type":"llm","duration_ms":1e300}"#,
        )
        .expect("valid");
        assert_eq!(e.end(), Timestamp(i64::MAX));
        let mut neg = e.clone();
        neg.duration_ms = -5.0;
        assert_eq!(neg.end(), neg.timestamp);
    }

    #[test]
    fn process_event_round_trips() {
        let e = ProcessEvent {
            timestamp: Timestamp(1_795_535_334_389_000_000),
            kind: ProcessEventKind::Exit,
            pid: 42,
            ppid: 1,
            comm: "sh".into(),
            filename: None,
            exit_code: Some(0),
            totals: Some(ProcessTotals {
                cpu_ns: 5,
                ..Default::default()
            }),
            source: "ebpf".into(),
        };
        let line = serde_json::to_string(&e).expect("serializes");
        assert!(line.contains(r#""kind":"exit""#), "{line}");
        assert_eq!(
            serde_json::from_str::<ProcessEvent>(&line).expect("parses"),
            e
        );
    }
}
