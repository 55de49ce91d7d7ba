//! Background processes of a run (fake model, agent, gateway): started in their own process
//! group with output in files, stopped with a signal to that group and reaped, also on error
//! paths (Drop).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// A started background process, owned: dropped means stopped.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    child: Option<Child>,
    /// File holding its stdout.
    pub stdout: PathBuf,
    /// File holding its stderr.
    pub stderr: PathBuf,
}

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
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// Process id of the started process (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` to the process group, waits up to `grace` for the leader to exit, then
    /// kills the group. Returns the leader's exit status.
    pub fn stop(&mut self, signal: i32, grace: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("{} was already stopped", self.name);
        };
        let pgid = child.id() as i32;
        if child.try_wait()?.is_none() {
            signal_group(pgid, signal);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let status = match child.try_wait()? {
            Some(s) => s,
            None => {
                eprintln!(
                    "e2e: {} ignored the signal for {grace:?}; killing it",
                    self.name
                );
                signal_group(pgid, libc::SIGKILL);
                child.wait()?
            }
        };
        // Leftover members of the group (e.g. an npm install the gateway started) go too.
        signal_group(pgid, libc::SIGKILL);
        Ok(status)
    }

    /// The last `n` lines of its stderr, for error messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop(libc::SIGTERM, Duration::from_secs(10)) {
                eprintln!("e2e: stopping {}: {e:#}", self.name);
            }
        }
    }
}

/// Sends `signal` to every process of group `pgid` (ESRCH once it is gone is fine).
pub fn signal_group(pgid: i32, signal: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers; a negative pid addresses a process group this run
    // created with process_group(0), so only processes this run started are signalled.
    let rc = unsafe { libc::kill(-pgid, signal) };
    // A failed kill means the group is already gone; nothing left to stop.
    let _ = rc;
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind :0, read, release).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
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
