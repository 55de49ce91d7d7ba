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
use crate::util::{agent, read_jsonl, repo_root, run, text, Reaped};

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
    let mut c = agent();
    c.args([
        "collect",
        "--ebpf",
        "off",
        "--process",
        "tc-nothing-matches",
        "--interval",
        "0.25",
        "--count",
        "6",
        "--output-dir",
    ])
    .arg(out)
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
    for call in &calls {
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
