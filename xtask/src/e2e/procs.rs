//! Background processes of a run (fake model, agent, gateway): started in their own process
//! group with output in files, stopped with a signal to that group and reaped, also on error
//! paths (Drop).

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

use crate::child::OwnedChild;

/// A started background process, owned: dropped means stopped (SIGTERM to its group, 10 s
/// grace, then SIGKILL).
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: OwnedChild,
    /// File holding its stdout.
    pub stdout: PathBuf,
    /// File holding its stderr.
    pub stderr: PathBuf,
}

/// How long a stopped service may take to exit before it is killed on drop.
const DROP_GRACE: Duration = Duration::from_secs(10);

impl Service {
    /// Starts `cmd` in a new process group, stdout/stderr to `<logs>/<name>.{stdout,stderr}`.
    pub fn start(name: &'static str, mut cmd: Command, logs: &Path) -> Result<Self> {
        let stdout = logs.join(format!("{name}.stdout"));
        let stderr = logs.join(format!("{name}.stderr"));
        let out =
            File::create(&stdout).with_context(|| format!("creating {}", stdout.display()))?;
        let err =
            File::create(&stderr).with_context(|| format!("creating {}", stderr.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        eprintln!("e2e: started {name} (pid {})", child.id());
        Ok(Self {
            name,
            child: OwnedChild::terminated_on_drop(child, Some(DROP_GRACE))
                .labelled(format!("e2e: {name}"))
                .whole_group(),
            stdout,
            stderr,
        })
    }

    /// Process id of the started process (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.exited()
    }

    /// Sends `signal` to the process group, waits up to `grace` for the leader to exit, then
    /// kills the group. Returns the leader's exit status.
    pub fn stop(&mut self, signal: i32, grace: Duration) -> Result<ExitStatus> {
        self.child
            .stop(signal, Some(grace))
            .with_context(|| format!("stopping {}", self.name))
    }

    /// The last `n` lines of its stderr, for error messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Waits until 127.0.0.1:`port` accepts connections, failing early if `service` exits.
pub fn wait_for_port(service: &mut Service, port: u16, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if let Some(status) = service.exited() {
            bail!(
                "{} exited ({status}) before listening on {addr}; stderr ends:\n{}",
                service.name,
                service.stderr_tail(30)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not listen on {addr} within {timeout:?}",
                service.name
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Polls `ready` every 500 ms until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
