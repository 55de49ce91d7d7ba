//! One OTLP traces request from actions: each LLM or tool call an agent learns of (the live
//! OpenClaw feed, `log-event`, an application's `EventLogger`) becomes a span named and
//! attributed after the OpenTelemetry GenAI conventions (`chat <model>`, `execute_tool <tool>`),
//! timed by the action, with OpenClaw's session as the conversation. The actions of one session
//! share a trace id (derived from the session id), so a backend shows a session as one trace.

use std::hash::{Hash, Hasher};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use trace_claw_common::event::{ActionEvent, EVENT_LLM, EVENT_TOOL};
use trace_claw_common::names::span as attr;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: u64) -> KeyValue {
    kv(
        key,
        any_value::Value::IntValue(value.min(i64::MAX as u64) as i64),
    )
}

/// A 16-byte trace id: the session's (the same for all its actions), else a random one.
fn trace_id(session: Option<&str>) -> Vec<u8> {
    let halves = match session {
        Some(s) => {
            let half = |salt: u8| {
                let mut h = std::hash::DefaultHasher::new();
                salt.hash(&mut h);
                s.hash(&mut h);
                h.finish()
            };
            [half(1), half(2)]
        }
        None => [fastrand::u64(1..), fastrand::u64(..)],
    };
    halves.iter().flat_map(|h| h.to_be_bytes()).collect()
}

/// The span of one action.
fn to_span(a: &ActionEvent) -> Span {
    let start = a.timestamp.unix_nanos().max(0).unsigned_abs();
    let end = start + (a.duration_ms.max(0.0) * 1e6) as u64;
    let mut attributes = vec![text(attr::EVENT_TYPE, &a.event_type)];
    let (name, kind) = match a.event_type.as_str() {
        EVENT_LLM => {
            attributes.push(text(attr::GEN_AI_OPERATION_NAME, attr::OPERATION_CHAT));
            let model = a.model.as_deref().unwrap_or("unknown");
            (
                format!("{} {model}", attr::OPERATION_CHAT),
                span::SpanKind::Client,
            )
        }
        EVENT_TOOL => {
            attributes.push(text(
                attr::GEN_AI_OPERATION_NAME,
                attr::OPERATION_EXECUTE_TOOL,
            ));
            let tool = a.tool_name.as_deref().unwrap_or("unknown");
            (
                format!("{} {tool}", attr::OPERATION_EXECUTE_TOOL),
                span::SpanKind::Internal,
            )
        }
        other => (other.to_owned(), span::SpanKind::Internal),
    };
    if let Some(m) = &a.model {
        attributes.push(text(attr::GEN_AI_REQUEST_MODEL, m));
    }
    if let Some(p) = &a.provider {
        attributes.push(text(attr::GEN_AI_PROVIDER_NAME, p));
    }
    if let Some(t) = &a.tool_name {
        attributes.push(text(attr::GEN_AI_TOOL_NAME, t));
    }
    if let Some(s) = &a.session_id {
        attributes.push(text(attr::GEN_AI_CONVERSATION_ID, s));
    }
    if let Some(pid) = a.pid {
        attributes.push(int(attr::PROCESS_PID, u64::from(pid)));
    }
    let tokens = a.tokens_input + a.tokens_cache_read + a.tokens_cache_write + a.tokens_output;
    if tokens > 0 {
        let input = a.tokens_input + a.tokens_cache_read + a.tokens_cache_write;
        attributes.push(int(attr::GEN_AI_USAGE_INPUT_TOKENS, input));
        attributes.push(int(attr::GEN_AI_USAGE_OUTPUT_TOKENS, a.tokens_output));
        attributes.push(int(attr::TOKENS_CACHE_READ, a.tokens_cache_read));
        attributes.push(int(attr::TOKENS_CACHE_WRITE, a.tokens_cache_write));
    }
    if a.cost_usd > 0.0 {
        attributes.push(kv(
            attr::COST_USD,
            any_value::Value::DoubleValue(a.cost_usd),
        ));
    }
    let status = if a.is_error() {
        let message = a.error.clone().unwrap_or_else(|| "error".to_owned());
        attributes.push(text(attr::ERROR_TYPE, &message));
        Status {
            code: status::StatusCode::Error as i32,
            message,
        }
    } else {
        Status::default()
    };
    Span {
        trace_id: trace_id(a.session_id.as_deref()),
        span_id: fastrand::u64(1..).to_be_bytes().to_vec(),
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(status),
        ..Default::default()
    }
}

/// One export request holding a span per action.
pub(super) fn to_trace_request(
    actions: &[&ActionEvent],
    resource: &Resource,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "trace-claw".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                spans: actions.iter().map(|a| to_span(a)).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use trace_claw_common::time::Timestamp;

    use super::*;

    fn value<'a>(s: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        s.attributes
            .iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn an_llm_call_becomes_a_genai_chat_span_and_a_session_one_trace() {
        let mut llm = ActionEvent::new(EVENT_LLM, Timestamp(1_000_000_000));
        llm.duration_ms = 1500.0;
        llm.model = Some("gpt-x".into());
        llm.session_id = Some("s1".into());
        llm.tokens_input = 100;
        llm.tokens_cache_read = 900;
        llm.tokens_output = 40;
        let mut tool = ActionEvent::new(EVENT_TOOL, Timestamp(3_000_000_000));
        tool.tool_name = Some("exec".into());
        tool.session_id = Some("s1".into());
        tool.error = Some("exit 1".into());
        let (l, t) = (to_span(&llm), to_span(&tool));
        assert_eq!(l.name, "chat gpt-x");
        assert_eq!(l.end_time_unix_nano - l.start_time_unix_nano, 1_500_000_000);
        assert_eq!(
            value(&l, attr::GEN_AI_USAGE_INPUT_TOKENS),
            Some(&any_value::Value::IntValue(1000))
        );
        assert_eq!(t.name, "execute_tool exec");
        assert_eq!(l.trace_id, t.trace_id, "one session, one trace");
        assert_ne!(l.span_id, t.span_id);
        assert_eq!(
            t.status.as_ref().map(|s| s.code),
            Some(status::StatusCode::Error as i32)
        );
        let other = to_span(&ActionEvent::new(EVENT_LLM, Timestamp(0)));
        assert_ne!(other.trace_id, l.trace_id);
        assert_eq!(other.trace_id.len(), 16);
    }
}
