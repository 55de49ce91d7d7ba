//! Per-action cost in polling mode against real processes: interpolated between samples, it
//! must say so (`method`, `resolution_ms`, `~` in the table), be charged to the tree that ran
//! the action (a busy decoy tree of the same name is reported apart), and stay within the bound
//! docs/analyze-json.md states: off by at most what the action's tree used in the sampling
//! interval around the action's start plus the one around its end.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use trace_claw_common::event::{ActionEvent, EVENT_TOOL};
use trace_claw_common::names;
use trace_claw_common::time::Timestamp;

use crate::util::{agent, named_copy, read_jsonl, text, unique, Reaped};

/// A shell's main-thread CPU time (`/proc/PID/schedstat`), ns.
fn schedstat_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .expect("schedstat")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("sum_exec_runtime")
}

/// The ticks of the `pid="total"` samples, in order.
fn ticks(out: &std::path::Path) -> Vec<i64> {
    let mut v: Vec<i64> = read_jsonl(out, "resources")
        .iter()
        .filter(|s| s["name"] == names::PROCESS_CPU_TIME.name && s["labels"]["pid"] == "total")
        .filter_map(|s| Timestamp::parse_rfc3339(s["timestamp"].as_str()?).map(|t| t.0))
        .collect();
    v.sort_unstable();
    v
}

/// The CPU seconds tree `root` used per sampling interval, from its tree-costs lines: (start,
/// end, seconds), in order.
fn tree_intervals(out: &std::path::Path, root: u32) -> Vec<(i64, i64, f64)> {
    let mut v: Vec<(i64, i64, f64)> = read_jsonl(out, "tree-costs")
        .iter()
        .filter(|l| l["root_pid"] == root)
        .filter(|l| l["interpolated"] == true)
        .filter_map(|l| {
            let t = Timestamp::parse_rfc3339(l["timestamp"].as_str()?)?.0;
            let width = l["slot_ms"].as_i64()? * 1_000_000;
            let slot = l["slots"].as_array()?.first()?.as_array()?.clone();
            Some((t, t + width, slot[1].as_f64()? / 1e9))
        })
        .collect();
    v.sort_by_key(|&(t, ..)| t);
    v
}

/// What the tree used in the sampling interval holding `t` (between two of `ticks`): 0 when it
/// used nothing then (no slot).
fn interval_use(ticks: &[i64], intervals: &[(i64, i64, f64)], t: i64) -> f64 {
    let after = ticks.partition_point(|&s| s <= t);
    let (Some(from), Some(to)) = (after.checked_sub(1).map(|i| ticks[i]), ticks.get(after)) else {
        return f64::INFINITY;
    };
    intervals
        .iter()
        .filter(|&&(s, e, _)| s < *to && e > from)
        .map(|&(.., cpu)| cpu)
        .sum()
}

#[test]
fn polling_costs_are_marked_interpolated_and_within_the_stated_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("tcitcost");
    let shell = named_copy(dir.path(), "/bin/sh", &name);
    let out = dir.path().join("out");
    // Per line N: count to N (pure shell builtins: all CPU in the shell), then say done.
    let mut sh = Reaped(
        Command::new(&shell)
            .args([
                "-c",
                "while read n; do i=0; while [ $i -lt $n ]; do i=$((i+1)); done; echo done; done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn shell"),
    );
    let pid = sh.0.id();
    // The decoy: a second tree of the same name, busy the whole time (a count, then a child).
    let _decoy = Reaped(
        Command::new(&shell)
            .args([
                "-c",
                "while :; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 0.05; done",
            ])
            .spawn()
            .expect("spawn decoy"),
    );
    let mut to_sh = sh.0.stdin.take().expect("stdin");
    let mut from_sh = BufReader::new(sh.0.stdout.take().expect("stdout"));
    let collector = agent()
        .args(["collect", "--ebpf", "off", "--process", &name])
        .args(["--interval", "2", "--duration", "13", "--output-dir"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent");
    std::thread::sleep(Duration::from_millis(2500));
    let mut events = Vec::new();
    let mut truths = Vec::new();
    for (i, n) in [60_000, 150_000, 30_000, 250_000, 90_000]
        .iter()
        .enumerate()
    {
        let cpu0 = schedstat_ns(pid);
        let start = Timestamp::now();
        writeln!(to_sh, "{n}").expect("command");
        let mut done = String::new();
        from_sh.read_line(&mut done).expect("done");
        let end = Timestamp::now();
        truths.push((schedstat_ns(pid) - cpu0) as f64 / 1e9);
        let mut e = ActionEvent::new(EVENT_TOOL, start);
        e.tool_name = Some(format!("count{i}"));
        e.duration_ms = (end.0 - start.0) as f64 / 1e6;
        e.pid = Some(pid);
        events.push(e);
        std::thread::sleep(Duration::from_millis(1300));
    }
    let o = collector.wait_with_output().expect("agent exits");
    assert!(o.status.success(), "{}", text(&o));
    let mut f = std::fs::File::create(out.join("events-test.jsonl")).expect("events");
    for e in &events {
        writeln!(f, "{}", serde_json::to_string(e).expect("json")).expect("write");
    }
    drop(f);
    let o = agent()
        .args(["analyze", "--format", "json", "--trace-dir"])
        .arg(&out)
        .output()
        .expect("analyze");
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rows = report["action_timeline"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), truths.len());
    let ticks = ticks(&out);
    let intervals = tree_intervals(&out, pid);
    assert!(
        !intervals.is_empty(),
        "no polled tree-costs lines for the shell's tree"
    );
    for ((row, truth), e) in rows.iter().zip(&truths).zip(&events) {
        let c = &row["resource_cost"];
        assert_eq!(c["method"], "interpolated", "{c}");
        assert_eq!(c["root_pid"], pid, "charged to the shell's own tree: {c}");
        let resolution = c["resolution_ms"].as_f64().expect("resolution_ms");
        assert!(
            (1500.0..=2500.0).contains(&resolution),
            "the 2 s interval: {c}"
        );
        let got = c["cpu_seconds"].as_f64().expect("cpu");
        let bound = interval_use(&ticks, &intervals, e.timestamp.0)
            + interval_use(&ticks, &intervals, e.end().0);
        eprintln!("  truth {truth:.4} s, interpolated {got:.4} s, stated bound {bound:.4} s");
        // Plus 11 ms: the polled counter is utime+stime, in 10 ms clock ticks.
        assert!(
            (got - truth).abs() <= bound + 0.011,
            "interpolated {got} vs truth {truth}: beyond the bound {bound}"
        );
    }
    let others = &report["overall"]["other_trees"];
    eprintln!("  other trees: {others}");
    assert_eq!(others["trees"], 1, "the decoy, apart: {others}");
    assert!(
        others["cost"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.1,
        "the decoy was busy: {others}"
    );
    let table = agent()
        .args(["analyze", "--trace-dir"])
        .arg(&out)
        .output()
        .expect("analyze table");
    assert!(
        String::from_utf8_lossy(&table.stdout).contains('~'),
        "interpolated costs are marked ~ in the table"
    );
}
