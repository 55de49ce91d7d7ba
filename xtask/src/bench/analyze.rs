//! `cargo xtask bench analyze`: how fast `analyze` reads a large trace directory, and how much
//! memory it needs, beside a straightforward baseline in the same run.
//!
//! 1. Builds the release agent and a release xtask.
//! 2. Generates trace directories of the requested sizes (default 100 MB and 1 GB; reused when
//!    already there) with `analyze/generate.rs`, shaped like `collect`'s output.
//! 3. Times, interleaved, `trace-claw-agent analyze --format json` and the baseline: one thread,
//!    one pass, `BufRead::lines` + `serde_json::Value` per line, per-metric count/sum/max and
//!    event totals. Reports the median wall time and peak RSS (wait4 rusage) of each, and the
//!    ratio.

mod generate;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use super::measure::{median, wait_usage};
use crate::proc_util::{build_agent, run_checked, target_dir, workspace_root, Profile};

/// Flags of `bench analyze`.
#[derive(Debug, Args)]
pub struct BenchAnalyzeArgs {
    /// Trace directory sizes to generate and analyze, in MB (10^6 bytes).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes_mb: Vec<u64>,
    /// Runs per program and size (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where the generated trace directories live (kept for reuse).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Internal: generate a trace directory of `--sizes-mb` into DIR and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    generate: Option<PathBuf>,
    /// Internal: run the baseline over DIR and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    baseline: Option<PathBuf>,
}

/// Runs the benchmark (or one of its internal steps).
pub fn run(args: &BenchAnalyzeArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.generate {
        let mb = args.sizes_mb.first().copied().unwrap_or(100);
        let actions = generate::trace_dir(dir, mb * 1_000_000, generate::Profile::Sparse)?;
        std::fs::write(dir.join(".complete"), format!("{actions}\n"))?;
        return Ok(());
    }
    if let Some(dir) = &args.baseline {
        return baseline(dir);
    }
    let root = workspace_root();
    let agent = build_agent(Profile::Release)?;
    // The generator and the baseline run as a release xtask too.
    run_checked(Command::new("cargo").args(["build", "--release", "--quiet", "-p", "xtask"]))?;
    let xtask = target_dir().join("release/xtask");
    let base = args
        .dir
        .clone()
        .unwrap_or_else(|| root.join("target/bench-analyze"));
    let mut report = String::new();
    writeln!(
        report,
        "| trace dir | program | wall s (median of {}) | CPU s user+sys | peak RSS MiB | MB/s (wall) |",
        args.runs
    )?;
    writeln!(report, "|---|---|---|---|---|---|")?;
    let mut ratios = Vec::new();
    for &mb in &args.sizes_mb {
        let dir = base.join(format!("{mb}mb"));
        let marker = dir.join(".complete");
        if !marker.exists() {
            eprintln!("bench-analyze: generating {} ({mb} MB)", dir.display());
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            run_checked(
                Command::new(&xtask)
                    .args([
                        "bench",
                        "analyze",
                        "--sizes-mb",
                        &mb.to_string(),
                        "--generate",
                    ])
                    .arg(&dir),
            )?;
            File::create(&marker)?;
        }
        let bytes = dir_bytes(&dir)?;
        // Warm the page cache once so both programs read from memory alike.
        let _warm = measure(
            Command::new(&xtask)
                .args(["bench", "analyze", "--baseline"])
                .arg(&dir),
        )?;
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for run in 0..args.runs {
            eprintln!("bench-analyze: {mb} MB run {}/{}", run + 1, args.runs);
            ours.push(measure(
                Command::new(&agent)
                    .args([
                        "analyze",
                        "--format",
                        "json",
                        "--output",
                        "/dev/null",
                        "--trace-dir",
                    ])
                    .arg(&dir),
            )?);
            theirs.push(measure(
                Command::new(&xtask)
                    .args(["bench", "analyze", "--baseline"])
                    .arg(&dir),
            )?);
        }
        let (ow, ocpu, orss) = medians(&ours);
        let (bw, bcpu, brss) = medians(&theirs);
        let mbs = |w: f64| bytes as f64 / 1e6 / w;
        writeln!(
            report,
            "| {mb} MB ({:.0} MB on disk) | trace-claw analyze (rayon, all cores) | {ow:.3} | {ocpu:.3} | {orss:.1} | {:.0} |",
            bytes as f64 / 1e6,
            mbs(ow)
        )?;
        writeln!(
            report,
            "| | baseline: 1 thread, serde_json::Value per line | {bw:.3} | {bcpu:.3} | {brss:.1} | {:.0} |",
            mbs(bw)
        )?;
        ratios.push((mb, bw / ow, bcpu / ocpu));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    print!("{report}");
    for (mb, wall, cpu) in ratios {
        println!(
            "{mb} MB: baseline wall / analyze wall = {wall:.2}x; baseline CPU / analyze CPU = {cpu:.2}x"
        );
    }
    println!(
        "cores: {}; load average at the end: {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        load.trim()
    );
    Ok(())
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

fn medians(m: &[Measured]) -> (f64, f64, f64) {
    (
        median(m.iter().map(|x| x.wall).collect()),
        median(m.iter().map(|x| x.cpu).collect()),
        median(m.iter().map(|x| x.rss_mib).collect()),
    )
}

/// The straightforward analyzer: one thread, one pass, a `serde_json::Value` per line.
fn baseline(dir: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut metrics: HashMap<String, (u64, f64, f64)> = HashMap::new();
    let (mut events, mut tokens, mut bad) = (0u64, 0u64, 0u64);
    for path in files {
        let reader = BufReader::new(File::open(&path)?);
        for line in reader.lines() {
            let line = line?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                bad += 1;
                continue;
            };
            if let (Some(name), Some(value)) = (
                v.get("name").and_then(|n| n.as_str()),
                v.get("value").and_then(serde_json::Value::as_f64),
            ) {
                let e = metrics.entry(name.to_owned()).or_insert((0, 0.0, f64::MIN));
                e.0 += 1;
                e.1 += value;
                e.2 = e.2.max(value);
            } else if v.get("event_type").is_some() {
                events += 1;
                tokens += v
                    .get("tokens_input")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            }
        }
    }
    println!(
        "metrics={} samples={} events={events} tokens_input={tokens} bad={bad}",
        metrics.len(),
        metrics.values().map(|m| m.0).sum::<u64>()
    );
    Ok(())
}
