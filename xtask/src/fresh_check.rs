//! `cargo xtask fresh-check`: the README's two set-up commands, as a newcomer runs them, from
//! nothing.
//!
//! Clones the committed `HEAD` into a temporary directory and gives it an empty `RUSTUP_HOME`
//! and `CARGO_HOME` (so no toolchain, no bpf-linker, no crate cache), its own target directory,
//! and a `PATH` without `~/.cargo/bin`. It first installs what a newcomer already has: rustup's
//! proxies and the stable Rust this machine runs, with rustup's default profile. Then it runs,
//! from the clone, the main command's setup (timed apart), the README's main command bounded to
//! three ticks (`cargo xtask run --
//! --process node --count 3 --interval 1`) and checks that eBPF loaded, then the test command
//! (`cargo xtask test`, unless `--no-test`). It prints each step's time and result.
//!
//! What it cannot undo: Debian packages are system-wide, so apt steps that already ran on this
//! machine are quick here; the report says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use crate::proc_util::{output_of, run_checked, workspace_root};

/// Flags of `fresh-check`.
#[derive(Debug, Args)]
pub struct FreshCheckArgs {
    /// Stop after the main command; do not run the test suite.
    #[arg(long)]
    pub no_test: bool,
    /// Keep the temporary directory (clone, homes, target) for inspection.
    #[arg(long)]
    pub keep: bool,
}

/// One timed step of the check.
struct Step {
    name: &'static str,
    seconds: f64,
    ok: bool,
}

/// The clone and its empty homes.
struct FreshHome {
    root: PathBuf,
    clone: PathBuf,
    rustup_home: PathBuf,
    cargo_home: PathBuf,
}

impl FreshHome {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            clone: root.join("trace-claw"),
            rustup_home: root.join("rustup"),
            cargo_home: root.join("cargo"),
        }
    }

    /// A command with only the environment a newcomer's shell has, pointed at the empty homes.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(&self.clone)
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/root".into()),
            )
            .env("RUSTUP_HOME", &self.rustup_home)
            .env("CARGO_HOME", &self.cargo_home)
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    self.cargo_home.join("bin").display()
                ),
            )
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        for passed in ["TERM", "CI", "NO_COLOR"] {
            if let Some(value) = std::env::var_os(passed) {
                cmd.env(passed, value);
            }
        }
        cmd
    }
}

/// Runs the check and prints the table of steps.
pub fn run(args: &FreshCheckArgs) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new()
        .prefix("trace-claw-fresh-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let home = FreshHome::new(temp.path());
    eprintln!("fresh-check: working in {}", home.root.display());
    let mut steps = Vec::new();
    let outcome = run_steps(&home, args, &mut steps);
    print_steps(&steps);
    if args.keep {
        let kept = temp.keep();
        eprintln!("fresh-check: kept {}", kept.display());
    }
    outcome
}

fn run_steps(home: &FreshHome, args: &FreshCheckArgs, steps: &mut Vec<Step>) -> anyhow::Result<()> {
    let root = workspace_root();
    let head =
        output_of(
            Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(["rev-parse", "--short", "HEAD"]),
        )
        .unwrap_or_default();
    eprintln!(
        "fresh-check: cloning HEAD {} (uncommitted changes are not included)",
        head.trim()
    );
    timed(steps, "git clone", || {
        let mut clone = Command::new("git");
        clone
            .args(["clone", "--quiet", "--no-hardlinks"])
            .arg(&root)
            .arg(&home.clone);
        run_checked(&mut clone)
    })?;
    timed(steps, "stable Rust, as a newcomer has it", || {
        install_rust(home)
    })?;
    // The main command's own setup, timed apart from its build and run (it then finds every
    // step in place).
    timed(
        steps,
        "main command, 1/2: cargo xtask setup (what run installs)",
        || run_checked(home.command("cargo").args(["xtask", "setup"])),
    )?;
    let log = home.root.join("run.log");
    timed(
        steps,
        "main command, 2/2: cargo xtask run -- --process node (build, 3 ticks)",
        || {
            let out = home.root.join("trace");
            let mut main = home.command("cargo");
            main.args([
                "xtask",
                "run",
                "--",
                "--process",
                "node",
                "--count",
                "3",
                "--interval",
                "1",
            ])
            .arg("--output-dir")
            .arg(&out);
            checked_tee(&mut main, &log)?;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.contains("eBPF loaded") {
                bail!("the agent did not load eBPF (see {})", log.display());
            }
            Ok(())
        },
    )?;
    if !args.no_test {
        timed(steps, "cargo xtask test", || {
            let mut test = home.command("cargo");
            test.args(["xtask", "test"]);
            run_checked(&mut test)
        })?;
    }
    Ok(())
}

/// Installs rustup's proxies and this machine's stable Rust into the empty homes.
fn install_rust(home: &FreshHome) -> anyhow::Result<()> {
    let rustup = which_rustup()?;
    let bin = home.cargo_home.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    std::fs::copy(&rustup, bin.join("rustup"))
        .with_context(|| format!("cannot copy {}", rustup.display()))?;
    for proxy in [
        "cargo",
        "rustc",
        "rustdoc",
        "rustfmt",
        "cargo-fmt",
        "cargo-clippy",
        "clippy-driver",
    ] {
        std::os::unix::fs::symlink("rustup", bin.join(proxy))
            .with_context(|| format!("cannot link {proxy}"))?;
    }
    let version = stable_version()?;
    let mut install = home.command("rustup");
    install.args([
        "toolchain",
        "install",
        &version,
        "--profile",
        "default",
        "--no-self-update",
    ]);
    run_checked(&mut install)?;
    run_checked(home.command("rustup").args(["default", &version]))
}

/// The rustup binary this machine runs.
fn which_rustup() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("rustup"))
        .find(|p| p.is_file())
        .context("rustup is not on PATH")
}

/// The version of this machine's stable Rust (`1.95.0`), which a newcomer of this kind has.
fn stable_version() -> anyhow::Result<String> {
    let out = output_of(Command::new("rustc").args(["+stable", "-V"]))
        .context("`rustc +stable -V` failed")?;
    out.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("cannot read a version from '{}'", out.trim()))
}

fn timed(
    steps: &mut Vec<Step>,
    name: &'static str,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    eprintln!("fresh-check: {name}");
    let started = Instant::now();
    let result = f();
    steps.push(Step {
        name,
        seconds: started.elapsed().as_secs_f64(),
        ok: result.is_ok(),
    });
    result.with_context(|| format!("step '{name}' failed"))
}

/// Runs `cmd` with its stderr and stdout appended to `log`, then echoes the log.
fn checked_tee(cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = file.try_clone().context("cannot duplicate the log file")?;
    cmd.stdout(file).stderr(err);
    let result = run_checked(cmd);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    for line in tail.iter().rev() {
        eprintln!("  | {line}");
    }
    result
}

fn print_steps(steps: &[Step]) {
    eprintln!("\nfresh-check (empty RUSTUP_HOME and CARGO_HOME; apt packages already on this machine stay installed):");
    for step in steps {
        let verdict = if step.ok { "ok" } else { "FAILED" };
        eprintln!("  {:>7.1} s  {verdict:<6}  {}", step.seconds, step.name);
    }
    let total: f64 = steps.iter().map(|s| s.seconds).sum();
    eprintln!("  {total:>7.1} s  total");
}
