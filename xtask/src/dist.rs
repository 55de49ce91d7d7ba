//! `cargo xtask dist [--check]`: a release users install without a Rust toolchain.
//!
//! Builds the agent in release mode (the kernel programs are inside the binary) and writes to
//! `target/dist/`:
//! - `trace-claw-VERSION-ARCH-linux.tar.gz`: `bin/trace-claw-agent` (stripped), the
//!   `bin/trace-claw` link, `etc/trace_claw.yaml` (the full reference config),
//!   `systemd/trace-claw.service` and the README;
//! - `trace-claw_VERSION_DEBARCH.deb`, built with `dpkg-deb`: the binary and link in
//!   `/usr/bin`, the config as a conffile in `/etc/trace-claw/`, the unit in
//!   `/lib/systemd/system/` (installed, not enabled), its `Depends` read from the binary's
//!   dynamic symbols;
//! - `SHA256SUMS`.
//!
//! `--check` (root) installs the `.deb` with `dpkg -i`, runs the installed `trace-claw-agent
//! version` and a short `collect --ebpf require` under exactly the privileges the unit grants (an
//! unprivileged uid with the unit's `AmbientCapabilities`, through `setpriv`), checks that the
//! samples of a process it started are `source: ebpf`, verifies the unit with `systemd-analyze`
//! when that exists, and purges the package again, also when a check failed.

mod check;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use clap::Args;

use crate::proc_util::{build_agent, output_of, run_checked, workspace_root, Profile};

/// Flags of `dist`.
#[derive(Debug, Args)]
pub struct DistArgs {
    /// Then install the .deb, run the installed agent under the unit's privileges, and purge it
    /// (needs root; refuses when trace-claw is already installed).
    #[arg(long)]
    pub check: bool,
}

/// The package name, in the tarball name, the .deb and the unit.
const PACKAGE: &str = "trace-claw";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const SUMMARY: &str = "OpenClaw AI-assistant workflow tracer with per-process resource costs";
/// The unit's path inside the package and on the installed system.
const UNIT_PATH: &str = "lib/systemd/system/trace-claw.service";

/// A file both packages ship beside the binaries, and where each puts it.
struct Shipped {
    /// Path in the workspace.
    source: &'static str,
    /// Path inside the tarball's top folder.
    in_tarball: &'static str,
    /// Path inside the .deb (and on the installed system).
    in_deb: &'static str,
}

/// The config, the systemd unit and the README.
const SHIPPED: [Shipped; 3] = [
    Shipped {
        source: "configs/trace_claw.yaml",
        in_tarball: "etc/trace_claw.yaml",
        in_deb: "etc/trace-claw/trace_claw.yaml",
    },
    Shipped {
        source: "deploy/systemd/trace-claw.service",
        in_tarball: "systemd/trace-claw.service",
        in_deb: UNIT_PATH,
    },
    Shipped {
        source: "README.md",
        in_tarball: "README.md",
        in_deb: "usr/share/doc/trace-claw/README.md",
    },
];

/// Builds the tarball and the .deb; with `--check`, installs and exercises the .deb.
pub fn run(args: &DistArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let built = build_agent(Profile::Release)?;
    let version = output_of(Command::new(&built).arg("version")).unwrap_or_default();
    ensure!(
        version.contains("ebpf: built in"),
        "{} was built without the kernel programs ({}); run `cargo xtask setup` and retry",
        built.display(),
        version.lines().last().unwrap_or("no version output")
    );
    let dist = root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist)
            .with_context(|| format!("cannot clear {}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    let tarball = tarball(&root, &built, &dist)?;
    let deb = deb(&root, &built, &dist)?;
    checksums(&dist, &[&tarball, &deb])?;
    for artifact in [&tarball, &deb] {
        let size = std::fs::metadata(artifact).map_or(0, |m| m.len());
        eprintln!(
            "dist: {} ({:.1} MiB)",
            artifact.display(),
            size as f64 / 1048576.0
        );
    }
    if args.check {
        check::check_package(&deb)?;
    }
    Ok(())
}

/// `target/dist/trace-claw-VERSION-ARCH-linux.tar.gz`.
fn tarball(root: &Path, built: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let name = format!("{PACKAGE}-{VERSION}-{}-linux", std::env::consts::ARCH);
    let stage = dist.join(&name);
    stripped_binaries(built, &stage.join("bin"))?;
    for file in SHIPPED {
        copy(&root.join(file.source), &stage.join(file.in_tarball))?;
    }
    let tarball = dist.join(format!("{name}.tar.gz"));
    run_checked(
        Command::new("tar")
            .args(["--owner=0", "--group=0", "--sort=name", "-czf"])
            .arg(&tarball)
            .arg("-C")
            .arg(dist)
            .arg(&name),
    )?;
    Ok(tarball)
}

/// `target/dist/trace-claw_VERSION_DEBARCH.deb`.
fn deb(root: &Path, built: &Path, dist: &Path) -> anyhow::Result<PathBuf> {
    let arch = output_of(Command::new("dpkg").arg("--print-architecture"))
        .map(|a| a.trim().to_owned())
        .context("`dpkg --print-architecture` failed: building a .deb needs dpkg")?;
    let stage = dist.join("deb");
    let bin = stage.join("usr/bin");
    stripped_binaries(built, &bin)?;
    for file in SHIPPED {
        copy(&root.join(file.source), &stage.join(file.in_deb))?;
    }
    let control = stage.join("DEBIAN");
    write(
        &control.join("control"),
        &format!(
            "Package: {PACKAGE}\nVersion: {VERSION}\nArchitecture: {arch}\n\
             Maintainer: trace-claw developers <maintainers@trace-claw.invalid>\n\
             Installed-Size: {}\nDepends: {}\nSection: admin\nPriority: optional\n\
             Homepage: https://github.com/trace-claw/trace-claw\n\
             Description: {SUMMARY}\n \
             trace-claw samples the system and the OpenClaw gateway's whole process tree with\n \
             eBPF (falling back to /proc polling), writes JSON Lines or OTLP, receives\n \
             OpenClaw's own OTLP telemetry, and analyzes what each LLM and tool call cost.\n",
            directory_kib(&stage)?,
            depends(&bin.join("trace-claw-agent"))?
        ),
    )?;
    write(
        &control.join("conffiles"),
        "/etc/trace-claw/trace_claw.yaml\n",
    )?;
    for (name, body) in [
        (
            "postinst",
            "[ \"$1\" = configure ] && [ -d /run/systemd/system ] && systemctl daemon-reload || true",
        ),
        (
            "prerm",
            "[ -d /run/systemd/system ] && systemctl stop trace-claw.service || true",
        ),
        (
            "postrm",
            "[ -d /run/systemd/system ] && systemctl daemon-reload || true",
        ),
    ] {
        maintainer_script(&control.join(name), body)?;
    }
    let deb = dist.join(format!("{PACKAGE}_{VERSION}_{arch}.deb"));
    run_checked(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    Ok(deb)
}

/// The stripped agent in `bin/` and the `trace-claw` link to it.
fn stripped_binaries(built: &Path, bin: &Path) -> anyhow::Result<()> {
    let agent = bin.join("trace-claw-agent");
    copy(built, &agent)?;
    run_checked(Command::new("strip").arg("--strip-all").arg(&agent))?;
    std::os::unix::fs::symlink("trace-claw-agent", bin.join("trace-claw"))
        .with_context(|| format!("cannot link {}", bin.join("trace-claw").display()))
}

/// The `Depends` line: libc6 at the newest glibc symbol version the binary uses, and the
/// package of every other shared library it links.
fn depends(binary: &Path) -> anyhow::Result<String> {
    let dynamic = output_of(Command::new("objdump").arg("-p").arg(binary))
        .with_context(|| format!("`objdump -p {}` failed", binary.display()))?;
    let symbols = output_of(Command::new("objdump").arg("-T").arg(binary))
        .with_context(|| format!("`objdump -T {}` failed", binary.display()))?;
    let glibc = symbols
        .split_whitespace()
        .filter_map(|w| {
            w.trim_start_matches('(')
                .trim_end_matches(')')
                .strip_prefix("GLIBC_")
        })
        .filter_map(|v| {
            let parts: Option<Vec<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
            parts
        })
        .max()
        .context("the binary uses no versioned glibc symbol")?;
    let glibc = glibc
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let mut depends = vec![format!("libc6 (>= {glibc})")];
    for line in dynamic.lines() {
        let Some(lib) = line.trim().strip_prefix("NEEDED") else {
            continue;
        };
        match lib.trim() {
            "libc.so.6"
            | "libm.so.6"
            | "libdl.so.2"
            | "libpthread.so.0"
            | "librt.so.1"
            | "ld-linux-x86-64.so.2"
            | "ld-linux-aarch64.so.1" => {}
            "libgcc_s.so.1" => depends.push("libgcc-s1".to_owned()),
            other => bail!("the agent links {other}: name its Debian package in xtask/src/dist.rs"),
        }
    }
    Ok(depends.join(", "))
}

/// Installed size in KiB, as dpkg counts it.
fn directory_kib(dir: &Path) -> anyhow::Result<u64> {
    let out = output_of(Command::new("du").args(["-sk", "--apparent-size"]).arg(dir))
        .with_context(|| format!("`du -sk {}` failed", dir.display()))?;
    out.split_whitespace()
        .next()
        .and_then(|k| k.parse().ok())
        .with_context(|| format!("cannot read du's output '{}'", out.trim()))
}

fn maintainer_script(path: &Path, body: &str) -> anyhow::Result<()> {
    write(path, &format!("#!/bin/sh\nset -e\n{body}\n"))?;
    run_checked(Command::new("chmod").arg("0755").arg(path))
}

fn checksums(dist: &Path, artifacts: &[&Path]) -> anyhow::Result<()> {
    let mut sha = Command::new("sha256sum");
    sha.current_dir(dist);
    for artifact in artifacts {
        sha.arg(
            artifact
                .file_name()
                .context("artifact without a file name")?,
        );
    }
    let sums = output_of(&mut sha).context("sha256sum failed")?;
    write(&dist.join("SHA256SUMS"), &sums)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
