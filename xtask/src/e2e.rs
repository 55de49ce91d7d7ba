//! `cargo xtask e2e-openclaw`: traces a live OpenClaw gateway offline and checks every turn.
//!
//! Installs node and OpenClaw from npm into a cache dir, starts the scripted fake model
//! (`tests/e2e/fake_model.py`), `trace-claw-agent collect --receive`, and an OpenClaw gateway
//! whose diagnostics point at the receiver; runs the scripted turns through the OpenClaw CLI,
//! stops everything, copies OpenClaw's file log and transcripts into the trace dir, runs
//! `analyze --format json` and checks it against what the fake model served. See docs/e2e.md.
//!
//! One piece at ~420 lines: `live_run` is one ordered script (start the services, run the
//! turns, stop, copy the artifacts) whose steps share the run's services and timings; what it
//! drives lives in the submodules.

mod action_cost;
mod checks;
mod install;
mod model;
mod openclaw;
mod procs;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use self::openclaw::{Home, TURNS};
use self::procs::Service;
use crate::proc_util::{build_agent, free_port, run_quiet, Profile};

/// Flags of `cargo xtask e2e-openclaw`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// OpenClaw version to install and drive (`latest`: the newest on npm).
    #[arg(long, default_value = "2026.4.29")]
    pub openclaw_version: String,

    /// Where node, OpenClaw, its plugin deps and npm's download cache persist between runs
    /// (default $XDG_CACHE_HOME/trace-claw/e2e or ~/.cache/trace-claw/e2e).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Scratch dir of the run, emptied first (default target/e2e-openclaw/<version>).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// The agent's --ebpf mode: require (fail unless the kernel programs load), auto or off.
    #[arg(long, default_value = "require")]
    pub ebpf: String,

    /// `--timeout` of each `openclaw agent` turn, seconds.
    #[arg(long, default_value_t = 300)]
    pub turn_timeout: u64,

    /// Use this trace-claw-agent binary instead of building one (debug profile) from the workspace.
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<PathBuf>,

    /// Keep OpenClaw's bundled cloud-provider plugins enabled (slower: each run loads ~50).
    #[arg(long)]
    pub all_plugins: bool,

    /// Only re-run analyze and the checks on the work dir of an earlier run.
    #[arg(long)]
    pub check_only: bool,
}

/// Wall time of each phase, printed at the end.
#[derive(Debug, Default)]
struct Timings(Vec<(String, Duration)>);

impl Timings {
    fn time<T>(&mut self, name: impl Into<String>, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let name = name.into();
        eprintln!("e2e: --- {name}");
        let started = Instant::now();
        let out = f();
        self.0.push((name, started.elapsed()));
        out
    }

    fn print(&self, total: Duration) {
        println!("\ntimings:");
        for (name, d) in &self.0 {
            println!("  {:>7.1} s  {name}", d.as_secs_f64());
        }
        println!("  {:>7.1} s  total", total.as_secs_f64());
    }
}

/// Paths of one run.
#[derive(Debug)]
struct RunDir {
    root: PathBuf,
    trace_dir: PathBuf,
    logs: PathBuf,
    model_record: PathBuf,
    home: Home,
}

impl RunDir {
    fn new(root: PathBuf, gateway_port: u16) -> Self {
        Self {
            trace_dir: root.join("trace_data"),
            logs: root.join("logs"),
            model_record: root.join("fake-model-requests.jsonl"),
            home: Home {
                home: root.join("home"),
                log_dir: root.join("openclaw-logs"),
                gateway_port,
            },
            root,
        }
    }
}

/// Runs the command; an error when a step or a check failed.
pub fn run(args: &E2eArgs) -> Result<()> {
    let started = Instant::now();
    let workspace = crate::proc_util::workspace_root();
    let work_dir = args.work_dir.clone().unwrap_or_else(|| {
        workspace
            .join("target/e2e-openclaw")
            .join(&args.openclaw_version)
    });
    // OpenClaw runs with its HOME inside the work dir and another cwd: paths must be absolute.
    let work_dir = std::path::absolute(&work_dir)
        .with_context(|| format!("resolving {}", work_dir.display()))?;
    let mut timings = Timings::default();
    let agent = match &args.agent_bin {
        Some(bin) => bin.clone(),
        None => timings.time("build trace-claw-agent", || build_agent(Profile::Debug))?,
    };
    let gateway_pid_file = work_dir.join("gateway.pid");
    if !args.check_only {
        live_run(args, &workspace, &work_dir, &agent, &mut timings)?;
    }
    let run = RunDir::new(work_dir.clone(), 0);
    let analysis = timings.time("analyze", || Ok(analyze(&agent, &run)))?;
    let gateway_pid = fs::read_to_string(&gateway_pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let verdicts = checks::run(&checks::Inputs {
        model_record: &run.model_record,
        trace_dir: &run.trace_dir,
        analysis,
        gateway_pid,
    });
    println!("\nchecks ({}):", run.root.display());
    for v in &verdicts {
        println!(
            "  {}  {}\n        {}",
            if v.pass { "PASS" } else { "FAIL" },
            v.name,
            v.detail
        );
    }
    let passed = verdicts.iter().filter(|v| v.pass).count();
    println!("  {passed}/{} checks passed", verdicts.len());
    timings.print(started.elapsed());
    if passed < verdicts.len() {
        bail!(
            "{} of {} checks failed",
            verdicts.len() - passed,
            verdicts.len()
        );
    }
    Ok(())
}

/// Everything up to a trace dir holding the run's data.
fn live_run(
    args: &E2eArgs,
    workspace: &Path,
    work_dir: &Path,
    agent: &Path,
    timings: &mut Timings,
) -> Result<()> {
    let cache = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let tc = timings.time("install node + openclaw (cached)", || {
        install::ensure(&cache, &args.openclaw_version)
    })?;
    if work_dir.exists() {
        fs::remove_dir_all(work_dir).with_context(|| format!("emptying {}", work_dir.display()))?;
    }
    let run = RunDir::new(work_dir.to_path_buf(), free_port()?);
    fs::create_dir_all(&run.logs)?;
    fs::create_dir_all(&run.trace_dir)?;
    eprintln!("e2e: openclaw {} in {}", tc.version, run.root.display());

    let mut model = timings.time("start fake model", || {
        model::start(workspace, &run.model_record, &run.logs)
    })?;
    let (model_port, mut collector, receiver_port) =
        timings.time("start trace-claw-agent", || {
            let port = model::port(&model)?;
            let receiver_port = free_port()?;
            let mut cmd = Command::new(agent);
            cmd.current_dir(&run.root).args([
                "collect",
                "--process",
                "node",
                "--receive",
                "--receive-listen",
                &format!("127.0.0.1:{receiver_port}"),
                "--ebpf",
                &args.ebpf,
                "--interval",
                "1",
                "--output-dir",
            ]);
            cmd.arg(&run.trace_dir);
            let mut collector = Service::start("trace-claw-agent", cmd, &run.logs)?;
            match procs::wait_for_port(&mut collector, receiver_port, Duration::from_secs(30)) {
                Ok(()) => {}
                // The receiver may not have landed yet: keep collecting samples, say so, and let the
                // OTLP check fail.
                Err(e) if collector.exited().is_none() => {
                    eprintln!("e2e: WARNING receiver not listening: {e:#}");
                }
                Err(e) => return Err(e),
            }
            Ok((port, collector, receiver_port))
        })?;
    timings.time("write openclaw config + plugin deps", || {
        let mut diagnostics = generate_config(agent, &run.root, receiver_port)?;
        if !tc.bundles_plugin("diagnostics-otel") {
            // Naming a plugin the install lacks makes OpenClaw reject the config; the run still
            // traces processes, file log and transcripts, and the OTLP check says why it fails.
            eprintln!(
                "e2e: WARNING openclaw {} bundles no diagnostics-otel plugin (it comes from \
                 ClawHub, unreachable offline): no OTLP export in this run",
                tc.version
            );
            if let Some(o) = diagnostics.as_object_mut() {
                o.remove("plugins");
            }
        }
        let deny = if args.all_plugins {
            Vec::new()
        } else {
            tc.bundled_provider_plugins()
        };
        eprintln!(
            "e2e: denying {} provider plugins (--all-plugins keeps them)",
            deny.len()
        );
        let path = openclaw::write_config(&run.home, model_port, &deny, &diagnostics)?;
        eprintln!("e2e: wrote {}", path.display());
        // OpenClaw installs the runtime deps of its bundled plugins (~1 GB) on first use, in
        // the middle of the first turn; do it once up front, into the cached stage dir.
        let marker = tc.plugin_stage.join(".trace-claw-e2e-deps-ok");
        if !marker.exists() {
            let out = run.logs.join("openclaw-plugins-deps.out");
            let status = run
                .home
                .openclaw(&tc)
                .args(["plugins", "deps", "--repair"])
                .stdout(fs::File::create(&out)?)
                .stderr(fs::File::create(out.with_extension("err"))?)
                .status()?;
            if status.success() {
                fs::write(&marker, "openclaw plugins deps --repair succeeded\n")?;
            } else {
                eprintln!(
                    "e2e: openclaw plugins deps --repair exited {status} (see {})",
                    out.display()
                );
            }
        }
        Ok(())
    })?;
    let mut gateway = timings.time("start gateway", || {
        let mut cmd = run.home.openclaw(&tc);
        cmd.args([
            "gateway",
            "run",
            "--port",
            &run.home.gateway_port.to_string(),
        ]);
        let mut gw = Service::start("openclaw-gateway", cmd, &run.logs)?;
        fs::write(run.root.join("gateway.pid"), gw.pid().to_string())?;
        procs::wait_for_port(&mut gw, run.home.gateway_port, Duration::from_secs(240))?;
        Ok(gw)
    })?;
    for turn in TURNS {
        // A turn whose CLI never got through to the gateway (connect timed out while the
        // gateway's event loop was blocked) is tried once more; one that reached the model is not.
        for attempt in 1..=2 {
            let label = if attempt == 1 {
                format!("turn '{}'", turn.name)
            } else {
                format!("turn '{}' (attempt {attempt})", turn.name)
            };
            let outcome = timings.time(&label, || {
                openclaw::run_turn(
                    &tc,
                    &run.home,
                    *turn,
                    attempt,
                    Duration::from_secs(args.turn_timeout),
                    &run.logs,
                )
            })?;
            eprintln!(
                "e2e: {label} exit {:?} after {:.1} s{} ({})",
                outcome.exit_code,
                outcome.elapsed.as_secs_f64(),
                if outcome.fallback_stopped {
                    ", stopped at its embedded fallback"
                } else {
                    ""
                },
                outcome.stdout.display()
            );
            if let Some(status) = gateway.exited() {
                bail!(
                    "the gateway exited ({status}) during {label}:\n{}",
                    gateway.stderr_tail(30)
                );
            }
            if !outcome.fallback_stopped || model::served_turn(&run.model_record, turn.name) {
                break;
            }
        }
    }
    timings.time("wait for an OTLP flush, stop gateway", || {
        let before = otlp_metric_requests(&run.trace_dir);
        let flushed = procs::poll(Duration::from_secs(30), || {
            (otlp_metric_requests(&run.trace_dir) > before).then_some(())
        });
        if flushed.is_none() {
            eprintln!("e2e: no new OTLP metrics request within 30 s (before: {before})");
        }
        let status = gateway.stop(libc::SIGTERM, Duration::from_secs(30))?;
        eprintln!("e2e: gateway stopped: {status}");
        Ok(())
    })?;
    timings.time("stop agent + fake model, collect files", || {
        let status = collector.stop(libc::SIGINT, Duration::from_secs(20))?;
        eprintln!("e2e: trace-claw-agent stopped: {status}");
        model.stop(libc::SIGTERM, Duration::from_secs(5))?;
        let copied = openclaw::collect_artifacts(&run.home, &run.trace_dir.join("openclaw"))?;
        export_sqlite_transcripts(workspace, &run)?;
        eprintln!(
            "e2e: copied {copied} OpenClaw files into {}",
            run.trace_dir.display()
        );
        Ok(())
    })
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("trace-claw/e2e")
}

/// `trace-claw-agent generate-config --endpoint http://127.0.0.1:<port>` as JSON.
fn generate_config(agent: &Path, cwd: &Path, receiver_port: u16) -> Result<Value> {
    let stdout = run_quiet(Command::new(agent).current_dir(cwd).args([
        "generate-config",
        "--endpoint",
        &format!("http://127.0.0.1:{receiver_port}"),
    ]))?;
    serde_json::from_slice(&stdout).context("generate-config printed no JSON")
}

/// Newer OpenClaw releases keep transcripts in SQLite: export them as JSONL next to the copied
/// ones (`tests/e2e/export_transcripts.py`, stdlib sqlite3).
fn export_sqlite_transcripts(workspace: &Path, run: &RunDir) -> Result<()> {
    let stdout = run_quiet(
        Command::new("python3")
            .arg(workspace.join("tests/e2e/export_transcripts.py"))
            .arg(run.home.state_dir())
            .arg(run.trace_dir.join("openclaw/sessions")),
    )?;
    eprintln!(
        "e2e: transcripts in SQLite: {}",
        String::from_utf8_lossy(&stdout).trim()
    );
    Ok(())
}

/// Lines of openclaw-otlp-*.jsonl with signal metrics.
fn otlp_metric_requests(trace_dir: &Path) -> usize {
    checks::files_under(trace_dir, |n| {
        n.starts_with("openclaw-otlp-") && n.ends_with(".jsonl")
    })
    .iter()
    .flat_map(|f| checks::json_lines(f))
    .filter(|v| v["signal"] == "metrics")
    .count()
}

/// `analyze --format json` (saved as analyze.json; the table as analyze.txt), or why it failed.
fn analyze(agent: &Path, run: &RunDir) -> Result<Value, String> {
    let table = Command::new(agent)
        .args(["analyze", "--trace-dir"])
        .arg(&run.trace_dir)
        .output();
    if let Ok(t) = &table {
        let mut text = t.stdout.clone();
        text.extend_from_slice(&t.stderr);
        // The table is a convenience copy for the report; the checks use the JSON below.
        let _ = fs::write(run.root.join("analyze.txt"), text);
    }
    let out = Command::new(agent)
        .args([
            "analyze",
            "--format",
            "json",
            "--limit",
            "100000",
            "--trace-dir",
        ])
        .arg(&run.trace_dir)
        .output()
        .map_err(|e| format!("running analyze: {e}"))?;
    if let Err(e) = fs::write(run.root.join("analyze.json"), &out.stdout) {
        eprintln!("e2e: saving analyze.json: {e}");
    }
    if !out.status.success() {
        return Err(format!(
            "analyze exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("analyze printed no JSON: {e}"))
}
