//! `collect` in polling mode against real processes: matching, ground truth from /proc,
//! exits, restarts, and signals.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{agent, collect_nothing, named_copy, read_jsonl, text, unique, Reaped};

fn samples_of<'a>(samples: &'a [Value], name: &str, pid: &str) -> Vec<&'a Value> {
    samples
        .iter()
        .filter(|s| s["name"] == name && s["labels"]["pid"] == pid)
        .collect()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("field present")
}

#[test]
fn finds_named_child_and_its_descendants_within_proc_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("tcitpar");
    let parent_exe = named_copy(dir.path(), "/bin/sh", &name);
    // The parent (named) spawns an unnamed `sleep` child: a descendant.
    let parent = Reaped(
        Command::new(&parent_exe)
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn"),
    );
    let ppid = parent.0.id();
    std::thread::sleep(Duration::from_millis(200));
    let out = dir.path().join("out");
    let o = agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--process",
            &name,
            "--interval",
            "0.3",
            "--count",
            "3",
            "--output-dir",
        ])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o));
    let rss_kib_now = status_kib(ppid, "VmRSS:");
    let samples = read_jsonl(&out, "resources-");
    let pid = ppid.to_string();
    let rss = samples_of(&samples, "process.memory.rss_bytes", &pid);
    assert_eq!(rss.len(), 3, "one RSS sample per tick for the parent");
    let rss_kib = rss[2]["value"].as_f64().expect("number") as u64 / 1024;
    assert!(
        rss_kib.abs_diff(rss_kib_now) <= 512,
        "rss {rss_kib} KiB vs /proc {rss_kib_now} KiB"
    );
    assert_eq!(rss[0]["labels"]["tracked"], "match");
    assert_eq!(rss[0]["labels"]["source"], "procfs");
    assert_eq!(
        rss[0]["labels"]["process_name"].as_str(),
        Some(&name[..name.len().min(15)])
    );
    let children: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == "process.memory.rss_bytes" && s["labels"]["ppid"] == pid.as_str())
        .collect();
    assert!(!children.is_empty(), "the sleep child is traced");
    assert_eq!(children[0]["labels"]["tracked"], "descendant");
    let count = samples_of(&samples, "process.count", "total");
    assert_eq!(count.last().and_then(|s| s["value"].as_f64()), Some(2.0));
    let cpu = samples_of(&samples, "process.cpu.usage_percent", &pid);
    assert!(
        cpu.iter()
            .all(|s| (0.0..=200.0).contains(&s["value"].as_f64().unwrap_or(-1.0))),
        "{cpu:?}"
    );
}

#[test]
fn notices_exit_and_restart_with_a_new_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("tcitrst");
    let exe = named_copy(dir.path(), "/bin/sleep", &name);
    let mut first = Reaped(Command::new(&exe).arg("30").spawn().expect("spawn"));
    let first_pid = first.0.id();
    let out = dir.path().join("out");
    let mut agent = agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--process",
            &name,
            "--interval",
            "0.2",
            "--duration",
            "2.5",
            "--output-dir",
        ])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    std::thread::sleep(Duration::from_millis(900));
    first.0.kill().expect("kill");
    first.0.wait().expect("reap");
    let second = Reaped(Command::new(&exe).arg("30").spawn().expect("respawn"));
    let second_pid = second.0.id();
    let status = agent.wait().expect("agent ends");
    assert!(status.success());
    let events = read_jsonl(&out, "process-events-");
    let exit = events
        .iter()
        .find(|e| e["kind"] == "exit" && e["pid"] == first_pid);
    assert!(exit.is_some(), "exit of {first_pid} recorded: {events:?}");
    assert!(
        exit.and_then(|e| e["totals"]["cpu_ns"].as_u64()).is_some(),
        "exit carries final counters"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "exec" && e["pid"] == second_pid),
        "restart seen: {events:?}"
    );
    let samples = read_jsonl(&out, "resources-");
    let last_first = samples
        .iter()
        .rposition(|s| s["labels"]["pid"] == first_pid.to_string().as_str());
    let first_second = samples
        .iter()
        .position(|s| s["labels"]["pid"] == second_pid.to_string().as_str());
    assert!(
        last_first < first_second,
        "old pid evicted before the new one appears"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_flushes_complete_lines_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = collect_nothing("0.1", dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(r, 0);
    let o = child.wait_with_output().expect("ends");
    assert!(o.status.success(), "{}", text(&o));
    let samples = read_jsonl(dir.path(), "resources-");
    assert!(
        samples.len() > 20,
        "several ticks were written: {}",
        samples.len()
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopped after"),
        "{}",
        text(&o)
    );
}
