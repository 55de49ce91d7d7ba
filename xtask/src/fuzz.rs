//! `cargo xtask fuzz [--seconds N] [--target NAME]...`: installs cargo-fuzz (idempotently),
//! replays the kept regression inputs of every target, fuzzes each target for N seconds, and
//! reports executions and findings per target. Exits non-zero when anything crashed.
//!
//! Layout (`fuzz/`, a cargo-fuzz crate outside the workspace): `fuzz_targets/<t>.rs`,
//! `seeds/<t>/` (committed starting inputs), `regressions/<t>/` (committed inputs that once
//! crashed; replayed first), `dicts/` (libFuzzer dictionaries), and the untracked `corpus/<t>/`
//! (grows across runs), `artifacts/<t>/` (new findings) and `logs/<t>.log`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::proc_util::{describe, output_of, run_checked, succeeds, workspace_root};
use crate::toolchain;

/// Flags of `fuzz`.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Seconds of fuzzing per target (CI smoke: 60; a long run: 3600 or more).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Fuzz only these targets (default: every target `cargo fuzz list` shows).
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// Sanitizer (`none` is fastest for safe Rust; `address` also checks unsafe code).
    #[arg(long, default_value = "none")]
    pub sanitizer: String,
    /// Memory limit per fuzzing process, MiB (an input exceeding it is a finding).
    #[arg(long, default_value_t = 2048)]
    pub rss_limit_mb: u64,
    /// Only replay seeds and kept regressions; no fuzzing.
    #[arg(long)]
    pub replay_only: bool,
}

/// What one target's run produced.
struct Outcome {
    target: String,
    executions: Option<u64>,
    seconds: f64,
    peak_rss_mb: Option<u64>,
    corpus: usize,
    findings: Vec<PathBuf>,
}

/// Runs the fuzz targets and prints a summary table.
pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    let fuzz_dir = workspace_root().join("fuzz");
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let all = list_targets(&fuzz_dir)?;
    let targets: Vec<String> = if args.targets.is_empty() {
        all
    } else {
        for t in &args.targets {
            if !all.contains(t) {
                bail!("no fuzz target '{t}'; targets: {}", all.join(", "));
            }
        }
        args.targets.clone()
    };
    // `cargo fuzz build` takes one target, or none for all of them.
    let builds: Vec<Option<&String>> = if args.targets.is_empty() {
        vec![None]
    } else {
        targets.iter().map(Some).collect()
    };
    for target in builds {
        run_checked(
            cargo_fuzz(&fuzz_dir)
                .args(["build", "--sanitizer", &args.sanitizer])
                .args(target),
        )?;
    }
    // Run the built binaries directly: `cargo fuzz run` would re-check (and, when a build
    // script reruns, rebuild) the crate for every invocation.
    let bin_dir = fuzz_dir.join("target").join(host_triple()?).join("release");
    let mut outcomes = Vec::new();
    for target in &targets {
        let bin = bin_dir.join(target);
        replay_regressions(&fuzz_dir, &bin, target, args)?;
        if !args.replay_only {
            outcomes.push(fuzz_one(&fuzz_dir, &bin, target, args)?);
        }
    }
    if args.replay_only {
        eprintln!("fuzz: every seed and regression input replayed without a crash");
        return Ok(());
    }
    print_summary(&outcomes);
    let crashed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.findings.is_empty()).collect();
    if !crashed.is_empty() {
        bail!(
            "{} target(s) crashed; reproduce with `cd fuzz && cargo +{} fuzz run <target> <artifact>`, then fix and move the input to fuzz/regressions/<target>/",
            crashed.len(),
            toolchain::RUST_TOOLCHAIN
        );
    }
    Ok(())
}

/// cargo-fuzz, pinned like the toolchain it runs on.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// `+nightly-YYYY-MM-DD`: the fuzz targets build with the pinned eBPF nightly, never a floating
/// channel, so a fuzz run tomorrow compiles what it compiled today.
fn pinned() -> String {
    format!("+{}", toolchain::RUST_TOOLCHAIN)
}

fn ensure_nightly() -> anyhow::Result<()> {
    if succeeds(Command::new("rustc").arg(pinned()).arg("-V")) {
        return Ok(());
    }
    eprintln!("fuzz: installing {}", toolchain::RUST_TOOLCHAIN);
    run_checked(&mut crate::setup::install_pinned_nightly())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let want = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    let have = output_of(
        Command::new("cargo")
            .arg(pinned())
            .args(["fuzz", "--version"]),
    )
    .is_some_and(|v| v.trim() == want);
    if have {
        return Ok(());
    }
    eprintln!("fuzz: installing {want}");
    run_checked(Command::new("cargo").args([
        "install",
        "cargo-fuzz",
        "--version",
        CARGO_FUZZ_VERSION,
        "--locked",
        "--force",
    ]))
}

/// The triple cargo-fuzz builds for by default (the host's).
fn host_triple() -> anyhow::Result<String> {
    let out = output_of(Command::new("rustc").arg(pinned()).arg("-vV"))
        .with_context(|| format!("`rustc {} -vV` failed", pinned()))?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("no host line in `rustc -vV`")
}

/// `cargo +<pinned nightly> fuzz` with `fuzz/` as its directory.
fn cargo_fuzz(fuzz_dir: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.arg(pinned()).arg("fuzz").current_dir(fuzz_dir);
    c
}

fn list_targets(fuzz_dir: &Path) -> anyhow::Result<Vec<String>> {
    let out = output_of(cargo_fuzz(fuzz_dir).arg("list")).context("`cargo fuzz list` failed")?;
    let targets: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("no fuzz targets in {}", fuzz_dir.display());
    }
    Ok(targets)
}

/// The libFuzzer dictionary for a target: `dicts/<target>.dict`, else by input kind.
fn dictionary(fuzz_dir: &Path, target: &str) -> Option<PathBuf> {
    let own = fuzz_dir.join(format!("dicts/{target}.dict"));
    if own.is_file() {
        return Some(own);
    }
    let kind = if target.contains("yaml") {
        "yaml"
    } else if target.contains("json") || target.contains("otlp") || target.contains("transcript") {
        "json"
    } else {
        return None;
    };
    Some(fuzz_dir.join(format!("dicts/{kind}.dict"))).filter(|p| p.is_file())
}

/// Input directories to fuzz from: the growing corpus first (libFuzzer writes there), seeds.
fn input_dirs(fuzz_dir: &Path, target: &str) -> anyhow::Result<Vec<PathBuf>> {
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("cannot create {}", corpus.display()))?;
    let mut dirs = vec![corpus];
    // Regressions are replayed, not fuzzed from: some are large (a 400 KB nesting bomb) and
    // would raise libFuzzer's input length for the whole run.
    let seeds = fuzz_dir.join("seeds").join(target);
    if seeds.is_dir() {
        dirs.push(seeds);
    }
    Ok(dirs)
}

fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Runs every kept regression and seed input once; any crash fails the task.
fn replay_regressions(
    fuzz_dir: &Path,
    bin: &Path,
    target: &str,
    args: &FuzzArgs,
) -> anyhow::Result<()> {
    let inputs: Vec<PathBuf> = ["seeds", "regressions"]
        .iter()
        .flat_map(|k| files_in(&fuzz_dir.join(k).join(target)))
        .collect();
    if inputs.is_empty() {
        return Ok(());
    }
    eprintln!("fuzz: {target}: replaying {} kept inputs", inputs.len());
    run_checked(
        Command::new(bin)
            .arg("-runs=1")
            .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
            .arg(artifact_prefix(fuzz_dir, target)?)
            .args(&inputs),
    )
}

/// `-artifact_prefix=fuzz/artifacts/<target>/`, creating the directory.
fn artifact_prefix(fuzz_dir: &Path, target: &str) -> anyhow::Result<String> {
    let dir = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(format!("-artifact_prefix={}/", dir.display()))
}

fn fuzz_one(fuzz_dir: &Path, bin: &Path, target: &str, args: &FuzzArgs) -> anyhow::Result<Outcome> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    std::fs::create_dir_all(&artifacts)?;
    let before = files_in(&artifacts);
    let logs = fuzz_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let dirs = input_dirs(fuzz_dir, target)?;
    let mut cmd = Command::new(bin);
    cmd.arg(artifact_prefix(fuzz_dir, target)?)
        .arg(format!("-max_total_time={}", args.seconds))
        .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
        .arg("-timeout=10")
        .arg("-print_final_stats=1");
    if let Some(dict) = dictionary(fuzz_dir, target) {
        cmd.arg(format!("-dict={}", dict.display()));
    }
    cmd.args(&dirs);
    eprintln!(
        "fuzz: {target}: {}s, log {}",
        args.seconds,
        log_path.display()
    );
    eprintln!("+ {}", describe(&cmd));
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .with_context(|| format!("cannot start {}", describe(&cmd)))?;
    let seconds = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let findings: Vec<PathBuf> = files_in(&artifacts).difference(&before).cloned().collect();
    if !status.success() || !findings.is_empty() {
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        eprintln!("fuzz: {target}: FAILED ({status}); last log lines:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    let mut findings = findings;
    if !status.success() && findings.is_empty() {
        // A failure without an artifact (e.g. the build broke) still counts, via the log.
        findings.push(log_path);
    }
    Ok(Outcome {
        target: target.to_owned(),
        executions: executions(&text),
        seconds: fuzz_seconds(&text).unwrap_or(seconds),
        peak_rss_mb: stat(&text, "stat::peak_rss_mb:"),
        corpus: files_in(&dirs[0]).len(),
        findings,
    })
}

/// The first number after the last line starting with `prefix` (libFuzzer's final stats).
fn stat(log: &str, prefix: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix(prefix)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// Total runs: `stat::number_of_executed_units`, else `Done N runs in S second(s)`.
fn executions(log: &str) -> Option<u64> {
    stat(log, "stat::number_of_executed_units:").or_else(|| stat(log, "Done "))
}

/// Fuzzing seconds from `Done N runs in S second(s)`.
fn fuzz_seconds(log: &str) -> Option<f64> {
    log.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("Done ")?;
        let secs = rest.split(" in ").nth(1)?.split_whitespace().next()?;
        secs.parse().ok()
    })
}

fn print_summary(outcomes: &[Outcome]) {
    println!(
        "{:<24} {:>14} {:>10} {:>8} {:>8} {:>8}  findings",
        "target", "executions", "exec/s", "seconds", "peak MB", "corpus"
    );
    for o in outcomes {
        let execs = o.executions.map_or("?".to_owned(), |n| n.to_string());
        let rate = o.executions.map_or("?".to_owned(), |n| {
            format!("{:.0}", n as f64 / o.seconds.max(1e-9))
        });
        let findings = if o.findings.is_empty() {
            "none".to_owned()
        } else {
            o.findings
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rss = o.peak_rss_mb.map_or("?".to_owned(), |m| m.to_string());
        println!(
            "{:<24} {:>14} {:>10} {:>8.0} {:>8} {:>8}  {findings}",
            o.target, execs, rate, o.seconds, rss, o.corpus
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_executions_from_libfuzzer_stats() {
        let log = "#2\tINITED\nDone 123456 runs in 61 second(s)\nstat::number_of_executed_units: 123457\nstat::peak_rss_mb: 60\n";
        assert_eq!(executions(log), Some(123_457));
        assert_eq!(executions("Done 99 runs in 1 second(s)\n"), Some(99));
        assert_eq!(executions("nothing\n"), None);
        assert_eq!(fuzz_seconds(log), Some(61.0));
        assert_eq!(stat(log, "stat::peak_rss_mb:"), Some(60));
    }
}
