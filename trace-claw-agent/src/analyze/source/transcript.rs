//! OpenClaw session transcripts (`agents/<agent>/sessions/<sessionId>.jsonl`) and the
//! `sessions.json` index.
//!
//! Each assistant message is one LLM call: `message.timestamp` (epoch ms) is when the request
//! started, the outer ISO `timestamp` when the message was written (the call's end); `usage`
//! holds tokens (input excludes cache) and cost in USD. Failed calls are assistant messages with
//! `stopReason: "error"` and zero usage. Each `toolResult` message is one tool call, ending at
//! its timestamp and lasting `details.durationMs`.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use trace_claw_common::event::{ActionEvent, EVENT_LLM, EVENT_TOOL, STATUS_ERROR};
use trace_claw_common::time::Timestamp;

use super::action::{Action, Source};
use super::lines::{self, json_reason};
use super::parsed::{Parsed, SessionInfo};
use crate::analyze::error::AnalyzeError;

/// Reads one transcript.
pub fn read(path: &Path, reader: impl Read) -> Result<Parsed, AnalyzeError> {
    let session_id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".jsonl"))
        .map(str::to_owned);
    let mut events = Events::new(
        path.display().to_string().into(),
        Source::Transcript,
        session_id,
    );
    let mut out = Parsed::default();
    let read = lines::for_each_line(path, reader, |no, line| {
        events.read(no, line, &mut out);
    })?;
    out.stats.read(read);
    Ok(out)
}

/// One session's transcript events as they are read, one JSON object each, in order (lines
/// of a JSONL file, or rows of OpenClaw's SQLite store): the session, provider and model so
/// far, which later messages inherit.
#[derive(Debug)]
pub struct Events {
    file: Arc<str>,
    source: Source,
    session_id: Option<String>,
    provider: Option<String>,
    model: Option<String>,
}

impl Events {
    /// A transcript read from `file`, its actions attributed to `source`, of session
    /// `session_id` until a `session` header names one.
    pub fn new(file: Arc<str>, source: Source, session_id: Option<String>) -> Self {
        Self {
            file,
            source,
            session_id,
            provider: None,
            model: None,
        }
    }

    /// Reads event `no` (its line or row number) into `out`: an action per message that is a
    /// call, a bad line counted for anything unusable.
    pub fn read(&mut self, no: u64, line: &[u8], out: &mut Parsed) {
        if lines::is_blank(line) {
            return;
        }
        let v: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return out.stats.bad(no, json_reason(&e)),
        };
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return out.stats.bad(no, "missing field 'type'");
        };
        // A message line counts as a record only once it has yielded its action (or is a
        // message that yields none); a rejected one counts once, as bad.
        if kind != "message" {
            out.stats.records += 1;
        }
        match kind {
            "session" => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    self.session_id = Some(id.to_owned());
                }
            }
            "model_change" => {
                self.provider = str_field(&v, "provider");
                self.model = str_field(&v, "modelId");
            }
            "message" => {
                let Some(msg) = v.get("message") else {
                    return out.stats.bad(no, "message line without 'message'");
                };
                let written = v
                    .get("timestamp")
                    .and_then(Value::as_str)
                    .and_then(Timestamp::parse_rfc3339);
                let at = msg.get("timestamp").and_then(epoch);
                let action = match msg.get("role").and_then(Value::as_str) {
                    Some("assistant") => llm_call(msg, at, written, &self.provider, &self.model),
                    Some("toolResult") => tool_call(msg, at, written),
                    _ => {
                        out.stats.records += 1;
                        return;
                    }
                };
                match action {
                    Some(mut e) => {
                        out.stats.records += 1;
                        e.session_id.clone_from(&self.session_id);
                        out.actions
                            .push(Action::new(e, self.source, &self.file, no));
                    }
                    None => out.stats.bad(no, "message without a valid timestamp"),
                }
            }
            _ => {}
        }
    }
}

/// An epoch number (ms in transcripts), exact for integers.
fn epoch(v: &Value) -> Option<Timestamp> {
    match v.as_i64() {
        Some(ms) if (100_000_000_000..100_000_000_000_000).contains(&ms) => {
            Some(Timestamp(ms.checked_mul(1_000_000)?))
        }
        _ => v.as_f64().and_then(Timestamp::from_unix_number),
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0)
}

fn llm_call(
    msg: &Value,
    started: Option<Timestamp>,
    written: Option<Timestamp>,
    provider: &Option<String>,
    model: &Option<String>,
) -> Option<ActionEvent> {
    let start = started.or(written)?;
    let end = written.unwrap_or(start).max(start);
    let mut e = ActionEvent::new(EVENT_LLM, start);
    e.duration_ms = (end.0 - start.0) as f64 / 1e6;
    e.model = str_field(msg, "model").or_else(|| model.clone());
    e.provider = str_field(msg, "provider").or_else(|| provider.clone());
    if let Some(u) = msg.get("usage") {
        e.tokens_input = u64_field(u, "input");
        e.tokens_output = u64_field(u, "output");
        e.tokens_cache_read = u64_field(u, "cacheRead");
        e.tokens_cache_write = u64_field(u, "cacheWrite");
        e.cost_usd = u
            .get("cost")
            .and_then(|c| c.get("total"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
    }
    let stop = msg.get("stopReason").and_then(Value::as_str);
    if stop == Some("error") || msg.get("errorMessage").is_some() {
        e.status = STATUS_ERROR.to_owned();
        e.error = Some(str_field(msg, "errorMessage").unwrap_or_else(|| "error".to_owned()));
    }
    Some(e)
}

fn tool_call(
    msg: &Value,
    ended: Option<Timestamp>,
    written: Option<Timestamp>,
) -> Option<ActionEvent> {
    let end = ended.or(written)?;
    let details = msg.get("details");
    let duration_ms = details
        .and_then(|d| d.get("durationMs"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
        .max(0.0);
    let mut e = ActionEvent::new(EVENT_TOOL, Timestamp(end.0 - (duration_ms * 1e6) as i64));
    e.duration_ms = duration_ms;
    e.tool_name = str_field(msg, "toolName");
    let failed = msg.get("isError").and_then(Value::as_bool) == Some(true)
        || details
            .and_then(|d| d.get("status"))
            .and_then(Value::as_str)
            .is_some_and(|s| s == "failed" || s == "error");
    if failed {
        e.status = STATUS_ERROR.to_owned();
        let text = msg
            .get("content")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|b| b.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("tool failed");
        e.error = Some(text.chars().take(200).collect());
    }
    Some(e)
}

/// The key of a `sessions.json` entry under which trace-claw's copy of OpenClaw's SQLite
/// stores keeps what `session_windows` and `session_nodes` say of the session
/// ([`SessionInfo`]); OpenClaw's own index has no such key.
pub const SESSION_INFO_KEY: &str = "traceClawSessionInfo";

/// Reads `sessions.json`: `{ "<session key>": { "sessionId": "...", ... }, ... }`, streamed;
/// an entry's [`SESSION_INFO_KEY`] object, when there is one, gives the session's info.
pub fn read_index(_path: &Path, reader: impl Read) -> Result<Parsed, AnalyzeError> {
    let mut out = Parsed::default();
    let reader = std::io::BufReader::new(reader);
    match serde_json::from_reader::<_, serde_json::Map<String, Value>>(reader) {
        Ok(map) => {
            for (key, entry) in map {
                if let Some(id) = entry.get("sessionId").and_then(Value::as_str) {
                    if let Some(info) = entry.get(SESSION_INFO_KEY) {
                        match SessionInfo::deserialize(info) {
                            Ok(info) => out.session_infos.push((id.to_owned(), info)),
                            Err(e) => out.stats.bad(1, format!("{key}: {SESSION_INFO_KEY}: {e}")),
                        }
                    }
                    out.session_keys.push((id.to_owned(), key));
                    out.stats.records += 1;
                }
            }
            out.stats.lines = 1;
        }
        Err(e) => out.stats.bad(e.line() as u64, json_reason(&e)),
    }
    Ok(out)
}
