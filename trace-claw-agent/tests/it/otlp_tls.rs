//! Online mode over https, as hosted backends require: a TLS OTLP/HTTP endpoint on a free
//! loopback port whose certificate comes from a CA generated here. The agent must trust that CA
//! through the standard `OTEL_EXPORTER_OTLP_CERTIFICATE`, send the `OTEL_EXPORTER_OTLP_HEADERS`
//! header, gzip the body, wait as long as a 503's `Retry-After` asks, and deliver every tick's
//! samples (compared with its own JSONL). Without the CA it must say once that the certificate
//! was rejected, count the dropped batches, and still stop on time.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use tokio_rustls::rustls;

use crate::util::{collect_nothing, read_jsonl, run};

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    authorization: Option<String>,
    encoding: Option<String>,
    /// (metric name, data point time) of every data point.
    points: Vec<(String, u64)>,
}

/// A TLS OTLP/HTTP server whose first answer is 503 with `Retry-After: 1`.
struct TlsServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

/// A CA made for one test, and a server certificate it signed for 127.0.0.1 and localhost.
pub struct TestCerts {
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// The server's certificate.
    pub leaf: rustls::pki_types::CertificateDer<'static>,
    /// The server's certificate, PEM.
    pub leaf_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
}

/// A fresh [`TestCerts`].
pub fn certificates() -> TestCerts {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "trace-claw test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params")
        .signed_by(&key, &issuer)
        .expect("server cert");
    TestCerts {
        ca_pem: ca_cert.pem(),
        leaf: leaf.der().clone(),
        leaf_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn points(body: &[u8]) -> Vec<(String, u64)> {
    let request = ExportMetricsServiceRequest::decode(body).expect("OTLP protobuf");
    let mut out = Vec::new();
    for rm in request.resource_metrics {
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let times: Vec<u64> = match m.data {
                    Some(Data::Gauge(g)) => {
                        g.data_points.iter().map(|p| p.time_unix_nano).collect()
                    }
                    Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
                    _ => Vec::new(),
                };
                out.extend(times.into_iter().map(|t| (m.name.clone(), t)));
            }
        }
    }
    out
}

impl TlsServer {
    fn start(chain: rustls::pki_types::CertificateDer<'static>, key_pem: &str) -> Self {
        let key = <rustls::pki_types::PrivateKeyDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_slice(
            key_pem.as_bytes(),
        )
        .expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![chain], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let shared = Arc::clone(&seen);
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let seen = Arc::clone(&shared);
                tokio::spawn(async move {
                    // A client that rejects our certificate ends the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move { Ok::<_, hyper::Error>(answer(req, &seen).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            _runtime: runtime,
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    seen: &Mutex<Vec<Seen>>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (authorization, encoding) = (header("authorization"), header("content-encoding"));
    let body = req.into_body().collect().await.expect("body").to_bytes();
    let mut raw = Vec::new();
    if encoding.as_deref() == Some("gzip") {
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut raw)
            .expect("a gzip body");
    } else {
        raw = body.to_vec();
    }
    let mut seen = seen.lock().expect("lock");
    let first = seen.is_empty();
    seen.push(Seen {
        at: Instant::now(),
        authorization,
        encoding,
        points: points(&raw),
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    if first {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
    }
    response
}

fn collect_to(url: &str, ca: Option<&Path>, out: &Path) -> std::process::Output {
    let mut c = collect_nothing("0.25", out);
    c.args(["--count", "8"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20test-key",
        )
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "3000");
    if let Some(ca) = ca {
        c.env("OTEL_EXPORTER_OTLP_CERTIFICATE", ca);
    }
    run(&mut c)
}

/// (name, time) of every sample of the agent's own JSONL.
pub fn written_points(dir: &Path) -> BTreeSet<(String, u64)> {
    read_jsonl(dir, "resources-")
        .iter()
        .map(|s| {
            let t = trace_claw_common::time::Timestamp::parse_rfc3339(
                s["timestamp"].as_str().expect("timestamp"),
            )
            .expect("rfc3339");
            (
                s["name"].as_str().expect("name").to_owned(),
                t.unix_nanos() as u64,
            )
        })
        .collect()
}

#[test]
fn https_with_a_private_ca_header_gzip_and_retry_after_delivers_every_sample() {
    let certs = certificates();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).expect("write CA");
    let server = TlsServer::start(certs.leaf, &certs.key_pem);
    let out = dir.path().join("trace");
    let o = collect_to(&format!("https://{}", server.addr), Some(&ca), &out);
    assert!(o.status.success(), "{}", crate::util::text(&o));

    let seen = server.seen.lock().expect("lock").clone();
    assert!(seen.len() >= 2, "a 503 and then the retry: {seen:?}");
    for s in &seen {
        assert_eq!(s.authorization.as_deref(), Some("Bearer test-key"));
        assert_eq!(s.encoding.as_deref(), Some("gzip"));
    }
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 was honoured, not the 250 ms backoff: {waited:?}"
    );
    // Every sample of the JSONL reached the server (the 503'd batch was sent again).
    let delivered: BTreeSet<(String, u64)> =
        seen[1..].iter().flat_map(|s| s.points.clone()).collect();
    let written: BTreeSet<(String, u64)> = read_jsonl(&out, "resources-")
        .iter()
        .map(|s| {
            let t = trace_claw_common::time::Timestamp::parse_rfc3339(
                s["timestamp"].as_str().expect("timestamp"),
            )
            .expect("rfc3339");
            (
                s["name"].as_str().expect("name").to_owned(),
                t.unix_nanos() as u64,
            )
        })
        .collect();
    let missing: Vec<_> = written.difference(&delivered).take(5).collect();
    assert!(missing.is_empty(), "not delivered: {missing:?}");
}

#[test]
fn an_untrusted_certificate_is_one_clear_error_and_counted_drops() {
    let certs = certificates();
    let server = TlsServer::start(certs.leaf, &certs.key_pem);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let o = collect_to(&format!("https://{}", server.addr), None, dir.path());
    assert!(o.status.success(), "{}", crate::util::text(&o));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stops on time: {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("certificate rejected"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "one error line, not one per batch:\n{stderr}"
    );
    assert!(errors[0].contains("UnknownIssuer"), "{}", errors[0]);
    assert!(server.seen.lock().expect("lock").is_empty());
    let failed: Vec<f64> = read_jsonl(dir.path(), "resources-")
        .iter()
        .filter(|s| s["name"] == "trace_claw.export.failed_batches")
        .map(|s| s["value"].as_f64().expect("value"))
        .collect();
    assert!(
        failed.last().is_some_and(|&n| n >= 5.0),
        "dropped batches are counted: {failed:?}"
    );
}
