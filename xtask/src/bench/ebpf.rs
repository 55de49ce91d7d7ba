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
//! - `overhead`: CPU, peak RSS (VmHWM, start-up included), last RSS and start-up time at 1 Hz
//!   over a 50-process tree: the agent with eBPF, with procfs polling, and the psutil baseline
//!   (`tests/bench/psutil_collector.py`), alternating in the same run.
//!
//! Every figure is the median of `--runs` runs. The workers run as copies of this binary under
//! names the agent matches (`worker` subcommand, in `ebpf/workload.rs`); the programs' own
//! statistics come from `ebpf/bpftool.rs`, and `ebpf/written.rs` reads back what the agent wrote.

mod bpftool;
mod workload;
mod written;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use trace_claw_common::names;

use self::bpftool::{bpftool_stats, prog_ids, BpfStats};
use self::workload::{pingpong_rounds, read_ns_per_trip};
use self::written::{captured, last_value};
use super::measure::median;
use super::overhead::{compare, Collector};
use crate::child::OwnedChild;
use crate::proc_util::{build_agent, is_root, Profile};

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
    /// Agent CPU and RSS at 1 Hz over a 50-process tree (`--processes`), eBPF vs polling.
    Overhead(Common),
    /// All four, in that order.
    All(Common),
    /// A workload process (started by the benchmarks themselves).
    #[command(hide = true)]
    Worker(workload::WorkerArgs),
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
    /// Another agent binary (say, a build of the previous commit) that progs, pingpong and
    /// overhead also run, alternating with this one in the same session, as the baseline.
    #[arg(long, value_name = "PATH")]
    baseline_agent: Option<PathBuf>,
    /// Sizes of the target tree that overhead measures, one comparison each (e.g. 50,300,1000).
    #[arg(long, value_delimiter = ',', default_value = "50")]
    processes: Vec<usize>,
    /// overhead: also run this agent with eBPF and a client attached to its socket, reading
    /// every tick as `top --connect` does.
    #[arg(long)]
    attach_client: bool,
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

/// Names the workers run under; the agent is told to track the first and must ignore the second.
const TRACKED_PP: &str = "tcbench-pp";
const UNTRACKED_PP: &str = "tcbench-qq";
const STORM: &str = "tcbench-storm";

/// Runs the chosen benchmark.
pub fn run(args: &BenchEbpfArgs) -> anyhow::Result<()> {
    match &args.which {
        Which::Worker(w) => workload::run(w),
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

/// Per program of one agent: ns per run and runs, one value per benchmark run.
type ProgRuns = HashMap<String, (Vec<f64>, Vec<f64>)>;

/// The release agent, worker copies of this binary, and scratch space.
struct Bench {
    agent: PathBuf,
    scratch: tempfile::TempDir,
}

impl Bench {
    fn new() -> anyhow::Result<Self> {
        if !is_root() {
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
        self.start_agent_binary(&self.agent, target, out)
    }

    /// [`Bench::start_agent`] with the agent binary `agent`.
    fn start_agent_binary(&self, agent: &Path, target: &str, out: &Path) -> anyhow::Result<Agent> {
        let child = Command::new(agent)
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
        let agents = self.agents(c);
        let mut per_prog: Vec<ProgRuns> = vec![HashMap::new(); agents.len()];
        for run in 0..c.runs {
            for (i, (label, agent)) in agents.iter().enumerate() {
                eprintln!("bench-ebpf progs: run {}/{} ({label})", run + 1, c.runs);
                let before = prog_ids()?;
                let out = self.scratch.path().join("progs");
                let agent = self.start_agent_binary(agent, c.track.target(), &out)?;
                let tracked = self.pingpong_child(TRACKED_PP, rounds)?;
                let untracked = self.pingpong_child(UNTRACKED_PP, rounds)?;
                read_ns_per_trip(tracked)?;
                read_ns_per_trip(untracked)?;
                for (name, ns, cnt) in bpftool_stats(&before)? {
                    let (times, counts) = per_prog[i].entry(name).or_default();
                    times.push(ns / cnt.max(1.0));
                    counts.push(cnt);
                }
                agent.stop()?;
            }
        }
        println!(
            "per-program cost, two pipe ping-pongs ({rounds} round trips each, tracking: {:?}), \
             median of {} runs",
            c.track, c.runs
        );
        for ((label, _), progs) in agents.iter().zip(per_prog) {
            println!("{label}:");
            println!("{:<20} {:>14} {:>14}", "program", "ns per run", "runs");
            let mut names: Vec<_> = progs.keys().cloned().collect();
            names.sort();
            for name in names {
                let (times, counts) = &progs[&name];
                println!(
                    "{name:<20} {:>14.1} {:>14.0}",
                    median(times.clone()),
                    median(counts.clone())
                );
            }
        }
        Ok(())
    }

    /// The agents progs and pingpong compare: the baseline (if any), then this build.
    fn agents<'a>(&'a self, c: &'a Common) -> Vec<(&'static str, &'a Path)> {
        let mut agents = Vec::new();
        if let Some(baseline) = &c.baseline_agent {
            agents.push(("baseline agent", baseline.as_path()));
        }
        agents.push(("this agent", self.agent.as_path()));
        agents
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
        let agents = self.agents(c);
        let mut without = Vec::new();
        let mut with = vec![Vec::new(); agents.len()];
        for run in 0..c.runs {
            eprintln!("bench-ebpf pingpong: run {}/{}", run + 1, c.runs);
            without.push(read_ns_per_trip(self.pingpong_child(TRACKED_PP, rounds)?)?);
            // Every other run in the reverse order, so neither agent always runs first.
            let mut order: Vec<usize> = (0..agents.len()).collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let agent = agents[i].1;
                let out = self.scratch.path().join("pp");
                let agent = self.start_agent_binary(agent, c.track.target(), &out)?;
                with[i].push(read_ns_per_trip(self.pingpong_child(TRACKED_PP, rounds)?)?);
                agent.stop()?;
            }
        }
        let a = median(without.clone());
        println!(
            "pipe ping-pong, {rounds} round trips per run, median of {} runs",
            c.runs
        );
        println!("without agent: {:.2} us per round trip", a / 1e3);
        for ((label, _), times) in agents.iter().zip(with) {
            // The same run's ratio too: the host's load drifts less within a run than across.
            let paired = median(times.iter().zip(&without).map(|(w, o)| w / o).collect());
            let b = median(times);
            println!(
                "with {label} (eBPF, tracking: {:?}): {:.2} us per round trip, slowdown {:+.1}% \
                 (median of per-run ratios {:+.1}%)",
                c.track,
                b / 1e3,
                (b / a - 1.0) * 100.0,
                (paired - 1.0) * 100.0
            );
        }
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
        // Each agent (the baseline first, if any) with eBPF, then polling.
        let collectors: Vec<Collector> = self
            .agents(c)
            .into_iter()
            .flat_map(|(who, agent)| {
                let (ebpf, polling) = if c.baseline_agent.is_some() && who != "this agent" {
                    ("eBPF (baseline agent)", "procfs polling (baseline agent)")
                } else {
                    ("eBPF", "procfs polling")
                };
                [
                    Collector::agent(ebpf, agent, "require"),
                    Collector::agent(polling, agent, "off"),
                ]
            })
            .chain(
                c.attach_client
                    .then(|| Collector::agent("eBPF, top attached", &self.agent, "require"))
                    .map(Collector::with_client),
            )
            .collect();
        for &processes in &c.processes {
            compare(
                &collectors,
                self.scratch.path(),
                processes,
                c.runs,
                c.seconds,
            )?;
        }
        Ok(())
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
