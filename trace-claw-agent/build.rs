//! Records the git commit for `version` and compiles the kernel programs (`trace-claw-ebpf`)
//! into OUT_DIR with aya-build.
//!
//! The eBPF toolchain is optional: without it (not Linux, no bpf-linker, no nightly rust-src,
//! `AYA_BUILD_SKIP=1`) the agent builds polling-only, says so in one cargo warning and sets
//! `cfg(no_ebpf)`.
use std::path::Path;
use std::process::Command;

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
        return Some(
            "bpf-linker not found (cargo install bpf-linker, see docs/ebpf.md)".to_owned(),
        );
    }
    let sysroot = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--print", "sysroot"])
        .env_remove("RUSTC")
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(sysroot) = sysroot else {
        return Some("no nightly toolchain (rustup toolchain install nightly)".to_owned());
    };
    let core = Path::new(&sysroot).join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if !core.exists() {
        return Some(
            "nightly rust-src missing (rustup component add rust-src --toolchain nightly)"
                .to_owned(),
        );
    }
    None
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
        aya_build::Toolchain::default(),
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
