//! The trace directories `bench analyze` reads, in one of two [`Profile`]s:
//! - `dense` (`generate/dense.rs`), a busy gateway: a 300 s session after another, an action
//!   every 5 s (LLM and tool calls by turns, about 4,000 sessions and 240,000 actions per GB),
//!   each in `events-*.jsonl` and each LLM call also in OpenClaw's daily file log
//!   (`openclaw-*.log`, the real 2026.4.29 line format, `embedded run` lines), beside 1 Hz
//!   `resources-*.jsonl` with the tracked tree's totals;
//! - `sparse` (here): daily `resources-*.jsonl` with ~46 samples per 1 s tick shaped like
//!   `collect`'s output (system, 4 processes, the `pid="total"` tree sums), `events-*.jsonl`
//!   with an LLM call every 20 s and a tool call every 60 s in hourly sessions, and
//!   `process-events-*.jsonl`.
//!
//! Both write daily files and one malformed resource line per 100 000. Deterministic: the same
//! size gives the same bytes.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use trace_claw_common::names::{self, labels, MetricDef};

/// `writeln!` into a `String`, whose `fmt::Write` impl never returns an error.
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        // String's fmt::Write never fails: nothing to handle.
        let _ = writeln!($dst, $($arg)*);
    }};
}

// After `put!`, which it uses.
mod dense;

/// The shape of a generated trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// A busy gateway: an action per 5 s of samples, ~4,000 sessions per GB, OpenClaw logs.
    Dense,
    /// Many samples per second, few actions (~8,000 per GB).
    Sparse,
}

impl Profile {
    /// The name `--profile` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dense => "dense",
            Self::Sparse => "sparse",
        }
    }
}

/// Writes about `target` bytes of trace files of `profile` into `dir`; returns the number of
/// distinct actions.
pub fn trace_dir(dir: &Path, target: u64, profile: Profile) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    match profile {
        Profile::Dense => dense::trace_dir(dir, target),
        Profile::Sparse => sparse(dir, target),
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

/// One resource sample line, shaped like the `MetricSample` lines `collect` writes, into `line`.
fn sample(line: &mut String, ts: &str, metric: &MetricDef, value: f64, labels: &str) {
    line.clear();
    let (name, unit) = (metric.name, metric.unit);
    put!(
        line,
        r#"{{"timestamp":"{ts}","name":"{name}","value":{value},"unit":"{unit}","labels":{{{labels}}}}}"#
    );
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

/// The daily `resources-*.jsonl` writer, which puts a malformed line before every 100 000th
/// sample.
struct Resources {
    daily: Daily,
    lines: u64,
}

impl Resources {
    fn new(dir: &Path) -> Self {
        Self {
            daily: Daily::new(dir, "resources", "jsonl"),
            lines: 0,
        }
    }

    /// Writes one sample line (and the malformed one when due); returns the bytes written.
    fn write(&mut self, date: &str, line: &str) -> anyhow::Result<u64> {
        self.lines += 1;
        let mut written = 0;
        if self.lines.is_multiple_of(100_000) {
            written += self.daily.write(date, "{\"timestamp\":\"broken\n")?;
        }
        Ok(written + self.daily.write(date, line)?)
    }
}

/// The `sparse` profile (see the module doc); returns the number of actions.
fn sparse(dir: &Path, target: u64) -> anyhow::Result<u64> {
    let mut res = Resources::new(dir);
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
        let mut emit = |metric: &MetricDef, value: f64, labels: &str| -> anyhow::Result<()> {
            sample(&mut line, &ts, metric, value, labels);
            written += res.write(&date, &line)?;
            Ok(())
        };
        for (cpu, v) in [(labels::CPU_TOTAL, 20.0), ("0", 25.0), ("1", 15.0)] {
            let cpu_labels = label_json(&[(labels::CPU, cpu), SYSINFO]);
            emit(&names::SYSTEM_CPU_USAGE, v + 10.0 * rnd(), &cpu_labels)?;
        }
        for (metric, v) in [
            (names::SYSTEM_LOAD_1M, 0.8 + rnd()),
            (names::SYSTEM_MEMORY_USAGE, 40.0 + rnd()),
            (names::SYSTEM_MEMORY_USED, 8e9 + 1e8 * rnd()),
            (names::SYSTEM_MEMORY_AVAILABLE, 1.6e10 - 1e8 * rnd()),
        ] {
            emit(&metric, v.round(), &system_labels)?;
        }
        for iface in ["eth0", "lo"] {
            let iface_labels = label_json(&[(labels::INTERFACE, iface), SYSINFO]);
            for (metric, v) in [
                (names::SYSTEM_NET_SENT_TOTAL, (tick * 5000) as f64),
                (names::SYSTEM_NET_RECV_TOTAL, (tick * 9000) as f64),
            ] {
                emit(&metric, v, &iface_labels)?;
            }
        }
        let eth0_labels = label_json(&[(labels::INTERFACE, "eth0"), SYSINFO]);
        for (metric, v) in [
            (names::SYSTEM_NET_SENT_RATE, 5000.0),
            (names::SYSTEM_NET_RECV_RATE, 9000.0),
        ] {
            emit(&metric, v, &eth0_labels)?;
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
                emit(&metric, v, &process_labels)?;
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
            emit(&metric, v, &total_labels)?;
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
    res.daily.finish()?;
    events.finish()?;
    procs.finish()?;
    eprintln!(
        "generated {written} bytes, {} sample lines, {tick} ticks in {}",
        res.lines,
        dir.display()
    );
    Ok(actions)
}
