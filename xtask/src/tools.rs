//! The tools xtask's commands install, each way implemented once and idempotent (every step
//! first checks whether it is done):
//!
//! - system packages, with `apt-get install` (root; `setup`);
//! - Debian trixie packages fetched with a private apt configuration in `.tools/apt/` (the
//!   system's sources are untouched) and unpacked with `dpkg-deb -x` into a folder of `.tools/`
//!   (the OTLP peers, the deploy validators);
//! - the Python venv `.tools/venv` with pinned pip packages (the peers, the deploy validators,
//!   the psutil baseline of `bench overhead`).
//!
//! `.tools/` is gitignored; the integration tests find the peers there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::proc_util::{is_root, run_checked, run_quiet, succeeds, workspace_root};

/// `.tools/` in the workspace, created when missing.
pub fn tools_dir() -> anyhow::Result<PathBuf> {
    let tools = workspace_root().join(".tools");
    std::fs::create_dir_all(&tools).with_context(|| format!("cannot create {tools:?}"))?;
    Ok(tools)
}

/// Installs with `apt-get` those of `packages` that dpkg does not know; `who` prefixes the
/// messages. Fails, naming the fix, when something is missing and this is not root.
pub fn apt_install<S: AsRef<str>>(who: &str, packages: &[S]) -> anyhow::Result<()> {
    let names: Vec<&str> = packages.iter().map(AsRef::as_ref).collect();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|p| !succeeds(Command::new("dpkg").args(["-s", p])))
        .collect();
    let what = format!("apt packages ({})", names.join(", "));
    if missing.is_empty() {
        eprintln!("{who}: {what}: already in place");
        return Ok(());
    }
    eprintln!("{who}: {what}: installing");
    if !is_root() {
        bail!("apt packages {missing:?} are missing and installing them needs root: run `sudo -E cargo xtask setup`");
    }
    run_checked(Command::new("apt-get").arg("update").arg("-q"))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// A Debian package unpacked into `.tools/`, and the file it is wanted for.
#[derive(Debug, Clone, Copy)]
pub struct DebPackage {
    /// Package name in Debian trixie (main).
    pub name: &'static str,
    /// The file it provides, relative to the folder it is unpacked into.
    pub provides: &'static str,
}

/// Fetches from Debian trixie those of `packages` whose file is missing under `dest` and
/// unpacks them there with `dpkg-deb -x`; `who` prefixes the messages. Needs no root: apt runs
/// on a private configuration in `.tools/apt/`, and the `.deb`s land in `.tools/debs/`.
pub fn unpack_debs(who: &str, packages: &[DebPackage], dest: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|p| !dest.join(p.provides).is_file())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        eprintln!("{who}: debs in {}: already in place", dest.display());
        return Ok(());
    }
    eprintln!("{who}: debs: fetching {missing:?} from Debian trixie");
    let tools = tools_dir()?;
    let mirror = debian_mirror();
    let sources = format!("deb [signed-by={DEBIAN_KEYRING}] {mirror} trixie main\n");
    let opts = private_apt_options(&tools.join("apt"), &sources)?;
    run_quiet(Command::new("apt-get").args(&opts).arg("update"))?;
    let debs = tools.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {debs:?}"))?;
    run_quiet(
        Command::new("apt-get")
            .args(&opts)
            .arg("download")
            .args(&missing)
            .current_dir(&debs),
    )?;
    for pkg in missing {
        let deb = file_named(&debs, |n| {
            n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb")
        })?
        .with_context(|| format!("apt-get download {pkg} left no .deb"))?;
        run_quiet(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(dest))?;
    }
    if let Some(p) = packages.iter().find(|p| !dest.join(p.provides).is_file()) {
        bail!("the {} package holds no {}", p.name, p.provides);
    }
    Ok(())
}

/// A file in `dir` whose name satisfies `wanted`, if there is one.
pub fn file_named(dir: &Path, wanted: impl Fn(&str) -> bool) -> anyhow::Result<Option<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {dir:?}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&wanted)))
}

/// The keyring that signs every Debian suite xtask fetches from.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// apt options that read only `apt_dir`, whose source list gets `sources` (one-line `deb`
/// entries), leaving the system's sources, lists and cache alone.
pub fn private_apt_options(apt_dir: &Path, sources: &str) -> anyhow::Result<Vec<String>> {
    for sub in ["lists/partial", "cache/archives/partial", "parts"] {
        std::fs::create_dir_all(apt_dir.join(sub))
            .with_context(|| format!("cannot create {:?}", apt_dir.join(sub)))?;
    }
    let list = apt_dir.join("private.list");
    std::fs::write(&list, sources).with_context(|| format!("cannot write {list:?}"))?;
    let dir = |sub: &str| apt_dir.join(sub).display().to_string();
    Ok(vec![
        "-q".to_owned(),
        format!("-oDir::Etc::SourceList={}", list.display()),
        format!("-oDir::Etc::SourceParts={}", dir("parts")),
        format!("-oDir::State::Lists={}", dir("lists")),
        format!("-oDir::Cache={}", dir("cache")),
        "-oDir::Etc::Preferences=/dev/null".to_owned(),
        format!("-oDir::Etc::PreferencesParts={}", dir("parts")),
        "-oDebug::NoLocking=1".to_owned(),
        // apt's `_apt` download user may not be able to write into the workspace.
        "-oAPT::Sandbox::User=root".to_owned(),
    ])
}

/// The mirror of the system's Debian sources (deb.debian.org when it names none), so downloads
/// go where apt already goes.
pub fn debian_mirror() -> String {
    std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("URIs:"))
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// Exits 0 when every requirement in argv (`name` or `name==version`) is installed.
const REQUIREMENTS_MET: &str = "import sys, importlib.metadata as m
for spec in sys.argv[1:]:
    name, _, want = spec.partition('==')
    have = m.version(name)
    if want and have != want:
        sys.exit(1)
";

/// Makes `.tools/venv` hold `packages` (pip requirements, `name==version` where pinned) and
/// returns its python; `who` prefixes the messages.
pub fn python_venv(who: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = tools_dir()?.join("venv");
    let python = venv.join("bin/python");
    let ready = python.is_file()
        && succeeds(
            Command::new(&python)
                .args(["-c", REQUIREMENTS_MET])
                .args(packages),
        );
    if ready {
        eprintln!("{who}: python venv with {packages:?}: already in place");
        return Ok(python);
    }
    eprintln!("{who}: python venv with {packages:?}: installing");
    if !python.is_file() {
        run_quiet(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run_quiet(
        Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages),
    )?;
    Ok(python)
}
