//! `cargo xtask bench receiver`: ingest rate of the embedded OTLP/HTTP receiver, in spans per
//! second per core, with protobuf batches of 512 spans shaped like OpenClaw's.
//!
//! The release agent runs `collect --receive-listen` (the collector ticking once an hour, so the
//! receiver's thread does all the work); keep-alive client connections POST the same batch
//! repeatedly. Per core = spans / CPU seconds the agent used (on-CPU time of all its threads,
//! from /proc/PID/task/*/schedstat), so the figure does not depend on how busy the machine's
//! other cores are.
//! The baseline, in the same run and on the same connections, is empty export requests: the
//! cost of HTTP and of writing a line, without any span to decode or re-encode.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::measure::median;
use crate::child::OwnedChild;
use crate::proc_util::{build_agent, free_port, Profile};
use crate::procfs;

/// Flags of `bench receiver`.
#[derive(Debug, Args)]
pub struct ReceiverArgs {
    /// Runs per case (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Requests per run.
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 512)]
    spans: usize,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 2)]
    connections: usize,
}

/// One measured run.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall_seconds: f64,
    cpu_seconds: f64,
}

/// Builds the release agent, then measures the baseline and the 512-span case alternately.
pub fn run(args: &ReceiverArgs) -> anyhow::Result<()> {
    let agent = build_agent(Profile::Release)?;
    let batch = trace_batch(args.spans).encode_to_vec();
    let empty = ExportTraceServiceRequest::default().encode_to_vec();
    eprintln!(
        "bench receiver: {} runs x {} requests of {} spans ({} bytes protobuf), {} connections",
        args.runs,
        args.requests,
        args.spans,
        batch.len(),
        args.connections
    );
    let mut full = Vec::new();
    let mut base = Vec::new();
    for i in 0..args.runs {
        base.push(measure(&agent, &empty, args)?);
        full.push(measure(&agent, &batch, args)?);
        eprintln!(
            "  run {}: baseline {:.0} req/s per core, spans {:.0} spans/s per core",
            i + 1,
            args.requests as f64 / base[i].cpu_seconds,
            (args.requests * args.spans) as f64 / full[i].cpu_seconds
        );
    }
    let spans = (args.requests * args.spans) as f64;
    let per_core = median(full.iter().map(|r| spans / r.cpu_seconds).collect());
    let wall = median(full.iter().map(|r| spans / r.wall_seconds).collect());
    let base_req = median(
        base.iter()
            .map(|r| args.requests as f64 / r.cpu_seconds)
            .collect(),
    );
    let full_req = median(
        full.iter()
            .map(|r| args.requests as f64 / r.cpu_seconds)
            .collect(),
    );
    println!(
        "receiver ingest, protobuf batches of {} spans, median of {} runs:",
        args.spans, args.runs
    );
    println!("  {per_core:>10.0} spans/s per core   (goal >= 50000)");
    println!(
        "  {wall:>10.0} spans/s wall clock ({} connections)",
        args.connections
    );
    println!(
        "  {full_req:>10.0} requests/s per core with {} spans",
        args.spans
    );
    println!("  {base_req:>10.0} requests/s per core baseline (empty requests: HTTP + line write)");
    Ok(())
}

/// Starts a fresh agent, sends `args.requests` copies of `body`, returns wall and CPU time.
fn measure(agent: &Path, body: &[u8], args: &ReceiverArgs) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let child = Command::new(agent)
        .args([
            "collect",
            "--interval",
            "3600",
            "--process",
            "no-such-process-tcbench",
        ])
        .arg("--receive-listen")
        .arg(addr.to_string())
        .arg("--output-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start the agent")?;
    let agent = OwnedChild::killed_on_drop(child);
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the receiver did not come up on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // One warm-up request so connection setup and first-file creation are not measured.
    post_many(addr, body, 1)?;
    let cpu_before = cpu_seconds(agent.id())?;
    let started = Instant::now();
    let per_connection = args.requests.div_ceil(args.connections.max(1));
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..args.connections.max(1))
            .map(|c| {
                let n = per_connection.min(args.requests.saturating_sub(c * per_connection));
                s.spawn(move || post_many(addr, body, n))
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        Ok(())
    })?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu_seconds(agent.id())? - cpu_before;
    drop(agent);
    Ok(Run {
        wall_seconds,
        cpu_seconds: cpu_seconds.max(1e-6),
    })
}

/// On-CPU seconds of every thread of `pid` (nanosecond schedstat, so short baseline runs are
/// measured exactly rather than in 10 ms clock ticks).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(procfs::on_cpu_ns(pid)? as f64 / 1e9)
}

/// Sends `n` POSTs of `body` on one keep-alive connection, checking each answer is 200.
fn post_many(addr: SocketAddr, body: &[u8], n: usize) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let mut buf = vec![0u8; 4096];
    for _ in 0..n {
        stream.write_all(&request)?;
        let mut got = 0;
        let header_end = loop {
            let k = stream.read(&mut buf[got..])?;
            if k == 0 {
                bail!("receiver closed the connection");
            }
            got += k;
            if let Some(p) = buf[..got].windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if got == buf.len() {
                bail!("response header too long");
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]);
        if !head.starts_with("HTTP/1.1 200") {
            bail!(
                "receiver answered: {}",
                head.lines().next().unwrap_or_default()
            );
        }
        // Empty protobuf response: content-length 0, nothing more to read.
    }
    Ok(())
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

/// `n` spans with the attributes of OpenClaw's `openclaw.model.call` spans.
fn trace_batch(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| {
            let i64i = i as i64;
            let start = 1_795_535_071_132_000_000u64 + i as u64 * 1_000_000;
            Span {
                trace_id: (0..16u8).map(|b| b ^ (i as u8)).collect(),
                span_id: (0..8u8).map(|b| b.wrapping_mul(7) ^ (i as u8)).collect(),
                parent_span_id: vec![0xab; 8],
                name: "openclaw.model.call".to_owned(),
                kind: span::SpanKind::Internal as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 61_000_000,
                attributes: vec![
                    text("openclaw.provider", "fakellm"),
                    text("openclaw.model", "fake-model-1"),
                    text("openclaw.api", "openai-completions"),
                    text("openclaw.transport", "sse"),
                    kv(
                        "openclaw.model_call.request_bytes",
                        any_value::Value::IntValue(40_000 + i64i),
                    ),
                    kv(
                        "openclaw.model_call.response_bytes",
                        any_value::Value::IntValue(900 + i64i),
                    ),
                    kv(
                        "openclaw.model_call.time_to_first_byte_ms",
                        any_value::Value::DoubleValue(12.5 + i as f64),
                    ),
                    text("gen_ai.request.model", "fake-model-1"),
                    text("gen_ai.operation.name", "text_completion"),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "openclaw-gateway"),
                    text("host.name", "bench"),
                    kv("process.pid", any_value::Value::IntValue(31952)),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "openclaw".to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
