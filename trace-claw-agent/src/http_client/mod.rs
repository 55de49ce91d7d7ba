//! A small HTTP/1.1 POST client (hyper, connection reuse, one deadline per request) shared by
//! the OTLP exporter and the receiver's forwarder: `http://`, and on Linux `https://` (rustls,
//! see `tls`), with extra headers such as an API key.

#[cfg(target_os = "linux")]
mod tls;

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[cfg(target_os = "linux")]
pub use tls::TlsFiles;

/// PEM files of the client's TLS settings (TLS needs a Linux build).
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate authorities to trust.
    pub ca_file: Option<std::path::PathBuf>,
    /// The client's certificate chain.
    pub client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<std::path::PathBuf>,
}

/// The connector of every client: plain TCP, and TLS on Linux.
#[cfg(target_os = "linux")]
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// The connector of every client: plain TCP (TLS needs a Linux build).
#[cfg(not(target_os = "linux"))]
pub type Connector = HttpConnector;

/// A connector for requests to `url`, connecting within `timeout`, with the TLS settings of
/// `tls` when the URL is `https://` (no trust store is loaded for a plain `http://` one).
pub fn connector(url: &str, timeout: Duration, tls: &TlsFiles) -> Result<Connector, PostError> {
    check_url(url)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    #[cfg(target_os = "linux")]
    let connector = {
        http.enforce_http(false);
        let config = if url.starts_with("https://") {
            tls::client_config(tls)?
        } else {
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| PostError::Tls(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        };
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http)
    };
    #[cfg(not(target_os = "linux"))]
    let connector = {
        let _ = tls;
        http
    };
    Ok(connector)
}

/// The longest wait a server's `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

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
    /// The TLS settings cannot be used (a CA or certificate file is missing or invalid).
    #[error("TLS settings: {0}")]
    Tls(String),
    /// The peer answered with a non-2xx status.
    #[error("HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
        /// How long the server asked the client to wait (`Retry-After`, in seconds).
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, reset, DNS failure.
    #[error("request failed")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// The TLS handshake failed on the server's (or our) certificate: not retried, as it fails
    /// the same way until the certificates or the CA settings change.
    #[error("TLS certificate rejected")]
    Certificate(#[source] hyper_util::client::legacy::Error),
    /// No complete answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl PostError {
    /// Whether the same request may succeed later: no answer, or 429, 502, 503 or 504 (the
    /// statuses the OTLP specification calls retryable). Any other answer is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout(_) => true,
            Self::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::BadUrl { .. } | Self::Tls(_) | Self::Certificate(_) => false,
        }
    }

    /// The wait the server asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// How requests are made: their deadline, extra headers and TLS settings.
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// From connect to the last byte of the answer.
    pub timeout: Duration,
    /// Sent with every request (e.g. an API key).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Certificate authority and client certificate files.
    pub tls: TlsFiles,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            tls: TlsFiles::default(),
        }
    }
}

/// A small HTTP/1.1 POST client with connection reuse, shared by the exporter and the
/// receiver's forwarder.
#[derive(Clone)]
pub struct HttpPoster {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl HttpPoster {
    /// A client for requests to `url` (TLS is set up only for an `https://` one).
    pub fn for_url(url: &str, options: &PostOptions) -> Result<Self, PostError> {
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector(url, options.timeout, &options.tls)?),
            timeout: options.timeout,
            headers: options.headers.clone(),
        })
    }

    /// POSTs `body` to `url`; Ok on any 2xx answer. Must run inside a tokio runtime.
    pub async fn post(
        &self,
        url: &str,
        content_type: Option<HeaderValue>,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> Result<(), PostError> {
        check_url(url)?;
        let mut builder = Request::post(url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
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
            let response = self.client.request(request).await.map_err(|e| {
                if is_certificate_error(&e) {
                    PostError::Certificate(e)
                } else {
                    PostError::Transport(e)
                }
            })?;
            let status = response.status();
            let retry_after = retry_after(response.headers().get(RETRY_AFTER));
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
                    retry_after: retry_after.filter(|_| {
                        status == StatusCode::TOO_MANY_REQUESTS
                            || status == StatusCode::SERVICE_UNAVAILABLE
                    }),
                })
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(self.timeout))?
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by OTLP servers and is ignored),
/// at most [`MAX_RETRY_AFTER`].
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Whether a failed request failed on a certificate in the TLS handshake.
pub fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            match c.downcast_ref::<rustls::Error>() {
                Some(
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented,
                ) => return true,
                Some(rustls::Error::AlertReceived(a)) if is_certificate_alert(*a) => return true,
                _ => {}
            }
            // An io::Error's `source` skips the error it wraps (the TLS stack wraps its errors in
            // io::Errors, twice): step into it instead.
            cause = match c
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => c.source(),
            };
        }
    }
    let _ = e;
    false
}

/// Whether the server's TLS alert says it refused our certificate.
#[cfg(target_os = "linux")]
fn is_certificate_alert(a: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        a,
        A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::CertificateRequired
    )
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
        Some("https") if cfg!(target_os = "linux") => Ok(()),
        Some("https") => Err(bad("https needs a Linux build of trace-claw; use http://")),
        _ => Err(bad("expected http://host:port or https://host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_caps_them() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(retry_after(Some(&v("3"))), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some(&v("86400"))), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some(&v("Wed, 21 Oct 2026 07:28:00 GMT"))), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn only_missing_answers_and_overload_statuses_are_retried() {
        let status = |status| PostError::Status {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(PostError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(!PostError::Tls("x".into()).is_retryable());
    }
}
