//! Child processes owned by a run: stopped and reaped when their owner is dropped, so that no
//! workload, agent or service outlives the command that started it, also on error paths.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How an [`OwnedChild`] is stopped when it is dropped.
#[derive(Debug, Clone, Copy)]
enum OnDrop {
    /// SIGKILL, then reap: for workloads with nothing to flush.
    Kill,
    /// SIGTERM, so it can flush, then wait for it (SIGKILL after the grace, if any).
    Terminate(Option<Duration>),
}

/// A started child process, owned: dropping it stops and reaps it.
#[derive(Debug)]
pub struct OwnedChild {
    child: Child,
    /// How messages name it (`e2e: fake-model`, `bench-ebpf: agent`).
    label: String,
    /// Whether signals go to its whole process group (it was spawned with `process_group(0)`).
    group: bool,
    on_drop: OnDrop,
    /// Set once it has been stopped and reaped.
    stopped: bool,
}

impl OwnedChild {
    /// Owns `child`; dropping sends it SIGKILL and reaps it.
    pub fn killed_on_drop(child: Child) -> Self {
        Self::new(child, OnDrop::Kill)
    }

    /// Owns `child`; dropping sends it SIGTERM and waits for it, at most `grace` when given
    /// (then SIGKILL).
    pub fn terminated_on_drop(child: Child, grace: Option<Duration>) -> Self {
        Self::new(child, OnDrop::Terminate(grace))
    }

    fn new(child: Child, on_drop: OnDrop) -> Self {
        Self {
            label: format!("pid {}", child.id()),
            child,
            group: false,
            on_drop,
            stopped: false,
        }
    }

    /// Names it `label` in messages.
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sends every signal to its process group: `child` must have been spawned with
    /// `process_group(0)`, so the group holds only processes this run started.
    pub fn whole_group(mut self) -> Self {
        self.group = true;
        self
    }

    /// Process id (with [`Self::whole_group`], also the process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, e.g. to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// `Some(status)` once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (unless it already exited), waits for it, at most `grace` when given,
    /// then SIGKILLs it; with [`Self::whole_group`] what is left of its group is killed too.
    /// Returns its exit status.
    pub fn stop(&mut self, signal: i32, grace: Option<Duration>) -> std::io::Result<ExitStatus> {
        let status = match self.child.try_wait()? {
            Some(status) => status,
            None => {
                self.signal(signal);
                match self.wait_for(grace)? {
                    Some(status) => status,
                    None => {
                        eprintln!(
                            "{} ignored the signal for {grace:?}; killing it",
                            self.label
                        );
                        self.signal(libc::SIGKILL);
                        self.child.wait()?
                    }
                }
            }
        };
        if self.group {
            // Leftover members of the group (e.g. an npm install a gateway started) go too.
            self.signal(libc::SIGKILL);
        }
        self.stopped = true;
        Ok(status)
    }

    /// Waits for the exit, giving up after `grace` when given.
    fn wait_for(&mut self, grace: Option<Duration>) -> std::io::Result<Option<ExitStatus>> {
        let Some(deadline) = grace.and_then(|g| Instant::now().checked_add(g)) else {
            return self.child.wait().map(Some);
        };
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the child or its group; ESRCH once it is gone is fine.
    fn signal(&self, signal: i32) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        if pid <= 1 {
            return;
        }
        let target = if self.group { -pid } else { pid };
        // SAFETY: kill(2) takes plain integers; the pid is our own unreaped child, and a
        // negative one addresses the process group it leads (spawned with process_group(0)).
        let rc = unsafe { libc::kill(target, signal) };
        // A failed kill means it is already gone; nothing left to stop.
        let _ = rc;
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let (signal, grace) = match self.on_drop {
            OnDrop::Kill => (libc::SIGKILL, None),
            OnDrop::Terminate(grace) => (libc::SIGTERM, grace),
        };
        if let Err(e) = self.stop(signal, grace) {
            eprintln!("{}: cannot stop it: {e}", self.label);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn dropping_kills_and_reaps_the_child() {
        let child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        drop(OwnedChild::killed_on_drop(child));
        // A reaped child has no /proc entry left (a zombie would).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn stop_returns_the_exit_status_of_a_terminated_child() {
        let child = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("sleep starts");
        let mut owned = OwnedChild::terminated_on_drop(child, Some(Duration::from_secs(5)));
        let status = owned
            .stop(libc::SIGTERM, Some(Duration::from_secs(5)))
            .expect("stops");
        assert!(!status.success());
    }
}
