//! Fault injection against the real agent: SIGTERM/SIGINT mid-write, a full output disk, a
//! target restarted 1,000 times, and PID reuse forced in a PID namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{check_jsonl, require_root, ticks_reported, FakeCollector, StderrLines};
use crate::util::{agent, named_copy, read_jsonl, text, unique, Reaped};

/// Polls `cond` every 20 ms until it holds; panics after a generous `limit` (a hang, not a
/// speed assertion).
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own unreaped child's pid.
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Values of `name` with label pid=`pid`, in file order.
fn series(samples: &[Value], name: &str, pid: &str) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s["name"] == name && s["labels"]["pid"] == pid)
        .filter_map(|s| s["value"].as_f64())
        .collect()
}

fn assert_non_decreasing(name: &str, values: &[f64]) {
    for w in values.windows(2) {
        assert!(
            w[1] >= w[0],
            "{name} went backwards: {} -> {} in {values:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn sigterm_and_sigint_mid_write_leave_whole_lines_and_flush_the_last_tick() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 120 matching processes make each tick ~1,000 lines (~200 KB), so signals land
    // during serialization and writing, not only while idle.
    let name = unique("tcsig");
    let exe = named_copy(dir.path(), "/bin/sleep", &name);
    let _tree: Vec<Reaped> = (0..120)
        .map(|_| Reaped(Command::new(&exe).arg("600").spawn().expect("spawn")))
        .collect();
    let delays_ms = [0u64, 1, 3, 7, 15, 30, 55, 90, 140, 260];
    for (round, delay) in delays_ms.iter().enumerate() {
        for (sig, sig_name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
            let out = dir.path().join(format!("out-{round}-{sig_name}"));
            let mut child = agent()
                .args(["collect", "--ebpf", "off", "--interval", "0.02"])
                .args(["--process", &name, "--output-dir"])
                .arg(&out)
                .stderr(Stdio::piped())
                .spawn()
                .expect("agent starts");
            let mut err = StderrLines::of(&mut child);
            assert!(err.wait_for("collecting every"), "{}", err.joined());
            std::thread::sleep(Duration::from_millis(*delay));
            signal(&child, sig);
            let status = child.wait().expect("agent ends");
            let log = err.rest().join("\n");
            assert!(
                status.success(),
                "{sig_name} after {delay} ms: {status}\n{log}"
            );
            let ticks = ticks_reported(&log);
            let (lines, stamps) = check_jsonl(&out, "resources-");
            assert_eq!(
                stamps.len() as u64,
                ticks,
                "{sig_name} after {delay} ms: every tick, the last included, is in the file ({lines} lines)"
            );
            check_jsonl(&out, "process-events-");
        }
    }
}

/// Runs `script` under `sh` in a private mount namespace, with `vars` in its environment.
fn in_mount_namespace(script: &str, vars: &[(&str, &Path)]) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
    ]);
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

#[test]
fn full_output_disk_is_reported_once_collection_goes_on_and_no_line_is_torn() {
    if !require_root("full_output_disk_is_reported_once...") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    let saved = dir.path().join("saved");
    std::fs::create_dir_all(&mnt).expect("mnt");
    std::fs::create_dir_all(&saved).expect("saved");
    // The other sink, OTLP, must get every tick while the disk is full.
    let otlp = FakeCollector::start(200);
    // A 1 MiB tmpfs, filled but for 12 KiB; the agent fills the rest within a few ticks. The
    // mount lives in the agent's own mount namespace, so nothing leaks if the test dies.
    let script = r#"set -e
mount -t tmpfs -o size=1m tcfull "$MNT"
head -c $((1024 * 1024 - 12 * 1024)) /dev/zero > "$MNT/filler" 2>/dev/null || true
mkdir "$MNT/out"
status=0
"$AGENT" collect --ebpf off --interval 0.05 --count 80 --process tc-nothing-matches \
    --otlp-endpoint "$OTLP" --output-dir "$MNT/out" || status=$?
cp -a "$MNT/out/." "$SAVED/"
exit $status
"#;
    let mut child = in_mount_namespace(
        script,
        &[
            ("MNT", &mnt),
            ("SAVED", &saved),
            ("AGENT", Path::new(env!("CARGO_BIN_EXE_trace-claw-agent"))),
        ],
    )
    .env("OTLP", &otlp.url)
    .env("RUST_LOG", "info")
    .stderr(Stdio::piped())
    .spawn()
    .expect("unshare runs");
    let mut err = StderrLines::of(&mut child);
    assert!(err.wait_for("jsonl sink:"), "{}", err.joined());
    // Free the space from outside: the namespace's view through /proc/PID/root.
    let filler = PathBuf::from(format!("/proc/{}/root", child.id()))
        .join(mnt.strip_prefix("/").expect("absolute"))
        .join("filler");
    std::fs::remove_file(&filler).expect("free space");
    let status = child.wait().expect("ends");
    let log = err.rest().join("\n");
    assert!(status.success(), "{status}\n{log}");
    assert_eq!(
        err.count("jsonl sink:"),
        1,
        "one error line per cause:\n{log}"
    );
    assert!(
        log.contains("No space left on device"),
        "names the cause:\n{log}"
    );
    assert!(log.contains("jsonl sink recovered"), "{log}");
    let ticks = ticks_reported(&log);
    assert_eq!(ticks, 80, "collection went on through the full disk");
    let (_, stamps) = check_jsonl(&saved, "resources-");
    assert_eq!(
        stamps.len() as u64,
        ticks,
        "ticks buffered while the disk was full are written once space returns"
    );
    // The exporter may merge queued ticks into one request, so check losses, not requests.
    assert!(otlp.requests() > 0, "the OTLP sink kept sending:\n{log}");
    assert!(
        !log.contains("otlp export"),
        "the OTLP sink never failed:\n{log}"
    );
    let dropped = read_jsonl(&saved, "resources-")
        .iter()
        .filter(|s| s["name"] == "trace_claw.export.failed_batches")
        .filter_map(|s| s["value"].as_f64())
        .fold(0.0, f64::max);
    assert_eq!(
        dropped, 0.0,
        "no OTLP batch was dropped while the disk was full"
    );
}

#[test]
fn otlp_endpoint_answering_503_is_retried_logged_once_and_every_lost_batch_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = FakeCollector::start(503);
    let config = dir.path().join("c.yaml");
    std::fs::write(&config, "otel:\n  queue_batches: 4\n").expect("config");
    let out = dir.path().join("out");
    let o = agent()
        .arg("-c")
        .arg(&config)
        .args([
            "collect",
            "--ebpf",
            "off",
            "--interval",
            "0.05",
            "--count",
            "60",
        ])
        .args([
            "--process",
            "tc-nothing-matches",
            "--otlp-endpoint",
            &endpoint.url,
        ])
        .arg("--output-dir")
        .arg(&out)
        .output()
        .expect("agent runs");
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        ticks_reported(&log),
        60,
        "collection never waited on the endpoint"
    );
    let retrying: Vec<&str> = log.lines().filter(|l| l.contains("(retrying")).collect();
    assert!(
        retrying.len() == 1 && retrying[0].contains("HTTP 503"),
        "the 503 is logged once, naming the status:\n{log}"
    );
    assert!(endpoint.requests() >= 1, "the endpoint was tried");
    // Every batch is either counted while running (the self-metric) or reported at shutdown.
    let samples = read_jsonl(&out, "resources-");
    let counted = samples
        .iter()
        .filter(|s| s["name"] == "trace_claw.export.failed_batches")
        .filter_map(|s| s["value"].as_f64())
        .fold(0.0, f64::max) as u64;
    let lost_at_shutdown: u64 = log
        .lines()
        .find_map(|l| {
            l.split(": ")
                .find_map(|p| p.strip_suffix(" batches not delivered at shutdown"))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no shutdown loss line:\n{log}"));
    assert!(counted > 0, "drops counted while running: {counted}");
    assert!(
        (59..=60).contains(&(counted + lost_at_shutdown)),
        "{counted} counted + {lost_at_shutdown} lost at shutdown vs 60 batches"
    );
}

#[test]
fn otlp_endpoint_answering_400_is_not_retried_and_every_batch_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = FakeCollector::start(400);
    let out = dir.path().join("out");
    let o = agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--interval",
            "0.05",
            "--count",
            "40",
            "--process",
            "tc-nothing-matches",
            "--otlp-endpoint",
            &endpoint.url,
        ])
        .arg("--output-dir")
        .arg(&out)
        .output()
        .expect("agent runs");
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("HTTP 400")).collect();
    assert!(
        errors.len() == 1 && errors[0].contains("not retryable"),
        "the 400 is logged once, as final:\n{log}"
    );
    assert!(!log.contains("(retrying"), "{log}");
    // Each batch was tried once and counted: as many requests as batches dropped, and none
    // left for shutdown.
    let counted = read_jsonl(&out, "resources-")
        .iter()
        .filter(|s| s["name"] == "trace_claw.export.failed_batches")
        .filter_map(|s| s["value"].as_f64())
        .fold(0.0, f64::max) as u64;
    assert!(
        counted >= 30,
        "drops counted while running: {counted}\n{log}"
    );
    assert!(
        endpoint.requests() >= counted,
        "each dropped batch was sent once"
    );
    assert!(!log.contains("not delivered at shutdown"), "{log}");
}

#[test]
fn target_restarted_1000_times_keeps_totals_continuous_and_no_stale_pids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("tcchurn");
    // Each restart of the target burns a little CPU, so totals have something to add up.
    let target = named_copy(dir.path(), "/bin/sh", &name);
    let out = dir.path().join("out");
    let mut agent_child = agent()
        .args(["collect", "--ebpf", "off", "--interval", "0.02"])
        .args(["--process", &name, "--output-dir"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let mut err = StderrLines::of(&mut agent_child);
    assert!(err.wait_for("collecting every"), "{}", err.joined());
    // 1,000 restarts; every 100th spins ~0.1 s so polling sees CPU time accrue (the others
    // live a few ms, mostly between ticks).
    let workload = r#"n=0
while [ $n -lt 1000 ]; do
  k=200; [ $((n % 100)) -eq 0 ] && k=30000
  K=$k "$TARGET" -c 'i=0; while [ $i -lt $K ]; do i=$((i+1)); done'
  n=$((n+1))
done"#;
    let status = Command::new("sh")
        .args(["-c", workload])
        .env("TARGET", &target)
        .status()
        .expect("workload");
    assert!(status.success());
    // Let the agent see the last exit, then a few quiet ticks.
    let quiet_ticks = |out: &Path| {
        let samples = read_jsonl(out, "resources-");
        let counts = series(&samples, "process.count", "total");
        counts.len() >= 5 && counts[counts.len() - 3..].iter().all(|&c| c == 0.0)
    };
    wait_until(
        "three ticks with no live target",
        Duration::from_secs(60),
        || quiet_ticks(&out),
    );
    signal(&agent_child, libc::SIGTERM);
    let status = agent_child.wait().expect("agent ends");
    let log = err.rest().join("\n");
    assert!(status.success(), "{status}\n{log}");

    let samples = read_jsonl(&out, "resources-");
    for metric in [
        "process.cpu.time_seconds",
        "process.io.read_bytes",
        "process.io.write_bytes",
    ] {
        let totals = series(&samples, metric, "total");
        assert!(totals.len() > 10, "{metric}: {}", totals.len());
        assert_non_decreasing(metric, &totals);
    }
    let cpu = series(&samples, "process.cpu.time_seconds", "total");
    assert!(
        cpu.last().copied().unwrap_or(0.0) > 0.0,
        "restarts that were seen add their CPU time: {cpu:?}"
    );
    // No stale pid: every process that was ever sampled got an exit event, and the last tick
    // carries only the tree total.
    let events = read_jsonl(&out, "process-events-");
    let exited: std::collections::HashSet<u64> = events
        .iter()
        .filter(|e| e["kind"] == "exit")
        .filter_map(|e| e["pid"].as_u64())
        .collect();
    let sampled: std::collections::HashSet<u64> = samples
        .iter()
        .filter_map(|s| s["labels"]["pid"].as_str())
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        sampled.len() >= 5,
        "the agent saw at least the long-lived restarts: {}",
        sampled.len()
    );
    let stale: Vec<&u64> = sampled.difference(&exited).collect();
    assert!(stale.is_empty(), "sampled but never exited: {stale:?}");
    let last = samples.last().expect("samples")["timestamp"].clone();
    assert!(
        samples
            .iter()
            .filter(|s| s["timestamp"] == last)
            .all(|s| s["labels"]["pid"].as_str().is_none_or(|p| p == "total")),
        "last tick has per-pid samples of dead processes"
    );
}

#[test]
fn reused_pid_is_a_new_process_with_its_own_counters() {
    if !require_root("reused_pid_is_a_new_process...") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("tcreuse");
    let target = named_copy(dir.path(), "/bin/sh", &name);
    let out = dir.path().join("out");
    // In a fresh PID namespace, writing ns_last_pid = 999 before each start hands the target
    // pid 1000 every time: ten processes, one pid. Each instance spins briefly, then sleeps so
    // the agent (20 ms ticks) samples it.
    let script = r#"set -e
"$AGENT" collect --ebpf off --interval 0.02 --process "$NAME" --output-dir "$OUT" 2>"$OUT.log" &
agent=$!
while ! grep -q 'collecting every' "$OUT.log" 2>/dev/null; do sleep 0.02; done
for k in 1 2 3 4 5 6 7 8 9 10; do
  echo 999 > /proc/sys/kernel/ns_last_pid
  "$TARGET" -c 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.2'
done
sleep 0.2
kill -TERM $agent
wait $agent
"#;
    let o = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--", "sh", "-c", script])
        .env("AGENT", env!("CARGO_BIN_EXE_trace-claw-agent"))
        .env("NAME", &name)
        .env("OUT", &out)
        .env("TARGET", &target)
        .env("RUST_LOG", "info")
        .output()
        .expect("unshare runs");
    let log = std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default();
    assert!(o.status.success(), "{}\nagent log:\n{log}", text(&o));
    let events = read_jsonl(&out, "process-events-");
    let at_1000: Vec<&str> = events
        .iter()
        .filter(|e| e["pid"] == 1000)
        .filter_map(|e| e["kind"].as_str())
        .collect();
    let exits = at_1000.iter().filter(|k| **k == "exit").count();
    assert!(
        exits >= 9,
        "each reuse of pid 1000 ends the previous process: {at_1000:?}"
    );
    let samples = read_jsonl(&out, "resources-");
    let totals = series(&samples, "process.cpu.time_seconds", "total");
    assert_non_decreasing("process.cpu.time_seconds total", &totals);
    // Within one process the counter never goes backwards; a drop marks a new process, and
    // there must be one per reuse boundary at most.
    let per_pid = series(&samples, "process.cpu.time_seconds", "1000");
    let drops = per_pid.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(
        drops <= exits,
        "{drops} drops for {exits} exits: {per_pid:?}"
    );
    let counts = series(&samples, "process.count", "total");
    assert_eq!(
        counts.last(),
        Some(&0.0),
        "no stale pid after the last exit"
    );
}

#[test]
fn receiver_under_a_slowloris_serves_others_and_cuts_every_slow_client() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use trace_claw_agent::config::ReceiverConfig;
    use trace_claw_agent::receive::Receiver;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = ReceiverConfig {
        enabled: true,
        listen: "127.0.0.1:0".to_owned(),
        max_body_bytes: 64 * 1024,
        request_timeout_seconds: 1.0,
        ..ReceiverConfig::default()
    };
    let receiver = Receiver::spawn(&config, dir.path()).expect("receiver starts");
    let addr = receiver.local_addr();
    // 200 clients dribble header bytes and 100 dribble a body they announced as 1 MB: each
    // sends one byte every 100 ms, so no idle timeout alone would ever cut them.
    let mut slow: Vec<(TcpStream, &[u8])> = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nonblocking(true).expect("nonblocking");
        let start: &[u8] = if i < 200 {
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
        };
        s.write_all(start).expect("start");
        let drip: &[u8] = if i < 200 { b"X" } else { b" " };
        slow.push((s, drip));
    }
    let (mut served, mut cut) = (false, vec![false; slow.len()]);
    let started = Instant::now();
    while cut.iter().any(|c| !c) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} slow clients still connected after 60 s",
            cut.iter().filter(|c| !**c).count()
        );
        if !served {
            let mut s = TcpStream::connect(addr).expect("connect while under attack");
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout");
            let body = br#"{"resourceSpans":[]}"#;
            let head = format!(
                "POST /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).expect("head");
            s.write_all(body).expect("body");
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let text = String::from_utf8_lossy(&answer);
            assert!(
                text.starts_with("HTTP/1.1 200"),
                "legit client refused: {text}"
            );
            served = true;
        }
        for (i, (s, drip)) in slow.iter_mut().enumerate() {
            if cut[i] {
                continue;
            }
            let mut buf = [0u8; 1024];
            let closed = match s.read(&mut buf) {
                Ok(0) => true,
                Ok(_) => false, // a 408 answer; the close follows
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                Err(_) => true,
            };
            cut[i] = closed
                || match s.write(drip) {
                    Ok(_) => false,
                    Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served);
    assert_eq!(receiver.accepted(), 1);
    receiver.shutdown();
}
