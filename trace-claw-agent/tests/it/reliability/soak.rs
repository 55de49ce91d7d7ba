//! The CI-sized soak (`cargo xtask soak` is the long one): 400 ticks at 25 ms under PID churn,
//! checking the agent's fds stay flat, its RSS settles, and every line is whole.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::support::{check_jsonl, ticks_reported, StderrLines};
use crate::util::agent;

fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count();
    (rss, fds)
}

/// Distinct tick timestamps written so far (0 before the first file exists).
fn check_jsonl_stamps(out: &std::path::Path) -> usize {
    if !out.is_dir() {
        return 0;
    }
    std::fs::read_dir(out)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("resources-"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .flat_map(|body| {
                    body.lines()
                        .filter_map(|l| l.get(14..40).map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .unwrap_or(0)
}

#[test]
fn short_soak_under_pid_churn_keeps_fds_flat_and_rss_settled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("tcsoakci{}", std::process::id() % 100_000);
    let target = dir.path().join(&name);
    std::fs::copy("/bin/sh", &target).expect("copy sh");
    let churn = r#"while :; do "$0" -c 'i=0; while [ $i -lt 500 ]; do i=$((i+1)); done' & sleep 0.01; done"#;
    let mut churn = Command::new(&target)
        .args(["-c", churn])
        .arg(&target)
        .spawn()
        .expect("churn");
    let out = dir.path().join("out");
    let mut child = agent()
        .args([
            "collect",
            "--ebpf",
            "off",
            "--interval",
            "0.025",
            "--count",
            "400",
        ])
        .args(["--process", &name, "--output-dir"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent");
    let pid = child.id();
    let mut err = StderrLines::of(&mut child);
    assert!(err.wait_for("collecting every"), "{}", err.joined());
    // Readings once a tenth of the ticks have run (buffers allocated), then at the end.
    while check_jsonl_stamps(&out) < 40 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "agent ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let early = footprint(pid);
    let mut readings = vec![early];
    while child.try_wait().expect("wait").is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if status.contains("State:\tZ") {
                break;
            }
            readings.push(footprint(pid));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // A reading may land mid-tick, while the agent holds a /proc file or two open; a leak shows
    // in every reading, so the fd count to compare is the lowest of the last few.
    let tail = &readings[readings.len().saturating_sub(5)..];
    let late = (
        tail.last().map_or(early.0, |r| r.0),
        tail.iter().map(|r| r.1).min().unwrap_or(early.1),
    );
    let status = child.wait().expect("agent ends");
    // Best effort: stop the churn loop; its last children exit on their own.
    let _ = churn.kill();
    let _ = churn.wait();
    let log = err.rest().join("\n");
    assert!(status.success(), "{log}");
    assert_eq!(ticks_reported(&log), 400);
    let (_, stamps) = check_jsonl(&out, "resources-");
    assert_eq!(stamps.len(), 400, "every tick written");
    check_jsonl(&out, "process-events-");
    assert!(late.1 <= early.1 + 1, "fds grew {} -> {}", early.1, late.1);
    assert!(
        late.0 <= early.0 + early.0 / 4 + 4096,
        "RSS grew {} -> {} KiB (early reading after 40 ticks)",
        early.0,
        late.0
    );
}
