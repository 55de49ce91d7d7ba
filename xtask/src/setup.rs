//! `cargo xtask setup`: installs, idempotently, what the eBPF build and the tests need:
//! LLVM 22 and bpftool (apt), rust-src on nightly, bpf-linker 0.13.0, the macOS target for the
//! cross check, tracefs and bpffs mounts. Each step first checks whether it is already done.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use clap::Args;

use crate::proc_util::{is_root, output_of, run_checked, succeeds};

/// Flags of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Skip the eBPF toolchain (the agent then builds polling-only).
    #[arg(long)]
    pub no_ebpf: bool,
}

const APT_PACKAGES: &[&str] = &["llvm-22-dev", "libclang-22-dev", "clang-22", "bpftool"];
/// Headless browser for the HTML report test (`analyze --format html` rendered and screenshot).
const BROWSER_PACKAGES: &[&str] = &["chromium"];
const BPF_LINKER_VERSION: &str = "0.13.0";
const MACOS_TARGET: &str = "aarch64-apple-darwin";

/// Runs every setup step.
pub fn run(args: &SetupArgs) -> anyhow::Result<()> {
    if !args.no_ebpf {
        apt_packages()?;
        nightly_rust_src()?;
        bpf_linker()?;
        mounts()?;
    }
    macos_target()?;
    crate::peers::install_peers()?;
    eprintln!("setup: done");
    Ok(())
}

fn step(name: &str, done: bool) -> bool {
    if done {
        eprintln!("setup: {name}: already in place");
    } else {
        eprintln!("setup: {name}: installing");
    }
    done
}

fn apt_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .chain(BROWSER_PACKAGES)
        .copied()
        .filter(|p| !succeeds(Command::new("dpkg").args(["-s", p])))
        .collect();
    if step(
        "apt packages (llvm-22, clang-22, bpftool, chromium)",
        missing.is_empty(),
    ) {
        return Ok(());
    }
    if !is_root() {
        anyhow::bail!("apt packages {missing:?} are missing and installing them needs root: run `sudo -E cargo xtask setup`");
    }
    run_checked(Command::new("apt-get").arg("update").arg("-q"))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn nightly_rust_src() -> anyhow::Result<()> {
    let installed = output_of(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .is_some_and(|o| o.lines().any(|l| l.starts_with("rust-src")));
    if step("nightly toolchain with rust-src", installed) {
        return Ok(());
    }
    run_checked(Command::new("rustup").args([
        "toolchain",
        "install",
        "nightly",
        "--profile",
        "minimal",
    ]))?;
    run_checked(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

fn bpf_linker() -> anyhow::Result<()> {
    let want = format!("bpf-linker {BPF_LINKER_VERSION}");
    let have =
        output_of(Command::new("bpf-linker").arg("--version")).is_some_and(|v| v.trim() == want);
    if step(&format!("bpf-linker {BPF_LINKER_VERSION}"), have) {
        return Ok(());
    }
    let path = format!(
        "/usr/lib/llvm-22/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--locked",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", path),
    )
}

fn mounts() -> anyhow::Result<()> {
    for (fs, dir) in [("tracefs", "/sys/kernel/tracing"), ("bpf", "/sys/fs/bpf")] {
        let mounted = succeeds(Command::new("mountpoint").args(["-q", dir]));
        if step(&format!("{fs} on {dir}"), mounted) {
            continue;
        }
        if !is_root() {
            eprintln!("setup: warning: {dir} is not mounted and mounting needs root; eBPF will fall back to polling");
            continue;
        }
        if !Path::new(dir).is_dir() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
        }
        run_checked(Command::new("mount").args(["-t", fs, fs, dir]))?;
    }
    Ok(())
}

fn macos_target() -> anyhow::Result<()> {
    let installed = output_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .is_some_and(|o| o.lines().any(|l| l.trim() == MACOS_TARGET));
    if step(
        &format!("rust target {MACOS_TARGET} (macOS check)"),
        installed,
    ) {
        return Ok(());
    }
    run_checked(Command::new("rustup").args(["target", "add", MACOS_TARGET]))
}
