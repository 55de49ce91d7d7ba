//! `collect --prometheus-listen`: a real scrape of the running agent, checked for the names the
//! dashboards query and by `promtool check metrics` (installed under `.tools/` by
//! `cargo xtask validate-deploy`; skipped locally without it, failed under `CI=true`).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use trace_claw_agent::export::prometheus::naming;
use trace_claw_common::names::{self, labels};

use crate::peers::{self, Framing};
use crate::util::{named_copy, repo_root, unique, Reaped};

fn get(addr: SocketAddr, method: &str, path: &str) -> peers::Response {
    peers::request(addr, method, path, &[], b"", Framing::Length)
}

/// Starts a uniquely named `sleep` and an agent tracing it with the endpoint on a free port;
/// returns them and the first scrape that holds the process's samples.
fn scrape_a_traced_process(dir: &std::path::Path) -> (Reaped, Reaped, SocketAddr, String) {
    let name = unique("promsl");
    let exe = named_copy(dir, "/bin/sleep", &name);
    let target = Reaped(Command::new(&exe).arg("60").spawn().expect("sleep starts"));
    let (agent, addr) = peers::agent_listening(
        &dir.join("out"),
        "--prometheus-listen",
        &["--process", &name, "--interval", "0.2", "--ebpf", "off"],
    );
    let agent = Reaped(agent);
    let mut scrape = String::new();
    peers::wait_until(
        "a scrape with process samples",
        Duration::from_secs(30),
        || {
            let r = get(addr, "GET", "/metrics");
            assert_eq!(r.status, 200, "{}", r.text());
            scrape = r.text();
            // CPU percent needs two ticks, so this scrape holds every process family.
            scrape.contains("process_cpu_usage_percent{")
        },
    );
    (target, agent, addr, scrape)
}

#[test]
fn scrape_serves_the_dashboard_names_with_resource_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, _agent, addr, scrape) = scrape_a_traced_process(dir.path());
    // The series the Grafana dashboard queries through the OTel Collector (deploy.rs).
    for family in [
        "process_cpu_usage_percent",
        "process_memory_rss_bytes",
        "process_io_read_bytes_total",
        "process_io_write_bytes_total",
        "process_cpu_time_seconds_total",
        "system_cpu_usage_percent",
        "process_threads_ratio",
    ] {
        assert!(
            scrape.contains(&format!("\n{family}{{")),
            "no {family} in\n{scrape}"
        );
    }
    assert!(scrape.contains("# TYPE process_cpu_time_seconds_total counter\n"));
    assert!(scrape.contains("# TYPE process_memory_rss_bytes gauge\n"));
    let pid = format!("{}=\"{}\"", labels::PID, target.0.id());
    let line = scrape
        .lines()
        .find(|l| l.starts_with("process_memory_rss_bytes{") && l.contains(&pid))
        .unwrap_or_else(|| panic!("no rss series of {pid} in\n{scrape}"));
    assert!(
        line.contains("service_name=\"trace-claw-resources\""),
        "{line}"
    );
    assert!(line.contains("host_name=\""), "{line}");
    // Every family is the translation of a names.rs metric.
    let known: BTreeSet<String> = names::ALL_METRICS
        .iter()
        .map(|m| naming::family(m.name, m.unit, m.kind.into()))
        .collect();
    for l in scrape.lines().filter(|l| l.starts_with("# TYPE ")) {
        let family = l.split(' ').nth(2).expect("family");
        assert!(known.contains(family), "{family} is not a names.rs metric");
    }
    assert_eq!(
        get(addr, "GET", "/metrics")
            .header("content-type")
            .expect("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn only_bodiless_gets_of_metrics_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_target, _agent, addr, _) = scrape_a_traced_process(dir.path());
    assert_eq!(get(addr, "GET", "/").status, 404);
    assert_eq!(get(addr, "POST", "/metrics").status, 405);
    let with_body = peers::request(addr, "GET", "/metrics", &[], b"x", Framing::Length);
    assert_eq!(with_body.status, 413);
    // A request head beyond the connection's read buffer is refused, not buffered.
    let huge = "a".repeat(64 * 1024);
    let r = peers::request(
        addr,
        "GET",
        "/metrics",
        &[("X-Huge", &huge)],
        b"",
        Framing::Length,
    );
    assert_eq!(r.status, 431, "{}", r.text());
}

#[test]
fn promtool_accepts_a_real_scrape() {
    let Some(promtool) =
        peers::require("promtool", repo_root().join(".tools/root/usr/bin/promtool"))
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_target, _agent, _addr, scrape) = scrape_a_traced_process(dir.path());
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write scrape");
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
