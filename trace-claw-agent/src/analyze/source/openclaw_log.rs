//! OpenClaw's JSONL file log (`/tmp/openclaw/openclaw-YYYY-MM-DD.log`, tslog) and the
//! recogniser of its messages, shared with OTLP log records (which carry the same messages).
//!
//! Recognised (subsystem `agent/embedded`): `embedded run start: runId=… sessionId=…` (maps run
//! to session), `embedded run agent start/end: runId=… isError=…` (one model-call attempt),
//! `embedded run tool start/end: runId=… tool=… toolCallId=…`, `session state: sessionId=…
//! sessionKey=…`; ERROR-level lines become notes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use trace_claw_common::event::{ActionEvent, EVENT_LLM, EVENT_TOOL, STATUS_ERROR};
use trace_claw_common::time::Timestamp;

use super::action::{Action, Source};
use super::lines::{self, json_reason, LineStats};
use super::parsed::{Note, Parsed};
use crate::analyze::error::AnalyzeError;

/// Severity, on tslog's scale (2 debug, 3 info, 4 warn, 5 error, 6 fatal).
pub type Level = u8;
/// tslog's ERROR level id.
pub const LEVEL_ERROR: Level = 5;

/// One log record, from either the file log or an OTLP log record.
#[derive(Debug)]
pub struct Record<'a> {
    /// When it was logged.
    pub time: Timestamp,
    /// Severity.
    pub level: Level,
    /// The formatted message.
    pub message: &'a str,
    /// Structured fields logged with the message (`runId`, `isError`, `error`, ...).
    pub fields: Option<&'a serde_json::Map<String, Value>>,
    /// Line (file log) or line of the capture (OTLP).
    pub line: u64,
}

#[derive(Debug, Clone, Default)]
struct Run {
    session_id: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

/// Turns a stream of records into actions, pairing start and end lines.
#[derive(Debug)]
pub struct Recogniser {
    source: Source,
    file: Arc<str>,
    runs: HashMap<String, Run>,
    open_agent: HashMap<String, Timestamp>,
    open_tools: HashMap<String, Timestamp>,
    /// Whether a run's state is dropped at its `embedded run done` line (a live feed, which
    /// must not grow with the runs it has seen).
    forget_done_runs: bool,
    /// The output so far.
    pub out: Parsed,
}

/// The value of `key=` in a `k=v k=v` message: up to the next space, or a quoted string.
pub fn kv<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    let mut search = 0;
    while let Some(found) = message[search..].find(key) {
        let at = search + found;
        let after = at + key.len();
        let boundary = at == 0 || message.as_bytes()[at - 1] == b' ';
        if boundary && message.as_bytes().get(after) == Some(&b'=') {
            let rest = &message[after + 1..];
            if let Some(quoted) = rest.strip_prefix('"') {
                return Some(quoted.find('"').map_or(quoted, |end| &quoted[..end]));
            }
            return Some(rest.split(' ').next().unwrap_or(rest));
        }
        search = after;
    }
    None
}

impl Recogniser {
    /// A recogniser for records of `file`, attributing actions to `source`.
    pub fn new(source: Source, file: Arc<str>) -> Self {
        Self {
            source,
            file,
            runs: HashMap::new(),
            open_agent: HashMap::new(),
            open_tools: HashMap::new(),
            forget_done_runs: false,
            out: Parsed::default(),
        }
    }

    /// A recogniser for a log followed as it grows: a run's state is dropped when the run is
    /// done, and [`Recogniser::forget_open_before`] drops calls that never ended.
    pub fn live(source: Source, file: Arc<str>) -> Self {
        Self {
            forget_done_runs: true,
            ..Self::new(source, file)
        }
    }

    /// Forgets the calls still open that started before `time` (their end line was lost, e.g.
    /// the gateway died), so that a long-running follower holds only recent state.
    pub fn forget_open_before(&mut self, time: Timestamp) {
        self.open_agent.retain(|_, start| *start >= time);
        self.open_tools.retain(|_, start| *start >= time);
    }

    fn field<'a>(r: &'a Record<'_>, key: &str) -> Option<Cow<'a, str>> {
        if let Some(v) = r.fields.and_then(|f| f.get(key)) {
            return match v {
                Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                Value::Null => None,
                other => Some(Cow::Owned(other.to_string())),
            };
        }
        kv(r.message, key).map(Cow::Borrowed)
    }

    /// Feeds one record.
    pub fn record(&mut self, r: &Record<'_>) {
        if r.level >= LEVEL_ERROR {
            self.out.notes.push(Note {
                timestamp: r.time,
                level: "error".into(),
                text: r.message.chars().take(300).collect(),
                session_id: None,
            });
        }
        let Some(rest) = r.message.strip_prefix("embedded run ") else {
            if r.message.starts_with("session state:") {
                if let (Some(id), Some(key)) =
                    (kv(r.message, "sessionId"), kv(r.message, "sessionKey"))
                {
                    self.out.session_keys.push((id.to_owned(), key.to_owned()));
                }
            }
            return;
        };
        let Some(run_id) = Self::field(r, "runId").map(Cow::into_owned) else {
            return;
        };
        if self.forget_done_runs && rest.starts_with("done:") {
            self.runs.remove(&run_id);
            self.open_agent.remove(&run_id);
        } else if rest.starts_with("start:") {
            let run = Run {
                session_id: kv(r.message, "sessionId").map(str::to_owned),
                provider: kv(r.message, "provider").map(str::to_owned),
                model: kv(r.message, "model").map(str::to_owned),
            };
            if let Some(s) = &run.session_id {
                self.out.run_sessions.push((run_id.clone(), s.clone()));
            }
            self.runs.insert(run_id, run);
        } else if rest.starts_with("agent start") {
            self.open_agent.insert(run_id, r.time);
        } else if rest.starts_with("agent end") {
            let Some(start) = self.open_agent.remove(&run_id) else {
                return;
            };
            let mut e = self.action(EVENT_LLM, &run_id, start, r.time);
            if let Some(m) = Self::field(r, "model") {
                e.model = Some(m.into_owned());
            }
            if let Some(p) = Self::field(r, "provider") {
                e.provider = Some(p.into_owned());
            }
            if Self::field(r, "isError").as_deref() == Some("true") {
                e.status = STATUS_ERROR.to_owned();
                let error = match r.fields.and_then(|f| f.get("error")) {
                    Some(Value::String(s)) => s.clone(),
                    _ => r
                        .message
                        .split_once(" error=")
                        .map_or_else(|| "error".to_owned(), |(_, t)| t.to_owned()),
                };
                e.error = Some(error);
            }
            self.push(e, run_id, r.line);
        } else if rest.starts_with("tool start") {
            if let Some(id) = Self::field(r, "toolCallId") {
                self.open_tools.insert(id.into_owned(), r.time);
            }
        } else if rest.starts_with("tool end") {
            let Some(id) = Self::field(r, "toolCallId").map(Cow::into_owned) else {
                return;
            };
            let Some(start) = self.open_tools.remove(&id) else {
                return;
            };
            let mut e = self.action(EVENT_TOOL, &run_id, start, r.time);
            e.tool_name = Self::field(r, "tool").map(Cow::into_owned);
            if Self::field(r, "isError").as_deref() == Some("true") {
                e.status = STATUS_ERROR.to_owned();
                e.error = Some("tool error".into());
            }
            self.push(e, run_id, r.line);
        }
    }

    fn action(&self, kind: &str, run_id: &str, start: Timestamp, end: Timestamp) -> ActionEvent {
        let mut e = ActionEvent::new(kind, start);
        e.duration_ms = (end.0 - start.0).max(0) as f64 / 1e6;
        if let Some(run) = self.runs.get(run_id) {
            e.session_id.clone_from(&run.session_id);
            if kind == EVENT_LLM {
                e.provider.clone_from(&run.provider);
                e.model.clone_from(&run.model);
            }
        }
        e
    }

    fn push(&mut self, e: ActionEvent, run_id: String, line: u64) {
        let mut a = Action::new(e, self.source, &self.file, line);
        a.run_id = Some(run_id.into_boxed_str());
        self.out.actions.push(a);
    }
}

#[derive(Deserialize)]
struct FileLine<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(rename = "_meta")]
    meta: Option<Meta<'a>>,
    #[serde(rename = "1")]
    arg1: Option<Value>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow)]
    date: Option<Cow<'a, str>>,
    #[serde(rename = "logLevelId")]
    level: Option<u8>,
}

/// Parses one line of the file log (line `no`) and feeds its record to `rec`; a line that is
/// not a log record is counted in `stats`.
pub fn feed_line(rec: &mut Recogniser, stats: &mut LineStats, no: u64, line: &[u8]) {
    if lines::is_blank(line) {
        return;
    }
    let l: FileLine<'_> = match serde_json::from_slice(line) {
        Ok(l) => l,
        Err(e) => return stats.bad(no, json_reason(&e)),
    };
    let time = l
        .time
        .as_deref()
        .or(l.meta.as_ref().and_then(|m| m.date.as_deref()))
        .and_then(Timestamp::parse_rfc3339);
    let Some(time) = time else {
        return stats.bad(no, "missing or invalid 'time'");
    };
    let Some(message) = l.message.as_deref() else {
        return stats.bad(no, "missing field 'message'");
    };
    stats.records += 1;
    rec.record(&Record {
        time,
        level: l.meta.as_ref().and_then(|m| m.level).unwrap_or(3),
        message,
        fields: l.arg1.as_ref().and_then(Value::as_object),
        line: no,
    });
}

/// Reads one OpenClaw file log.
pub fn read(path: &Path, reader: impl Read) -> Result<Parsed, AnalyzeError> {
    let mut rec = Recogniser::new(Source::OpenclawLog, path.display().to_string().into());
    let mut stats = LineStats::default();
    let read = lines::for_each_line(path, reader, |no, line| {
        feed_line(&mut rec, &mut stats, no, line);
    })?;
    stats.read(read);
    let mut out = rec.out;
    out.stats = stats;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_reads_plain_and_quoted_values() {
        let m = r#"session state: sessionId=abc sessionKey=agent:main:main prev=idle reason="run started" queueDepth=0"#;
        assert_eq!(kv(m, "sessionId"), Some("abc"));
        assert_eq!(kv(m, "sessionKey"), Some("agent:main:main"));
        assert_eq!(kv(m, "reason"), Some("run started"));
        assert_eq!(kv(m, "Id"), None);
        assert_eq!(kv(m, "queueDepth"), Some("0"));
    }
}
