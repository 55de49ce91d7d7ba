//! Linux process table read from procfs (`proc(5)`): `/proc/PID/stat`, `cmdline`, `exe`, `io`.
//!
//! Every read is relative to an injectable root so tests and containers (`/host/proc`) can aim
//! it elsewhere.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use procfs::process::{Process, Stat};
use procfs::FromRead;

use super::process::{ProcStat, ProcessTable};
use crate::target::ProcessKey;

/// Process table backed by a proc filesystem.
pub struct ProcfsTable {
    root: PathBuf,
    ns_per_tick: u64,
    page_size: u64,
}

impl ProcfsTable {
    /// Reads processes under `root` (normally `/proc`).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
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
            out.push(proc_stat(pid, stat, self.ns_per_tick, self.page_size));
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
}

/// `/proc/PID/stat` as a [`ProcStat`].
fn proc_stat(pid: u32, stat: Stat, ns_per_tick: u64, page_size: u64) -> ProcStat {
    ProcStat {
        key: ProcessKey {
            pid,
            start_time: stat.starttime,
        },
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        comm: stat.comm,
        cpu_ns: (stat.utime + stat.stime) * ns_per_tick,
        rss_bytes: stat.rss * page_size,
        vms_bytes: stat.vsize,
        threads: u64::try_from(stat.num_threads).unwrap_or(0),
    }
}

/// Keeps `/proc/PID/stat` and `/proc/PID/io` open for processes read every tick and re-reads
/// them with `pread` at offset 0 (procfs regenerates the text on each read from the start).
/// Opening costs a path walk and a permission check per file, most of the cost of reading a
/// small process tree; a handle outliving its process reads as an error (`ESRCH`), never as
/// another process that reused the pid, and is then dropped.
pub struct ProcFiles {
    root: PathBuf,
    ns_per_tick: u64,
    page_size: u64,
    open: HashMap<u32, OpenFiles>,
    buf: Vec<u8>,
}

struct OpenFiles {
    stat: File,
    /// `None` where `io` cannot be opened (another user's process without privilege).
    io: Option<File>,
}

impl ProcFiles {
    /// At most this many processes keep their files open (two descriptors each), well within
    /// the usual 1,024-descriptor limit; beyond it files are opened for each read.
    pub const MAX_OPEN: usize = 256;

    /// Reads processes under `root` (normally `/proc`).
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            ns_per_tick: 1_000_000_000 / procfs::ticks_per_second().max(1),
            page_size: procfs::page_size(),
            open: HashMap::new(),
            buf: Vec::with_capacity(1024),
        }
    }

    /// `/proc/PID/stat`, and rchar/wchar from `/proc/PID/io` when readable; `None` once the
    /// process is gone.
    pub fn read(&mut self, pid: u32) -> Option<(ProcStat, Option<(u64, u64)>)> {
        let files = match self.open.remove(&pid) {
            Some(files) => files,
            None => self.open_files(pid)?,
        };
        let Some(stat) =
            read_whole(&files.stat, &mut self.buf).and_then(|text| Stat::from_read(text).ok())
        else {
            return None; // gone: the handles are dropped
        };
        let io = files
            .io
            .as_ref()
            .and_then(|f| read_whole(f, &mut self.buf))
            .and_then(rchar_wchar);
        if self.open.len() < Self::MAX_OPEN {
            self.open.insert(pid, files);
        }
        Some((proc_stat(pid, stat, self.ns_per_tick, self.page_size), io))
    }

    /// Closes the files of processes not in `live` (sorted).
    pub fn retain_sorted(&mut self, live: &[u32]) {
        self.open.retain(|pid, _| live.binary_search(pid).is_ok());
    }

    fn open_files(&self, pid: u32) -> Option<OpenFiles> {
        let dir = self.root.join(pid.to_string());
        Some(OpenFiles {
            stat: File::open(dir.join("stat")).ok()?,
            io: File::open(dir.join("io")).ok(),
        })
    }
}

/// The whole text of a procfs file from offset 0, in `buf`.
fn read_whole<'a>(file: &File, buf: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    buf.clear();
    let mut len = 0;
    loop {
        if buf.len() - len < 512 {
            buf.resize(len + 1024, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Some(&buf[..len]),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// `rchar` and `wchar` of a `/proc/PID/io` text. Parsed here rather than with
/// `procfs::process::Io`, which builds a map of all seven lines on every read (a tenth of the
/// eBPF agent's CPU when profiled); the two values are `key: number` lines.
fn rchar_wchar(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((value("rchar")?, value("wchar")?))
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

#[cfg(test)]
mod proc_files_tests {
    use std::io::Write;

    use super::*;

    /// The kernel's rchar and wchar of this process, from a freshly opened `/proc/PID/io`.
    fn kernel_rchar_wchar() -> (u64, u64) {
        let text = std::fs::read(format!("/proc/{}/io", std::process::id())).expect("io");
        rchar_wchar(&text).expect("rchar and wchar")
    }

    #[test]
    fn reread_handles_see_the_counters_move() {
        let mut files = ProcFiles::new(Path::new("/proc"));
        let me = std::process::id();
        let (first, io1) = files.read(me).expect("own process");
        assert_eq!(first.key.pid, me);
        let io1 = io1.expect("own io is readable");
        // Write exactly N bytes: wchar must grow by at least N through the kept handle.
        let dir = tempfile::tempdir().expect("tempdir");
        let n = 123_457;
        std::fs::File::create(dir.path().join("f"))
            .and_then(|mut f| f.write_all(&vec![7u8; n]))
            .expect("write");
        let (second, io2) = files.read(me).expect("still alive");
        let io2 = io2.expect("io");
        assert!(io2.1 >= io1.1 + n as u64, "{io1:?} -> {io2:?}");
        assert!(
            io2.1 <= kernel_rchar_wchar().1,
            "the kept handle reads current values"
        );
        assert_eq!(second.key.start_time, first.key.start_time);
    }

    #[test]
    fn a_handle_of_a_reaped_process_reads_as_gone() {
        let mut files = ProcFiles::new(Path::new("/proc"));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        assert!(files.read(pid).is_some());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(files.read(pid).is_none(), "a reaped pid must not read");
        assert!(files.open.is_empty(), "its handles are dropped");
    }

    #[test]
    fn parses_the_two_counters() {
        let text = b"rchar: 12\nwchar: 34\nsyscr: 5\nsyscw: 6\nread_bytes: 0\n";
        assert_eq!(rchar_wchar(text), Some((12, 34)));
        assert_eq!(rchar_wchar(b"rchar: x\nwchar: 1\n"), None);
    }
}
