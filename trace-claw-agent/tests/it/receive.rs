//! The embedded OTLP/HTTP receiver against real clients: OpenClaw's captured requests replayed
//! byte for byte (protobuf, chunked, no Content-Length), the official OpenTelemetry Python SDK
//! exporter, a hand-written OTLP/JSON request, and the refusal paths (413, 400, 408).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use trace_claw_agent::config::ReceiverConfig;
use trace_claw_agent::receive::Receiver;

use crate::peers::{self, request, Framing};
use crate::util::{agent, fixture, read_jsonl};

const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn start(dir: &Path, tweak: impl FnOnce(&mut ReceiverConfig)) -> Receiver {
    let mut config = ReceiverConfig {
        enabled: true,
        listen: "127.0.0.1:0".to_owned(),
        ..ReceiverConfig::default()
    };
    tweak(&mut config);
    Receiver::spawn(&config, dir).expect("receiver starts")
}

fn capture(dir: &Path) -> Vec<Value> {
    read_jsonl(dir, "openclaw-otlp-")
}

/// The captured OpenClaw bodies with their decoded twins, in capture order.
fn openclaw_requests() -> Vec<(String, PathBuf, Value)> {
    let dir = fixture("otlp/openclaw-2026.4.29");
    let mut pbs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
        .collect();
    pbs.sort();
    assert!(pbs.len() >= 8, "expected the captured bodies in {dir:?}");
    pbs.into_iter()
        .map(|pb| {
            let stem = pb.file_stem().expect("stem").to_string_lossy().into_owned();
            let signal = stem.rsplit('-').next().expect("signal").to_owned();
            let twin: Value = serde_json::from_slice(
                &std::fs::read(pb.with_extension("json")).expect("json twin"),
            )
            .expect("twin parses");
            (signal, pb, twin)
        })
        .collect()
}

/// The top-level key of a signal's request.
fn resource_key(signal: &str) -> &'static str {
    match signal {
        "traces" => "resourceSpans",
        "metrics" => "resourceMetrics",
        _ => "resourceLogs",
    }
}

/// Every span, metric data point or log record of a request, keyed for comparison.
fn items(signal: &str, request: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for resource in request[resource_key(signal)].as_array().expect("resources") {
        let scopes = match signal {
            "traces" => &resource["scopeSpans"],
            "metrics" => &resource["scopeMetrics"],
            _ => &resource["scopeLogs"],
        };
        for scope in scopes.as_array().expect("scopes") {
            match signal {
                "traces" => out.extend(scope["spans"].as_array().expect("spans").iter().cloned()),
                "logs" => out.extend(
                    scope["logRecords"]
                        .as_array()
                        .expect("records")
                        .iter()
                        .cloned(),
                ),
                _ => {
                    for metric in scope["metrics"].as_array().expect("metrics") {
                        let body = [
                            "gauge",
                            "sum",
                            "histogram",
                            "exponentialHistogram",
                            "summary",
                        ]
                        .iter()
                        .find_map(|k| metric.get(*k))
                        .expect("metric has data");
                        for point in body["dataPoints"].as_array().expect("points") {
                            let mut point = point.clone();
                            point["metric"] = metric["name"].clone();
                            out.push(point);
                        }
                    }
                }
            }
        }
    }
    out.into_iter().map(normalize).collect()
}

/// Drops what legitimately differs between our OTLP/JSON and the twins (written by Python's
/// `MessageToDict`): enum spellings (numbers vs names) and fields left at their default. String
/// attribute values are blanked: the twins had local paths rewritten when they were published.
fn normalize(v: Value) -> Value {
    const ENUMS: &[&str] = &["kind", "severityNumber", "code", "aggregationTemporality"];
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !ENUMS.contains(&k.as_str()))
                .map(|(k, v)| match (k.as_str(), v) {
                    ("stringValue", Value::String(_)) => (k, Value::String("<text>".into())),
                    (_, v) => (k, normalize(v)),
                })
                .filter(|(_, v)| !is_default(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Number(n) => serde_json::json!(n.as_f64()),
        other => other,
    }
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[test]
fn replayed_openclaw_capture_lands_complete_in_the_jsonl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start(dir.path(), |_| {});
    let requests = openclaw_requests();
    for (signal, pb, _) in &requests {
        let body = std::fs::read(pb).expect("body");
        // OpenClaw's exporter: protobuf, chunked, no Content-Length, no Content-Encoding.
        let response = request(
            receiver.local_addr(),
            "POST",
            &format!("/v1/{signal}"),
            &[
                PROTOBUF,
                ("User-Agent", "OTel-OTLP-Exporter-JavaScript/0.215.0"),
            ],
            &body,
            Framing::Chunked(1000),
        );
        assert_eq!(response.status, 200, "{pb:?}: {}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/x-protobuf")
        );
        assert!(response.body.is_empty(), "empty Export*ServiceResponse");
    }
    assert_eq!(receiver.accepted(), requests.len() as u64);
    assert_eq!(receiver.rejected(), 0);
    receiver.shutdown();

    let lines = capture(dir.path());
    assert_eq!(lines.len(), requests.len(), "one line per request");
    let mut totals = [0usize; 3];
    for (line, (signal, pb, twin)) in lines.iter().zip(&requests) {
        assert_eq!(line["signal"], signal.as_str(), "{pb:?}");
        let received = line["received_at"].as_str().expect("received_at");
        assert!(
            received.ends_with('Z') && received.len() == 27,
            "{received}"
        );
        let got = items(signal, line);
        let want = items(signal, twin);
        assert_eq!(got.len(), want.len(), "{pb:?}: item count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{pb:?}: item {i} differs");
        }
        let resource = |v: &Value| normalize(v[resource_key(signal)][0]["resource"].clone());
        assert_eq!(resource(line), resource(twin), "{pb:?}: resource");
        let slot = match signal.as_str() {
            "traces" => 0,
            "metrics" => 1,
            _ => 2,
        };
        totals[slot] += got.len();
    }
    // Counted by hand from the twins: 4 trace bodies, 2 metric bodies, 2 log bodies.
    let twin_totals = requests.iter().fold([0usize; 3], |mut t, (s, _, twin)| {
        let slot = ["traces", "metrics", "logs"]
            .iter()
            .position(|x| x == s)
            .expect("known signal");
        t[slot] += items(s, twin).len();
        t
    });
    assert_eq!(totals, twin_totals);
    assert!(totals.iter().all(|&n| n > 0), "{totals:?}");
    // Trace and span ids are lowercase hex, 64-bit integers decimal strings.
    let span = &lines
        .iter()
        .find(|l| l["signal"] == "traces")
        .expect("a traces line")["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    let trace_id = span["traceId"].as_str().expect("traceId");
    assert_eq!(trace_id.len(), 32);
    assert!(trace_id
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert!(span["startTimeUnixNano"].is_string());
}

#[test]
fn gzip_and_json_requests_are_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start(dir.path(), |_| {});
    let json = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"hand"}}]},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[{"timeUnixNano":"1795534978693000000","severityNumber":9,"body":{"stringValue":"hello"},"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174"}]}]}]}"#;
    let response = request(
        receiver.local_addr(),
        "POST",
        "/v1/logs",
        &[JSON],
        json,
        Framing::Length,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "{}");
    assert_eq!(response.header("content-type"), Some("application/json"));

    let (_, pb, twin) = openclaw_requests()
        .into_iter()
        .find(|(s, _, _)| s == "metrics")
        .expect("a metrics body");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&pb).expect("body"))
        .expect("gzip");
    let response = request(
        receiver.local_addr(),
        "POST",
        "/v1/metrics",
        &[PROTOBUF, ("Content-Encoding", "gzip")],
        &gz.finish().expect("gzip"),
        Framing::Chunked(4096),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    receiver.shutdown();

    let lines = capture(dir.path());
    assert_eq!(lines.len(), 2);
    let record = &lines[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(lines[0]["signal"], "logs");
    assert_eq!(record["body"]["stringValue"], "hello");
    assert_eq!(record["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(record["timeUnixNano"], "1795534978693000000");
    assert_eq!(items("metrics", &lines[1]), items("metrics", &twin));
}

#[test]
fn refusals_answer_with_a_reason_and_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start(dir.path(), |c| {
        c.max_body_bytes = 4096;
        c.request_timeout_seconds = 0.5;
    });
    let addr = receiver.local_addr();

    // Too large, declared and chunked.
    let big = vec![0u8; 10_000];
    let r = request(
        addr,
        "POST",
        "/v1/traces",
        &[PROTOBUF],
        &big,
        Framing::Length,
    );
    assert_eq!(r.status, 413);
    let r = request(
        addr,
        "POST",
        "/v1/traces",
        &[PROTOBUF],
        &big,
        Framing::Chunked(1000),
    );
    assert_eq!(r.status, 413);
    // A gzip bomb: small on the wire, over the limit once inflated.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1_000_000]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 4096);
    let r = request(
        addr,
        "POST",
        "/v1/traces",
        &[PROTOBUF, ("Content-Encoding", "gzip")],
        &bomb,
        Framing::Length,
    );
    assert_eq!(r.status, 413, "{}", r.text());

    // Malformed protobuf and JSON: 400 naming the problem.
    let r = request(
        addr,
        "POST",
        "/v1/metrics",
        &[PROTOBUF],
        &[0xff; 9],
        Framing::Length,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("invalid protobuf metrics request"),
        "{}",
        r.text()
    );
    let r = request(
        addr,
        "POST",
        "/v1/logs",
        &[JSON],
        b"{\"resourceLogs\":",
        Framing::Length,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("invalid OTLP/JSON logs request"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let status: Value = serde_json::from_slice(&r.body).expect("status json");
    assert_eq!(status["code"], 3);

    // Wrong path, method, media type.
    assert_eq!(
        request(
            addr,
            "POST",
            "/v1/profiles",
            &[PROTOBUF],
            b"",
            Framing::Length
        )
        .status,
        404
    );
    assert_eq!(
        request(addr, "GET", "/v1/traces", &[], b"", Framing::Length).status,
        405
    );
    assert_eq!(
        request(
            addr,
            "POST",
            "/v1/traces",
            &[("Content-Type", "text/plain")],
            b"x",
            Framing::Length
        )
        .status,
        415
    );

    // A slow client: announces 100 bytes, sends 10, then stalls.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    slow.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .expect("send");
    let r = peers::read_response(&mut slow);
    assert_eq!(r.status, 408, "{}", r.text());

    // Headers that never end are cut off too (the connection closes without an answer).
    let mut stalled = TcpStream::connect(addr).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stalled
        .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
        .expect("send");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stalled, &mut rest);

    // Still serving after all that.
    let ok = request(
        addr,
        "POST",
        "/v1/traces",
        &[JSON],
        br#"{"resourceSpans":[]}"#,
        Framing::Length,
    );
    assert_eq!(ok.status, 200);
    // Nine refused requests; the stalled headers never became a request.
    assert_eq!(receiver.rejected(), 9);
    assert_eq!(receiver.accepted(), 1);
    receiver.shutdown();
    assert_eq!(
        capture(dir.path()).len(),
        1,
        "refused requests are not written"
    );
}

#[test]
fn python_sdk_exporter_is_accepted() {
    let Some(python) = peers::otel_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start(dir.path(), |_| {});
    let endpoint = format!("http://{}", receiver.local_addr());
    let script = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
base = sys.argv[1]
res = Resource.create({"service.name": "py-sdk-test"})
tp = TracerProvider(resource=res)
tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces", compression=Compression.Gzip)))
with tp.get_tracer("t").start_as_current_span("py.span") as span:
    span.set_attribute("answer", 42)
    print("%032x" % span.get_span_context().trace_id)
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=base + "/v1/metrics"), export_interval_millis=60000)
mp = MeterProvider(resource=res, metric_readers=[reader])
mp.get_meter("m").create_counter("py.requests", unit="1").add(7, {"route": "/x"})
assert mp.force_flush(), "metric flush failed"
assert tp.force_flush(), "span flush failed"
mp.shutdown(); tp.shutdown()
"#;
    let out = Command::new(python)
        .args(["-c", script, &endpoint])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python sdk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let trace_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    receiver.shutdown();

    let lines = capture(dir.path());
    let span_line = lines
        .iter()
        .find(|l| l["signal"] == "traces")
        .expect("the SDK's span");
    let span = &span_line["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], "py.span");
    assert_eq!(span["traceId"], trace_id.as_str());
    assert_eq!(span["attributes"][0]["value"]["intValue"], "42");
    let metric_line = lines
        .iter()
        .find(|l| l["signal"] == "metrics")
        .expect("the SDK's metric");
    let metric = &metric_line["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(metric["name"], "py.requests");
    assert_eq!(metric["sum"]["isMonotonic"], true);
    assert_eq!(metric["sum"]["dataPoints"][0]["asInt"], "7");
}

#[test]
fn collect_receive_runs_the_receiver_beside_collection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = agent()
        .args([
            "collect",
            "--receive-listen",
            "127.0.0.1:0",
            "--interval",
            "0.2",
        ])
        .args(["--duration", "60", "--output-dir"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("agent logs the receiver address")
            .expect("stderr line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .expect("addr")
                .parse()
                .expect("socket address");
        }
    };
    let r = request(
        addr,
        "POST",
        "/v1/traces",
        &[JSON],
        b"not json",
        Framing::Length,
    );
    assert_eq!(r.status, 400);
    let r = request(
        addr,
        "POST",
        "/v1/traces",
        &[JSON],
        br#"{"resourceSpans":[]}"#,
        Framing::Length,
    );
    assert_eq!(r.status, 200);
    peers::wait_until(
        "a rejected_requests sample of 1",
        Duration::from_secs(30),
        || {
            read_jsonl(dir.path(), "resources-")
                .iter()
                .any(|s| s["name"] == "trace_claw.receiver.rejected_requests" && s["value"] == 1.0)
        },
    );
    // SAFETY: plain kill(2) of our own child, asking for the SIGINT shutdown path.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("agent exits");
    assert!(status.success(), "{status:?}");
    let capture = capture(dir.path());
    assert_eq!(capture.len(), 1);
    assert_eq!(capture[0]["signal"], "traces");
}

/// Accepts one HTTP request, answers 200, and hands back its header lines and body.
fn capture_one_request(
    listener: std::net::TcpListener,
) -> std::thread::JoinHandle<(String, Vec<u8>)> {
    std::thread::spawn(move || {
        use std::io::Read;
        let (mut stream, _) = listener.accept().expect("forwarded connection");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let (head, length) = loop {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "forwarder closed early");
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .expect("forwarded with a content-length")
                    .trim()
                    .parse()
                    .expect("length");
                raw.drain(..end + 4);
                break (head, length);
            }
        };
        while raw.len() < length {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "forwarder closed early");
            raw.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .expect("answer");
        (head, raw)
    })
}

#[test]
fn forward_to_resends_the_original_body_unchanged() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream_addr = upstream.local_addr().expect("addr");
    let captured = capture_one_request(upstream);
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = start(dir.path(), |c| {
        c.forward_to = Some(format!("http://{upstream_addr}/prefix"));
    });
    let (_, pb, _) = openclaw_requests()
        .into_iter()
        .find(|(s, _, _)| s == "traces")
        .expect("a traces body");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&pb).expect("body"))
        .expect("gzip");
    let sent = gz.finish().expect("gzip");
    let r = request(
        receiver.local_addr(),
        "POST",
        "/v1/traces",
        &[PROTOBUF, ("Content-Encoding", "gzip")],
        &sent,
        Framing::Chunked(512),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (head, body) = captured.join().expect("upstream thread");
    assert!(
        head.starts_with("post /prefix/v1/traces http/1.1"),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, sent, "forwarded body differs from the original");
    receiver.shutdown();
    assert_eq!(capture(dir.path()).len(), 1);
}
