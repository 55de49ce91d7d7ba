//! Online mode against a real OTLP backend (VictoriaMetrics single node on a free loopback
//! port): the values read back equal the local JSONL ones, and an endpoint that hangs and then
//! comes up neither slows collection nor loses more than the counted batches.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use trace_claw_common::time::Timestamp;

use crate::peers::{self, VictoriaMetrics};
use crate::util::{agent, read_jsonl, run, text};

/// Resource attributes the exporter adds to every series.
const RESOURCE_LABELS: &[&str] = &["service.name", "service.version", "host.name"];

type SeriesKey = (String, BTreeMap<String, String>);

/// JSONL samples: series -> (unix ms, value).
fn jsonl_points(dir: &Path) -> HashMap<SeriesKey, Vec<(i64, f64)>> {
    let mut out: HashMap<SeriesKey, Vec<(i64, f64)>> = HashMap::new();
    for s in read_jsonl(dir, "resources-") {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(s["labels"].clone()).expect("labels");
        let ts =
            Timestamp::parse_rfc3339(s["timestamp"].as_str().expect("timestamp")).expect("rfc3339");
        let value = s["value"].as_f64().expect("value");
        out.entry((s["name"].as_str().expect("name").to_owned(), labels))
            .or_default()
            .push((ts.unix_nanos() / 1_000_000, value));
    }
    out
}

/// VictoriaMetrics series -> (unix ms, value), checking the resource labels on the way.
fn vm_points(vm: &VictoriaMetrics) -> HashMap<SeriesKey, Vec<(i64, f64)>> {
    let mut out = HashMap::new();
    for series in vm.export(r#"{__name__=~".+"}"#) {
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(series["metric"].clone()).expect("labels");
        let name = labels.remove("__name__").expect("name");
        assert_eq!(
            labels.get("service.name").map(String::as_str),
            Some("trace-claw-resources"),
            "{series}"
        );
        assert!(labels.contains_key("host.name"), "{series}");
        labels.retain(|k, _| !RESOURCE_LABELS.contains(&k.as_str()));
        let times = series["timestamps"].as_array().expect("timestamps");
        let values = series["values"].as_array().expect("values");
        let points = times
            .iter()
            .zip(values)
            .map(|(t, v)| (t.as_i64().expect("ms"), v.as_f64().expect("value")))
            .collect();
        out.insert((name, labels), points);
    }
    out
}

/// Polls VictoriaMetrics until it holds at least `expected` points (its ingestion buffers rows
/// for up to a few seconds even after `force_flush`), or 30 s passed; returns what it holds.
fn vm_points_at_least(
    vm: &VictoriaMetrics,
    expected: usize,
) -> HashMap<SeriesKey, Vec<(i64, f64)>> {
    let start = std::time::Instant::now();
    loop {
        let got = vm_points(vm);
        let total: usize = got.values().map(Vec::len).sum();
        if total >= expected || start.elapsed() > Duration::from_secs(30) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// VictoriaMetrics keeps 12 significant digits.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-10 * a.abs().max(b.abs())
}

#[test]
fn exported_samples_read_back_from_victoria_metrics_equal_the_jsonl() {
    let Some(binary) = peers::victoria_metrics() else {
        return;
    };
    let vm = VictoriaMetrics::start(&binary, peers::free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(agent()
        .args([
            "collect",
            "--interval",
            "0.2",
            "--count",
            "8",
            "--otlp-endpoint",
        ])
        .arg(format!("http://{}/opentelemetry", vm.addr))
        .arg("--output-dir")
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));

    let want = jsonl_points(dir.path());
    let got = vm_points_at_least(&vm, want.values().map(Vec::len).sum());
    let counters = [
        "system.network.bytes_recv_total",
        "trace_claw.export.failed_batches",
    ];
    for name in counters.iter().chain(&["system.memory.used_bytes"]) {
        assert!(
            want.keys().any(|(n, _)| n == name),
            "the run produced no {name}: {}",
            text(&out)
        );
    }
    assert_eq!(
        got.len(),
        want.len(),
        "series in VictoriaMetrics vs JSONL: {:?}",
        want.keys()
            .filter(|k| !got.contains_key(*k))
            .collect::<Vec<_>>()
    );
    for (key, points) in &want {
        let stored = got
            .get(key)
            .unwrap_or_else(|| panic!("series {key:?} missing in VictoriaMetrics"));
        assert_eq!(stored.len(), points.len(), "{key:?}: point count");
        for (ms, value) in points {
            let found = stored
                .iter()
                .find(|(t, _)| t == ms)
                .unwrap_or_else(|| panic!("{key:?}: no point at {ms} in {stored:?}"));
            assert!(
                close(found.1, *value),
                "{key:?} at {ms}: {} vs {value}",
                found.1
            );
        }
    }
    // Nothing failed, and the counter says so.
    let failed = &want[&(
        "trace_claw.export.failed_batches".to_owned(),
        BTreeMap::new(),
    )];
    assert!(failed.iter().all(|(_, v)| *v == 0.0), "{failed:?}");
}

/// A TCP endpoint that accepts connections and never answers.
struct Blackhole {
    /// The port it listens on (chosen by the kernel, so no other test can hold it).
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind blackhole");
        let port = listener.local_addr().expect("blackhole address").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener and every held connection.
    fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("blackhole thread");
        }
    }
}

#[test]
fn a_hanging_then_recovered_endpoint_never_slows_collection() {
    let Some(binary) = peers::victoria_metrics() else {
        return;
    };
    const TICKS: usize = 40;
    const INTERVAL: f64 = 0.2;
    const TIMEOUT: f64 = 3.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("trace_claw.yaml");
    std::fs::write(
        &config,
        format!("otel:\n  timeout_seconds: {TIMEOUT}\n  queue_batches: 3\n"),
    )
    .expect("config");
    let blackhole = Blackhole::start();
    let port = blackhole.port;
    let stderr_path = dir.path().join("agent.stderr");
    let data = dir.path().join("data");
    let mut child = agent()
        .arg("-c")
        .arg(&config)
        .args(["collect", "--interval", &INTERVAL.to_string()])
        .args(["--count", &TICKS.to_string(), "--otlp-endpoint"])
        .arg(format!("http://127.0.0.1:{port}/opentelemetry"))
        .arg("--output-dir")
        .arg(&data)
        .stderr(Stdio::from(
            std::fs::File::create(&stderr_path).expect("stderr file"),
        ))
        .spawn()
        .expect("agent starts");
    let tick_times = |dir: &Path| -> Vec<i64> {
        let mut t: Vec<i64> = read_jsonl(dir, "resources-")
            .iter()
            .filter(|s| s["name"] == "system.memory.total_bytes")
            .map(|s| {
                Timestamp::parse_rfc3339(s["timestamp"].as_str().expect("ts"))
                    .expect("rfc3339")
                    .unix_nanos()
            })
            .collect();
        t.sort_unstable();
        t
    };
    // Hang long enough for a request to time out, then bring the endpoint up.
    peers::wait_until(
        "a timed-out request and 12 ticks while the endpoint hangs",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&stderr_path).is_ok_and(|l| l.contains("no answer within"))
                && tick_times(&data).len() >= 12
        },
    );
    blackhole.close();
    let vm = VictoriaMetrics::start(&binary, port);
    let status = child.wait().expect("agent exits");
    let log = std::fs::read_to_string(&stderr_path).expect("stderr");
    assert!(status.success(), "{log}");

    // Full rate: every tick happened, and no gap came near the request timeout, which a
    // collect loop waiting on the exporter would show during the hang.
    let ticks = tick_times(&data);
    assert_eq!(ticks.len(), TICKS, "{log}");
    let max_gap = ticks.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64 / 1e9;
    assert!(
        max_gap < TIMEOUT * 2.0 / 3.0,
        "largest gap between ticks {max_gap:.3}s (interval {INTERVAL}s)"
    );

    // Failures were counted; everything not dropped reached the backend after recovery.
    let samples = read_jsonl(&data, "resources-");
    let failed = samples
        .iter()
        .filter(|s| s["name"] == "trace_claw.export.failed_batches")
        .map(|s| s["value"].as_f64().expect("value"))
        .fold(0.0, f64::max);
    assert!(failed > 0.0, "no failed batches counted:\n{log}");
    let delivered = samples.len() as f64 * (1.0 - failed / TICKS as f64);
    let stored = vm_points_at_least(&vm, delivered.round() as usize);
    let memory = stored
        .get(&("system.memory.total_bytes".to_owned(), {
            let mut l = BTreeMap::new();
            l.insert("source".to_owned(), "sysinfo".to_owned());
            l
        }))
        .expect("memory series in VictoriaMetrics");
    assert_eq!(memory.len() as f64, TICKS as f64 - failed, "{log}");
    let last_ms = ticks.last().copied().unwrap_or_default() / 1_000_000;
    assert!(
        memory.iter().any(|(t, _)| *t == last_ms),
        "last tick not stored"
    );

    // One line per distinct error, and one for the recovery.
    let lines_with = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines_with("no answer within"), 1, "{log}");
    assert_eq!(lines_with("recovered after"), 1, "{log}");
    assert_eq!(lines_with("queue full"), 1, "{log}");
}
