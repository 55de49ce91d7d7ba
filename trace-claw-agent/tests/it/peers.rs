//! Real peers for the OTLP tests (VictoriaMetrics, the OpenTelemetry Python SDK), installed by
//! `cargo xtask setup` under `.tools/`, plus a raw HTTP/1.1 client that can send chunked bodies
//! exactly as OpenClaw does.
//!
//! A missing peer skips the test with a message locally and fails it when `CI=true`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::repo_root;

/// Returns the peer at `path` if it exists; otherwise skips (local) or panics (`CI=true`).
pub fn require(name: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "peer {name} missing at '{}': run `cargo xtask setup`",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// The VictoriaMetrics single-node binary extracted from the Debian trixie package.
pub fn victoria_metrics() -> Option<PathBuf> {
    require(
        "victoria-metrics",
        repo_root().join(".tools/vm/usr/bin/victoria-metrics"),
    )
}

/// The Python of the venv holding opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http.
pub fn otel_python() -> Option<PathBuf> {
    let python = require("python venv", repo_root().join(".tools/venv/bin/python"))?;
    let has_sdk = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.http, opentelemetry.sdk",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "opentelemetry python sdk",
        if has_sdk {
            python
        } else {
            PathBuf::from("/nonexistent/opentelemetry-sdk")
        },
    )
}

/// The venv's Python with grpcio and the OpenTelemetry protos, for
/// `tests/peers/otlp_grpc_server.py`.
pub fn otel_grpc_python() -> Option<PathBuf> {
    let python = require("python venv", repo_root().join(".tools/venv/bin/python"))?;
    let has_grpc = Command::new(&python)
        .args([
            "-c",
            "import grpc, opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc",
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "grpcio and the opentelemetry protos",
        if has_grpc {
            python
        } else {
            PathBuf::from("/nonexistent/opentelemetry-exporter-otlp-proto-grpc")
        },
    )
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines, lowercased names.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the request body goes on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked` with chunks of this size (as OpenClaw sends).
    Chunked(usize),
}

/// Sends one request on a new connection (`Connection: close`) and reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    framing: Framing,
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match framing {
        Framing::Length => head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len())),
        Framing::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    let mut wire = head.into_bytes();
    match framing {
        Framing::Length => wire.extend_from_slice(body),
        Framing::Chunked(size) => {
            for chunk in body.chunks(size.max(1)) {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
        }
    }
    // The server may answer (413) and close before the whole body is written.
    let _ = stream.write_all(&wire);
    read_response(&mut stream)
}

/// Reads a response until the server closes the connection.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(
            !raw.is_empty(),
            "no response before the connection failed: {e}"
        );
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line '{status_line}'"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A VictoriaMetrics single node on a loopback port, killed on drop.
pub struct VictoriaMetrics {
    child: Child,
    /// Its HTTP address.
    pub addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl VictoriaMetrics {
    /// Starts `binary` on `port` and waits until `/health` answers.
    pub fn start(binary: &PathBuf, port: u16) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let child = Command::new(binary)
            .arg(format!("-httpListenAddr={addr}"))
            .arg(format!("-storageDataPath={}", data.path().display()))
            .arg("-retentionPeriod=100y")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start victoria-metrics");
        let vm = Self {
            child,
            addr,
            _data: data,
        };
        wait_until("victoria-metrics /health", Duration::from_secs(30), || {
            TcpStream::connect(addr).is_ok() && vm.get("/health").status == 200
        });
        vm
    }

    /// `GET path` (HTTP/1.1, connection closed after).
    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"", Framing::Length)
    }

    /// Every stored point of the series matching `selector`, as `/api/v1/export` lines,
    /// after making recent writes searchable.
    pub fn export(&self, selector: &str) -> Vec<serde_json::Value> {
        let flushed = request(
            self.addr,
            "POST",
            "/internal/force_flush",
            &[],
            b"",
            Framing::Length,
        );
        assert_eq!(flushed.status, 200, "force_flush: {}", flushed.text());
        let query: String = selector
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let response = self.get(&format!("/api/v1/export?match[]={query}"));
        assert_eq!(response.status, 200, "export: {}", response.text());
        response
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("export line is JSON"))
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `trace-claw-agent collect` with its receiver on a free loopback port, writing into
/// `dir`; returns the child and the address the receiver reports.
pub fn agent_with_receiver(
    dir: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, SocketAddr) {
    agent_listening(dir, "--receive-listen", extra)
}

/// Starts `trace-claw-agent collect` with the listener of `listen_flag` on a free loopback port,
/// writing into `dir`; returns the child and the address it reports. Stderr keeps draining in
/// the background so the agent never blocks on it.
pub fn agent_listening(
    dir: &std::path::Path,
    listen_flag: &str,
    extra: &[&str],
) -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let mut child = crate::util::agent()
        .args([
            "collect",
            listen_flag,
            "127.0.0.1:0",
            "--duration",
            "120",
            "--output-dir",
        ])
        .arg(dir)
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("agent starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("agent logs the listening address")
            .expect("stderr line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split(['/', ' '])
                .next()
                .expect("addr")
                .parse()
                .expect("socket address");
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}
