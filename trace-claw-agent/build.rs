//! Records the git commit for `version` and compiles the kernel programs (`trace-claw-ebpf`)
//! into OUT_DIR with aya-build.
//!
//! The kernel programs are built with the pinned toolchain of `trace-claw-ebpf/toolchain.rs`,
//! never a floating channel. That toolchain is optional: without it (not Linux, no bpf-linker,
//! the pinned nightly or its rust-src missing, `AYA_BUILD_SKIP=1`) the agent builds polling-only,
//! says so in one cargo warning and sets `cfg(no_ebpf)`. When both are there but their LLVM
//! majors differ, the build stops with one message naming both, before bpf-linker would fail
//! with LLVM's `Invalid record`.
use std::path::Path;
use std::process::Command;

#[path = "../trace-claw-ebpf/toolchain.rs"]
mod toolchain;

fn main() -> anyhow::Result<()> {
    git_commit();
    println!("cargo::rustc-check-cfg=cfg(no_ebpf)");
    if let Some(why) = ebpf_problem() {
        println!("cargo:warning=eBPF disabled: {why}; building agent without eBPF");
        println!("cargo:rustc-cfg=no_ebpf");
        // Always stale, so the next build checks again (e.g. after installing bpf-linker).
        println!("cargo:rerun-if-changed=/nonexistent/ebpf-probe");
        return Ok(());
    }
    toolchain_check()?;
    build_ebpf()
}

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

fn git_commit() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=TRACE_CLAW_GIT_COMMIT={commit}");
    // Watch the files that move when HEAD does, wherever git keeps them (a worktree's .git is a
    // file, not a directory); outside a git checkout there is nothing to watch.
    if let Some(head) = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&[
        "rev-parse",
        "--path-format=absolute",
        "--git-path",
        "refs/heads",
    ]) {
        println!("cargo:rerun-if-changed={refs}");
    }
}

/// Why the kernel programs cannot be built here, if they cannot.
fn ebpf_problem() -> Option<String> {
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if let Ok(v) = std::env::var("AYA_BUILD_SKIP") {
        if v == "1" || v.eq_ignore_ascii_case("true") {
            return Some(format!("AYA_BUILD_SKIP={v}"));
        }
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        return Some(format!("target os '{os}' is not linux"));
    }
    if which::which("bpf-linker").is_err() {
        return Some(format!(
            "bpf-linker not found (cargo xtask setup installs bpf-linker {}, see docs/ebpf.md)",
            toolchain::BPF_LINKER_VERSION
        ));
    }
    let install = format!(
        "rustup toolchain install {} --profile minimal -c {}",
        toolchain::RUST_TOOLCHAIN,
        toolchain::RUST_COMPONENTS.join(",")
    );
    let Some(sysroot) = pinned_rustc(&["--print", "sysroot"]) else {
        return Some(format!(
            "the pinned toolchain {} is not installed ({install})",
            toolchain::RUST_TOOLCHAIN
        ));
    };
    let core = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if !core.exists() {
        return Some(format!(
            "rust-src of {} is missing ({install})",
            toolchain::RUST_TOOLCHAIN
        ));
    }
    None
}

/// Standard output of the pinned toolchain's rustc with `args`, when it runs.
fn pinned_rustc(args: &[&str]) -> Option<String> {
    Command::new("rustup")
        .args(["run", toolchain::RUST_TOOLCHAIN, "rustc"])
        .args(args)
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Stops the build when the pinned rustc and bpf-linker were built on different LLVM majors.
fn toolchain_check() -> anyhow::Result<()> {
    let rustc_vv = pinned_rustc(&["-vV"]).unwrap_or_default();
    let linker = which::which("bpf-linker")?;
    // Check again when bpf-linker is reinstalled or the pin moves.
    println!("cargo:rerun-if-changed={}", linker.display());
    println!("cargo:rerun-if-changed=../trace-claw-ebpf/toolchain.rs");
    match toolchain::llvm_mismatch(&rustc_vv, &linker) {
        Some(why) => anyhow::bail!("eBPF toolchain mismatch: {why}"),
        None => Ok(()),
    }
}

fn build_ebpf() -> anyhow::Result<()> {
    let metadata = cargo_metadata_root()?;
    let root_dir = metadata.join("trace-claw-ebpf");
    let root_dir = root_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path '{}'", root_dir.display()))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "trace-claw-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(toolchain::RUST_TOOLCHAIN),
    )
}

/// The workspace root: the agent's manifest directory's parent.
fn cargo_metadata_root() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::var("CARGO_MANIFEST_DIR")?;
    Path::new(&dir)
        .parent()
        .map(Path::to_owned)
        .ok_or_else(|| anyhow::anyhow!("'{dir}' has no parent directory"))
}
