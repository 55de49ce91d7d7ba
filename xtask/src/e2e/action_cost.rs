//! The check that each action's resource cost is measured and right: every action timeline
//! row has a cost, and the `exec` tool action's CPU holds the CPU of the shell it ran (exact,
//! from the shell's exit event) and does not exceed what the gateway's tree used in that
//! window (its `tree-costs-*.jsonl` slots).

use std::path::Path;

use serde_json::Value;
use trace_claw_common::cost::TreeCosts;

use super::checks::{
    field, files_under, json_lines, no_actions, process_events, shell_runs, summarize, Actions,
    Verdict,
};

/// Counters of `resource_cost` that are bytes.
const BYTES: [&str; 5] = [
    "read_bytes",
    "write_bytes",
    "block_read_bytes",
    "net_sent_bytes",
    "net_recv_bytes",
];

/// How long before the `exec` action's logged start its shell may have been exec'd: OpenClaw
/// dates the tool's span after spawning the shell (the shell's exec came 29 ms before the
/// action's start in the run of 2026-12-04, so a window of the action alone found no shell and
/// the check held vacuously).
const SHELL_LEAD_S: f64 = 0.1;

/// The per-action bound of issue 16: max(5 %, 5 ms) of CPU.
fn cpu_slack(cpu: f64) -> f64 {
    (0.05 * cpu).max(0.005)
}

/// Action timeline rows carry each action's measured CPU seconds and bytes, and the `exec`
/// tool action's CPU lies between its shell's own CPU and its tree's total for the window.
pub fn timeline_costs(actions: &Actions, trace_dir: &Path) -> Verdict {
    const NAME: &str = "the action timeline shows CPU seconds and bytes per action";
    if let Some(v) = no_actions(NAME, actions) {
        return v;
    }
    let Ok(actions) = actions else {
        return Verdict::new(NAME, false, "no analyzer JSON");
    };
    let mut measured = 0;
    let mut cpu_total = 0.0;
    let mut bytes_total = 0.0;
    let mut lines = Vec::new();
    for row in actions {
        let cost = match field(row, "resource_cost") {
            Ok(c) if c.is_null() => continue,
            Ok(c) => c,
            Err(e) => return Verdict::new(NAME, false, e),
        };
        let Some(cpu) = cost.get("cpu_seconds").and_then(Value::as_f64) else {
            return Verdict::new(
                NAME,
                false,
                "analyzer JSON missing field resource_cost.cpu_seconds",
            );
        };
        let bytes: f64 = BYTES
            .iter()
            .filter_map(|k| cost.get(*k).and_then(Value::as_f64))
            .sum();
        measured += 1;
        cpu_total += cpu;
        bytes_total += bytes;
        lines.push(format!(
            "{} {}: {cpu:.3} s CPU, {bytes:.0} B ({})",
            row["action"].as_str().unwrap_or("?"),
            row["name"].as_str().unwrap_or("-"),
            cost["method"].as_str().unwrap_or("?")
        ));
    }
    let (exec_ok, exec_detail) = exec_action_holds_its_shell(actions, trace_dir);
    let detail = format!(
        "{measured}/{} actions with a measured resource_cost (total {cpu_total:.3} s CPU, \
         {bytes_total:.0} B): {}; {exec_detail}",
        actions.len(),
        summarize(&lines)
    );
    Verdict::new(
        NAME,
        measured == actions.len() && cpu_total > 0.0 && bytes_total > 0.0 && exec_ok,
        detail,
    )
}

/// Whether every `exec` tool action's CPU is at least its shells' exact CPU and at most its
/// tree's total over the action's window (each within the per-action bound), and the numbers.
fn exec_action_holds_its_shell(actions: &[Value], trace_dir: &Path) -> (bool, String) {
    let events = process_events(trace_dir);
    let trees: Vec<TreeCosts> = files_under(trace_dir, |n| {
        n.starts_with(trace_claw_common::cost::TREE_COSTS_PREFIX) && n.ends_with(".jsonl")
    })
    .iter()
    .flat_map(|f| json_lines(f))
    .filter_map(|v| serde_json::from_value(v).ok())
    .collect();
    let mut ok = true;
    let mut parts = Vec::new();
    for row in actions
        .iter()
        .filter(|r| r["action"] == "tool" && r["name"] == "exec")
    {
        let cost = &row["resource_cost"];
        let (Some(from), Some(to), Some(cpu)) = (
            secs(&row["time"]),
            secs(&row["end"]),
            cost["cpu_seconds"].as_f64(),
        ) else {
            ok = false;
            parts.push("exec action without time, end or cpu_seconds".to_owned());
            continue;
        };
        let shells = shell_runs(&events, from - SHELL_LEAD_S, to);
        let shell_cpu: f64 = shells
            .exits
            .iter()
            .filter_map(|e| e.totals.map(|t| t.cpu_ns as f64 / 1e9))
            .sum();
        if shells.exits.is_empty() {
            ok = false;
            parts.push("no shell exit with counters for the exec action".to_owned());
        }
        let root = cost["root_pid"].as_u64();
        let tree_cpu = root.map(|r| tree_cpu(&trees, r as u32, from, to));
        let holds = cpu + cpu_slack(shell_cpu) >= shell_cpu;
        let within = tree_cpu.is_some_and(|t| cpu <= t + cpu_slack(t));
        ok &= holds && within && cost["method"] == "time_slots";
        parts.push(format!(
            "exec action {cpu:.3} s CPU ({}), its {} shells {shell_cpu:.3} s (must be <=), \
             tree {} total {} s (must be >=)",
            cost["method"].as_str().unwrap_or("?"),
            shells.exits.len(),
            root.map_or("?".to_owned(), |r| r.to_string()),
            tree_cpu.map_or("?".to_owned(), |t| format!("{t:.3}"))
        ));
    }
    if parts.is_empty() {
        return (false, "no exec tool action".to_owned());
    }
    (ok, parts.join("; "))
}

/// Unix seconds of an RFC 3339 string value.
fn secs(v: &Value) -> Option<f64> {
    let t = trace_claw_common::time::Timestamp::parse_rfc3339(v.as_str()?)?;
    Some(t.unix_secs_f64())
}

/// CPU seconds tree `root` used in the slots that overlap Unix seconds `[from, to]` (whole
/// slots: an upper bound of what any action in the window can be charged).
fn tree_cpu(trees: &[TreeCosts], root: u32, from: f64, to: f64) -> f64 {
    let (from, to) = ((from * 1e9) as i64, (to * 1e9) as i64);
    trees
        .iter()
        .filter(|t| t.root_pid == root)
        .flat_map(|t| t.slots.iter().map(move |s| (t.slot_span(s), s[1])))
        .filter(|&((start, end), _)| end > from && start < to)
        .map(|(_, cpu_ns)| cpu_ns as f64 / 1e9)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timeline_check_names_the_missing_field() {
        let dir = Path::new("/nonexistent");
        let v = timeline_costs(&Ok(vec![json!({"action": "llm"})]), dir);
        assert!(!v.pass);
        assert_eq!(v.detail, "analyzer JSON missing field resource_cost");
        let v = timeline_costs(
            &Ok(vec![json!({"action": "llm", "resource_cost": {}})]),
            dir,
        );
        assert_eq!(
            v.detail,
            "analyzer JSON missing field resource_cost.cpu_seconds"
        );
    }

    #[test]
    fn tree_cpu_sums_the_slots_overlapping_the_window() {
        let line: TreeCosts = serde_json::from_value(json!({
            "timestamp": "1970-01-01T00:00:10Z", "root_pid": 7, "slot_ms": 10,
            "slots": [[0, 4_000_000, 0, 0, 0, 0, 0, 0, 10_000],
                      [5, 6_000_000, 0, 0, 0, 0, 0, 0, 10_000]]
        }))
        .expect("line");
        let t = [line];
        assert!((tree_cpu(&t, 7, 10.0, 10.06) - 0.010).abs() < 1e-12);
        assert!((tree_cpu(&t, 7, 10.02, 10.06) - 0.006).abs() < 1e-12);
        assert_eq!(tree_cpu(&t, 8, 10.0, 10.06), 0.0);
    }
}
