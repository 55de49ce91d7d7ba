//! The eBPF backend without some of its hooks, as on a kernel that lacks them (5.10 and 6.1
//! have no `sock:sock_send_length`): `TRACE_CLAW_EBPF_DISABLE` makes the loader treat the
//! named hooks as missing. The agent must still load everything else under `--ebpf require`,
//! say in one start-up line what it leaves out and why, label what it measures `ebpf`, leave
//! the lost series out instead of writing zeros, and keep the host's network bytes (procfs).
//! `TRACE_CLAW_EBPF_DISABLE=group_dead` makes the exit program work as before 6.16, when
//! `sched_process_exit` had no `group_dead` field.

use std::path::Path;
use std::process::Command;

use trace_claw_agent::collect::ebpf::DISABLE_ENV;
use trace_claw_common::event::ProcessEventKind;
use trace_claw_common::names;
use trace_claw_common::sample::MetricSample;

use crate::require_ebpf;
use crate::with_ebpf::{assert_cpu_within_1_percent, collect_until_exited, exit_of, wait4, Target};

/// A CPU-burning child tracked by the agent binary with both socket hooks disabled: its CPU
/// time is measured by eBPF (above 0 and at most wait4's rusage of its whole life + 1%, as the
/// agent stops first), block reads are still written, its socket series are absent, and the
/// one start-up line names both hooks and the reason.
pub fn a_missing_hook_leaves_out_only_its_series() {
    if !require_ebpf() {
        return;
    }
    let target = Target::new("dg");
    // 30 rounds of 50 ms busy, 50 ms asleep: ~3 s, longer than the agent's 2 s run below.
    let pid = target.spawn("burn", &["30".into(), "50".into(), "50".into()]);
    let out = tempfile::tempdir().expect("tempdir");
    let agent = Command::new(env!("CARGO_BIN_EXE_trace-claw-agent"))
        .env(DISABLE_ENV, "sock_send_length, sock_recv_length")
        .args(["collect", "--ebpf", "require", "--interval", "1"])
        .args(["--duration", "2", "--process", target.name()])
        .arg("--output-dir")
        .arg(out.path())
        .output()
        .expect("run the agent");
    let reaped = wait4(pid);
    let stderr = String::from_utf8_lossy(&agent.stderr);
    assert!(agent.status.success(), "agent failed: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("eBPF loaded"))
        .collect();
    assert_eq!(lines.len(), 1, "one start-up line: {stderr}");
    for needle in [
        "without 2 of its hooks",
        names::PROCESS_NET_SENT.name,
        names::PROCESS_NET_RECV.name,
        "sock_send_length: disabled by TRACE_CLAW_EBPF_DISABLE",
        "sock_recv_length: disabled by TRACE_CLAW_EBPF_DISABLE",
    ] {
        assert!(lines[0].contains(needle), "'{needle}' not in: {}", lines[0]);
    }

    let samples = read_samples(out.path());
    let pid = pid.to_string();
    let of = |name: &str| -> Vec<&MetricSample> {
        samples
            .iter()
            .filter(|s| s.name == name && s.label("pid") == Some(pid.as_str()))
            .collect()
    };
    let cpu = of(names::PROCESS_CPU_TIME.name);
    let last = cpu
        .last()
        .unwrap_or_else(|| panic!("no CPU samples of pid {pid}"));
    assert_eq!(last.label("source"), Some("ebpf"), "{last:?}");
    assert!(
        last.value * 1e9 <= reaped.cpu_ns as f64 * 1.01 && last.value > 0.0,
        "CPU {} s measured, {} ns true",
        last.value,
        reaped.cpu_ns
    );
    assert!(
        !of(names::PROCESS_IO_BLOCK_READ.name).is_empty(),
        "block reads are still measured"
    );
    for lost in [&names::PROCESS_NET_SENT, &names::PROCESS_NET_RECV] {
        let written = samples.iter().filter(|s| s.name == lost.name).count();
        assert_eq!(written, 0, "{} left out, not written as 0", lost.name);
    }
    assert!(
        samples
            .iter()
            .any(|s| s.name == names::SYSTEM_NET_SENT_TOTAL.name),
        "host network bytes still come from /proc/net/dev"
    );
}

/// Without `group_dead`, the exit program finds a process's end from `signal->live`: a child
/// whose four threads burn 60 ms of CPU each gets exactly one exit event, with its exit code
/// and its on-CPU time within 1% of wait4's rusage (which counts all its threads).
pub fn exits_are_found_without_group_dead() {
    if !require_ebpf() {
        return;
    }
    let target = Target::new("gd");
    let mut c = target.collector_without(&["group_dead"]);
    let pid = target.spawn("threads", &["4".into(), "60".into(), "7".into()]);
    let reaped = wait4(pid);
    assert!(libc::WIFEXITED(reaped.status) && libc::WEXITSTATUS(reaped.status) == 7);
    let events = collect_until_exited(&mut c, &[pid]);
    let exits = events
        .iter()
        .filter(|e| e.pid == pid && e.kind == ProcessEventKind::Exit)
        .count();
    assert_eq!(exits, 1, "one exit event: {events:#?}");
    let exit = exit_of(&events, pid);
    assert_eq!(exit.exit_code, Some(7));
    let ebpf_ns = exit.totals.as_ref().expect("exit carries totals").cpu_ns;
    assert_cpu_within_1_percent(ebpf_ns, reaped.cpu_ns, 200_000_000);
}

/// Every sample in the `resources-*.jsonl` files under `dir`.
fn read_samples(dir: &Path) -> Vec<MetricSample> {
    let mut samples = Vec::new();
    for entry in std::fs::read_dir(dir).expect("output dir") {
        let path = entry.expect("entry").path();
        let is_resources = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("resources-"));
        if !is_resources {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read resources");
        for (i, line) in text.lines().enumerate() {
            let sample = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            samples.push(sample);
        }
    }
    samples
}
