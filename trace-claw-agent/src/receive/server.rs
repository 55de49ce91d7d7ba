//! The OTLP/HTTP server: one hyper HTTP/1.1 connection task per client on the receiver's own
//! thread, bounded body size (413), a deadline for each request body (408) and for headers,
//! malformed bodies answered 400 with the reason. Every request that decodes becomes one line of
//! the capture file and, if configured, is forwarded unchanged.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use prost::Message;
use trace_claw_common::time::Timestamp;

use super::decode::{self, CaptureLine, DecodeError, Encoding, Signal};
use crate::daily_jsonl::DailyJsonl;
use crate::error::error_chain;
use crate::http_client::HttpPoster;

/// The `google.rpc.Status` message OTLP/HTTP servers answer errors with.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// What every connection shares.
pub(super) struct Shared {
    /// The capture file.
    pub writer: Mutex<DailyJsonl>,
    /// `receiver.max_body_bytes`.
    pub max_body_bytes: usize,
    /// `receiver.request_timeout_seconds`.
    pub request_timeout: Duration,
    /// Requests refused (any 4xx/5xx answer).
    pub rejected: Arc<AtomicU64>,
    /// Status codes of refusals already logged (each is logged once).
    pub rejected_statuses: Mutex<std::collections::HashSet<u16>>,
    /// Requests written to the capture file.
    pub accepted: Arc<AtomicU64>,
    /// Upstream base URL and client, when forwarding.
    pub forward: Option<(String, HttpPoster)>,
    /// Last capture-file error, so each distinct one is logged once.
    pub write_error: Mutex<Option<String>>,
    /// Last forwarding error, likewise.
    pub forward_error: Arc<Mutex<Option<String>>>,
}

/// A refused request: status and reason.
struct Reject {
    status: StatusCode,
    reason: String,
}

impl Reject {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// Serves one request; never fails (errors are HTTP answers).
pub(super) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let encoding = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type);
    match receive(&shared, req, encoding).await {
        Ok(encoding) => Ok(success(encoding)),
        Err(reject) => {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            let first_of_kind = shared
                .rejected_statuses
                .lock()
                .is_ok_and(|mut seen| seen.insert(reject.status.as_u16()));
            if first_of_kind {
                log::warn!(
                    "otlp receiver: refused a request with {}: {} (further {} refusals are counted in {}, not logged)",
                    reject.status,
                    reject.reason,
                    reject.status.as_u16(),
                    trace_claw_common::names::RECEIVER_REJECTED_REQUESTS.name
                );
            } else {
                log::debug!("otlp receiver: {} {}", reject.status, reject.reason);
            }
            Ok(failure(reject, encoding))
        }
    }
}

async fn receive(
    shared: &Shared,
    req: Request<Incoming>,
    encoding: Option<Encoding>,
) -> Result<Encoding, Reject> {
    let Some(signal) = Signal::from_path(req.uri().path()) else {
        return Err(Reject::new(
            StatusCode::NOT_FOUND,
            format!(
                "no such path '{}': use /v1/traces, /v1/metrics or /v1/logs",
                req.uri().path()
            ),
        ));
    };
    if req.method() != Method::POST {
        return Err(Reject::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method '{}' not allowed: use POST", req.method()),
        ));
    }
    let Some(encoding) = encoding else {
        return Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type must be application/x-protobuf or application/json",
        ));
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = shared.max_body_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let content_encoding = req
        .headers()
        .get(CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let content_type = req.headers().get(CONTENT_TYPE).cloned();

    let collected = tokio::time::timeout(
        shared.request_timeout,
        Limited::new(req.into_body(), limit).collect(),
    )
    .await
    .map_err(|_| {
        Reject::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("body not received within {:?}", shared.request_timeout),
        )
    })?;
    let raw = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large(limit)),
        Err(e) => {
            return Err(Reject::new(
                StatusCode::BAD_REQUEST,
                format!("cannot read body: {}", error_chain(e.as_ref())),
            ))
        }
    };
    let body = decode::decompress(&raw, content_encoding.as_deref(), limit).map_err(reject_of)?;
    let request = decode::decode(signal, encoding, &body).map_err(reject_of)?;
    drop(body);

    let line = CaptureLine {
        signal,
        received_at: Timestamp::now(),
        request: &request,
    };
    write(shared, &line);
    shared.accepted.fetch_add(1, Ordering::Relaxed);
    forward(shared, signal, content_type, content_encoding, raw);
    Ok(encoding)
}

fn too_large(limit: usize) -> Reject {
    Reject::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body exceeds receiver.max_body_bytes ({limit})"),
    )
}

fn reject_of(e: DecodeError) -> Reject {
    let status = match e {
        DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        DecodeError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    Reject::new(status, error_chain(&e))
}

/// Appends one line; a failed write is kept by the writer and retried with the next request.
fn write(shared: &Shared, line: &CaptureLine<'_>) {
    let Ok(mut writer) = shared.writer.lock() else {
        report(&shared.write_error, "capture writer poisoned".to_owned());
        return;
    };
    let result = writer
        .append(line.received_at, line)
        .and_then(|()| writer.flush());
    drop(writer);
    match result {
        Ok(()) => recovered(&shared.write_error, "capture file"),
        Err(e) => report(&shared.write_error, error_chain(&e)),
    }
}

/// Re-sends the original body to `<base>/v1/<signal>` in the background, so the client is
/// answered at once; failures are logged once per distinct error.
fn forward(
    shared: &Shared,
    signal: Signal,
    content_type: Option<http::HeaderValue>,
    content_encoding: Option<String>,
    body: Bytes,
) {
    let Some((base, poster)) = &shared.forward else {
        return;
    };
    let url = format!("{}/v1/{}", base.trim_end_matches('/'), signal.as_str());
    let poster = poster.clone();
    let state = Arc::clone(&shared.forward_error);
    tokio::spawn(async move {
        match poster
            .post(&url, content_type, content_encoding.as_deref(), body)
            .await
        {
            Ok(()) => recovered(&state, "forwarding"),
            Err(e) => report(&state, format!("forward to '{url}': {}", error_chain(&e))),
        }
    });
}

/// Logs `message` unless it is the error `last` already holds.
fn report(last: &Mutex<Option<String>>, message: String) {
    if let Ok(mut last) = last.lock() {
        if last.as_deref() != Some(message.as_str()) {
            log::error!("otlp receiver: {message}");
            *last = Some(message);
        }
    }
}

/// Logs a recovery once after errors.
fn recovered(last: &Mutex<Option<String>>, what: &str) {
    if let Ok(mut last) = last.lock() {
        if last.take().is_some() {
            log::info!("otlp receiver: {what} recovered");
        }
    }
}

/// 200 with an empty `Export*ServiceResponse` in the request's encoding.
fn success(encoding: Encoding) -> Response<Full<Bytes>> {
    let body = match encoding {
        Encoding::Protobuf => Bytes::new(),
        Encoding::Json => Bytes::from_static(b"{}"),
    };
    respond(StatusCode::OK, encoding.content_type(), body)
}

/// The status code and a `google.rpc.Status` naming the reason, in the request's encoding
/// (plain text when the content type was not understood).
fn failure(reject: Reject, encoding: Option<Encoding>) -> Response<Full<Bytes>> {
    // gRPC codes: INVALID_ARGUMENT for client errors, UNAVAILABLE otherwise.
    let code = if reject.status.is_client_error() {
        3
    } else {
        14
    };
    let status = Status {
        code,
        message: reject.reason,
    };
    match encoding {
        Some(Encoding::Protobuf) => respond(
            reject.status,
            Encoding::Protobuf.content_type(),
            status.encode_to_vec().into(),
        ),
        Some(Encoding::Json) => respond(
            reject.status,
            Encoding::Json.content_type(),
            serde_json::json!({"code": status.code, "message": status.message})
                .to_string()
                .into(),
        ),
        None => respond(reject.status, "text/plain; charset=utf-8", {
            let mut text = status.message;
            text.push('\n');
            text.into()
        }),
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}
