//! `cargo xtask setup`: installs, idempotently, what building and running the agent needs, and
//! with `--tests` what the test suite needs on top. Each step first checks whether it is done.
//!
//! - Build (`cargo xtask run` runs this part): LLVM and clang of the pinned major (apt), the
//!   pinned nightly with rust-src, bpf-linker built for that LLVM, the tracefs and bpffs mounts,
//!   and the toolchain check. The pin lives in `trace-claw-ebpf/toolchain.rs`; no floating
//!   channel is ever installed or updated.
//! - Tests (`cargo xtask test` adds it): bpftool, Chromium and tmux (apt), the macOS target for the
//!   cross check, the OTLP peers, and the deploy validators (the Prometheus test needs
//!   promtool). cargo-fuzz installs itself in `cargo xtask fuzz`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;

use crate::proc_util::{is_root, output_of, run_checked, succeeds};
use crate::toolchain;
use crate::tools;

/// Flags of `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Skip the eBPF toolchain (the agent then builds polling-only).
    #[arg(long)]
    pub no_ebpf: bool,
    /// Also install what the test suite needs (bpftool, Chromium, tmux, the macOS target, the peers).
    #[arg(long)]
    pub tests: bool,
}

impl SetupArgs {
    /// What building and running the agent needs (`cargo xtask run`).
    pub const BUILD: Self = Self {
        no_ebpf: false,
        tests: false,
    };
    /// That and what the test suite needs (`cargo xtask test`).
    pub const TESTS: Self = Self {
        no_ebpf: false,
        tests: true,
    };

    /// Runs these setup steps, unless the caller's `--no-setup` says `skip`.
    pub fn run_unless(&self, skip: bool) -> anyhow::Result<()> {
        if skip {
            return Ok(());
        }
        run(self)
    }
}

/// Headless browser for the HTML report test, bpftool for the soak and eBPF benchmarks, tmux
/// for the `top` tests (they drive the view in a detached tmux session).
const TEST_APT_PACKAGES: &[&str] = &["bpftool", "chromium", "tmux"];
const MACOS_TARGET: &str = "aarch64-apple-darwin";

/// Runs the setup steps `args` asks for.
pub fn run(args: &SetupArgs) -> anyhow::Result<()> {
    if !args.no_ebpf {
        tools::apt_install("setup", &build_apt_packages())?;
        pinned_nightly()?;
        bpf_linker()?;
        mounts()?;
        check_toolchain()?;
    }
    if args.tests {
        tools::apt_install("setup", TEST_APT_PACKAGES)?;
        macos_target()?;
        crate::peers::install_peers()?;
        crate::validate_deploy::install_validators("setup")?;
    }
    eprintln!("setup: done");
    Ok(())
}

/// LLVM (for bpf-linker to link against) and clang of the pinned major.
fn build_apt_packages() -> Vec<String> {
    let major = toolchain::LLVM_MAJOR;
    vec![
        format!("llvm-{major}-dev"),
        format!("libclang-{major}-dev"),
        format!("clang-{major}"),
    ]
}

fn step(name: &str, done: bool) -> bool {
    if done {
        eprintln!("setup: {name}: already in place");
    } else {
        eprintln!("setup: {name}: installing");
    }
    done
}

/// The pinned toolchain's sysroot, when that toolchain is installed.
fn pinned_sysroot() -> Option<PathBuf> {
    output_of(
        Command::new("rustup")
            .args([
                "run",
                toolchain::RUST_TOOLCHAIN,
                "rustc",
                "--print",
                "sysroot",
            ])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .map(|s| PathBuf::from(s.trim()))
}

fn pinned_nightly() -> anyhow::Result<()> {
    let installed = pinned_sysroot().is_some_and(|sysroot| {
        sysroot
            .join("lib/rustlib/src/rust/library/core/Cargo.toml")
            .is_file()
    });
    let name = format!(
        "{} with {}",
        toolchain::RUST_TOOLCHAIN,
        toolchain::RUST_COMPONENTS.join(", ")
    );
    if step(&name, installed) {
        return Ok(());
    }
    let mut install = install_pinned_nightly();
    for component in toolchain::RUST_COMPONENTS {
        install.args(["--component", component]);
    }
    run_checked(&mut install)
}

/// `rustup toolchain install` of the pinned nightly (minimal profile, no self-update).
pub fn install_pinned_nightly() -> Command {
    let mut install = Command::new("rustup");
    install.args([
        "toolchain",
        "install",
        toolchain::RUST_TOOLCHAIN,
        "--profile",
        "minimal",
        "--no-self-update",
    ]);
    install
}

/// The bpf-linker on PATH, if any.
fn bpf_linker_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|p| p.is_file())
}

fn bpf_linker() -> anyhow::Result<()> {
    let want = format!("bpf-linker {}", toolchain::BPF_LINKER_VERSION);
    let have = bpf_linker_path().is_some_and(|path| {
        output_of(Command::new(&path).arg("--version")).is_some_and(|v| v.trim() == want)
            && toolchain::bpf_linker_llvm_major(&path) == Some(toolchain::LLVM_MAJOR)
    });
    let major = toolchain::LLVM_MAJOR;
    if step(&format!("{want} for LLVM {major}"), have) {
        return Ok(());
    }
    let path = format!(
        "/usr/lib/llvm-{major}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    run_checked(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--version",
                toolchain::BPF_LINKER_VERSION,
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("PATH", path),
    )
}

/// Fails, naming both versions and the fix, when the pinned rustc and the installed bpf-linker
/// were built on different LLVM majors; the build would otherwise die in bpf-linker with LLVM's
/// `Invalid record`.
pub fn check_toolchain() -> anyhow::Result<()> {
    let rustc_vv = output_of(
        Command::new("rustup")
            .args(["run", toolchain::RUST_TOOLCHAIN, "rustc", "-vV"])
            .env_remove("RUSTUP_TOOLCHAIN"),
    )
    .with_context(|| {
        format!(
            "`rustup run {} rustc -vV` failed",
            toolchain::RUST_TOOLCHAIN
        )
    })?;
    let linker = bpf_linker_path().context("bpf-linker is not on PATH")?;
    if let Some(why) = toolchain::llvm_mismatch(&rustc_vv, &linker) {
        bail!("eBPF toolchain mismatch: {why}");
    }
    let rustc_llvm = toolchain::rustc_llvm_major(&rustc_vv).unwrap_or_default();
    let linker_llvm = toolchain::bpf_linker_llvm_major(&linker)
        .map_or_else(|| "unknown".to_owned(), |m| m.to_string());
    eprintln!(
        "setup: eBPF toolchain: {} (LLVM {rustc_llvm}) and {} (LLVM {linker_llvm}) agree",
        toolchain::RUST_TOOLCHAIN,
        linker.display()
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `rustc -vV` of the floating nightly that broke the build on a fresh machine.
    const RUSTC_ON_LLVM_23: &str = "rustc 1.101.0-nightly (0a1b2c3d4 2026-10-29)\n\
        binary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.101.0-nightly\n\
        LLVM version: 23.1.4\n";

    #[test]
    fn reads_the_llvm_major_of_rustc() {
        assert_eq!(toolchain::rustc_llvm_major(RUSTC_ON_LLVM_23), Some(23));
        assert_eq!(
            toolchain::rustc_llvm_major("rustc 1.95.0\nrelease: 1.95.0\n"),
            None
        );
    }

    /// The installed bpf-linker (LLVM 22, from `setup`) against a rustc on LLVM 23: the check
    /// names both majors and the fix instead of letting bpf-linker fail with `Invalid record`.
    #[test]
    fn a_mismatch_with_the_installed_bpf_linker_names_both_llvm_majors() {
        let Some(linker) = bpf_linker_path() else {
            assert!(
                !crate::proc_util::in_ci(),
                "bpf-linker must be installed under CI (cargo xtask setup)"
            );
            eprintln!("skipping: bpf-linker is not installed");
            return;
        };
        let linker_llvm = toolchain::bpf_linker_llvm_major(&linker)
            .expect("the bpf-linker setup installs links libLLVM dynamically");
        assert_eq!(linker_llvm, toolchain::LLVM_MAJOR);
        let why = toolchain::llvm_mismatch(RUSTC_ON_LLVM_23, &linker)
            .expect("LLVM 23 against LLVM 22 is a mismatch");
        assert!(
            why.contains("writes LLVM 23 bitcode") && why.contains("links LLVM 22"),
            "{why}"
        );
        let matching = RUSTC_ON_LLVM_23.replace("23.1.4", &format!("{linker_llvm}.1.2"));
        assert_eq!(toolchain::llvm_mismatch(&matching, &linker), None);
    }
}
