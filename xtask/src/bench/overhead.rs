//! `cargo xtask bench overhead`: the agent's own cost. Runs the release agent for N seconds at
//! 1 Hz against a target tree of 50 processes and reports its CPU time (user + system, from
//! wait4 rusage, and the steady share after start-up), peak RSS (VmHWM, start-up included),
//! last RSS and start-up time, median of several runs, beside a psutil-based Python collector
//! doing the same work in the same run (the baseline, `tests/bench/psutil_collector.py`).
//! `bench ebpf overhead` runs the same comparison with the eBPF agent added ([`compare`]).
//! With `--openclaw`, the same agent following an OpenClaw SQLite store that gains a row every
//! 250 ms ([`StoreWriter`]) runs beside the agent with the feed off, in the same run.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use super::measure::{
    median, spawn_target_tree, wait_usage, AgentWatch, StartupWatch, STEADY_AFTER, TARGET_NAME,
};
use super::openclaw_store::StoreWriter;
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
    /// Also run the agent following a growing OpenClaw SQLite store (the live feed on).
    #[arg(long)]
    openclaw: bool,
}

/// How often the stand-in gateway commits a transcript row in `--openclaw` runs.
const STORE_ROW_EVERY: Duration = Duration::from_millis(250);

/// Measures the polling agent and the baseline, interleaved, and prints the medians.
pub fn run(args: &OverheadArgs) -> anyhow::Result<()> {
    let agent = build_agent(Profile::Release)?;
    let scratch = tempfile::tempdir()?;
    let mut collectors = vec![Collector::agent("trace-claw (procfs)", &agent, "off")];
    let writer = if args.openclaw {
        let state = scratch.path().join("openclaw-state");
        let logs = scratch.path().join("openclaw-logs");
        std::fs::create_dir_all(&logs)?;
        let mut follower = Collector::agent("trace-claw + SQLite feed", &agent, "off");
        follower.prefix.extend(
            [
                "--openclaw".as_ref(),
                "--openclaw-log-dir".as_ref(),
                logs.as_os_str(),
                "--openclaw-state-dir".as_ref(),
                state.as_os_str(),
            ]
            .map(OsString::from),
        );
        collectors.push(follower);
        Some(StoreWriter::start(&state, STORE_ROW_EVERY)?)
    } else {
        None
    };
    compare(
        &collectors,
        scratch.path(),
        args.processes,
        args.runs,
        args.seconds,
    )?;
    if let Some(w) = writer {
        let rows = w.finish()?;
        // The follower is collector 1; `compare` writes its first run to run0-1.
        let mirror = scratch.path().join("run0-1").join("openclaw-state");
        anyhow::ensure!(
            mirror.is_dir(),
            "the SQLite feed copied nothing to {}",
            mirror.display()
        );
        println!(
            "(the SQLite feed's store gained {rows} rows, one every {} ms, during the runs)",
            STORE_ROW_EVERY.as_millis()
        );
    }
    Ok(())
}

/// One collector under test: a label, and the program and arguments before the flags all
/// collectors share (`--process`, `--interval`, `--duration`, `--output-dir`).
pub struct Collector {
    label: &'static str,
    program: PathBuf,
    prefix: Vec<OsString>,
    /// A client reads every tick from the agent's socket while it runs.
    client: bool,
}

impl Collector {
    /// The agent at `agent` with `--ebpf mode`.
    pub fn agent(label: &'static str, agent: &Path, mode: &'static str) -> Self {
        Self {
            label,
            program: agent.to_owned(),
            prefix: ["collect", "--ebpf", mode].map(OsString::from).to_vec(),
            client: false,
        }
    }

    /// The same, with a client attached to its socket (docs/agent-socket.md) for the whole run,
    /// reading every tick as `top` does.
    pub fn with_client(mut self) -> Self {
        self.client = true;
        self
    }
}

/// Runs `collectors` and the psutil baseline `runs` times each, interleaved so that machine
/// noise hits all alike, over a tree of `processes` targets, and prints the medians.
pub fn compare(
    collectors: &[Collector],
    scratch: &Path,
    processes: usize,
    runs: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let python = tools::python_venv("bench", &["psutil"])?;
    let script = workspace_root().join("tests/bench/psutil_collector.py");
    let baseline = Collector {
        label: "python psutil baseline",
        program: python,
        prefix: Vec::new(),
        client: false,
    };
    let all: Vec<&Collector> = collectors.iter().chain([&baseline]).collect();
    let tree = spawn_target_tree(scratch, processes)?;
    let mut results: Vec<Vec<Overhead>> = vec![Vec::new(); all.len()];
    for run in 0..runs {
        for (i, c) in all.iter().enumerate() {
            eprintln!("bench: run {}/{runs} {} ({seconds}s)", run + 1, c.label);
            let out = scratch.join(format!("run{run}-{i}"));
            // Every agent serves a socket of its own (the env, which an older baseline agent
            // ignores), so no run is the host's agent and only `client` runs have a client.
            let socket = scratch.join(format!("run{run}-{i}.sock"));
            let mut command = Command::new(&c.program);
            command.env("TRACE_CLAW_SOCKET", &socket);
            if c.prefix.is_empty() {
                command.arg(&script);
            }
            command
                .args(&c.prefix)
                .args(["--process", TARGET_NAME, "--interval", "1"])
                .args(["--duration", &seconds.to_string()])
                .arg("--output-dir")
                .arg(&out);
            let client = c.client.then(|| attach_client(socket));
            results[i].push(measure(command, seconds).with_context(|| c.label.to_owned())?);
            if let Some(client) = client {
                let ticks = client
                    .join()
                    .map_err(|_| anyhow::anyhow!("the socket client panicked"))??;
                if ticks + 2 < seconds {
                    bail!("{}: the attached client read only {ticks} ticks", c.label);
                }
            }
            if count_lines(&out)? == 0 {
                bail!("{} wrote no samples to {}", c.label, out.display());
            }
        }
    }
    drop(tree);
    println!(
        "overhead at 1 Hz over {processes} processes, {seconds} s per run, median of {runs} runs"
    );
    println!(
        "(cpu % run: wait4 rusage, start-up included; steady: from {} s on, \
         /proc/PID/task/*/schedstat; peak RSS: VmHWM from /proc (wait4's ru_maxrss would count the forked copy of \
         the benchmark before exec), start-up included; \
         start-up: spawn to the agent's '{STARTED}' line)",
        STEADY_AFTER.as_secs()
    );
    println!(
        "{:<24} {:>10} {:>12} {:>13} {:>13} {:>12}",
        "collector", "cpu % run", "cpu % steady", "peak RSS MiB", "last RSS MiB", "start-up ms"
    );
    for (c, runs) in all.iter().zip(&results) {
        let med = |f: fn(&Overhead) -> f64| median(runs.iter().map(f).collect());
        println!(
            "{:<24} {:>10.3} {:>12.3} {:>13.1} {:>13.1} {:>12.0}",
            c.label,
            med(|o| o.cpu_run),
            med(|o| o.cpu_steady),
            med(|o| o.peak_mib),
            med(|o| o.last_mib),
            med(|o| o.startup_ms)
        );
    }
    Ok(())
}

/// The agent's start-up line: everything is loaded and the first tick is scheduled.
const STARTED: &str = "collecting every";

/// One collector run.
#[derive(Debug, Clone, Copy)]
struct Overhead {
    /// CPU % of one core over the whole run (wait4 rusage, start-up included).
    cpu_run: f64,
    /// CPU % of one core from [`STEADY_AFTER`] on.
    cpu_steady: f64,
    /// Peak RSS (VmHWM, read from /proc once a second), start-up included.
    peak_mib: f64,
    /// The last RSS read while it ran.
    last_mib: f64,
    /// From spawn to the [`STARTED`] line; NaN for a collector that prints none.
    startup_ms: f64,
}

/// Runs `command` (a collector for `seconds`) to its end and measures it.
fn measure(mut command: Command, seconds: u64) -> anyhow::Result<Overhead> {
    let spawned = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("collector stderr")?;
    let startup = StartupWatch::start(stderr, spawned, STARTED);
    let watch = AgentWatch::start(child.id());
    let usage = wait_usage(child)?;
    let read = watch.finish();
    Ok(Overhead {
        cpu_run: usage.cpu_seconds / seconds as f64 * 100.0,
        cpu_steady: read.steady_cpu.unwrap_or(f64::NAN),
        peak_mib: read.peak_mib,
        last_mib: read.last_mib,
        startup_ms: startup.finish().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
    })
}

/// A client of the agent's socket at `socket`: waits for it, then reads every line until the
/// agent stops; the ticks it read (the hello not counted).
fn attach_client(socket: PathBuf) -> std::thread::JoinHandle<anyhow::Result<u64>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("no agent on {}", socket.display()))
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let mut lines = 0u64;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stream)) {
            line.with_context(|| format!("reading {}", socket.display()))?;
            lines += 1;
        }
        Ok(lines.saturating_sub(1))
    })
}

fn count_lines(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("no output in {}", dir.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            n += std::fs::read_to_string(entry.path())?.lines().count();
        }
    }
    Ok(n)
}
