//! OpenClaw's side of a run: its config file (pointing the model at the fake server and its
//! diagnostics at trace-claw's receiver), and the scripted CLI turns.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::install::Toolchain;
use crate::child::OwnedChild;

/// Provider id and model id the config declares for the fake server.
pub const PROVIDER: &str = "e2e";
/// Model id served by `tests/e2e/fake_model.py`.
pub const MODEL: &str = "e2e-model";
/// Prices the config declares, USD per 1M tokens: input, output, cache read, cache write.
pub const PRICE_PER_MTOK: [f64; 4] = [3.0, 15.0, 0.3, 3.75];

/// Where one run keeps OpenClaw's state.
#[derive(Debug, Clone)]
pub struct Home {
    /// Scratch HOME; OpenClaw's state dir is `<home>/.openclaw`.
    pub home: PathBuf,
    /// Directory of OpenClaw's file log (`logging.file`).
    pub log_dir: PathBuf,
    /// Gateway port.
    pub gateway_port: u16,
}

impl Home {
    /// OpenClaw's state dir.
    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".openclaw")
    }

    /// A command running the OpenClaw CLI with this HOME.
    pub fn openclaw(&self, tc: &Toolchain) -> Command {
        let mut c = tc.openclaw();
        c.env("HOME", &self.home)
            .env("OPENCLAW_STATE_DIR", self.state_dir())
            .current_dir(&self.home);
        c
    }
}

/// Writes `<home>/.openclaw/openclaw.json`: gateway on loopback, the fake model as the default,
/// debug file log in `log_dir`, no update checks, no heartbeat runs, the plugins in `deny`
/// denied, merged with `diagnostics` (the output of `trace-claw generate-config`).
///
/// The heartbeat is off because a heartbeat run blocks the gateway's event loop for minutes on
/// a small machine, long enough for the next CLI turn's connect to time out.
pub fn write_config(
    home: &Home,
    model_port: u16,
    deny: &[String],
    diagnostics: &Value,
) -> Result<PathBuf> {
    fs::create_dir_all(home.state_dir())?;
    fs::create_dir_all(&home.log_dir)?;
    let workspace = home.home.join("workspace");
    fs::create_dir_all(&workspace)?;
    let [input, output, cache_read, cache_write] = PRICE_PER_MTOK;
    let mut config = json!({
        "gateway": {
            "mode": "local", "port": home.gateway_port, "bind": "loopback",
            "auth": { "mode": "token", "token": "e2e-placeholder-token" }
        },
        "models": { "mode": "merge", "providers": { PROVIDER: {
            "baseUrl": format!("http://127.0.0.1:{model_port}/v1"),
            "apiKey": "e2e-placeholder-key",
            "api": "openai-completions",
            "models": [{
                "id": MODEL, "name": "trace-claw e2e fake model", "reasoning": false,
                "input": ["text"], "contextWindow": 128000, "maxTokens": 4096,
                "cost": { "input": input, "output": output,
                          "cacheRead": cache_read, "cacheWrite": cache_write }
            }]
        }}},
        "agents": { "defaults": {
            "model": { "primary": format!("{PROVIDER}/{MODEL}") },
            "workspace": workspace,
            "heartbeat": { "every": "0m" },
        }},
        "plugins": { "deny": deny },
        "logging": { "level": "debug", "file": home.log_dir.join("openclaw-e2e.log") },
        "update": { "checkOnStart": false },
    });
    merge(&mut config, diagnostics);
    let path = home.state_dir().join("openclaw.json");
    fs::write(&path, serde_json::to_string_pretty(&config)? + "\n")
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Deep-merges `patch` into `base`: objects key by key, anything else replaced.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// One scripted CLI turn.
#[derive(Debug, Clone, Copy)]
pub struct Turn {
    /// Name, also the `[e2e:NAME]` tag the fake model records.
    pub name: &'static str,
    /// `--agent` value: the turn goes to that agent's main session.
    pub agent: &'static str,
    /// What the fake model should do, as a marker in the message.
    pub marker: &'static str,
}

/// The scripted turns: a plain answer, a tool call running a shell command, an upstream 500.
pub const TURNS: &[Turn] = &[
    Turn {
        name: "plain",
        agent: "main",
        marker: "Please answer plainly.",
    },
    Turn {
        name: "tool",
        agent: "main",
        marker: "E2E-TOOL: run the scripted shell command.",
    },
    Turn {
        name: "fail",
        agent: "main",
        marker: "E2E-FAIL: the model will answer HTTP 500.",
    },
];

/// What one turn did.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// CLI exit code (None: killed by a signal).
    pub exit_code: Option<i32>,
    /// Wall time of the CLI.
    pub elapsed: Duration,
    /// Where its stdout (`--json`) went.
    pub stdout: PathBuf,
    /// Whether the CLI was stopped when it began its embedded fallback.
    pub fallback_stopped: bool,
}

/// What the CLI prints when the gateway run failed and it starts running the agent in its own
/// process instead. That second run would repeat the whole turn outside the gateway (minutes
/// on a small machine) and is not what is being traced, so the CLI is stopped there.
const FALLBACK_MARKER: &str = "EMBEDDED FALLBACK";

/// How long a stopped CLI may take to exit before its process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Runs `turn` through `openclaw agent ... --json --timeout SECS`, output in `out_dir`
/// (`turn-NAME[-ATTEMPT].{json,stderr}`). The CLI is stopped if it starts its embedded fallback
/// or outlives the timeout by a minute.
pub fn run_turn(
    tc: &Toolchain,
    home: &Home,
    turn: Turn,
    attempt: u32,
    timeout: Duration,
    out_dir: &Path,
) -> Result<TurnOutcome> {
    let base = match attempt {
        1 => format!("turn-{}", turn.name),
        n => format!("turn-{}-{n}", turn.name),
    };
    let stdout = out_dir.join(format!("{base}.json"));
    let stderr = out_dir.join(format!("{base}.stderr"));
    let mut cmd = home.openclaw(tc);
    cmd.args([
        "agent",
        "--agent",
        turn.agent,
        "--message",
        &format!("[e2e:{}] {}", turn.name, turn.marker),
        "--json",
        "--timeout",
        &timeout.as_secs().to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(fs::File::create(&stdout)?)
    .stderr(fs::File::create(&stderr)?)
    .process_group(0);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("running openclaw agent for turn '{}'", turn.name))?;
    let mut child = OwnedChild::terminated_on_drop(child, Some(STOP_GRACE))
        .labelled(format!("e2e: turn '{}'", turn.name))
        .whole_group();
    let mut fallback_stopped = false;
    let status = loop {
        if let Some(status) = child.exited() {
            break status;
        }
        let fell_back = fs::read_to_string(&stderr).is_ok_and(|t| t.contains(FALLBACK_MARKER));
        let overdue = started.elapsed() > timeout + Duration::from_secs(60);
        if fell_back || overdue {
            fallback_stopped = fell_back;
            eprintln!(
                "e2e: turn '{}': {}; stopping the CLI",
                turn.name,
                if fell_back {
                    "the CLI started its embedded fallback"
                } else {
                    "overdue"
                }
            );
            break child.stop(libc::SIGTERM, Some(STOP_GRACE))?;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    Ok(TurnOutcome {
        exit_code: status.code(),
        elapsed: started.elapsed(),
        stdout,
        fallback_stopped,
    })
}

/// Copies OpenClaw's file log and session transcripts into `dest` (`logs/`, `sessions/<agent>/`).
pub fn collect_artifacts(home: &Home, dest: &Path) -> Result<usize> {
    let mut copied = 0;
    let logs = dest.join("logs");
    fs::create_dir_all(&logs)?;
    for entry in fs::read_dir(&home.log_dir)?.flatten() {
        fs::copy(entry.path(), logs.join(entry.file_name()))?;
        copied += 1;
    }
    let agents = home.state_dir().join("agents");
    for agent in fs::read_dir(&agents).into_iter().flatten().flatten() {
        let sessions = agent.path().join("sessions");
        let Ok(files) = fs::read_dir(&sessions) else {
            continue;
        };
        let out = dest.join("sessions").join(agent.file_name());
        fs::create_dir_all(&out)?;
        for f in files.flatten() {
            if f.path().is_file() {
                fs::copy(f.path(), out.join(f.file_name()))?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_base_keys_and_adds_patch_keys() {
        let mut base = json!({"plugins": {"allow": ["x"], "other": 1}, "a": 1});
        merge(
            &mut base,
            &json!({"plugins": {"allow": ["diagnostics-otel"]}, "b": 2}),
        );
        assert_eq!(
            base,
            json!({"plugins": {"allow": ["diagnostics-otel"], "other": 1}, "a": 1, "b": 2})
        );
    }
}
