//! `cargo xtask bench analyze`: how fast `analyze` reads a large trace directory, and how much
//! memory it needs, beside a straightforward baseline in the same run.
//!
//! 1. Builds the release agent and a release xtask.
//! 2. Generates trace directories of the requested sizes (default 100 MB and 1 GB; reused when
//!    already there): daily `resources-*.jsonl` with ~46 samples per 1 s tick shaped like
//!    `collect`'s output (system, 4 processes, the `pid="total"` tree sums), `events-*.jsonl`
//!    with an LLM call every 20 s and a tool call every 60 s in hourly sessions, and
//!    `process-events-*.jsonl`; one malformed line per 100 000.
//! 3. Times, interleaved, `trace-claw-agent analyze --format json` and the baseline: one thread,
//!    one pass, `BufRead::lines` + `serde_json::Value` per line, per-metric count/sum/max and
//!    event totals. Reports the median wall time and peak RSS (wait4 rusage) of each, and the
//!    ratio.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use trace_claw_common::names::{self, labels, MetricDef};

use super::measure::{median, wait_usage};
use crate::proc_util::{build_agent, run_checked, target_dir, workspace_root, Profile};

/// `writeln!` into a `String`, whose `fmt::Write` impl never returns an error.
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        // String's fmt::Write never fails: nothing to handle.
        let _ = writeln!($dst, $($arg)*);
    }};
}

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
        return generate(dir, mb * 1_000_000);
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

/// `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM:SS.000000Z` of Unix seconds.
fn civil(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let time = format!(
        "{date}T{:02}:{:02}:{:02}.000000Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    (date, time)
}

/// The `source` label of system samples.
const SYSINFO: (&str, &str) = (labels::SOURCE, labels::SOURCE_SYSINFO);
/// The `source` label of polled process samples.
const PROCFS: (&str, &str) = (labels::SOURCE, labels::SOURCE_PROCFS);

/// `"key":"value",...`: the inside of a sample's `labels` object.
fn label_json(pairs: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!(r#""{k}":"{v}""#))
        .collect();
    quoted.join(",")
}

/// A daily-file writer for one prefix.
struct Daily {
    dir: PathBuf,
    prefix: &'static str,
    date: String,
    out: Option<BufWriter<File>>,
}

impl Daily {
    fn new(dir: &Path, prefix: &'static str) -> Self {
        Self {
            dir: dir.to_owned(),
            prefix,
            date: String::new(),
            out: None,
        }
    }

    fn write(&mut self, date: &str, line: &str) -> anyhow::Result<u64> {
        if self.out.is_none() || self.date != date {
            if let Some(mut o) = self.out.take() {
                o.flush()?;
            }
            let path = self.dir.join(format!("{}-{date}.jsonl", self.prefix));
            self.out = Some(BufWriter::with_capacity(1 << 20, File::create(path)?));
            date.clone_into(&mut self.date);
        }
        if let Some(o) = &mut self.out {
            o.write_all(line.as_bytes())?;
        }
        Ok(line.len() as u64)
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(mut o) = self.out.take() {
            o.flush()?;
        }
        Ok(())
    }
}

fn generate(dir: &Path, target: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut res = Daily::new(dir, "resources");
    let mut events = Daily::new(dir, "events");
    let mut procs = Daily::new(dir, "process-events");
    let start = 1_795_132_800i64; // 2026-11-20T00:00:00Z
    let pids: [(u32, &str); 4] = [
        (31952, "openclaw"),
        (31990, "openclaw-agent"),
        (32001, "node"),
        (32044, "sh"),
    ];
    let mut written = 0u64;
    let mut lines = 0u64;
    let mut line = String::with_capacity(512);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0
    };
    let mut cpu_time = 0.0f64;
    let mut io = [0u64; 4];
    let mut tick = 0i64;
    let system_labels = label_json(&[SYSINFO]);
    let total_labels = label_json(&[(labels::PID, labels::PID_TOTAL), PROCFS]);
    while written < target {
        let t = start + tick;
        let (date, ts) = civil(t);
        let sample = |line: &mut String, metric: &MetricDef, value: f64, labels: &str| {
            line.clear();
            let (name, unit) = (metric.name, metric.unit);
            // Same shape as MetricSample lines written by collect.
            put!(
                line,
                r#"{{"timestamp":"{ts}","name":"{name}","value":{value},"unit":"{unit}","labels":{{{labels}}}}}"#
            );
        };
        let mut emit = |line: &str, written: &mut u64, lines: &mut u64| -> anyhow::Result<()> {
            *lines += 1;
            if (*lines).is_multiple_of(100_000) {
                *written += res.write(&date, "{\"timestamp\":\"broken\n")?;
            }
            *written += res.write(&date, line)?;
            Ok(())
        };
        for (cpu, v) in [(labels::CPU_TOTAL, 20.0), ("0", 25.0), ("1", 15.0)] {
            let cpu_labels = label_json(&[(labels::CPU, cpu), SYSINFO]);
            sample(
                &mut line,
                &names::SYSTEM_CPU_USAGE,
                v + 10.0 * rnd(),
                &cpu_labels,
            );
            emit(&line, &mut written, &mut lines)?;
        }
        for (metric, v) in [
            (names::SYSTEM_LOAD_1M, 0.8 + rnd()),
            (names::SYSTEM_MEMORY_USAGE, 40.0 + rnd()),
            (names::SYSTEM_MEMORY_USED, 8e9 + 1e8 * rnd()),
            (names::SYSTEM_MEMORY_AVAILABLE, 1.6e10 - 1e8 * rnd()),
        ] {
            sample(&mut line, &metric, v.round(), &system_labels);
            emit(&line, &mut written, &mut lines)?;
        }
        for iface in ["eth0", "lo"] {
            let iface_labels = label_json(&[(labels::INTERFACE, iface), SYSINFO]);
            for (metric, v) in [
                (names::SYSTEM_NET_SENT_TOTAL, (tick * 5000) as f64),
                (names::SYSTEM_NET_RECV_TOTAL, (tick * 9000) as f64),
            ] {
                sample(&mut line, &metric, v, &iface_labels);
                emit(&line, &mut written, &mut lines)?;
            }
        }
        let eth0_labels = label_json(&[(labels::INTERFACE, "eth0"), SYSINFO]);
        for (metric, v) in [
            (names::SYSTEM_NET_SENT_RATE, 5000.0),
            (names::SYSTEM_NET_RECV_RATE, 9000.0),
        ] {
            sample(&mut line, &metric, v, &eth0_labels);
            emit(&line, &mut written, &mut lines)?;
        }
        cpu_time += 0.05 + 0.1 * rnd();
        for (k, v) in io.iter_mut().enumerate() {
            *v += ((k as f64 + 1.0) * 1000.0 * rnd()) as u64;
        }
        for (pid, comm) in pids {
            let pid = pid.to_string();
            let process_labels = label_json(&[
                (labels::PID, &pid),
                (labels::PPID, "31900"),
                (labels::PROCESS_NAME, comm),
                (labels::TRACKED, labels::TRACKED_MATCH),
                PROCFS,
            ]);
            for (metric, v) in [
                (names::PROCESS_CPU_USAGE, 5.0 * rnd()),
                (names::PROCESS_CPU_TIME, cpu_time / 4.0),
                (names::PROCESS_MEMORY_RSS, (2e8 + 1e6 * rnd()).round()),
                (names::PROCESS_MEMORY_VMS, 1.2e9),
                (names::PROCESS_IO_READ, (io[0] / 4) as f64),
                (names::PROCESS_IO_WRITE, (io[1] / 4) as f64),
            ] {
                sample(&mut line, &metric, v, &process_labels);
                emit(&line, &mut written, &mut lines)?;
            }
        }
        for (metric, v) in [
            (names::PROCESS_CPU_USAGE, 20.0 * rnd()),
            (names::PROCESS_CPU_TIME, cpu_time),
            (names::PROCESS_MEMORY_RSS, (8e8 + 4e6 * rnd()).round()),
            (names::PROCESS_IO_READ, io[0] as f64),
            (names::PROCESS_IO_WRITE, io[1] as f64),
            (names::PROCESS_IO_BLOCK_READ, (io[0] / 8) as f64),
            (names::PROCESS_NET_SENT, io[2] as f64),
            (names::PROCESS_NET_RECV, io[3] as f64),
            (names::PROCESS_COUNT, 4.0),
        ] {
            sample(&mut line, &metric, v, &total_labels);
            emit(&line, &mut written, &mut lines)?;
        }
        if tick % 20 == 5 {
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{ts}","event_type":"llm","session_id":"bench-session-{}","model":"gpt-4o","provider":"openai","tokens_input":{},"tokens_output":{},"tokens_cache_read":1000,"duration_ms":{},"cost_usd":0.01}}"#,
                tick / 3600,
                500 + tick % 700,
                50 + tick % 90,
                800 + (tick * 37) % 4000
            );
            written += events.write(&date, &line)?;
        }
        if tick % 60 == 30 {
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{ts}","event_type":"tool","session_id":"bench-session-{}","tool_name":"exec","duration_ms":{}}}"#,
                tick / 3600,
                30 + tick % 400
            );
            written += events.write(&date, &line)?;
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{ts}","kind":"exec","pid":{},"ppid":31952,"comm":"sh","filename":"/bin/sh","source":"procfs"}}"#,
                40_000 + tick % 20_000
            );
            written += procs.write(&date, &line)?;
        }
        tick += 1;
    }
    res.finish()?;
    events.finish()?;
    procs.finish()?;
    eprintln!(
        "generated {written} bytes, {lines} sample lines, {tick} ticks in {}",
        dir.display()
    );
    Ok(())
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
