//! Process table read through sysinfo, for platforms without procfs (macOS).

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::process::{ProcStat, ProcessTable};
use crate::target::ProcessKey;

/// Process table backed by sysinfo.
pub struct SysinfoTable {
    system: System,
}

impl SysinfoTable {
    /// A table with nothing read yet.
    pub fn new() -> Result<Self, sysinfo::Error> {
        Ok(Self {
            system: System::new()?,
        })
    }
}

impl ProcessTable for SysinfoTable {
    fn scan(&mut self, out: &mut Vec<ProcStat>) {
        out.clear();
        let kind = ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_disk_usage()
            .with_exe(UpdateKind::OnlyIfNotSet)
            .with_cmd(UpdateKind::OnlyIfNotSet);
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        for (pid, p) in self.system.processes() {
            out.push(ProcStat {
                key: ProcessKey {
                    pid: pid.as_u32(),
                    start_time: p.start_time(),
                },
                ppid: p.parent().map_or(0, |pp| pp.as_u32()),
                comm: p.name().to_string_lossy().into_owned(),
                cpu_ns: p.accumulated_cpu_time().saturating_mul(1_000_000),
                rss_bytes: p.memory(),
                vms_bytes: p.virtual_memory(),
                threads: p.tasks().map_or(1, |t| t.len() as u64),
            });
        }
    }

    fn names(&self, pid: u32) -> (Option<String>, Option<String>) {
        let Some(p) = self.system.process(sysinfo::Pid::from_u32(pid)) else {
            return (None, None);
        };
        let argv0 = p.cmd().first().map(|a| a.to_string_lossy().into_owned());
        let exe = p.exe().map(|e| e.to_string_lossy().into_owned());
        (argv0, exe)
    }

    fn io(&self, pid: u32) -> Option<(u64, u64)> {
        let d = self
            .system
            .process(sysinfo::Pid::from_u32(pid))?
            .disk_usage();
        Some((d.total_read_bytes, d.total_written_bytes))
    }
}
