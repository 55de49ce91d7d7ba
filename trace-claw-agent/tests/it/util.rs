//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `trace-claw-agent` binary under test.
pub fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trace-claw-agent"));
    clear_env(&mut c);
    c
}

/// `collect` of no process (`tc-nothing-matches`, polling) every `interval` seconds into `out`:
/// host samples and the agent's own, for the sink tests. Add `--count` or stop it.
pub fn collect_nothing(interval: &str, out: &Path) -> Command {
    let mut c = agent();
    c.args([
        "collect",
        "--ebpf",
        "off",
        "--process",
        "tc-nothing-matches",
        "--interval",
        interval,
        "--output-dir",
    ])
    .arg(out);
    c
}

/// Stops an agent with SIGTERM; its exit status and what it wrote to its piped stderr.
#[cfg(unix)]
pub fn sigterm(agent: &mut Reaped) -> (std::process::ExitStatus, String) {
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    assert_eq!(r, 0);
    let mut stderr = String::new();
    if let Some(mut pipe) = agent.0.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    (agent.0.wait().expect("agent ends"), stderr)
}

/// The `trace-claw` binary under test.
pub fn seed_cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trace-claw"));
    clear_env(&mut c);
    c
}

/// Removes the caller's `TRACE_CLAW_*` overrides (and OpenClaw's state) so tests see only what
/// they set.
fn clear_env(c: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("TRACE_CLAW_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "info");
    // Each agent its own socket: tests run side by side, and none is the host's agent.
    c.env("TRACE_CLAW_SOCKET", fresh_socket_path());
    // OpenClaw's state is read only where a test names it, never the developer's own.
    c.env_remove("OPENCLAW_STATE_DIR");
    c.env(
        "HOME",
        std::env::temp_dir().join("trace-claw-tests-have-no-home"),
    );
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("agent crate has a parent")
        .to_owned()
}

/// A file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
}

/// Runs a command, returning its output (never panics on a non-zero exit).
pub fn run(c: &mut Command) -> Output {
    c.output().expect("binary runs")
}

/// Runs a command that must exit 0, returning its output.
pub fn run_ok(c: &mut Command) -> Output {
    let o = run(c);
    assert!(o.status.success(), "exit {:?}\n{}", o.status, text(&o));
    o
}

/// stdout + stderr as text, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every JSON line of every file in `dir` whose name starts with `prefix`.
pub fn read_jsonl(dir: &Path, prefix: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".jsonl") {
            let body = std::fs::read_to_string(e.path()).expect("readable");
            assert!(
                body.is_empty() || body.ends_with('\n'),
                "{name} does not end on a complete line"
            );
            for (i, line) in body.lines().enumerate() {
                out.push(
                    serde_json::from_str(line)
                        .unwrap_or_else(|err| panic!("{name}:{}: {err}", i + 1)),
                );
            }
        }
    }
    out
}

/// A copy of a system binary under a unique name, so only our processes match it.
pub fn named_copy(dir: &Path, src: &str, name: &str) -> PathBuf {
    let exe = dir.join(name);
    std::fs::copy(src, &exe).expect("copy binary");
    exe
}

/// `prefix` plus a per-test-run number, short enough to stay whole in a 15-byte comm.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// A socket path no other agent of this test run uses (short: sun_path holds 108 bytes).
pub fn fresh_socket_path() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("tcsock-{}-{n}", std::process::id()))
}

/// Waits (up to 30 s) until an agent answers on `socket`, and fails the test otherwise.
pub fn wait_until_served(socket: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answers = || std::os::unix::net::UnixStream::connect(socket).is_ok();
    while !answers() {
        assert!(
            std::time::Instant::now() < deadline,
            "no agent serves {}",
            socket.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Kills and reaps a child on drop, so a failing test leaves nothing running.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // Best effort: the child may have exited already.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
