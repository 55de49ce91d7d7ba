//! The `/proc/PID/stat` and `/proc/PID/io` files of the tracked processes, kept open and read
//! again every tick (`proc(5)`).

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use procfs::process::Stat;
use procfs::FromRead;

use crate::collect::procfs::StatUnits;
use crate::collect::ProcStat;

/// Keeps `/proc/PID/stat` and `/proc/PID/io` open for processes read every tick and re-reads
/// them with `pread` at offset 0 (procfs regenerates the text on each read from the start).
/// Opening costs a path walk and a permission check per file, most of the cost of reading a
/// small process tree; a handle outliving its process reads as an error (`ESRCH`), never as
/// another process that reused the pid, and is then dropped.
pub struct ProcFiles {
    root: PathBuf,
    units: StatUnits,
    open: HashMap<u32, OpenFiles>,
    /// At most this many processes keep their files open (two descriptors each).
    max_open: usize,
    buf: Vec<u8>,
}

struct OpenFiles {
    stat: File,
    /// `None` where `io` cannot be opened (another user's process without privilege).
    io: Option<File>,
}

/// Descriptors left for everything else the agent opens (sockets, output files, maps).
const RESERVED_DESCRIPTORS: u64 = 512;

/// The soft descriptor limit is raised towards the hard one up to this many: enough for
/// [`MAX_KEPT_OPEN`] processes.
const WANTED_DESCRIPTORS: u64 = 2 * MAX_KEPT_OPEN as u64 + RESERVED_DESCRIPTORS;

/// The most processes whose files are kept open; beyond it (or beyond what the descriptor
/// limit allows) files are opened for each read.
const MAX_KEPT_OPEN: usize = 16_384;

impl ProcFiles {
    /// Reads processes under `root` (normally `/proc`). Raises the soft `RLIMIT_NOFILE` towards
    /// the hard limit (the usual 1,024 soft limit would leave a 1,000-process tree opening
    /// 2,000 files a tick) and keeps as many processes' files open as the limit then allows.
    pub fn new(root: &Path) -> Self {
        let limit = raise_descriptor_limit(WANTED_DESCRIPTORS);
        Self {
            root: root.to_owned(),
            units: StatUnits::of_this_host(),
            open: HashMap::new(),
            max_open: (limit.saturating_sub(RESERVED_DESCRIPTORS) / 2).min(MAX_KEPT_OPEN as u64)
                as usize,
            buf: Vec::with_capacity(1024),
        }
    }

    /// `/proc/PID/stat`, and, `with_io`, rchar/wchar from `/proc/PID/io` when readable; `None`
    /// once the process is gone.
    pub fn read(&mut self, pid: u32, with_io: bool) -> Option<(ProcStat, Option<(u64, u64)>)> {
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
            .filter(|_| with_io)
            .and_then(|f| read_whole(f, &mut self.buf))
            .and_then(rchar_wchar);
        if self.open.len() < self.max_open {
            self.open.insert(pid, files);
        }
        Some((self.units.proc_stat(pid, stat), io))
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

/// Raises the soft `RLIMIT_NOFILE` to `wanted`, or to the hard limit if that is lower, and
/// returns the soft limit in force after (the old one when it was already higher or cannot be
/// changed; 0 when it cannot be read).
fn raise_descriptor_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a live rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    let target = wanted.min(limit.rlim_max);
    if target <= limit.rlim_cur {
        return limit.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: a valid rlimit whose soft value is within the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        target
    } else {
        limit.rlim_cur
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
        let (first, io1) = files.read(me, true).expect("own process");
        assert_eq!(first.key.pid, me);
        let io1 = io1.expect("own io is readable");
        // Write exactly N bytes: wchar must grow by at least N through the kept handle.
        let dir = tempfile::tempdir().expect("tempdir");
        let n = 123_457;
        std::fs::File::create(dir.path().join("f"))
            .and_then(|mut f| f.write_all(&vec![7u8; n]))
            .expect("write");
        let (second, io2) = files.read(me, true).expect("still alive");
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
        assert!(files.read(pid, true).is_some());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(
            files.read(pid, true).is_none(),
            "a reaped pid must not read"
        );
        assert!(files.open.is_empty(), "its handles are dropped");
    }

    #[test]
    fn parses_the_two_counters() {
        let text = b"rchar: 12\nwchar: 34\nsyscr: 5\nsyscw: 6\nread_bytes: 0\n";
        assert_eq!(rchar_wchar(text), Some((12, 34)));
        assert_eq!(rchar_wchar(b"rchar: x\nwchar: 1\n"), None);
    }
}
