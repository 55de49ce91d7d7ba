//! `cargo xtask bench overhead`: the agent's own cost. Runs the release agent for N seconds at
//! 1 Hz against a target tree of 50 processes and reports its CPU time (user + system, from
//! wait4 rusage) and peak RSS, median of several runs, beside a psutil-based Python collector
//! doing the same work in the same run (the baseline, `tests/bench/psutil_collector.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::proc_util::{run_checked, succeeds, workspace_root};

/// Flags of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Agent CPU and RSS at 1 Hz over a 50-process tree, beside a psutil baseline.
    Overhead(OverheadArgs),
    /// OTLP receiver ingest rate, spans/s per core, 512-span protobuf batches.
    Receiver(crate::bench_receiver::ReceiverArgs),
    /// Analyzer speed and peak RSS on generated 100 MB / 1 GB trace dirs, beside a baseline.
    Analyze(crate::bench_analyze::BenchAnalyzeArgs),
    /// eBPF backend (root): program cost, pipe ping-pong, exec storm, overhead vs polling.
    Ebpf(crate::bench_ebpf::BenchEbpfArgs),
}

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

/// Name the target processes run under (a copy of `sleep`), so nothing else matches.
pub(crate) const TARGET_NAME: &str = "tcbench-target";

/// Runs the chosen benchmark.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.which {
        Bench::Overhead(a) => overhead(a),
        Bench::Receiver(a) => crate::bench_receiver::run(a),
        Bench::Analyze(a) => crate::bench_analyze::run(a),
        Bench::Ebpf(a) => crate::bench_ebpf::run(a),
    }
}

/// CPU seconds and peak RSS of one finished child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) cpu_seconds: f64,
    pub(crate) max_rss_kib: i64,
}

/// Waits for `child` with wait4 and returns its resource usage.
pub(crate) fn wait_usage(child: Child) -> anyhow::Result<Usage> {
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unreaped child; status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("benchmarked process {pid} failed (wait status {status})");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage {
        cpu_seconds: secs(usage.ru_utime) + secs(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    })
}

/// The target tree: `n` long sleeping processes named [`TARGET_NAME`]; killed on drop.
pub(crate) struct TargetTree(Vec<Child>);

impl TargetTree {
    pub(crate) fn spawn(dir: &Path, n: usize) -> anyhow::Result<Self> {
        let exe = dir.join(TARGET_NAME);
        std::fs::copy("/bin/sleep", &exe).context("cannot copy /bin/sleep")?;
        let children = (0..n)
            .map(|_| {
                Command::new(&exe)
                    .arg("3600")
                    .spawn()
                    .context("cannot start target")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self(children))
    }
}

impl Drop for TargetTree {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // Best effort: a target that already died needs no kill.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn python_with_psutil(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join(".tools/venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    if !succeeds(Command::new(&python).args(["-c", "import psutil"])) {
        run_checked(Command::new(&python).args(["-m", "pip", "install", "-q", "psutil"]))?;
    }
    Ok(python)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn overhead(args: &OverheadArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    run_checked(Command::new("cargo").args(["build", "--release", "--bin", "trace-claw-agent"]))?;
    let agent = root.join("target/release/trace-claw-agent");
    let python = python_with_psutil(&root)?;
    let script = root.join("tests/bench/psutil_collector.py");
    let scratch = tempfile::tempdir()?;
    let _tree = TargetTree::spawn(scratch.path(), args.processes)?;
    let seconds = args.seconds.to_string();

    type Launch<'a> = (&'a str, Box<dyn Fn(&Path) -> Command + 'a>);
    let collectors: Vec<Launch<'_>> = vec![
        (
            "trace-claw (procfs)",
            Box::new(|out: &Path| {
                let mut c = Command::new(&agent);
                c.args([
                    "collect",
                    "--ebpf",
                    "off",
                    "--process",
                    TARGET_NAME,
                    "--interval",
                    "1",
                    "--duration",
                    &seconds,
                ])
                .arg("--output-dir")
                .arg(out);
                c
            }),
        ),
        (
            "python psutil baseline",
            Box::new(|out: &Path| {
                let mut c = Command::new(&python);
                c.arg(&script)
                    .args([
                        "--process",
                        TARGET_NAME,
                        "--interval",
                        "1",
                        "--duration",
                        &seconds,
                    ])
                    .arg("--output-dir")
                    .arg(out);
                c
            }),
        ),
    ];
    let mut results: Vec<(&str, Vec<Usage>)> =
        collectors.iter().map(|(n, _)| (*n, Vec::new())).collect();
    for run in 0..args.runs {
        // Interleave collectors so machine noise hits both alike.
        for (i, (name, launch)) in collectors.iter().enumerate() {
            let out = scratch.path().join(format!("run{run}-{i}"));
            eprintln!(
                "bench: run {}/{} {name} ({}s)",
                run + 1,
                args.runs,
                args.seconds
            );
            let child = launch(&out)
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
