//! `cargo xtask bench ebpf`: what the eBPF backend costs and whether it keeps up (root only).
//!
//! - `progs`: run time per invocation of each kernel program (`bpftool prog show`,
//!   run_time_ns / run_cnt with `kernel.bpf_stats_enabled=1`) under a tracked and an untracked
//!   pipe ping-pong.
//! - `pingpong`: pipe round-trip time of a tracked process pair, without and with the agent
//!   attached, alternating runs.
//! - `exec-storm`: a tracked parent keeps children (`sleep` of 1-20 ms) coming as fast as it
//!   can for N seconds; reports the achieved exec rate and the share of execs and exits (with
//!   final counters) in `process-events-*.jsonl`, and the kernel drop counter.
//! - `overhead`: agent CPU and peak RSS at 1 Hz over a 50-process tree, eBPF vs procfs polling,
//!   alternating in the same run.
//!
//! Every figure is the median of `--runs` runs. The workers run as copies of this binary under
//! names the agent matches (`worker` subcommand).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use trace_claw_common::names;

use super::measure::{median, spawn_target_tree, wait_usage, TARGET_NAME};
use crate::child::OwnedChild;
use crate::proc_util::{build_agent, Profile};
use crate::procfs;

/// Flags of `bench ebpf`.
#[derive(Debug, Args)]
pub struct BenchEbpfArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// Per-program cost (run_time_ns / run_cnt) from bpftool.
    Progs(Common),
    /// Pipe ping-pong round trip without and with the agent.
    Pingpong(Common),
    /// Exec storm: achieved rate and capture share of exec and exit events.
    ExecStorm(Common),
    /// Agent CPU and RSS at 1 Hz over a 50-process tree, eBPF vs polling.
    Overhead(Common),
    /// All four, in that order.
    All(Common),
    /// A workload process (started by the benchmarks themselves).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// Flags shared by every benchmark.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds per run (exec-storm and overhead; progs and pingpong use a third of it).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Which ping-pong pairs the agent tracks in progs and pingpong: `pair` (the first one,
    /// the default), `none` (the untracked cost) or `both`.
    #[arg(long, value_enum, default_value_t = Track::Pair)]
    track: Track,
}

/// What the agent is told to track in the ping-pong benchmarks.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Track {
    /// `tcbench-pp`, the tracked pair.
    Pair,
    /// A name no process has.
    None,
    /// `tcbench-pp` and `tcbench-qq` (their common prefix).
    Both,
}

impl Track {
    /// The agent's `--process` for this choice.
    fn target(self) -> &'static str {
        match self {
            Self::Pair => TRACKED_PP,
            Self::None => "tcbench-nothing",
            Self::Both => "tcbench-",
        }
    }
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Times `rounds` 1-byte round trips through pipes to an `echo` child; prints ns per trip.
    Pingpong {
        #[arg(long)]
        rounds: u64,
    },
    /// Copies stdin to stdout one byte at a time.
    Echo,
    /// Spawns `sleep` children of 1-20 ms, `parallel` at a time, for `seconds`; writes their
    /// pids to `pids_file`.
    Storm {
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        parallel: usize,
        #[arg(long)]
        pids_file: PathBuf,
    },
}

/// Names the workers run under; the agent is told to track the first and must ignore the second.
const TRACKED_PP: &str = "tcbench-pp";
const UNTRACKED_PP: &str = "tcbench-qq";
const STORM: &str = "tcbench-storm";

/// Runs the chosen benchmark.
pub fn run(args: &BenchEbpfArgs) -> anyhow::Result<()> {
    match &args.which {
        Which::Worker(w) => worker(&w.role),
        which => {
            let bench = Bench::new()?;
            match which {
                Which::Progs(c) => bench.progs(c),
                Which::Pingpong(c) => bench.pingpong(c),
                Which::ExecStorm(c) => bench.exec_storm(c),
                Which::Overhead(c) => bench.overhead(c),
                Which::All(c) => {
                    bench.progs(c)?;
                    bench.pingpong(c)?;
                    bench.exec_storm(c)?;
                    bench.overhead(c)
                }
                Which::Worker(_) => Ok(()),
            }
        }
    }
}

/// The release agent, worker copies of this binary, and scratch space.
struct Bench {
    agent: PathBuf,
    scratch: tempfile::TempDir,
}

impl Bench {
    fn new() -> anyhow::Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("bench-ebpf loads eBPF programs: run as root (sudo -E cargo xtask bench ebpf)");
        }
        let agent = build_agent(Profile::Release)?;
        let scratch = tempfile::tempdir()?;
        let me = std::env::current_exe()?;
        for name in [TRACKED_PP, UNTRACKED_PP, STORM] {
            std::fs::copy(&me, scratch.path().join(name))
                .with_context(|| format!("cannot copy {} as {name}", me.display()))?;
        }
        Ok(Self { agent, scratch })
    }

    fn worker(&self, name: &str) -> Command {
        let mut c = Command::new(self.scratch.path().join(name));
        c.args(["bench", "ebpf", "worker"]);
        c
    }

    /// Starts the agent with eBPF required, tracking `target`, and waits until it collects.
    fn start_agent(&self, target: &str, out: &Path) -> anyhow::Result<Agent> {
        let child = Command::new(&self.agent)
            .args(["collect", "--ebpf", "require", "--interval", "1"])
            .args(["--process", target])
            .arg("--output-dir")
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start the agent")?;
        let mut agent =
            Agent(OwnedChild::terminated_on_drop(child, None).labelled("bench-ebpf: agent"));
        let stderr = agent.0.child_mut().stderr.take().context("agent stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref() {
            let line = line?;
            if line.contains("collecting every") {
                // Keep draining stderr so the agent never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(agent);
            }
            if line.contains("ERROR") {
                bail!("agent failed: {line}");
            }
        }
        bail!("agent exited before collecting")
    }

    fn progs(&self, c: &Common) -> anyhow::Result<()> {
        let _stats = BpfStats::set(true)?;
        let rounds = pingpong_rounds(c.seconds / 3);
        let mut per_prog: HashMap<String, Vec<f64>> = HashMap::new();
        let mut counts: HashMap<String, Vec<f64>> = HashMap::new();
        for run in 0..c.runs {
            eprintln!("bench-ebpf progs: run {}/{}", run + 1, c.runs);
            let before = prog_ids()?;
            let agent = self.start_agent(c.track.target(), &self.scratch.path().join("progs"))?;
            let tracked = self.pingpong_child(TRACKED_PP, rounds)?;
            let untracked = self.pingpong_child(UNTRACKED_PP, rounds)?;
            read_ns_per_trip(tracked)?;
            read_ns_per_trip(untracked)?;
            for (name, ns, cnt) in bpftool_stats(&before)? {
                per_prog
                    .entry(name.clone())
                    .or_default()
                    .push(ns / cnt.max(1.0));
                counts.entry(name).or_default().push(cnt);
            }
            agent.stop()?;
        }
        println!(
            "per-program cost, two pipe ping-pongs ({rounds} round trips each, tracking: {:?}), \
             median of {} runs",
            c.track, c.runs
        );
        println!("{:<20} {:>14} {:>14}", "program", "ns per run", "runs");
        let mut names: Vec<_> = per_prog.keys().cloned().collect();
        names.sort();
        for name in names {
            println!(
                "{name:<20} {:>14.1} {:>14.0}",
                median(per_prog[&name].clone()),
                median(counts[&name].clone())
            );
        }
        Ok(())
    }

    fn pingpong_child(&self, name: &str, rounds: u64) -> anyhow::Result<Child> {
        self.worker(name)
            .args(["pingpong", "--rounds", &rounds.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start ping-pong")
    }

    fn pingpong(&self, c: &Common) -> anyhow::Result<()> {
        let _stats = BpfStats::set(false)?;
        let rounds = pingpong_rounds(c.seconds / 3);
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for run in 0..c.runs {
            eprintln!("bench-ebpf pingpong: run {}/{}", run + 1, c.runs);
            without.push(read_ns_per_trip(self.pingpong_child(TRACKED_PP, rounds)?)?);
            let agent = self.start_agent(c.track.target(), &self.scratch.path().join("pp"))?;
            with.push(read_ns_per_trip(self.pingpong_child(TRACKED_PP, rounds)?)?);
            agent.stop()?;
        }
        let (a, b) = (median(without), median(with));
        println!(
            "pipe ping-pong, {rounds} round trips per run, median of {} runs",
            c.runs
        );
        println!("without agent: {:.2} us per round trip", a / 1e3);
        println!(
            "with agent (eBPF, tracking: {:?}): {:.2} us per round trip",
            c.track,
            b / 1e3
        );
        println!("slowdown: {:+.1}%", (b / a - 1.0) * 100.0);
        Ok(())
    }

    fn exec_storm(&self, c: &Common) -> anyhow::Result<()> {
        let _stats = BpfStats::set(false)?;
        let mut rates = Vec::new();
        let mut shares = Vec::new();
        let mut drops = Vec::new();
        for run in 0..c.runs {
            eprintln!(
                "bench-ebpf exec-storm: run {}/{} ({}s)",
                run + 1,
                c.runs,
                c.seconds
            );
            let out = self.scratch.path().join(format!("storm{run}"));
            let pids_file = self.scratch.path().join(format!("storm{run}.pids"));
            let agent = self.start_agent(STORM, &out)?;
            let started = Instant::now();
            let status = self
                .worker(STORM)
                .args(["storm", "--seconds", &c.seconds.to_string()])
                .args(["--parallel", "16", "--pids-file"])
                .arg(&pids_file)
                .status()?;
            let elapsed = started.elapsed().as_secs_f64();
            if !status.success() {
                bail!("storm worker failed: {status}");
            }
            // Time for the agent to drain the last events, including any exit it finishes itself
            // (2 s after the pid left /proc, checked at its 1 s ticks).
            std::thread::sleep(Duration::from_millis(4_000));
            agent.stop()?;
            let spawned: Vec<u32> = std::fs::read_to_string(&pids_file)?
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            let (execs, exits) = captured(&out)?;
            let both = spawned
                .iter()
                .filter(|p| execs.contains(p) && exits.contains(p))
                .count();
            let share = both as f64 / spawned.len().max(1) as f64 * 100.0;
            let dropped = last_value(&out, names::EBPF_EVENTS_DROPPED.name)?;
            eprintln!(
                "  {} children in {elapsed:.1}s = {:.0}/s; exec+exit captured {both} ({share:.2}%); dropped {dropped}",
                spawned.len(),
                spawned.len() as f64 / elapsed
            );
            rates.push(spawned.len() as f64 / elapsed);
            shares.push(share);
            drops.push(dropped);
        }
        println!(
            "exec storm: 16 children in flight, each sleep 1-20 ms, {} s, median of {} runs",
            c.seconds, c.runs
        );
        println!("achieved rate: {:.0} execs/s", median(rates));
        println!(
            "exec+exit (with final counters) captured: {:.2}%",
            median(shares)
        );
        println!("kernel events dropped: {:.0}", median(drops));
        Ok(())
    }

    fn overhead(&self, c: &Common) -> anyhow::Result<()> {
        let _stats = BpfStats::set(false)?;
        let tree = spawn_target_tree(self.scratch.path(), 50)?;
        let seconds = c.seconds.to_string();
        let modes = ["require", "off"];
        let mut results: Vec<Vec<(f64, f64, f64, f64)>> = vec![Vec::new(); modes.len()];
        for run in 0..c.runs {
            for (i, mode) in modes.iter().enumerate() {
                eprintln!(
                    "bench-ebpf overhead: run {}/{} --ebpf {mode} ({seconds}s)",
                    run + 1,
                    c.runs
                );
                let out = self.scratch.path().join(format!("ovh{run}-{mode}"));
                let child = Command::new(&self.agent)
                    .args(["collect", "--ebpf", mode, "--interval", "1"])
                    .args(["--process", TARGET_NAME, "--duration", &seconds])
                    .arg("--output-dir")
                    .arg(&out)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                let watch = AgentWatch::start(child.id());
                let usage = wait_usage(child)?;
                let (last_mib, steady) = watch.finish();
                results[i].push((
                    usage.cpu_seconds / c.seconds as f64 * 100.0,
                    steady.unwrap_or(f64::NAN),
                    usage.max_rss_kib as f64 / 1024.0,
                    last_mib,
                ));
            }
        }
        drop(tree);
        println!(
            "agent overhead at 1 Hz over 50 processes, {} s per run, median of {} runs",
            c.seconds, c.runs
        );
        println!(
            "(cpu % whole run: from wait4 rusage, start-up included; steady: from {} s on, \
             /proc/PID/task/*/schedstat)",
            STEADY_AFTER.as_secs()
        );
        println!(
            "{:<22} {:>12} {:>12} {:>14} {:>14}",
            "agent", "cpu % run", "cpu % steady", "peak RSS MiB", "last RSS MiB"
        );
        for (mode, r) in modes.iter().zip(&results) {
            let label = if *mode == "off" {
                "procfs polling"
            } else {
                "eBPF"
            };
            println!(
                "{label:<22} {:>12.3} {:>12.3} {:>14.1} {:>14.1}",
                median(r.iter().map(|x| x.0).collect()),
                median(r.iter().map(|x| x.1).collect()),
                median(r.iter().map(|x| x.2).collect()),
                median(r.iter().map(|x| x.3).collect())
            );
        }
        Ok(())
    }
}

/// Samples a process's VmRSS and on-CPU time once a second until it exits: the last RSS
/// reading (the steady state, where the peak from rusage includes start-up) and the CPU share
/// from the first sample after [`STEADY_AFTER`] to the last one (steady state, without the
/// start-up's BTF parsing and program loading).
struct AgentWatch(std::thread::JoinHandle<(f64, Option<f64>)>);

/// When the steady-state CPU window of [`AgentWatch`] opens.
const STEADY_AFTER: Duration = Duration::from_secs(5);

impl AgentWatch {
    fn start(pid: u32) -> Self {
        Self(std::thread::spawn(move || {
            let started = Instant::now();
            let mut last_kib = 0.0;
            let mut first: Option<(Instant, u64)> = None;
            let mut last: Option<(Instant, u64)> = None;
            while let Some(kib) = procfs::vm_rss_kib(pid) {
                last_kib = kib as f64;
                if started.elapsed() >= STEADY_AFTER {
                    if let Ok(ns) = procfs::on_cpu_ns(pid) {
                        let now = (Instant::now(), ns);
                        first.get_or_insert(now);
                        last = Some(now);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let steady = match (first, last) {
                (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                    Some(c1.saturating_sub(c0) as f64 / (t1 - t0).as_nanos() as f64 * 100.0)
                }
                _ => None,
            };
            (last_kib, steady)
        }))
    }

    /// Last RSS in MiB and steady-state CPU in % of one core.
    fn finish(self) -> (f64, Option<f64>) {
        let (kib, steady) = self.0.join().unwrap_or((0.0, None));
        (kib / 1024.0, steady)
    }
}

/// A running agent; stopped with SIGTERM (so it flushes) and reaped, also when a benchmark
/// fails half-way.
struct Agent(OwnedChild);

impl Agent {
    /// Stops the agent with SIGTERM; fails unless it exits 0.
    fn stop(mut self) -> anyhow::Result<()> {
        let status = self.0.stop(libc::SIGTERM, None)?;
        if !status.success() {
            bail!("agent exited with {status}");
        }
        Ok(())
    }
}

/// `kernel.bpf_stats_enabled` set for the guard's lifetime, then restored: on to read the
/// programs' run times, off for the timing benchmarks (left on, it adds a `sched_clock()`
/// pair to every program run of the host).
struct BpfStats(String);

impl BpfStats {
    const PATH: &str = "/proc/sys/kernel/bpf_stats_enabled";

    fn set(on: bool) -> anyhow::Result<Self> {
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

/// Round trips for a run of about `seconds` (about 15 us per trip here).
fn pingpong_rounds(seconds: u64) -> u64 {
    seconds.max(1) * 50_000
}

fn read_ns_per_trip(mut child: Child) -> anyhow::Result<f64> {
    let mut text = String::new();
    child
        .stdout
        .take()
        .context("ping-pong stdout")?
        .read_to_string(&mut text)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("ping-pong failed: {status}");
    }
    text.trim()
        .parse()
        .with_context(|| format!("ping-pong printed '{}'", text.trim()))
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
fn prog_ids() -> anyhow::Result<HashSet<u64>> {
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
fn bpftool_stats(before: &HashSet<u64>) -> anyhow::Result<Vec<(String, f64, f64)>> {
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

/// Pids with an exec event, and pids with an exit event carrying totals, in `dir`.
fn captured(dir: &Path) -> anyhow::Result<(HashSet<u32>, HashSet<u32>)> {
    let (mut execs, mut exits) = (HashSet::new(), HashSet::new());
    for_each_record(dir, "process-events-", |e| {
        let pid = e["pid"].as_u64().unwrap_or(0) as u32;
        match e["kind"].as_str() {
            Some("exec") => {
                execs.insert(pid);
            }
            Some("exit") if e["totals"].is_object() => {
                exits.insert(pid);
            }
            _ => {}
        }
    })?;
    Ok((execs, exits))
}

/// The last value of `metric` in the resources files of `dir`.
fn last_value(dir: &Path, metric: &str) -> anyhow::Result<f64> {
    let mut last = 0.0;
    for_each_record(dir, "resources-", |s| {
        if s["name"].as_str() == Some(metric) {
            last = s["value"].as_f64().unwrap_or(0.0);
        }
    })?;
    Ok(last)
}

/// Calls `f` with every JSONL record of the files in `dir` whose name starts with `prefix`.
fn for_each_record(
    dir: &Path,
    prefix: &str,
    mut f: impl FnMut(&serde_json::Value),
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            f(&serde_json::from_str(line)?);
        }
    }
    Ok(())
}

fn worker(role: &Role) -> anyhow::Result<()> {
    match role {
        Role::Pingpong { rounds } => {
            pin_to_current_cpu();
            let me = std::env::current_exe()?;
            let mut echo = Command::new(me)
                .args(["bench", "ebpf", "worker", "echo"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut to = echo.stdin.take().context("echo stdin")?;
            let mut from = echo.stdout.take().context("echo stdout")?;
            let mut byte = [0u8; 1];
            let start = Instant::now();
            for _ in 0..*rounds {
                to.write_all(&byte)?;
                from.read_exact(&mut byte)?;
            }
            let ns = start.elapsed().as_nanos() as f64 / *rounds as f64;
            drop(to);
            echo.wait()?;
            println!("{ns:.1}");
            Ok(())
        }
        Role::Echo => {
            let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
            let mut byte = [0u8; 1];
            while input.read(&mut byte)? == 1 {
                output.write_all(&byte)?;
                output.flush()?;
            }
            Ok(())
        }
        Role::Storm {
            seconds,
            parallel,
            pids_file,
        } => storm(Duration::from_secs(*seconds), *parallel, pids_file),
    }
}

/// Pins this process, and the echo child it starts next, to the CPU it runs on: each round trip
/// is then two context switches on one CPU instead of cross-CPU wakeups, whose cost depends on
/// idle states and on where the scheduler happens to place the pair (5-40 us per round trip
/// between runs on the development VM).
fn pin_to_current_cpu() {
    // SAFETY: sched_getcpu has no preconditions; the zeroed cpu_set_t is valid and CPU_SET is
    // given a CPU number the kernel just returned.
    let pinned = unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned != 0 {
        eprintln!(
            "bench-ebpf: cannot pin the ping-pong pair: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Keeps `parallel` short `sleep` children running until `duration` has passed.
fn storm(duration: Duration, parallel: usize, pids_file: &Path) -> anyhow::Result<()> {
    let end = Instant::now() + duration;
    let mut seed: u64 = u64::from(std::process::id()) | 1;
    let mut next_ms = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + seed % 20
    };
    let mut pids = Vec::new();
    let mut running = 0usize;
    loop {
        while running < parallel && Instant::now() < end {
            let child = Command::new("/bin/sleep")
                .arg(format!("0.{:03}", next_ms()))
                .spawn()?;
            pids.push(child.id());
            running += 1;
        }
        if running == 0 {
            break;
        }
        let mut status = 0;
        // SAFETY: waits for any of our own children; `status` is a live local.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            bail!("waitpid: {}", std::io::Error::last_os_error());
        }
        running -= 1;
    }
    let text: String = pids.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(pids_file, text)?;
    Ok(())
}
