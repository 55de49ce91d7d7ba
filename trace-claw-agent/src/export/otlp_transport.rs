//! How an OTLP request (metrics, or the spans of actions) travels: HTTP/protobuf
//! (`POST <url>`, port 4318) or gRPC (`MetricsService/Export`, `TraceService/Export`, port 4317),
//! both over plain TCP or TLS, with the configured headers (gRPC metadata) and gzip. Failures say
//! whether the OTLP specification allows a retry.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tonic::transport::Channel;

use crate::config::{Compression, OtelConfig, OTLP_GRPC, OTLP_HTTP_PROTOBUF};
use crate::http_client::{
    check_url, is_certificate_error, HttpPoster, PostError, PostOptions, TlsFiles,
};

/// The default gRPC endpoint, used when `otel.endpoint` is left at the HTTP default.
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The default OTLP/HTTP endpoint (`otel.endpoint`'s default).
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";

/// A request that was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Over HTTP.
    #[error(transparent)]
    Http(#[from] PostError),
    /// Over gRPC: the status the server (or the channel) gave.
    #[error("gRPC {}: {}", .0.code(), .0.message())]
    Grpc(#[source] tonic::Status),
}

impl SendError {
    /// Whether the same request may succeed later (OTLP: HTTP 429/502/503/504 or no answer;
    /// gRPC UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, CANCELLED,
    /// OUT_OF_RANGE, DATA_LOSS). A rejected TLS certificate is final either way.
    pub fn is_retryable(&self) -> bool {
        use tonic::Code;
        match self {
            Self::Http(e) => e.is_retryable(),
            Self::Grpc(status) if is_certificate_error(status) => false,
            Self::Grpc(status) => matches!(
                status.code(),
                Code::Unavailable
                    | Code::ResourceExhausted
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::Cancelled
                    | Code::OutOfRange
                    | Code::DataLoss
            ),
        }
    }

    /// The wait the server asked for (HTTP `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http(e) => e.retry_after(),
            Self::Grpc(_) => None,
        }
    }
}

/// What a transport carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Metric samples (`/v1/metrics`).
    Metrics,
    /// The spans of actions (`/v1/traces`).
    Traces,
}

/// One request of either signal.
pub enum Request {
    /// Metric samples.
    Metrics(ExportMetricsServiceRequest),
    /// Spans.
    Traces(ExportTraceServiceRequest),
}

/// Where and how requests go.
pub enum Transport {
    /// OTLP/HTTP protobuf.
    Http {
        /// The signal's URL.
        url: String,
        /// The client.
        poster: HttpPoster,
        /// Whether bodies are gzip-compressed.
        gzip: bool,
    },
    /// OTLP/gRPC.
    Grpc {
        /// The endpoint URL.
        url: String,
        /// The channel (it connects on first use).
        channel: Channel,
        /// Whether requests are gzip-compressed.
        gzip: bool,
        /// Metadata sent with every request.
        headers: Vec<(HeaderName, HeaderValue)>,
    },
}

/// `config.headers` as HTTP headers.
fn headers(config: &OtelConfig) -> Result<Vec<(HeaderName, HeaderValue)>, PostError> {
    let bad = |name: &str, e: &dyn std::fmt::Display| PostError::BadUrl {
        url: format!("otel.headers.{name}"),
        reason: e.to_string(),
    };
    config
        .headers
        .iter()
        .map(|(k, v)| {
            Ok((
                HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(k, &e))?,
                HeaderValue::from_str(v).map_err(|e| bad(k, &e))?,
            ))
        })
        .collect()
}

/// Where `signal` goes for `config`: its own endpoint (`otel.metrics_endpoint`,
/// `otel.traces_endpoint`) as is; else `otel.endpoint`, plus `/v1/metrics` or `/v1/traces` over
/// HTTP (gRPC names the service, not a path; the HTTP default endpoint becomes the gRPC
/// default, port 4317).
pub fn url_of(config: &OtelConfig, signal: Signal) -> String {
    let own = match signal {
        Signal::Metrics => &config.metrics_endpoint,
        Signal::Traces => &config.traces_endpoint,
    };
    if let Some(url) = own {
        return url.clone();
    }
    if config.protocol == OTLP_GRPC {
        if config.endpoint == DEFAULT_HTTP_ENDPOINT {
            return DEFAULT_GRPC_ENDPOINT.to_owned();
        }
        return config.endpoint.trim_end_matches('/').to_owned();
    }
    let path = match signal {
        Signal::Metrics => "/v1/metrics",
        Signal::Traces => "/v1/traces",
    };
    signal_url(&config.endpoint, path)
}

/// `<endpoint><path>`, unless the endpoint already ends with that path.
fn signal_url(endpoint: &str, path: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(path) {
        base.to_owned()
    } else {
        format!("{base}{path}")
    }
}

impl Transport {
    /// The transport of `signal` that `config` asks for; fails on a URL, header or TLS file it
    /// cannot use. Must run inside a tokio runtime (the gRPC channel's worker starts there).
    pub fn new(config: &OtelConfig, signal: Signal) -> Result<Self, PostError> {
        let url = url_of(config, signal);
        let options = PostOptions {
            timeout: Duration::from_secs_f64(config.timeout_seconds),
            headers: headers(config)?,
            tls: TlsFiles {
                ca_file: config.tls.ca_file.clone(),
                client_cert: config.tls.client_cert.clone(),
                client_key: config.tls.client_key.clone(),
            },
        };
        // Both build their TLS settings here, so that a bad URL or TLS file fails at start.
        if config.protocol == OTLP_HTTP_PROTOBUF {
            return Ok(Self::Http {
                poster: HttpPoster::for_url(&url, &options)?,
                url,
                gzip: config.compression == Compression::Gzip,
            });
        }
        check_url(&url)?;
        let channel = grpc_channel(&url, &options)?;
        Ok(Self::Grpc {
            url,
            channel,
            gzip: config.compression == Compression::Gzip,
            headers: options.headers,
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        match self {
            Self::Http { url, .. } | Self::Grpc { url, .. } => url,
        }
    }

    /// Sends one request.
    pub async fn send(&mut self, request: Request) -> Result<(), SendError> {
        match self {
            Self::Http { url, poster, gzip } => {
                let mut body = match &request {
                    Request::Metrics(r) => r.encode_to_vec(),
                    Request::Traces(r) => r.encode_to_vec(),
                };
                if *gzip {
                    body = gzip_bytes(&body);
                }
                let content_type = HeaderValue::from_static("application/x-protobuf");
                poster
                    .post(url, Some(content_type), gzip.then_some("gzip"), body.into())
                    .await?;
                Ok(())
            }
            Self::Grpc {
                channel,
                gzip,
                headers,
                ..
            } => {
                let encoding = gzip.then_some(tonic::codec::CompressionEncoding::Gzip);
                let sent = match request {
                    Request::Metrics(r) => {
                        let mut client = MetricsServiceClient::new(channel.clone());
                        if let Some(e) = encoding {
                            client = client.send_compressed(e);
                        }
                        client.export(with_metadata(r, headers)).await.map(drop)
                    }
                    Request::Traces(r) => {
                        let mut client = TraceServiceClient::new(channel.clone());
                        if let Some(e) = encoding {
                            client = client.send_compressed(e);
                        }
                        client.export(with_metadata(r, headers)).await.map(drop)
                    }
                };
                sent.map_err(SendError::Grpc)
            }
        }
    }
}

/// A gRPC request carrying `headers` as metadata (the ones gRPC cannot carry were refused when
/// the configuration was validated).
fn with_metadata<T>(message: T, headers: &[(HeaderName, HeaderValue)]) -> tonic::Request<T> {
    let mut call = tonic::Request::new(message);
    for (name, value) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes());
        let value = tonic::metadata::MetadataValue::try_from(value.as_bytes());
        if let (Ok(key), Ok(value)) = (key, value) {
            call.metadata_mut().insert(key, value);
        }
    }
    call
}

/// A lazily connecting channel to `url`, with TLS for `https://`.
fn grpc_channel(url: &str, options: &PostOptions) -> Result<Channel, PostError> {
    let bad = |e: &dyn std::fmt::Display| PostError::BadUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    };
    let mut endpoint = Channel::from_shared(url.to_owned())
        .map_err(|e| bad(&e))?
        .timeout(options.timeout)
        .connect_timeout(options.timeout);
    #[cfg(target_os = "linux")]
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(grpc_tls(&options.tls)?)
            .map_err(|e| bad(&e))?;
    }
    Ok(endpoint.connect_lazy())
}

/// tonic's TLS settings for the same trust and client identity as the HTTP client's.
#[cfg(target_os = "linux")]
fn grpc_tls(files: &TlsFiles) -> Result<tonic::transport::ClientTlsConfig, PostError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| PostError::Tls(format!("'{}': {e}", path.display())))
    };
    let mut tls = ClientTlsConfig::new()
        .with_webpki_roots()
        .with_native_roots();
    if let Some(ca) = &files.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let (Some(cert), Some(key)) = (&files.client_cert, &files.client_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(tls)
}

/// `body` gzip-compressed.
fn gzip_bytes(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_all(&mut encoder, body);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_signal_path_once_over_http_and_none_over_grpc() {
        let m = "/v1/metrics";
        assert_eq!(signal_url("http://h:4318", m), "http://h:4318/v1/metrics");
        assert_eq!(signal_url("http://h:4318/", m), "http://h:4318/v1/metrics");
        assert_eq!(
            signal_url("http://h:8428/opentelemetry/v1/metrics", m),
            "http://h:8428/opentelemetry/v1/metrics"
        );
        let mut c = OtelConfig::default();
        assert_eq!(
            url_of(&c, Signal::Metrics),
            "http://localhost:4318/v1/metrics"
        );
        assert_eq!(
            url_of(&c, Signal::Traces),
            "http://localhost:4318/v1/traces"
        );
        c.protocol = OTLP_GRPC.to_owned();
        assert_eq!(url_of(&c, Signal::Metrics), "http://localhost:4317");
        c.endpoint = "https://collector:4317/".to_owned();
        assert_eq!(url_of(&c, Signal::Traces), "https://collector:4317");
        c.metrics_endpoint = Some("https://other:443".to_owned());
        assert_eq!(url_of(&c, Signal::Metrics), "https://other:443");
        assert_eq!(url_of(&c, Signal::Traces), "https://collector:4317");
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"0123456789".repeat(100);
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip_bytes(&body)[..]),
            &mut out,
        )
        .expect("gunzip");
        assert_eq!(out, body);
    }

    #[test]
    fn grpc_overload_codes_are_retried_and_the_rest_are_final() {
        let grpc = |code| SendError::Grpc(tonic::Status::new(code, "x"));
        assert!(grpc(tonic::Code::Unavailable).is_retryable());
        assert!(grpc(tonic::Code::ResourceExhausted).is_retryable());
        assert!(!grpc(tonic::Code::InvalidArgument).is_retryable());
        assert!(!grpc(tonic::Code::Unauthenticated).is_retryable());
    }
}
