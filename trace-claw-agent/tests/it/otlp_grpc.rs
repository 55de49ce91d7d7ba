//! Online mode over OTLP/gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), against a real gRPC
//! receiver: `tests/peers/otlp_grpc_server.py`, grpcio serving the official OpenTelemetry
//! `MetricsService`. Every sample of the agent's JSONL must arrive, with the configured header
//! as gRPC metadata, in plain text and over TLS with a CA generated in the test.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::otlp_tls::{certificates, written_points};
use crate::peers::otel_grpc_python;
use crate::util::{agent, collect_nothing, read_jsonl, repo_root, run, sigterm, text, Reaped};

/// Starts the receiver writing to `out`; its port.
fn start_receiver(python: &Path, out: &Path, tls: Option<(&Path, &Path)>) -> (Reaped, u16) {
    let mut c = Command::new(python);
    c.arg(repo_root().join("tests/peers/otlp_grpc_server.py"))
        .arg(out)
        .stdout(Stdio::piped());
    if let Some((cert, key)) = tls {
        c.arg(cert).arg(key);
    }
    let mut child = Reaped(c.spawn().expect("receiver starts"));
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port line");
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("port: {line:?}"));
    (child, port)
}

fn export_to(url: &str, ca: Option<&Path>, out: &Path) {
    let mut c = collect_nothing("0.25", out);
    c.args(["--count", "6"])
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20grpc-key",
        )
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
    if let Some(ca) = ca {
        c.env("OTEL_EXPORTER_OTLP_CERTIFICATE", ca);
    }
    let o = run(&mut c);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("otlp export"),
        "no export error: {}",
        text(&o)
    );
}

/// Checks what the receiver recorded against the agent's JSONL.
fn check_delivered(received: &Path, trace: &Path) {
    let calls = read_jsonl(received.parent().expect("dir"), "received");
    assert!(!calls.is_empty(), "the receiver got requests");
    let mut delivered = BTreeSet::new();
    for call in calls.iter().filter(|c| c.get("points").is_some()) {
        assert_eq!(
            call["metadata"]["authorization"], "Bearer grpc-key",
            "{call}"
        );
        for p in call["points"].as_array().expect("points") {
            delivered.insert((
                p[0].as_str().expect("name").to_owned(),
                p[1].as_u64().expect("time"),
            ));
        }
    }
    let written = written_points(trace);
    assert!(!written.is_empty());
    let missing: Vec<_> = written.difference(&delivered).take(5).collect();
    assert!(missing.is_empty(), "not delivered over gRPC: {missing:?}");
}

#[test]
fn grpc_delivers_every_sample_with_its_metadata() {
    let Some(python) = otel_grpc_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let received = dir.path().join("received.jsonl");
    let (_receiver, port) = start_receiver(&python, &received, None);
    let trace = dir.path().join("trace");
    export_to(&format!("http://127.0.0.1:{port}"), None, &trace);
    check_delivered(&received, &trace);
}

#[test]
fn grpc_over_tls_trusts_a_private_ca() {
    let Some(python) = otel_grpc_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = certificates();
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write pem");
        p
    };
    let (ca, cert, key) = (
        write("ca.pem", &certs.ca_pem),
        write("server.pem", &certs.leaf_pem),
        write("server.key", &certs.key_pem),
    );
    let received = dir.path().join("received.jsonl");
    let (_receiver, port) = start_receiver(&python, &received, Some((&cert, &key)));
    let trace = dir.path().join("trace");
    export_to(&format!("https://127.0.0.1:{port}"), Some(&ca), &trace);
    check_delivered(&received, &trace);
}

/// The spans the receiver recorded so far.
fn spans(received: &Path) -> Vec<serde_json::Value> {
    read_jsonl(received.parent().expect("dir"), "received")
        .iter()
        .filter_map(|c| c["spans"].as_array().cloned())
        .flatten()
        .collect()
}

#[test]
fn actions_logged_while_collecting_reach_the_receiver_as_genai_spans() {
    let Some(python) = otel_grpc_python() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let received = dir.path().join("received.jsonl");
    let (_receiver, port) = start_receiver(&python, &received, None);
    let (logs, trace) = (dir.path().join("logs"), dir.path().join("trace"));
    std::fs::create_dir(&logs).expect("mkdir");
    let mut agent_run = Reaped(
        collect_nothing("0.5", &trace)
            .arg("--openclaw")
            .arg("--openclaw-log-dir")
            .arg(&logs)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent starts"),
    );
    std::thread::sleep(std::time::Duration::from_millis(700));
    // OpenClaw's real log, written while the agent runs: 12 LLM calls and an exec tool call.
    std::fs::copy(
        crate::util::fixture("openclaw/logs/openclaw-2026-11-24.log"),
        logs.join("openclaw-2026-11-24.log"),
    )
    .expect("copy log");
    // An application's own call, through log-event into the same trace directory.
    let o = run(agent()
        .args([
            "log-event",
            "llm",
            "--model",
            "m-log-event",
            "--provider",
            "p",
            "--tokens-input",
            "100",
            "--tokens-output",
            "7",
            "--duration-ms",
            "250",
            "--session-id",
            "app-session",
            "--output-dir",
        ])
        .arg(&trace));
    assert!(o.status.success(), "{}", text(&o));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while spans(&received).len() < 14 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, stderr) = sigterm(&mut agent_run);
    assert!(status.success(), "{stderr}");

    let spans = spans(&received);
    let named = |n: &str| spans.iter().filter(|s| s["name"] == n).count();
    assert_eq!(named("chat fake-model-1"), 12, "{spans:#?}");
    assert_eq!(named("execute_tool exec"), 1);
    assert_eq!(named("chat m-log-event"), 1);
    assert_eq!(spans.len(), 14);
    let tool = spans
        .iter()
        .find(|s| s["name"] == "execute_tool exec")
        .expect("tool span");
    let a = &tool["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "execute_tool");
    assert_eq!(a["gen_ai.tool.name"], "exec");
    assert_eq!(
        a["gen_ai.conversation.id"],
        "8388168c-cf83-42e7-9f30-c88ae8bd3685"
    );
    let logged = spans
        .iter()
        .find(|s| s["name"] == "chat m-log-event")
        .expect("log-event span");
    let a = &logged["attributes"];
    assert_eq!(a["gen_ai.usage.input_tokens"], 100);
    assert_eq!(a["gen_ai.usage.output_tokens"], 7);
    assert_eq!(a["gen_ai.provider.name"], "p");
    let ms = (logged["end"].as_u64().expect("end") - logged["start"].as_u64().expect("start"))
        as f64
        / 1e6;
    assert!((ms - 250.0).abs() < 0.01, "{ms}");
    // One session, one trace.
    let session_traces: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s["attributes"]["gen_ai.conversation.id"] == "capture-error-session")
        .map(|s| s["trace_id"].as_str().expect("trace id"))
        .collect();
    assert_eq!(session_traces.len(), 1);
    // The failed calls of the capture (isError=true) carry an error status.
    assert!(spans.iter().any(|s| s["status"] == 2), "{spans:#?}");
}
