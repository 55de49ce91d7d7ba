//! The receiver's capture (`openclaw-otlp-*.jsonl`): one OTLP/JSON export request per line
//! (`resourceSpans` / `resourceMetrics` / `resourceLogs`, plus `signal` and `received_at`).
//! 64-bit integers may be decimal strings or numbers.
//!
//! Spans: `openclaw.model.call` -> LLM action, `openclaw.tool.execution` -> tool action, and the
//! event-like spans (webhook, message, session.stuck, liveness warning, tool loop) -> other
//! actions. Spans carry no session id. Metrics become cumulative points. Log records go through
//! the file-log recogniser. The wire shapes and their accessors are in `wire`.

mod wire;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use trace_claw_common::event::{ActionEvent, EVENT_LLM, EVENT_TOOL, STATUS_ERROR};
use trace_claw_common::names::labels;
use trace_claw_common::time::Timestamp;

use super::action::{Action, Source};
use super::lines::{self, json_reason, LineStats};
use super::openclaw_log::{Level, Recogniser, Record};
use super::parsed::{MetricPoint, Note, Parsed};
use crate::analyze::error::AnalyzeError;
use wire::{attr_str, attributes, each, int, num, text, LogRecord, Metric, Request, Scalar, Span};

/// Span names that become non-LLM, non-tool actions (named without the `openclaw.` prefix).
const EVENT_SPANS: &[&str] = &[
    "openclaw.webhook.processed",
    "openclaw.webhook.error",
    "openclaw.message.processed",
    "openclaw.message.delivery",
    "openclaw.tool.loop",
];

/// Span names that are diagnostics, not work: shown as timeline notes.
const NOTE_SPANS: &[&str] = &["openclaw.liveness.warning", "openclaw.session.stuck"];

/// Reads one capture file.
pub fn read(path: &Path, reader: impl Read) -> Result<Parsed, AnalyzeError> {
    let file: Arc<str> = path.display().to_string().into();
    let mut logs = Recogniser::new(Source::OtlpLog, Arc::clone(&file));
    let mut out = Parsed::default();
    let mut stats = LineStats::default();
    let read = lines::for_each_line(path, reader, |no, line| {
        if lines::is_blank(line) {
            return;
        }
        let v: Request = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => return stats.bad(no, json_reason(&e)),
        };
        // An empty request (`"resourceSpans":[]`, what the receiver stores for `{}` or an
        // empty protobuf) is a valid record with no items.
        let known =
            v.resource_spans.is_some() || v.resource_metrics.is_some() || v.resource_logs.is_some();
        for rs in each(&v.resource_spans) {
            // The sender's pid (the gateway): its tracked tree is charged the actions.
            let pid = rs.resource.as_ref().and_then(|r| {
                let attrs = attributes(&r.attributes);
                attr_str(&attrs, labels::RESOURCE_PROCESS_PID).and_then(|p| p.parse().ok())
            });
            for ss in each(&rs.scope_spans) {
                for span in each(&ss.spans) {
                    if let Some(n) = span_note(span) {
                        out.notes.push(n);
                    } else if let Some(mut e) = span_action(span) {
                        e.pid = pid;
                        out.actions
                            .push(Action::new(e, Source::OtlpSpan, &file, no));
                    }
                }
            }
        }
        for rm in each(&v.resource_metrics) {
            for sm in each(&rm.scope_metrics) {
                for m in each(&sm.metrics) {
                    metric_points(m, &mut out.metric_points);
                }
            }
        }
        for rl in each(&v.resource_logs) {
            for sl in each(&rl.scope_logs) {
                for lr in each(&sl.log_records) {
                    log_record(lr, no, &mut logs);
                }
            }
        }
        if known {
            stats.records += 1;
        } else {
            stats.bad(no, "no resourceSpans, resourceMetrics or resourceLogs");
        }
    })?;
    stats.read(read);
    out.extend(logs.out);
    out.stats = stats;
    Ok(out)
}

fn span_note(span: &Span) -> Option<Note> {
    let name = span.name.as_deref()?;
    if !NOTE_SPANS.contains(&name) {
        return None;
    }
    let start = int(&span.start_time_unix_nano)?;
    let message = span
        .status
        .as_ref()
        .and_then(|s| text(&s.message))
        .unwrap_or("");
    Some(Note {
        timestamp: Timestamp(start),
        level: "warn".into(),
        text: format!("{name}: {message}"),
        session_id: None,
    })
}

fn span_action(span: &Span) -> Option<ActionEvent> {
    let name = span.name.as_deref()?;
    let kind = match name {
        "openclaw.model.call" => EVENT_LLM,
        "openclaw.tool.execution" => EVENT_TOOL,
        n if EVENT_SPANS.contains(&n) => n.trim_start_matches("openclaw."),
        _ => return None,
    };
    let start = int(&span.start_time_unix_nano)?;
    let end = int(&span.end_time_unix_nano).unwrap_or(start);
    let attrs = attributes(&span.attributes);
    let mut e = ActionEvent::new(kind, Timestamp(start));
    e.duration_ms = (end - start).max(0) as f64 / 1e6;
    if kind == EVENT_LLM {
        e.model =
            attr_str(&attrs, "openclaw.model").or_else(|| attr_str(&attrs, "gen_ai.request.model"));
        e.provider = attr_str(&attrs, "openclaw.provider");
    }
    if kind == EVENT_TOOL {
        e.tool_name =
            attr_str(&attrs, "openclaw.toolName").or_else(|| attr_str(&attrs, "gen_ai.tool.name"));
    }
    let status = span.status.as_ref();
    let code = status.and_then(|s| s.code.as_ref()).map(|c| &c.0);
    let is_error = matches!(code, Some(Value::String(s)) if s == "STATUS_CODE_ERROR")
        || code.and_then(Value::as_i64) == Some(2)
        || attrs.contains_key("error.type");
    if is_error {
        e.status = STATUS_ERROR.to_owned();
        e.error = status
            .and_then(|s| text(&s.message))
            .map(str::to_owned)
            .or_else(|| attr_str(&attrs, "error.type"))
            .or_else(|| Some("error".to_owned()));
    }
    Some(e)
}

fn series_key(attrs: &Map<String, Value>) -> String {
    let mut parts: Vec<String> = attrs
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    parts.sort();
    parts.join(",")
}

fn metric_points(m: &Metric, out: &mut Vec<MetricPoint>) {
    let Some(name) = m.name.as_deref() else {
        return;
    };
    let (data, histogram) = if let Some(s) = &m.sum {
        (s, false)
    } else if let Some(h) = &m.histogram {
        (h, true)
    } else {
        return;
    };
    for dp in each(&data.data_points) {
        let Some(time) = int(&dp.time_unix_nano) else {
            continue;
        };
        let value = if histogram {
            num(&dp.sum).unwrap_or(0.0)
        } else {
            num(&dp.as_double)
                .or_else(|| num(&dp.as_int))
                .unwrap_or(0.0)
        };
        out.push(MetricPoint {
            name: name.to_owned(),
            series: series_key(&attributes(&dp.attributes)),
            start: int(&dp.start_time_unix_nano).unwrap_or(0),
            time,
            value,
            count: int(&dp.count).unwrap_or(0).max(0) as u64,
            histogram,
        });
    }
}

/// `severityNumber` as a number or as the protobuf JSON enum name (`SEVERITY_NUMBER_WARN`).
fn level(v: &Option<Scalar>) -> Level {
    let severity = match v.as_ref().map(|s| &s.0) {
        Some(Value::String(s)) if s.starts_with("SEVERITY_NUMBER_") => {
            let name = s.trim_start_matches("SEVERITY_NUMBER_");
            let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
            match base {
                "FATAL" => 21,
                "ERROR" => 17,
                "WARN" => 13,
                "INFO" => 9,
                _ => 5,
            }
        }
        Some(_) => int(v).unwrap_or(9),
        None => 9,
    };
    match severity {
        17.. => 5,
        13..=16 => 4,
        9..=12 => 3,
        _ => 2,
    }
}

fn log_record(lr: &LogRecord, line: u64, rec: &mut Recogniser) {
    let time = int(&lr.time_unix_nano)
        .filter(|t| *t > 0)
        .or_else(|| int(&lr.observed_time_unix_nano));
    let (Some(time), Some(message)) = (time, lr.body.as_ref().and_then(|b| text(&b.string_value)))
    else {
        return;
    };
    let fields: Map<String, Value> = attributes(&lr.attributes)
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("openclaw.").map(|k| (k.to_owned(), v)))
        .collect();
    rec.record(&Record {
        time: Timestamp(time),
        level: level(&lr.severity_number),
        message,
        fields: Some(&fields),
        line,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receive::decode::{decode, CaptureLine, Encoding, Signal};

    /// Serializes a request exactly as the receiver writes it to the capture file.
    fn capture_line(signal: Signal, json: &str) -> String {
        let request = decode(signal, Encoding::Json, json.as_bytes()).expect("valid request");
        let line = CaptureLine {
            signal,
            received_at: Timestamp(1_795_535_071_000_000_000),
            request: &request,
        };
        serde_json::to_string(&line).expect("serializes")
    }

    #[test]
    fn reads_what_the_receiver_writes() {
        let spans = capture_line(
            Signal::Traces,
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"process.pid","value":{"intValue":"4242"}}]},"scopeSpans":[{"spans":[
              {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"openclaw.model.call","kind":1,
               "startTimeUnixNano":"1795535071158000000","endTimeUnixNano":"1795535071678000000",
               "attributes":[{"key":"openclaw.model","value":{"stringValue":"m1"}},{"key":"openclaw.model_call.request_bytes","value":{"intValue":"1234"}}],
               "status":{"code":2,"message":"HTTP 500"}},
              {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"openclaw.liveness.warning","kind":1,
               "startTimeUnixNano":"1795535071200000000","endTimeUnixNano":"1795535071200000000","status":{"code":2,"message":"event_loop_delay"}}]}]}]}"#,
        );
        let metrics = capture_line(
            Signal::Metrics,
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
              {"name":"openclaw.tokens","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
                {"startTimeUnixNano":"1","timeUnixNano":"1795535071000000000","asInt":"6791","attributes":[{"key":"openclaw.token","value":{"stringValue":"input"}}]}]}},
              {"name":"openclaw.run.duration_ms","histogram":{"aggregationTemporality":2,"dataPoints":[
                {"startTimeUnixNano":"1","timeUnixNano":"1795535071000000000","count":"3","sum":232005.0,"bucketCounts":["3"],"explicitBounds":[]}]}}]}]}]}"#,
        );
        let logs = capture_line(
            Signal::Logs,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
              {"timeUnixNano":"1795535071138000000","severityNumber":5,"body":{"stringValue":"embedded run agent start: runId=r1"}},
              {"timeUnixNano":"1795535071680000000","severityNumber":17,"body":{"stringValue":"embedded run agent end: runId=r1 isError=true error=HTTP 500"}}]}]}]}"#,
        );
        let text = format!("{spans}\n{metrics}\n{logs}\n");
        let out = read(Path::new("capture.jsonl"), text.as_bytes()).expect("reads");
        assert_eq!(out.stats.records, 3, "{text}");
        assert_eq!(out.stats.bad, 0);
        let span = out
            .actions
            .iter()
            .find(|a| a.source == Source::OtlpSpan)
            .expect("model call span");
        assert_eq!(&*span.event.event_type, EVENT_LLM);
        assert_eq!(span.event.model.as_deref(), Some("m1"));
        assert_eq!(span.event.pid, Some(4242), "the sender's process.pid");
        assert!(span.event.is_error(), "status code 2 is an error");
        assert!((span.event.duration_ms - 520.0).abs() < 1e-9);
        let log = out
            .actions
            .iter()
            .find(|a| a.source == Source::OtlpLog)
            .expect("log action");
        assert!(log.event.is_error());
        assert_eq!(log.run_id.as_deref(), Some("r1"));
        // the liveness span and the ERROR log record are notes
        assert_eq!(out.notes.len(), 2);
        let tokens = out
            .metric_points
            .iter()
            .find(|p| p.name == "openclaw.tokens")
            .expect("tokens");
        assert_eq!(tokens.value, 6791.0);
        assert_eq!(tokens.series, "openclaw.token=input");
        let run = out
            .metric_points
            .iter()
            .find(|p| p.histogram)
            .expect("histogram");
        assert_eq!((run.count, run.value), (3, 232005.0));
    }

    #[test]
    fn empty_requests_are_records_and_unused_fields_are_skipped() {
        let text = concat!(
            "{\"signal\":\"traces\",\"received_at\":\"2026-11-24T10:00:00Z\",\"resourceSpans\":[]}\n",
            "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{\"kvlistValue\":{\"values\":[]}}}]},",
            "\"scopeSpans\":[{\"spans\":[{\"name\":\"openclaw.tool.execution\",\"startTimeUnixNano\":\"1000000\",",
            "\"endTimeUnixNano\":{\"odd\":[1,2]},\"events\":[{\"name\":\"e\"}],",
            "\"attributes\":[{\"key\":\"openclaw.toolName\",\"value\":{\"stringValue\":\"exec\"}},",
            "{\"key\":\"big\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"}]}}}]}]}]}]}\n",
            "{\"resourceSpans\":[0,0]}\n",
        );
        let out = read(Path::new("capture.jsonl"), text.as_bytes()).expect("reads");
        assert_eq!((out.stats.records, out.stats.bad), (2, 1), "{text}");
        let tool = &out.actions[0].event;
        assert_eq!(tool.tool_name.as_deref(), Some("exec"));
        // an object where the end time belongs is skipped: the span ends at its start
        assert_eq!(tool.duration_ms, 0.0);
    }
}
