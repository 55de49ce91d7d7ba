//! `cargo xtask bench analyze`: how fast `analyze` reads a large trace directory, how much
//! memory it needs and how it scales with cores, beside a plain Python baseline in the same run.
//!
//! 1. Builds the release agent and a release xtask (`--prebuilt`: uses the xtask running and
//!    the agent beside it, for machines without a Rust toolchain; `tests/bench/analyze_scaling.sh`).
//! 2. Generates trace directories of the requested sizes (default 100 MB and 1 GB; reused when
//!    already there) with `analyze/generate.rs`, in the `dense` (default) or `sparse` profile.
//! 3. Times, interleaved, `trace-claw-agent analyze --format json`, on all cores or pinned to
//!    each `--cores` count (sched affinity, which rayon sizes its pool by), and the baseline
//!    `tests/bench/analyze_baseline.py` (one thread, `json.loads` per line, the same merge,
//!    per-session totals and per-action CPU cost) when python3 is there; it needs only the
//!    standard library, so no venv. Reports the median wall time, CPU time and peak RSS (wait4
//!    rusage, `bench/measure.rs`) of each, and the ratios.

mod generate;

use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::measure::{median, wait_usage};
use crate::proc_util::{build_agent, run_checked, succeeds, target_dir, workspace_root};
use generate::Profile;

/// Flags of `bench analyze`.
#[derive(Debug, Args)]
pub struct BenchAnalyzeArgs {
    /// Trace directory sizes to generate and analyze, in MB (10^6 bytes).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes_mb: Vec<u64>,
    /// The shape of the generated traces.
    #[arg(long, value_enum, default_value_t = Profile::Dense)]
    profile: Profile,
    /// Runs per program, size and core count (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also run the analyzer pinned to each of these core counts (CPUs 0..N); empty: all cores.
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    /// Runs of the Python baseline per size (0: none); it is slow and steady, so one is plenty.
    #[arg(long, default_value_t = 1)]
    python_runs: usize,
    /// Where the generated trace directories live (kept for reuse).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Use the binaries already built: this xtask and the agent beside it (no cargo; the
    /// baseline script is looked for under the current directory).
    #[arg(long)]
    prebuilt: bool,
    /// Delete each generated trace directory once measured (for sizes the disk holds once).
    #[arg(long)]
    delete_after: bool,
    /// Internal: generate a trace directory of `--sizes-mb` into DIR and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    generate: Option<PathBuf>,
}

/// The file marking a generated directory complete; it holds the number of distinct actions.
const MARKER: &str = ".complete";

/// Runs the benchmark (or its internal generate step).
pub fn run(args: &BenchAnalyzeArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.generate {
        let mb = args.sizes_mb.first().copied().unwrap_or(100);
        let actions = generate::trace_dir(dir, mb * 1_000_000, args.profile)?;
        std::fs::write(dir.join(MARKER), format!("{actions}\n"))?;
        return Ok(());
    }
    let (root, xtask, agent) = if args.prebuilt {
        let xtask = std::env::current_exe()?;
        let agent = xtask.with_file_name("trace-claw-agent");
        (std::env::current_dir()?, xtask, agent)
    } else {
        let agent = build_agent(crate::proc_util::Profile::Release)?;
        // The generator runs as a release xtask too.
        run_checked(Command::new("cargo").args(["build", "--release", "--quiet", "-p", "xtask"]))?;
        (workspace_root(), target_dir().join("release/xtask"), agent)
    };
    let python = root.join("tests/bench/analyze_baseline.py");
    let python_runs = if python.is_file() && succeeds(Command::new("python3").arg("--version")) {
        args.python_runs
    } else {
        eprintln!(
            "bench-analyze: no python3 or no {}, no baseline",
            python.display()
        );
        0
    };
    let base = args
        .dir
        .clone()
        .unwrap_or_else(|| root.join("target/bench-analyze"));
    let all_cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cores = if args.cores.is_empty() {
        vec![all_cores]
    } else {
        args.cores.clone()
    };
    let mut report = String::new();
    writeln!(
        report,
        "| trace dir | actions | program | cores | wall s (median of {}) | CPU s user+sys | CPU % | peak RSS MiB | MB/s (wall) | baseline wall / wall | 1-core wall / wall |",
        args.runs
    )?;
    writeln!(report, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for &mb in &args.sizes_mb {
        let dir = base.join(format!("{mb}mb-{}", args.profile.name()));
        let actions = generated(&xtask, &dir, mb, args.profile)?;
        let bytes = dir_bytes(&dir)?;
        let size = format!("{mb} MB ({:.0} MB on disk)", bytes as f64 / 1e6);
        let mbs = |w: f64| bytes as f64 / 1e6 / w;
        // Warm the page cache once so every run reads from memory alike.
        measure(&mut analyze_cmd(&agent, &dir, None))?;
        let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); cores.len()];
        let mut theirs = Vec::new();
        for run in 0..args.runs {
            eprintln!("bench-analyze: {mb} MB run {}/{}", run + 1, args.runs);
            for (i, &n) in cores.iter().enumerate() {
                let pin = (n < all_cores).then_some(n);
                runs[i].push(measure(&mut analyze_cmd(&agent, &dir, pin))?);
            }
            if run < python_runs {
                theirs.push(measure(Command::new("python3").arg(&python).arg(&dir))?);
            }
        }
        let base_wall = (!theirs.is_empty()).then(|| medians(&theirs).wall);
        let one_core = cores
            .iter()
            .position(|&n| n == 1)
            .map(|i| medians(&runs[i]).wall);
        let ratio =
            |num: Option<f64>, w: f64| num.map_or_else(String::new, |b| format!("{:.1}x", b / w));
        for (m, &n) in runs.iter().zip(&cores) {
            let m = medians(m);
            writeln!(
                report,
                "| {size} | {actions} | trace-claw analyze | {n} | {:.3} | {:.3} | {:.0} | {:.1} | {:.0} | {} | {} |",
                m.wall,
                m.cpu,
                100.0 * m.cpu / m.wall,
                m.rss_mib,
                mbs(m.wall),
                ratio(base_wall, m.wall),
                ratio(one_core, m.wall)
            )?;
        }
        if !theirs.is_empty() {
            let m = medians(&theirs);
            writeln!(
                report,
                "| {size} | {actions} | baseline: Python, 1 thread | 1 | {:.3} | {:.3} | {:.0} | {:.1} | {:.1} | 1.0x | |",
                m.wall,
                m.cpu,
                100.0 * m.cpu / m.wall,
                m.rss_mib,
                mbs(m.wall)
            )?;
        }
        if args.delete_after {
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    print!("{report}");
    println!(
        "profile: {}; cores: {all_cores}; load average at the end: {}",
        args.profile.name(),
        load.trim()
    );
    Ok(())
}

/// Generates `dir` unless a complete copy is there; returns its number of distinct actions.
fn generated(xtask: &Path, dir: &Path, mb: u64, profile: Profile) -> anyhow::Result<u64> {
    let marker = dir.join(MARKER);
    if !marker.exists() {
        eprintln!("bench-analyze: generating {} ({mb} MB)", dir.display());
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        run_checked(
            Command::new(xtask)
                .args(["bench", "analyze", "--sizes-mb", &mb.to_string()])
                .args(["--profile", profile.name(), "--generate"])
                .arg(dir),
        )?;
    }
    let text = std::fs::read_to_string(&marker)?;
    text.trim()
        .parse()
        .with_context(|| format!("{}: not a count", marker.display()))
}

/// `analyze --format json` of `dir` to /dev/null, pinned to CPUs `0..n` when `pin` is `Some(n)`.
fn analyze_cmd(agent: &Path, dir: &Path, pin: Option<usize>) -> Command {
    let mut cmd = Command::new(agent);
    cmd.args([
        "analyze",
        "--format",
        "json",
        "--output",
        "/dev/null",
        "--trace-dir",
    ])
    .arg(dir);
    if let Some(n) = pin {
        // SAFETY: between fork and exec the closure only fills a stack cpu_set_t and makes
        // one async-signal-safe syscall.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for cpu in 0..n {
                    libc::CPU_SET(cpu, &mut set);
                }
                if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

/// Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one run.
#[derive(Debug, Clone, Copy)]
struct Measured {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
}

fn measure(cmd: &mut Command) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start benchmarked program")?;
    let usage = wait_usage(child)?;
    Ok(Measured {
        wall: start.elapsed().as_secs_f64(),
        cpu: usage.cpu_seconds,
        rss_mib: usage.max_rss_kib as f64 / 1024.0,
    })
}

/// The per-field medians of several runs.
fn medians(m: &[Measured]) -> Measured {
    Measured {
        wall: median(m.iter().map(|x| x.wall).collect()),
        cpu: median(m.iter().map(|x| x.cpu).collect()),
        rss_mib: median(m.iter().map(|x| x.rss_mib).collect()),
    }
}
