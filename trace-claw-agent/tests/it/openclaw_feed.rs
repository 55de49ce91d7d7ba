//! The live feed of `collect`: OpenClaw's real 2026.4.29 file log, written into a log directory
//! piece by piece while the agent runs, must come out as the calls that ended after the agent
//! started, each once, in the trace directory's events files, with the gateway's pid.
//!
//! Ground truth, counted by hand in tests/fixtures/openclaw/logs/openclaw-2026-11-24.log: 12
//! `embedded run agent end` lines (LLM calls) at lines 57, 97, 132, 136, 139, 142, 208, 212,
//! 215, 219, 238 and 274, one `embedded run tool end` (exec) at line 96, whose run starts at
//! line 76 in session 8388168c-cf83-42e7-9f30-c88ae8bd3685 and whose tool starts at line 95.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{
    agent, collect_nothing, fixture, named_copy, read_jsonl, run_ok, sigterm, Reaped,
};

/// The capture's lines, each with its newline.
fn capture_lines() -> Vec<String> {
    std::fs::read_to_string(fixture("openclaw/logs/openclaw-2026-11-24.log"))
        .expect("capture")
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(text.as_bytes()).expect("append");
}

/// Waits until the trace directory holds `n` actions (or 20 s pass), returning them.
fn wait_for_actions(dir: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = read_jsonl(dir, "events-");
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(unix)]
#[test]
fn calls_logged_while_collecting_reach_the_trace_dir_once_with_the_gateways_pid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("openclaw-logs");
    let trace = tmp.path().join("trace");
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("openclaw-2026-11-24.log");
    let lines = capture_lines();
    // Logged before the agent starts: run and tool starts, and one finished LLM call (line 57).
    append(&log, &lines[..95].concat());

    // A process titled like the gateway ("openclaw-gateway", comm cut to 15 bytes).
    let gateway_exe = named_copy(tmp.path(), "/bin/sleep", "openclaw-gateway");
    let gateway = Reaped(
        Command::new(&gateway_exe)
            .arg("60")
            .spawn()
            .expect("gateway"),
    );
    let child = agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--process",
            "openclaw-gatewa",
            "--interval",
            "0.2",
            "--openclaw-log-dir",
        ])
        .arg(&logs)
        .arg("--output-dir")
        .arg(&trace)
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let mut child = Reaped(child);

    // The rest arrives while the agent runs, a line cut in two between writes.
    let rest = lines[95..].concat();
    let cut = rest.len() / 2 + 17;
    std::thread::sleep(Duration::from_millis(600));
    append(&log, &rest[..cut]);
    std::thread::sleep(Duration::from_millis(400));
    append(&log, &rest[cut..]);
    let events = wait_for_actions(&trace, 12);
    let (status, stderr) = sigterm(&mut child);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("OpenClaw gateway found"),
        "auto mode: the tracked gateway turns the feed on\n{stderr}"
    );

    let events = {
        let again = read_jsonl(&trace, "events-");
        assert_eq!(again.len(), events.len(), "nothing written after shutdown");
        again
    };
    let kinds = |t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    assert_eq!(
        kinds("llm"),
        11,
        "the 12 LLM calls less line 57's\n{stderr}"
    );
    assert_eq!(kinds("tool"), 1);
    assert_eq!(events.len(), 12);
    for e in &events {
        assert_eq!(e["pid"].as_u64(), Some(u64::from(gateway.0.id())), "{e}");
    }
    let tool = events
        .iter()
        .find(|e| e["event_type"] == "tool")
        .expect("tool");
    assert_eq!(tool["tool_name"], "exec");
    assert_eq!(
        tool["session_id"], "8388168c-cf83-42e7-9f30-c88ae8bd3685",
        "the session comes from a run start logged before the agent started"
    );
    // Start 15:46:01.x (line 95) to end 15:46:02.787 (line 96), as logged.
    let ms = tool["duration_ms"].as_f64().expect("duration");
    assert!(ms > 0.0 && ms < 2000.0, "{ms}");
    assert!(
        stderr.contains("OpenClaw feed: 12 calls written"),
        "{stderr}"
    );

    // The trace dir alone, with no copied log, gives the calls to `analyze`.
    let o = run_ok(
        agent()
            .args(["analyze", "--format", "json", "--trace-dir"])
            .arg(&trace),
    );
    let report: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["overall"]["llm_calls"], 11, "{}", report["overall"]);
    assert_eq!(report["overall"]["tool_calls"], 1);
}

#[cfg(unix)]
#[test]
fn follows_a_rotated_log_and_counts_lines_that_are_not_records() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let logs = tmp.path().join("logs");
    let trace = tmp.path().join("trace");
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("openclaw-2026-11-24.log");
    let lines = capture_lines();
    let mut child = Reaped(
        collect_nothing("0.2", &trace)
            .arg("--openclaw")
            .arg("--openclaw-log-dir")
            .arg(&logs)
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent starts"),
    );
    // Lines 1-100 (two LLM calls, the tool call), then the file is rotated away and the rest
    // goes to a new file of the same name, after a line that is not JSON.
    std::thread::sleep(Duration::from_millis(500));
    append(&log, &lines[..100].concat());
    assert_eq!(wait_for_actions(&trace, 3).len(), 3);
    std::fs::rename(&log, logs.join("openclaw-2026-11-24.1.log")).expect("rotate");
    append(&log, "not a log record\n");
    append(&log, &lines[100..].concat());
    let events = wait_for_actions(&trace, 13);
    let (status, stderr) = sigterm(&mut child);
    assert!(status.success(), "{stderr}");
    assert_eq!(
        events.len(),
        13,
        "every call once, across the rotation\n{stderr}"
    );
    assert!(
        events.iter().all(|e| e["pid"].is_null()),
        "no gateway tracked, no pid"
    );
    assert!(
        stderr.contains("openclaw-2026-11-24.log:1: not an OpenClaw log record"),
        "{stderr}"
    );
    assert!(stderr.contains("1 lines skipped"), "{stderr}");
}
