//! A small HTTP/1.1 POST client (hyper, connection reuse, one deadline per request) shared by
//! the OTLP exporter and the receiver's forwarder. Plain `http://` only: this build has no TLS.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A failed HTTP POST.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The URL cannot be used.
    #[error("bad url '{url}': {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer answered with a non-2xx status.
    #[error("HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// No answer: connection refused, reset, DNS failure.
    #[error("request failed")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// No complete answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A small HTTP/1.1 POST client with connection reuse, shared by the exporter and the
/// receiver's forwarder. Plain `http://` only (no TLS in this build).
#[derive(Clone)]
pub struct HttpPoster {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpPoster {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpPoster {
    /// A client whose requests time out after 10 s.
    pub fn new() -> Self {
        Self::with_timeout(Duration::from_secs(10))
    }

    /// A client whose requests (connect to last body byte) time out after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
        }
    }

    /// POSTs `body`; Ok on any 2xx answer. Must run inside a tokio runtime.
    pub async fn post(
        &self,
        url: &str,
        content_type: Option<HeaderValue>,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> Result<(), PostError> {
        check_url(url)?;
        let mut builder = Request::post(url);
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        if let Some(ce) = content_encoding {
            builder = builder.header(CONTENT_ENCODING, ce);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| PostError::BadUrl {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(PostError::Transport)?;
            let status = response.status();
            // Read the whole answer so the connection can be reused.
            let answer = response
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                Ok(())
            } else {
                let text = String::from_utf8_lossy(&answer[..answer.len().min(200)]);
                Err(PostError::Status {
                    status: status.as_u16(),
                    body: text.trim().to_owned(),
                })
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
    }
}

/// Fails early on URLs the client cannot serve.
pub fn check_url(url: &str) -> Result<(), PostError> {
    let bad = |reason: &str| PostError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: http::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => Ok(()),
        Some("https") => Err(bad("https is not supported by this build; use http://")),
        _ => Err(bad("expected http://host:port")),
    }
}
