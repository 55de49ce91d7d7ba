//! The Prometheus pull endpoint (`prometheus.listen`, `--prometheus-listen`): `GET /metrics`
//! answers the latest tick's samples in the text exposition format ([`text`]), named as the OTel
//! Collector's Prometheus exporter names them ([`naming`]), so the same dashboards work whether
//! Prometheus scrapes the agent or the collector.
//!
//! The collect loop only copies the tick into a shared buffer (reusing its allocations); the
//! text is rendered on the server's own thread when a scrape arrives. Requests are bounded: the
//! head by a small read buffer and a deadline, and a request with a body is refused (413).

pub mod naming;
pub mod text;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::sample::MetricSample;

use super::{resource_attributes, ExportError, Exporter};
use crate::config::Config;
use crate::http_server::{ServerOptions, ServerThread};

/// The path scrapes ask for.
pub const METRICS_PATH: &str = "/metrics";
/// Time a scraper has to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection's read buffer, hence the largest request head (hyper's minimum is 8 KiB).
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// What the collect loop and the server share.
struct Latest {
    /// The last tick's samples.
    samples: Mutex<Vec<MetricSample>>,
    /// Labels every series gets: the resource attributes as Prometheus labels.
    resource: Vec<(String, String)>,
}

/// The pull endpoint: a server thread and the tick it serves.
pub struct PrometheusExporter {
    latest: Arc<Latest>,
    server: Option<ServerThread>,
}

impl PrometheusExporter {
    /// Binds `listen` and serves `/metrics` on a new thread.
    pub fn new(listen: &str, config: &Config) -> Result<Self, ExportError> {
        let bind_err = |source| ExportError::Listen {
            addr: listen.to_owned(),
            source,
        };
        let listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
        let latest = Arc::new(Latest {
            samples: Mutex::new(Vec::new()),
            resource: text::resource_labels(&resource_attributes(
                &config.otel.service_name,
                &config.otel.resource_attributes,
            )),
        });
        let options = ServerOptions {
            name: "prometheus",
            header_timeout: HEADER_TIMEOUT,
            max_buf_bytes: Some(MAX_REQUEST_HEAD_BYTES),
        };
        let shared = Arc::clone(&latest);
        let handler = move |req| handle(Arc::clone(&shared), req);
        let server = ServerThread::spawn(listener, options, handler, || {}).map_err(bind_err)?;
        log::info!(
            "prometheus endpoint listening on http://{}{METRICS_PATH}",
            server.local_addr()
        );
        Ok(Self {
            latest,
            server: Some(server),
        })
    }
}

impl Exporter for PrometheusExporter {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    fn describe(&self) -> String {
        self.server.as_ref().map_or_else(String::new, |s| {
            format!("http://{}{METRICS_PATH}", s.local_addr())
        })
    }

    fn export(&mut self, samples: &[MetricSample], _: &[ProcessEvent]) -> Result<(), ExportError> {
        let mut latest = self
            .latest
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        samples.clone_into(&mut latest);
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), ExportError> {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        Ok(())
    }
}

/// Serves one request; never fails (errors are HTTP answers).
async fn handle(
    latest: Arc<Latest>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != METRICS_PATH {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            format!("no such path '{}': use {METRICS_PATH}", req.uri().path()),
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method '{}' not allowed: use GET", req.method()),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(response);
    }
    let has_body = req
        .headers()
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(http::header::TRANSFER_ENCODING);
    if has_body {
        return Ok(plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "a scrape has no body".to_owned(),
        ));
    }
    let mut body = String::new();
    {
        let samples = latest
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        text::render(&samples, &latest.resource, &mut body);
    }
    Ok(respond(StatusCode::OK, text::CONTENT_TYPE, body))
}

fn plain(status: StatusCode, mut message: String) -> Response<Full<Bytes>> {
    message.push('\n');
    respond(status, "text/plain; charset=utf-8", message)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
