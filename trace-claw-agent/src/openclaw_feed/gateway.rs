//! Which process is OpenClaw's gateway: the process whose actions the file log describes.
//!
//! The gateway sets `process.title = "openclaw-gateway"`, so its comm is `openclaw-gatewa`
//! (15 characters); the `openclaw` launcher that respawns it, and older releases, show
//! `openclaw`. Both are recognised; the gateway child is preferred to its launcher.

use std::time::{Duration, Instant};

use crate::collect::{ProcStat, ProcessTable};
use crate::target::NameMatcher;

/// The comms of OpenClaw's gateway, most specific first.
pub const GATEWAY_COMMS: [&str; 2] = ["openclaw-gatewa", "openclaw"];

/// How often the process table is scanned for the gateway.
const RESCAN: Duration = Duration::from_secs(30);

/// Finds the gateway among the processes the agent tracks, rescanning now and then (it may
/// start after the agent, restart, or respawn).
pub struct GatewayFinder {
    table: Box<dyn ProcessTable>,
    target: NameMatcher,
    found: Option<u32>,
    scanned: Option<Instant>,
    scratch: Vec<ProcStat>,
}

impl GatewayFinder {
    /// Looks for a gateway that `target` (the `--process` name) matches.
    pub fn new(table: Box<dyn ProcessTable>, target: &str) -> Self {
        Self {
            table,
            target: NameMatcher::new(target),
            found: None,
            scanned: None,
            scratch: Vec::new(),
        }
    }

    /// The gateway's pid as of the latest scan (one is made when [`RESCAN`] has passed).
    pub fn pid(&mut self) -> Option<u32> {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.scanned = Some(Instant::now());
            self.table.scan(&mut self.scratch);
            self.found = pick(&self.scratch, |s| {
                let (argv0, exe) = self.table.names(s.key.pid);
                self.target
                    .matches(&s.comm, argv0.as_deref(), exe.as_deref())
            });
        }
        self.found
    }
}

/// The gateway among `procs`, of those `tracked` accepts: the lowest pid with the most
/// specific comm.
fn pick(procs: &[ProcStat], mut tracked: impl FnMut(&ProcStat) -> bool) -> Option<u32> {
    let own = std::process::id();
    procs
        .iter()
        .filter_map(|s| {
            let rank = GATEWAY_COMMS.iter().position(|c| *c == s.comm)?;
            (s.key.pid != own).then_some((rank, s.key.pid, s))
        })
        .filter(|(_, _, s)| tracked(s))
        .min_by_key(|(rank, pid, _)| (*rank, *pid))
        .map(|(_, pid, _)| pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ProcessKey;

    fn proc(pid: u32, comm: &str) -> ProcStat {
        ProcStat {
            key: ProcessKey { pid, start_time: 1 },
            ppid: 1,
            comm: comm.to_owned(),
            cpu_ns: 0,
            rss_bytes: 0,
            vms_bytes: 0,
            threads: 1,
        }
    }

    #[test]
    fn prefers_the_gateway_child_to_its_launcher_and_skips_untracked_ones() {
        let procs = [
            proc(50, "node"),
            proc(60, "openclaw"),
            proc(70, "openclaw-gatewa"),
            proc(40, "openclaw-gatewa"),
        ];
        assert_eq!(pick(&procs, |_| true), Some(40));
        assert_eq!(pick(&procs, |s| s.key.pid != 40), Some(70));
        assert_eq!(pick(&procs, |s| s.comm == "openclaw"), Some(60));
        assert_eq!(pick(&procs[..1], |_| true), None);
    }
}
