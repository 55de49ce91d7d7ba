//! `cargo xtask bench overhead`: the agent's own cost. Runs the release agent for N seconds at
//! 1 Hz against a target tree of 50 processes and reports its CPU time (user + system, from
//! wait4 rusage) and peak RSS, median of several runs, beside a psutil-based Python collector
//! doing the same work in the same run (the baseline, `tests/bench/psutil_collector.py`).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;

use super::measure::{median, spawn_target_tree, wait_usage, Usage, TARGET_NAME};
use crate::proc_util::{build_agent, workspace_root, Profile};
use crate::tools;

/// Flags of `bench overhead`.
#[derive(Debug, Args)]
pub struct OverheadArgs {
    /// Seconds per run.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Runs per collector (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Processes in the target tree.
    #[arg(long, default_value_t = 50)]
    processes: usize,
}

/// Measures the agent and the baseline, interleaved, and prints the medians.
pub fn run(args: &OverheadArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let agent = build_agent(Profile::Release)?;
    let python = tools::python_venv("bench", &["psutil"])?;
    let script = root.join("tests/bench/psutil_collector.py");
    let scratch = tempfile::tempdir()?;
    let _tree = spawn_target_tree(scratch.path(), args.processes)?;
    let seconds = args.seconds.to_string();

    // Each collector: its name, and the program and arguments before the flags they share.
    let collectors: [(&str, &Path, Vec<&OsStr>); 2] = [
        (
            "trace-claw (procfs)",
            &agent,
            ["collect", "--ebpf", "off"].map(OsStr::new).to_vec(),
        ),
        ("python psutil baseline", &python, vec![script.as_os_str()]),
    ];
    let launch = |program: &Path, prefix: &[&OsStr], out: &Path| {
        let mut c = Command::new(program);
        c.args(prefix)
            .args(["--process", TARGET_NAME, "--interval", "1"])
            .args(["--duration", &seconds])
            .arg("--output-dir")
            .arg(out);
        c
    };
    let mut results: Vec<(&str, Vec<Usage>)> =
        collectors.iter().map(|(n, ..)| (*n, Vec::new())).collect();
    for run in 0..args.runs {
        // Interleave collectors so machine noise hits both alike.
        for (i, (name, program, prefix)) in collectors.iter().enumerate() {
            let out = scratch.path().join(format!("run{run}-{i}"));
            eprintln!(
                "bench: run {}/{} {name} ({}s)",
                run + 1,
                args.runs,
                args.seconds
            );
            let child = launch(program, prefix, &out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let usage = wait_usage(child)?;
            let lines = count_lines(&out)?;
            if lines == 0 {
                bail!("{name} wrote no samples to {}", out.display());
            }
            results[i].1.push(usage);
        }
    }
    println!(
        "overhead at 1 Hz over {} processes, {} s per run, median of {} runs",
        args.processes, args.seconds, args.runs
    );
    println!(
        "{:<26} {:>16} {:>14}",
        "collector", "cpu % of 1 core", "peak RSS MiB"
    );
    let secs = args.seconds as f64;
    let mut cpu_medians = Vec::new();
    for (name, usages) in &results {
        let cpu = median(
            usages
                .iter()
                .map(|u| u.cpu_seconds / secs * 100.0)
                .collect(),
        );
        let rss = median(
            usages
                .iter()
                .map(|u| u.max_rss_kib as f64 / 1024.0)
                .collect(),
        );
        cpu_medians.push(cpu);
        println!("{name:<26} {cpu:>16.3} {rss:>14.1}");
    }
    if let [agent_cpu, baseline_cpu] = cpu_medians[..] {
        println!(
            "trace-claw uses {:.1}x less CPU than the baseline",
            baseline_cpu / agent_cpu.max(1e-9)
        );
    }
    Ok(())
}

fn count_lines(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("no output in {}", dir.display()))?
    {
        let text = std::fs::read_to_string(entry?.path())?;
        n += text.lines().count();
    }
    Ok(n)
}
