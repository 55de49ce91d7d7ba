//! What the kernel says about the loaded programs: their run-time statistics, switched on with
//! `kernel.bpf_stats_enabled` and read with `bpftool prog show`.

use std::collections::HashSet;
use std::process::Command;

use anyhow::{bail, Context};

/// `kernel.bpf_stats_enabled` set for the guard's lifetime, then restored: on to read the
/// programs' run times, off for the timing benchmarks (left on, it adds a `sched_clock()`
/// pair to every program run of the host).
pub struct BpfStats(String);

impl BpfStats {
    const PATH: &str = "/proc/sys/kernel/bpf_stats_enabled";

    /// Sets `kernel.bpf_stats_enabled` to `on` until the guard is dropped.
    pub fn set(on: bool) -> anyhow::Result<Self> {
        let previous = std::fs::read_to_string(Self::PATH)
            .with_context(|| format!("cannot read {}", Self::PATH))?;
        std::fs::write(Self::PATH, if on { "1" } else { "0" })
            .with_context(|| format!("cannot write {}", Self::PATH))?;
        Ok(Self(previous.trim().to_owned()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(Self::PATH, &self.0) {
            eprintln!("bench-ebpf: cannot restore {}: {e}", Self::PATH);
        }
    }
}

/// Every loaded program, as bpftool reports it.
fn bpftool_progs() -> anyhow::Result<Vec<serde_json::Value>> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .context("cannot run bpftool")?;
    let progs: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(progs.as_array().cloned().unwrap_or_default())
}

/// Ids of the programs loaded now.
pub fn prog_ids() -> anyhow::Result<HashSet<u64>> {
    Ok(bpftool_progs()?
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .collect())
}

/// Program names of trace-claw-ebpf as the kernel truncates them (15 bytes).
const OUR_PROGRAMS: &[&str] = &[
    "sched_stat_runt",
    "block_bio_queue",
    "sock_send_lengt",
    "sock_recv_lengt",
    "task_newtask",
    "task_rename",
    "sched_process_e",
    "sched_process_f",
];

/// (program name, run_time_ns, run_cnt) of every trace-claw program loaded since `before`.
pub fn bpftool_stats(before: &HashSet<u64>) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let mut stats: Vec<(String, f64, f64)> = Vec::new();
    let mut progs = bpftool_progs()?;
    progs.sort_by_key(|p| p["id"].as_u64());
    for p in progs {
        let new = p["id"].as_u64().is_some_and(|id| !before.contains(&id));
        let name = p["name"].as_str().unwrap_or("?");
        if !new || !OUR_PROGRAMS.iter().any(|o| name.starts_with(o)) {
            continue;
        }
        let ns = p["run_time_ns"].as_f64().unwrap_or(0.0);
        let cnt = p["run_cnt"].as_f64().unwrap_or(0.0);
        // sched_process_exec and _exit share a truncated name; they load in that order.
        let name = if stats.iter().any(|(n, _, _)| n == name) {
            format!("{name}(2)")
        } else {
            name.to_owned()
        };
        stats.push((name, ns, cnt));
    }
    if stats.is_empty() {
        bail!("bpftool shows no new trace-claw programs");
    }
    Ok(stats)
}
