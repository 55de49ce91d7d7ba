//! The OTLP/JSON shapes of a capture line, reduced to the fields the analyzer reads (everything
//! else is skipped unread), and the accessors that turn OTLP's encodings (64-bit integers as
//! strings, `AnyValue`, attribute lists) into plain values.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A JSON scalar kept as a [`Value`]; an array or object in its place is skipped unread
/// (becoming `Null`), so an oversized one costs no memory.
#[derive(Debug, Default)]
pub(super) struct Scalar(pub(super) Value);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Value::from(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Value::from(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Value::from(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Value::from(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar(Value::from(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(Value::Null))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// One capture line: only the fields the analyzer uses are kept; everything else (resource
/// attributes but the spans', scopes, events, links, bucket counts, unknown keys) is skipped unread, so a line's memory is
/// bounded by what the analyzer keeps, not by its size.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Request {
    pub(super) resource_spans: Option<Vec<ResourceSpans>>,
    pub(super) resource_metrics: Option<Vec<ResourceMetrics>>,
    pub(super) resource_logs: Option<Vec<ResourceLogs>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ResourceSpans {
    pub(super) resource: Option<Resource>,
    pub(super) scope_spans: Option<Vec<ScopeSpans>>,
}

/// The resource of a batch of spans: its attributes name the process that sent them
/// (`process.pid`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Resource {
    pub(super) attributes: Option<Vec<KeyValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ScopeSpans {
    pub(super) spans: Option<Vec<Span>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Span {
    pub(super) name: Option<String>,
    pub(super) trace_id: Option<Scalar>,
    pub(super) start_time_unix_nano: Option<Scalar>,
    pub(super) end_time_unix_nano: Option<Scalar>,
    pub(super) attributes: Option<Vec<KeyValue>>,
    pub(super) status: Option<Status>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Status {
    pub(super) code: Option<Scalar>,
    pub(super) message: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct KeyValue {
    pub(super) key: Option<String>,
    pub(super) value: Option<AnyValue>,
}

/// An OTLP `AnyValue`: arrays and key-value lists are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct AnyValue {
    pub(super) string_value: Option<Scalar>,
    pub(super) int_value: Option<Scalar>,
    pub(super) double_value: Option<Scalar>,
    pub(super) bool_value: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ResourceMetrics {
    pub(super) scope_metrics: Option<Vec<ScopeMetrics>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ScopeMetrics {
    pub(super) metrics: Option<Vec<Metric>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Metric {
    pub(super) name: Option<String>,
    pub(super) sum: Option<MetricData>,
    pub(super) histogram: Option<MetricData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct MetricData {
    pub(super) data_points: Option<Vec<DataPoint>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct DataPoint {
    pub(super) start_time_unix_nano: Option<Scalar>,
    pub(super) time_unix_nano: Option<Scalar>,
    pub(super) as_double: Option<Scalar>,
    pub(super) as_int: Option<Scalar>,
    pub(super) sum: Option<Scalar>,
    pub(super) count: Option<Scalar>,
    pub(super) attributes: Option<Vec<KeyValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ResourceLogs {
    pub(super) scope_logs: Option<Vec<ScopeLogs>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ScopeLogs {
    pub(super) log_records: Option<Vec<LogRecord>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LogRecord {
    pub(super) time_unix_nano: Option<Scalar>,
    pub(super) observed_time_unix_nano: Option<Scalar>,
    pub(super) severity_number: Option<Scalar>,
    pub(super) body: Option<AnyValue>,
    pub(super) attributes: Option<Vec<KeyValue>>,
}

/// The items of an optional repeated field.
pub(super) fn each<T>(v: &Option<Vec<T>>) -> impl Iterator<Item = &T> {
    v.iter().flatten()
}

pub(super) fn int(v: &Option<Scalar>) -> Option<i64> {
    match &v.as_ref()?.0 {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn num(v: &Option<Scalar>) -> Option<f64> {
    match &v.as_ref()?.0 {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub(super) fn text(v: &Option<Scalar>) -> Option<&str> {
    v.as_ref()?.0.as_str()
}

/// The plain JSON value of an OTLP `AnyValue`.
fn any_value(v: &AnyValue) -> Value {
    if let Some(s) = &v.string_value {
        return s.0.clone();
    }
    if v.int_value.is_some() {
        return int(&v.int_value).map_or(Value::Null, Value::from);
    }
    if v.double_value.is_some() {
        return num(&v.double_value).map_or(Value::Null, Value::from);
    }
    if let Some(b) = &v.bool_value {
        return b.0.clone();
    }
    Value::Null
}

/// OTLP `attributes` as a map of plain values.
pub(super) fn attributes(v: &Option<Vec<KeyValue>>) -> Map<String, Value> {
    let mut out = Map::new();
    for kv in each(v) {
        if let (Some(k), Some(val)) = (&kv.key, &kv.value) {
            out.insert(k.clone(), any_value(val));
        }
    }
    out
}

pub(super) fn attr_str(attrs: &Map<String, Value>, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
