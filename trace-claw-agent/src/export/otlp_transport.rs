//! How an OTLP metrics request travels: HTTP/protobuf (`POST <url>`, port 4318) or gRPC
//! (`MetricsService/Export`, port 4317), both over plain TCP or TLS, with the configured headers
//! (gRPC metadata) and gzip. Failures say whether the OTLP specification allows a retry.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use tonic::transport::Channel;

use crate::config::{Compression, OtelConfig, OTLP_GRPC, OTLP_HTTP_PROTOBUF};
use crate::http_client::{is_certificate_error, HttpPoster, PostError, PostOptions, TlsFiles};

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

/// Where and how requests go.
pub enum Transport {
    /// OTLP/HTTP protobuf.
    Http {
        /// The metrics URL.
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
        /// The client (its channel connects on first use).
        client: Box<MetricsServiceClient<Channel>>,
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

/// Where metrics go for `config`: `otel.metrics_endpoint` as is; else `otel.endpoint`, plus
/// `/v1/metrics` over HTTP (gRPC names the service, not a path; the HTTP default endpoint
/// becomes the gRPC default, port 4317).
pub fn metrics_url_of(config: &OtelConfig) -> String {
    if let Some(url) = &config.metrics_endpoint {
        return url.clone();
    }
    if config.protocol == OTLP_GRPC {
        if config.endpoint == DEFAULT_HTTP_ENDPOINT {
            return DEFAULT_GRPC_ENDPOINT.to_owned();
        }
        return config.endpoint.trim_end_matches('/').to_owned();
    }
    metrics_url(&config.endpoint)
}

/// `<endpoint>/v1/metrics`, unless the endpoint already names that path.
pub fn metrics_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/metrics") {
        base.to_owned()
    } else {
        format!("{base}/v1/metrics")
    }
}

impl Transport {
    /// The transport `config` asks for; fails on a URL, header or TLS file it cannot use.
    /// Must run inside a tokio runtime (the gRPC channel's worker starts there).
    pub fn new(config: &OtelConfig) -> Result<Self, PostError> {
        let url = metrics_url_of(config);
        let options = PostOptions {
            timeout: Duration::from_secs_f64(config.timeout_seconds),
            headers: headers(config)?,
            tls: TlsFiles {
                ca_file: config.tls.ca_file.clone(),
                client_cert: config.tls.client_cert.clone(),
                client_key: config.tls.client_key.clone(),
            },
        };
        // Checks the URL and reads the TLS files whichever the protocol, so that a bad one
        // fails at start.
        let poster = HttpPoster::for_url(&url, &options)?;
        if config.protocol == OTLP_HTTP_PROTOBUF {
            return Ok(Self::Http {
                url,
                poster,
                gzip: config.compression == Compression::Gzip,
            });
        }
        let channel = grpc_channel(&url, &options)?;
        let mut client = MetricsServiceClient::new(channel);
        if config.compression == Compression::Gzip {
            client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        Ok(Self::Grpc {
            url,
            client: Box::new(client),
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
    pub async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), SendError> {
        match self {
            Self::Http { url, poster, gzip } => {
                let mut body = request.encode_to_vec();
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
                client, headers, ..
            } => {
                let mut call = tonic::Request::new(request);
                for (name, value) in headers.iter() {
                    let key = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes());
                    let value = tonic::metadata::MetadataValue::try_from(value.as_bytes());
                    if let (Ok(key), Ok(value)) = (key, value) {
                        call.metadata_mut().insert(key, value);
                    }
                }
                client.export(call).await.map_err(SendError::Grpc)?;
                Ok(())
            }
        }
    }
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
    fn endpoint_gets_the_metrics_path_once_over_http_and_none_over_grpc() {
        assert_eq!(metrics_url("http://h:4318"), "http://h:4318/v1/metrics");
        assert_eq!(metrics_url("http://h:4318/"), "http://h:4318/v1/metrics");
        assert_eq!(
            metrics_url("http://h:8428/opentelemetry/v1/metrics"),
            "http://h:8428/opentelemetry/v1/metrics"
        );
        let mut c = OtelConfig::default();
        assert_eq!(metrics_url_of(&c), "http://localhost:4318/v1/metrics");
        c.protocol = OTLP_GRPC.to_owned();
        assert_eq!(metrics_url_of(&c), "http://localhost:4317");
        c.endpoint = "https://collector:4317/".to_owned();
        assert_eq!(metrics_url_of(&c), "https://collector:4317");
        c.metrics_endpoint = Some("https://other:443".to_owned());
        assert_eq!(metrics_url_of(&c), "https://other:443");
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
