//! The real OTLP peers the integration tests talk to, installed idempotently under `.tools/`
//! (gitignored) without touching the system's package configuration:
//!
//! - VictoriaMetrics single node (an OTLP/HTTP metrics backend): the Debian trixie package,
//!   fetched with `apt-get download` through a private apt configuration in `.tools/apt/` and
//!   unpacked with `dpkg-deb -x` (the binary runs on bookworm's libraries).
//! - The official OpenTelemetry Python SDK and its OTLP/HTTP exporter, in `.tools/venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::proc_util::{run_checked, succeeds, workspace_root};

/// Python packages of the venv, pinned to the versions the tests were written against.
const PYTHON_PACKAGES: &[&str] = &[
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
];

/// Where the extracted VictoriaMetrics binary lives.
pub fn victoria_metrics_bin(tools: &Path) -> PathBuf {
    tools.join("vm/usr/bin/victoria-metrics")
}

/// Installs every peer that is missing; each step first checks whether it is already done.
pub fn install_peers() -> anyhow::Result<()> {
    let tools = workspace_root().join(".tools");
    std::fs::create_dir_all(&tools).with_context(|| format!("cannot create {tools:?}"))?;
    victoria_metrics(&tools)?;
    python_venv(&tools)
}

fn victoria_metrics(tools: &Path) -> anyhow::Result<()> {
    if victoria_metrics_bin(tools).is_file() {
        eprintln!("setup: victoria-metrics: already in place");
        return Ok(());
    }
    eprintln!("setup: victoria-metrics: installing from Debian trixie");
    let apt = tools.join("apt");
    for dir in ["lists/partial", "cache/archives/partial", "parts"] {
        std::fs::create_dir_all(apt.join(dir))
            .with_context(|| format!("cannot create {:?}", apt.join(dir)))?;
    }
    let mirror = debian_mirror().unwrap_or_else(|| "http://deb.debian.org/debian".to_owned());
    let sources = apt.join("trixie.sources");
    std::fs::write(
        &sources,
        format!(
            "Types: deb\nURIs: {mirror}\nSuites: trixie\nComponents: main\n\
             Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        ),
    )
    .with_context(|| format!("cannot write {sources:?}"))?;
    let private = |cmd: &mut Command| {
        cmd.arg("-q")
            .arg(format!("-oDir::Etc::SourceList={}", sources.display()))
            .arg(format!(
                "-oDir::Etc::SourceParts={}",
                apt.join("parts").display()
            ))
            .arg(format!(
                "-oDir::State::Lists={}",
                apt.join("lists").display()
            ))
            .arg(format!("-oDir::Cache={}", apt.join("cache").display()))
            .arg("-oDir::Etc::Preferences=/dev/null")
            .arg(format!(
                "-oDir::Etc::PreferencesParts={}",
                apt.join("parts").display()
            ));
    };
    let mut update = Command::new("apt-get");
    private(&mut update);
    run_checked(update.arg("update"))?;
    let mut download = Command::new("apt-get");
    private(&mut download);
    run_checked(
        download
            .arg("download")
            .arg("victoria-metrics/trixie")
            .current_dir(tools),
    )?;
    let deb = std::fs::read_dir(tools)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("victoria-metrics_"))
        })
        .context("apt-get download left no victoria-metrics_*.deb")?;
    run_checked(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(tools.join("vm")),
    )?;
    if !victoria_metrics_bin(tools).is_file() {
        bail!("{deb:?} holds no usr/bin/victoria-metrics");
    }
    Ok(())
}

/// The mirror of the system's Debian sources, so the download goes where apt already goes.
fn debian_mirror() -> Option<String> {
    let text = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_owned)
}

fn python_venv(tools: &Path) -> anyhow::Result<()> {
    let venv = tools.join("venv");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && succeeds(Command::new(&python).args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ]));
    if ready {
        eprintln!("setup: python venv with the OpenTelemetry SDK: already in place");
        return Ok(());
    }
    eprintln!("setup: python venv with the OpenTelemetry SDK: installing");
    if !python.is_file() {
        run_checked(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run_checked(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(PYTHON_PACKAGES),
    )
}
