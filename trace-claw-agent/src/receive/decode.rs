//! OTLP/HTTP request bodies -> typed export requests, and the capture line written for each.
//!
//! Accepts the two OTLP/HTTP encodings (`application/x-protobuf`, `application/json`), plain or
//! gzip (`Content-Encoding: gzip`). Chunked transfer encoding is undone by the HTTP layer before
//! the body gets here. Decompression is bounded, so a small gzip bomb is a 413, not an OOM.

use std::io::Read;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;
use trace_claw_common::time::Timestamp;

/// Which OTLP signal a request carries, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// `/v1/traces`
    Traces,
    /// `/v1/metrics`
    Metrics,
    /// `/v1/logs`
    Logs,
}

impl Signal {
    /// The signal served at `path`, if any.
    pub fn from_path(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/v1/traces" => Some(Self::Traces),
            "/v1/metrics" => Some(Self::Metrics),
            "/v1/logs" => Some(Self::Logs),
            _ => None,
        }
    }

    /// `traces`, `metrics` or `logs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traces => "traces",
            Self::Metrics => "metrics",
            Self::Logs => "logs",
        }
    }
}

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` value (parameters such as `charset` ignored).
    pub fn from_content_type(value: &str) -> Option<Self> {
        let mime = value.split(';').next().unwrap_or_default().trim();
        if mime.eq_ignore_ascii_case("application/x-protobuf")
            || mime.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Self::Protobuf)
        } else if mime.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of responses in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// One decoded export request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ExportRequest {
    /// `ExportTraceServiceRequest`
    Traces(ExportTraceServiceRequest),
    /// `ExportMetricsServiceRequest`
    Metrics(ExportMetricsServiceRequest),
    /// `ExportLogsServiceRequest`
    Logs(ExportLogsServiceRequest),
}

impl ExportRequest {
    /// The signal it carries.
    pub fn signal(&self) -> Signal {
        match self {
            Self::Traces(_) => Signal::Traces,
            Self::Metrics(_) => Signal::Metrics,
            Self::Logs(_) => Signal::Logs,
        }
    }

    /// Spans, metric data points or log records it holds.
    pub fn item_count(&self) -> usize {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        match self {
            Self::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Self::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(|m| match &m.data {
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    Some(Data::Sum(s)) => s.data_points.len(),
                    Some(Data::Histogram(h)) => h.data_points.len(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                })
                .sum(),
            Self::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
        }
    }
}

/// One line of `openclaw-otlp-YYYY-MM-DD.jsonl`: the request in OTLP/JSON (top-level
/// `resourceSpans`, `resourceMetrics` or `resourceLogs`) plus `signal` and `received_at`.
#[derive(Debug, Serialize)]
pub struct CaptureLine<'a> {
    /// `traces`, `metrics` or `logs`.
    pub signal: Signal,
    /// When the receiver got the request.
    pub received_at: Timestamp,
    /// The request itself.
    #[serde(flatten)]
    pub request: &'a ExportRequest,
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body, once decompressed, exceeds the limit (HTTP 413).
    #[error("body exceeds {limit} bytes once decompressed")]
    TooLarge {
        /// `receiver.max_body_bytes`.
        limit: usize,
    },
    /// `Content-Encoding` is neither absent, `identity` nor `gzip`.
    #[error("unsupported content encoding '{0}'")]
    UnsupportedEncoding(String),
    /// The gzip stream is corrupt.
    #[error("invalid gzip body")]
    Gzip(#[source] std::io::Error),
    /// The protobuf does not parse as the signal's export request.
    #[error("invalid protobuf {} request", .signal.as_str())]
    Protobuf {
        /// The signal of the path.
        signal: Signal,
        /// What prost reported.
        #[source]
        source: prost::DecodeError,
    },
    /// The JSON does not parse as the signal's export request.
    #[error("invalid OTLP/JSON {} request", .signal.as_str())]
    Json {
        /// The signal of the path.
        signal: Signal,
        /// What serde reported, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

/// Undoes `Content-Encoding` (absent, `identity` or `gzip`), refusing more than `limit` bytes.
pub fn decompress<'a>(
    body: &'a [u8],
    content_encoding: Option<&str>,
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, DecodeError> {
    match content_encoding.map(str::trim) {
        None | Some("") => Ok(body.into()),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(body.into()),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let max = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(body)
                .take(max)
                .read_to_end(&mut out)
                .map_err(DecodeError::Gzip)?;
            if out.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            Ok(out.into())
        }
        Some(other) => Err(DecodeError::UnsupportedEncoding(other.to_owned())),
    }
}

/// Parses an uncompressed body of `signal` in `encoding`.
pub fn decode(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<ExportRequest, DecodeError> {
    Ok(match signal {
        Signal::Traces => ExportRequest::Traces(parse(signal, encoding, body)?),
        Signal::Metrics => ExportRequest::Metrics(parse(signal, encoding, body)?),
        Signal::Logs => ExportRequest::Logs(parse(signal, encoding, body)?),
    })
}

/// Parses a body of `signal` in `encoding` as the request type `T` of that signal.
fn parse<T: Message + Default + DeserializeOwned>(
    signal: Signal,
    encoding: Encoding,
    body: &[u8],
) -> Result<T, DecodeError> {
    match encoding {
        Encoding::Protobuf => {
            T::decode(body).map_err(|source| DecodeError::Protobuf { signal, source })
        }
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|source| DecodeError::Json { signal, source })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const SPAN_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"t"}}]},"scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"op","kind":1,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;

    #[test]
    fn json_round_trips_to_the_otlp_json_shape() {
        let request = decode(Signal::Traces, Encoding::Json, SPAN_JSON.as_bytes()).expect("valid");
        assert_eq!(request.item_count(), 1);
        let line = CaptureLine {
            signal: Signal::Traces,
            received_at: Timestamp(1_544_712_662_000_000_000),
            request: &request,
        };
        let out: serde_json::Value = serde_json::to_value(&line).expect("serializes");
        assert_eq!(out["signal"], "traces");
        assert_eq!(out["received_at"], "2018-12-13T14:51:02.000000Z");
        let span = &out["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(span["spanId"], "eee19b7ec3c1b174");
        assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
        assert_eq!(span["attributes"][0]["value"]["intValue"], "42");
    }

    #[test]
    fn protobuf_and_json_of_one_request_agree() {
        let ExportRequest::Traces(from_json) =
            decode(Signal::Traces, Encoding::Json, SPAN_JSON.as_bytes()).expect("valid")
        else {
            panic!("not traces");
        };
        let pb = from_json.encode_to_vec();
        let from_pb = decode(Signal::Traces, Encoding::Protobuf, &pb).expect("valid");
        assert_eq!(from_pb, ExportRequest::Traces(from_json));
    }

    #[test]
    fn gzip_is_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![0u8; 100_000]).expect("compress");
        let body = gz.finish().expect("compress");
        assert_eq!(
            decompress(&body, Some("gzip"), 100_000)
                .expect("fits")
                .len(),
            100_000
        );
        assert!(matches!(
            decompress(&body, Some("gzip"), 99_999),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(b"nope", Some("br"), 10),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(Signal::Metrics, Encoding::Protobuf, &[0xff; 7]).is_err());
        assert!(decode(Signal::Logs, Encoding::Json, b"{\"resourceLogs\":7}").is_err());
        assert_eq!(Signal::from_path("/v1/logs/"), Some(Signal::Logs));
        assert_eq!(
            Encoding::from_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
    }
}
