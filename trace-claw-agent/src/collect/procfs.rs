//! Linux process table read from procfs (`proc(5)`): `/proc/PID/stat`, `cmdline`, `exe`, `io`.
//!
//! Every read is relative to an injectable root so tests and containers (`/host/proc`) can aim
//! it elsewhere.

use std::path::{Path, PathBuf};

use procfs::process::{Process, Stat};

use super::process::{ProcStat, ProcessTable};
use crate::target::ProcessKey;

/// Process table backed by a proc filesystem.
pub struct ProcfsTable {
    root: PathBuf,
    units: StatUnits,
}

impl ProcfsTable {
    /// Reads processes under `root` (normally `/proc`).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            units: StatUnits::of_this_host(),
        }
    }

    fn process(&self, pid: u32) -> Option<Process> {
        Process::new_with_root(self.root.join(pid.to_string())).ok()
    }
}

impl ProcessTable for ProcfsTable {
    fn scan(&mut self, out: &mut Vec<ProcStat>) {
        out.clear();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // A process may exit between listing and reading: skip it.
            let Some(stat) = self.process(pid).and_then(|p| p.stat().ok()) else {
                continue;
            };
            out.push(self.units.proc_stat(pid, stat));
        }
    }

    fn names(&self, pid: u32) -> (Option<String>, Option<String>) {
        let Some(p) = self.process(pid) else {
            return (None, None);
        };
        let argv0 = p.cmdline().ok().and_then(|c| c.into_iter().next());
        let exe = p.exe().ok().map(|e| e.to_string_lossy().into_owned());
        (argv0, exe)
    }

    fn io(&self, pid: u32) -> Option<(u64, u64)> {
        let io = self.process(pid)?.io().ok()?;
        Some((io.read_bytes, io.write_bytes))
    }

    fn cgroup_root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

/// The units of `/proc/PID/stat` on this host: CPU times in clock ticks, RSS in pages.
#[derive(Debug, Clone, Copy)]
pub struct StatUnits {
    ns_per_tick: u64,
    page_size: u64,
}

impl StatUnits {
    /// The running kernel's clock tick and page size.
    pub fn of_this_host() -> Self {
        Self {
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
        }
    }

    /// `/proc/PID/stat` of process `pid` as a [`ProcStat`].
    pub fn proc_stat(self, pid: u32, stat: Stat) -> ProcStat {
        ProcStat {
            key: ProcessKey {
                pid,
                start_time: stat.starttime,
            },
            ppid: u32::try_from(stat.ppid).unwrap_or(0),
            comm: stat.comm,
            cpu_ns: (stat.utime + stat.stime) * self.ns_per_tick,
            rss_bytes: stat.rss * self.page_size,
            vms_bytes: stat.vsize,
            threads: u64::try_from(stat.num_threads).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process_like_proc_does() {
        let mut t = ProcfsTable::new(Path::new("/proc"));
        let mut out = Vec::new();
        t.scan(&mut out);
        let me = std::process::id();
        let own = out
            .iter()
            .find(|p| p.key.pid == me)
            .expect("own pid listed");
        let status = std::fs::read_to_string(format!("/proc/{me}/status")).expect("status");
        let vm_rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        let rss_kb = own.rss_bytes / 1024;
        assert!(
            rss_kb.abs_diff(vm_rss_kb) < vm_rss_kb / 2 + 1024,
            "{rss_kb} vs {vm_rss_kb}"
        );
        let (argv0, exe) = t.names(me);
        assert!(argv0.is_some() && exe.is_some());
    }
}
