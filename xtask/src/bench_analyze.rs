//! `cargo xtask bench analyze`: how fast `analyze` reads a large trace directory, how much
//! memory it needs and how it scales with cores, beside a plain Python baseline in the same run.
//!
//! 1. Builds the release agent and a release xtask.
//! 2. Generates trace directories of the requested sizes (default 100 MB and 1 GB; reused when
//!    already there) in one of two profiles:
//!    - `dense` (default), a busy gateway: a 300 s session after another, an action every 5 s
//!      (LLM and tool calls by turns, about 4,000 sessions and 200,000 actions per GB), each in
//!      `events-*.jsonl` and each LLM call also in OpenClaw's daily file log
//!      (`openclaw-*.log`, the real 2026.4.29 line format, `embedded run` lines), beside 1 Hz
//!      `resources-*.jsonl` with the tracked tree's totals;
//!    - `sparse`: ~46 samples per 1 s tick shaped like `collect`'s output (system, 4 processes,
//!      the `pid="total"` tree sums), an LLM call every 20 s and a tool call every 60 s in
//!      hourly sessions, and `process-events-*.jsonl`.
//!
//!    Both write daily files and one malformed resource line per 100 000.
//! 3. Times, interleaved, `trace-claw-agent analyze --format json`, on all cores or pinned to
//!    each `--cores` count (sched affinity, which rayon sizes its pool by), and the baseline
//!    `tests/bench/analyze_baseline.py` (one thread, `json.loads` per line, the same merge,
//!    per-session totals and per-action CPU cost) when python3 is there. Reports the median
//!    wall time, CPU time and peak RSS (wait4 rusage) of each, and the ratios.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::bench::{median, wait_usage};
use crate::proc_util::{run_checked, succeeds, workspace_root};

/// `writeln!` into a `String`, whose `fmt::Write` impl never returns an error.
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        // String's fmt::Write never fails: nothing to handle.
        let _ = writeln!($dst, $($arg)*);
    }};
}

/// The shape of a generated trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// A busy gateway: an action per 5 s of samples, ~4,000 sessions per GB, OpenClaw logs.
    Dense,
    /// Many samples per second, few actions (~8,000 per GB).
    Sparse,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Sparse => "sparse",
        }
    }
}

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
        let actions = match args.profile {
            Profile::Dense => generate_dense(dir, mb * 1_000_000)?,
            Profile::Sparse => generate(dir, mb * 1_000_000)?,
        };
        std::fs::write(dir.join(MARKER), format!("{actions}\n"))?;
        return Ok(());
    }
    let (root, xtask) = if args.prebuilt {
        (std::env::current_dir()?, std::env::current_exe()?)
    } else {
        let root = workspace_root();
        run_checked(Command::new("cargo").args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "trace-claw-agent",
            "-p",
            "xtask",
        ]))?;
        let xtask = root.join("target/release/xtask");
        (root, xtask)
    };
    let agent = xtask.with_file_name("trace-claw-agent");
    let python = root.join("tests/bench/analyze_baseline.py");
    let python_runs = if python.is_file() && succeeds(Command::new("python3").arg("--version")) {
        args.python_runs
    } else {
        eprintln!("bench-analyze: no python3, no baseline");
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
    put!(
        report,
        "| trace dir | actions | program | cores | wall s (median of {}) | CPU s user+sys | CPU % | peak RSS MiB | MB/s (wall) | baseline wall / wall | 1-core wall / wall |",
        args.runs
    );
    put!(report, "|---|---|---|---|---|---|---|---|---|---|---|");
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
            put!(
                report,
                "| {size} | {actions} | trace-claw analyze | {n} | {:.3} | {:.3} | {:.0} | {:.1} | {:.0} | {} | {} |",
                m.wall,
                m.cpu,
                100.0 * m.cpu / m.wall,
                m.rss_mib,
                mbs(m.wall),
                ratio(base_wall, m.wall),
                ratio(one_core, m.wall)
            );
        }
        if !theirs.is_empty() {
            let m = medians(&theirs);
            put!(
                report,
                "| {size} | {actions} | baseline: Python, 1 thread | 1 | {:.3} | {:.3} | {:.0} | {:.1} | {:.1} | 1.0x | |",
                m.wall,
                m.cpu,
                100.0 * m.cpu / m.wall,
                m.rss_mib,
                mbs(m.wall)
            );
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

/// A daily-file writer for one prefix: `{prefix}-{date}.{ext}`.
struct Daily {
    dir: PathBuf,
    prefix: &'static str,
    ext: &'static str,
    date: String,
    out: Option<BufWriter<File>>,
}

impl Daily {
    fn new(dir: &Path, prefix: &'static str, ext: &'static str) -> Self {
        Self {
            dir: dir.to_owned(),
            prefix,
            ext,
            date: String::new(),
            out: None,
        }
    }

    fn write(&mut self, date: &str, line: &str) -> anyhow::Result<u64> {
        if self.out.is_none() || self.date != date {
            if let Some(mut o) = self.out.take() {
                o.flush()?;
            }
            let path = self
                .dir
                .join(format!("{}-{date}.{}", self.prefix, self.ext));
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

/// The `sparse` profile (see the module doc); returns the number of actions.
fn generate(dir: &Path, target: u64) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut res = Daily::new(dir, "resources", "jsonl");
    let mut events = Daily::new(dir, "events", "jsonl");
    let mut procs = Daily::new(dir, "process-events", "jsonl");
    let mut actions = 0u64;
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
    while written < target {
        let t = start + tick;
        let (date, ts) = civil(t);
        let sample = |line: &mut String, name: &str, value: f64, unit: &str, labels: &str| {
            line.clear();
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
        for (cpu, v) in [("total", 20.0), ("0", 25.0), ("1", 15.0)] {
            sample(
                &mut line,
                "system.cpu.usage_percent",
                v + 10.0 * rnd(),
                "%",
                &format!(r#""cpu":"{cpu}","source":"sysinfo""#),
            );
            emit(&line, &mut written, &mut lines)?;
        }
        for (name, v, unit) in [
            ("system.cpu.load_avg_1m", 0.8 + rnd(), "1"),
            ("system.memory.usage_percent", 40.0 + rnd(), "%"),
            ("system.memory.used_bytes", 8e9 + 1e8 * rnd(), "By"),
            ("system.memory.available_bytes", 1.6e10 - 1e8 * rnd(), "By"),
        ] {
            sample(&mut line, name, v.round(), unit, r#""source":"sysinfo""#);
            emit(&line, &mut written, &mut lines)?;
        }
        for iface in ["eth0", "lo"] {
            for (name, v, unit) in [
                (
                    "system.network.bytes_sent_total",
                    (tick * 5000) as f64,
                    "By",
                ),
                (
                    "system.network.bytes_recv_total",
                    (tick * 9000) as f64,
                    "By",
                ),
            ] {
                sample(
                    &mut line,
                    name,
                    v,
                    unit,
                    &format!(r#""interface":"{iface}","source":"sysinfo""#),
                );
                emit(&line, &mut written, &mut lines)?;
            }
        }
        for (name, v) in [
            ("system.network.bytes_sent_rate", 5000.0),
            ("system.network.bytes_recv_rate", 9000.0),
        ] {
            sample(
                &mut line,
                name,
                v,
                "By/s",
                r#""interface":"eth0","source":"sysinfo""#,
            );
            emit(&line, &mut written, &mut lines)?;
        }
        cpu_time += 0.05 + 0.1 * rnd();
        for (k, v) in io.iter_mut().enumerate() {
            *v += ((k as f64 + 1.0) * 1000.0 * rnd()) as u64;
        }
        for (pid, comm) in pids {
            let labels = format!(
                r#""pid":"{pid}","ppid":"31900","process_name":"{comm}","tracked":"match","source":"procfs""#
            );
            for (name, v, unit) in [
                ("process.cpu.usage_percent", 5.0 * rnd(), "%"),
                ("process.cpu.time_seconds", cpu_time / 4.0, "s"),
                (
                    "process.memory.rss_bytes",
                    (2e8 + 1e6 * rnd()).round(),
                    "By",
                ),
                ("process.memory.vms_bytes", 1.2e9, "By"),
                ("process.io.read_bytes", (io[0] / 4) as f64, "By"),
                ("process.io.write_bytes", (io[1] / 4) as f64, "By"),
            ] {
                sample(&mut line, name, v, unit, &labels);
                emit(&line, &mut written, &mut lines)?;
            }
        }
        let total = r#""pid":"total","source":"procfs""#;
        for (name, v, unit) in [
            ("process.cpu.usage_percent", 20.0 * rnd(), "%"),
            ("process.cpu.time_seconds", cpu_time, "s"),
            (
                "process.memory.rss_bytes",
                (8e8 + 4e6 * rnd()).round(),
                "By",
            ),
            ("process.io.read_bytes", io[0] as f64, "By"),
            ("process.io.write_bytes", io[1] as f64, "By"),
            ("process.io.block_read_bytes", (io[0] / 8) as f64, "By"),
            ("process.network.bytes_sent", io[2] as f64, "By"),
            ("process.network.bytes_recv", io[3] as f64, "By"),
            ("process.count", 4.0, "1"),
        ] {
            sample(&mut line, name, v, unit, total);
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
            actions += 1;
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
            actions += 1;
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
    Ok(actions)
}

/// Seconds per generated session of the `dense` profile.
const DENSE_SESSION_S: i64 = 300;
/// Seconds between actions of the `dense` profile (LLM and tool calls by turns).
const DENSE_ACTION_S: i64 = 5;

/// One OpenClaw file-log line (tslog, 2026.4.29) of the `agent/embedded` subsystem, logged at
/// `secs` + `ms`.
fn openclaw_line(line: &mut String, secs: i64, ms: i64, message: &str) {
    let (_, iso) = civil(secs);
    let second = &iso[..19];
    line.clear();
    put!(
        line,
        r#"{{"0":"{{\"subsystem\":\"agent/embedded\"}}","1":"{message}","_meta":{{"runtime":"node","runtimeVersion":"26.10.0","hostname":"unknown","name":"{{\"subsystem\":\"agent/embedded\"}}","parentNames":["openclaw"],"date":"{second}.{ms:03}Z","logLevelId":2,"logLevelName":"DEBUG","path":{{"fullFilePath":"file:///usr/lib/node_modules/openclaw/dist/subsystem-DwIxKdWw.js:150:14","fileName":"subsystem-DwIxKdWw.js","fileNameWithLine":"subsystem-DwIxKdWw.js:150","fileColumn":"14","fileLine":"150","filePath":"node_modules/openclaw/dist/subsystem-DwIxKdWw.js","filePathWithLine":"node_modules/openclaw/dist/subsystem-DwIxKdWw.js:150","method":"logToFile"}}}},"time":"{second}.{ms:03}+00:00","hostname":"gateway","message":"{message}","traceId":"42faca267669d70c82e689ac175d45ae","spanId":"3bcd690895d59fc3","traceFlags":"01"}}"#
    );
}

/// The `dense` profile (see the module doc); returns the number of distinct actions.
fn generate_dense(dir: &Path, target: u64) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut res = Daily::new(dir, "resources", "jsonl");
    let mut events = Daily::new(dir, "events", "jsonl");
    let mut log = Daily::new(dir, "openclaw", "log");
    let start = 1_795_132_800i64; // 2026-11-20T00:00:00Z
    let (mut written, mut lines, mut actions) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(2048);
    let (mut cpu_time, mut io_read) = (0.0f64, 0u64);
    let mut tick = 0i64;
    while written < target {
        let t = start + tick;
        let (date, ts) = civil(t);
        let k = tick / DENSE_SESSION_S;
        let session = format!(
            "{k:08x}-7cf6-4040-8978-{:012x}",
            k * 2_654_435_761 % (1 << 48)
        );
        let run = format!("{k:08x}-0e72-4bd0-9f30-{:012x}", k * 40_503 % (1 << 48));
        cpu_time += 0.05 + 0.001 * (tick * 7919 % 100) as f64;
        io_read += (tick * 104_729 % 50_000) as u64;
        for (name, value, unit, labels) in [
            (
                "system.cpu.usage_percent",
                20.0 + (tick % 37) as f64,
                "%",
                r#""cpu":"total","source":"sysinfo""#,
            ),
            (
                "process.cpu.time_seconds",
                cpu_time,
                "s",
                r#""pid":"total","source":"procfs""#,
            ),
            (
                "process.memory.rss_bytes",
                (8e8 as i64 + tick % 4_000_000) as f64,
                "By",
                r#""pid":"total","source":"procfs""#,
            ),
            (
                "process.io.read_bytes",
                io_read as f64,
                "By",
                r#""pid":"total","source":"procfs""#,
            ),
        ] {
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{ts}","name":"{name}","value":{value},"unit":"{unit}","labels":{{{labels}}}}}"#
            );
            lines += 1;
            if lines.is_multiple_of(100_000) {
                written += res.write(&date, "{\"timestamp\":\"broken\n")?;
            }
            written += res.write(&date, &line)?;
        }
        if tick % DENSE_SESSION_S == 0 {
            let message = format!("embedded run start: runId={run} sessionId={session} provider=fakellm model=fake-model-1 thinking=off messageChannel=webchat");
            openclaw_line(&mut line, t, 100, &message);
            written += log.write(&date, &line)?;
        }
        let at = format!("{}.200000Z", &ts[..19]);
        if tick % (2 * DENSE_ACTION_S) == 2 {
            let ms = 800 + tick * 37 % 3000;
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{at}","event_type":"llm","session_id":"{session}","model":"fake-model-1","provider":"fakellm","tokens_input":{},"tokens_output":{},"tokens_cache_read":1000,"duration_ms":{ms},"cost_usd":0.01}}"#,
                500 + tick % 700,
                50 + tick % 90
            );
            written += events.write(&date, &line)?;
            openclaw_line(
                &mut line,
                t,
                203,
                &format!("embedded run agent start: runId={run}"),
            );
            written += log.write(&date, &line)?;
            let end = 205 + ms;
            openclaw_line(
                &mut line,
                t + end / 1000,
                end % 1000,
                &format!("embedded run agent end: runId={run} isError=false"),
            );
            written += log.write(&date, &line)?;
            actions += 1;
        }
        if tick % (2 * DENSE_ACTION_S) == 2 + DENSE_ACTION_S {
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{at}","event_type":"tool","session_id":"{session}","tool_name":"exec","duration_ms":{}}}"#,
                30 + tick % 400
            );
            written += events.write(&date, &line)?;
            actions += 1;
        }
        tick += 1;
    }
    res.finish()?;
    events.finish()?;
    log.finish()?;
    eprintln!(
        "generated {written} bytes, {actions} actions, {} sessions, {tick} ticks in {}",
        (tick + DENSE_SESSION_S - 1) / DENSE_SESSION_S,
        dir.display()
    );
    Ok(actions)
}
