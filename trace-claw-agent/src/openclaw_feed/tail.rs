//! Follows OpenClaw's daily file log (`openclaw-YYYY-MM-DD.log` in one directory) as it grows,
//! handing out complete lines once each, in order.
//!
//! OpenClaw starts a new file at the day change (its local date) and when a file reaches its
//! size limit; several processes (the gateway, the CLI) append to the same file. The tail keeps
//! the file it reads open, so a file renamed away is still read to its end, and then moves to
//! the newest file of the directory: the one now at the old name (rotation) or one modified
//! later (a new day). A file that shrinks was truncated and is read again from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Longest line kept while waiting for its newline; a longer one is skipped and reported.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// How often, at most, the directory is listed for a newer file while the current one is idle.
const DIR_CHECK: Duration = Duration::from_secs(1);

/// The file being read.
#[derive(Debug)]
struct Current {
    path: PathBuf,
    file: File,
    identity: (u64, u64),
    modified: SystemTime,
    offset: u64,
    /// Complete lines handed out so far (the number of the next one is this + 1).
    lines: u64,
}

/// One complete line of a log.
#[derive(Debug, Clone, Copy)]
pub struct LogLine<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its line number (from 1).
    pub number: u64,
    /// The byte offset just past the line's newline.
    pub end: u64,
    /// The line, without its newline.
    pub text: &'a [u8],
}

/// A line the tail had to skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// The file.
    pub path: PathBuf,
    /// Its line number.
    pub line: u64,
    /// How long it was when skipped.
    pub bytes: usize,
}

/// Reads the lines appended to the directory's newest OpenClaw log.
#[derive(Debug)]
pub struct LogTail {
    dir: PathBuf,
    current: Option<Current>,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// `partial` belongs to an over-long line that is being skipped.
    skipping: bool,
    last_dir_check: Option<Instant>,
    buf: Vec<u8>,
}

impl LogTail {
    /// Follows the OpenClaw logs in `dir` (which need not exist yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            current: None,
            partial: Vec::new(),
            skipping: false,
            last_dir_check: None,
            buf: vec![0; 64 * 1024],
        }
    }

    /// The directory followed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file being read, if one is open.
    pub fn current(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Calls `line` for every complete line written since the last call (the first call
    /// starts at the beginning of the newest file), and `skipped` for each line longer than
    /// [`MAX_LINE_BYTES`].
    pub fn poll(
        &mut self,
        mut line: impl FnMut(LogLine<'_>),
        mut skipped: impl FnMut(SkippedLine),
    ) -> io::Result<()> {
        if self.current.is_none() && !self.open_newest()? {
            return Ok(());
        }
        loop {
            self.read_to_end(&mut line, &mut skipped)?;
            if !self.moved_on()? {
                return Ok(());
            }
        }
    }

    /// Reads what the current file holds past the offset, handing out complete lines.
    fn read_to_end(
        &mut self,
        line: &mut impl FnMut(LogLine<'_>),
        skipped: &mut impl FnMut(SkippedLine),
    ) -> io::Result<()> {
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        let meta = cur.file.metadata()?;
        if meta.len() < cur.offset {
            log::info!(
                "{} was truncated; reading it again from the start",
                cur.path.display()
            );
            cur.offset = 0;
            cur.lines = 0;
            self.partial.clear();
            self.skipping = false;
        }
        cur.modified = meta.modified()?;
        cur.file.seek(SeekFrom::Start(cur.offset))?;
        loop {
            let n = cur.file.read(&mut self.buf)?;
            if n == 0 {
                return Ok(());
            }
            let mut line_end = cur.offset;
            cur.offset += n as u64;
            let mut rest = &self.buf[..n];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                cur.lines += 1;
                line_end += (end + 1) as u64;
                let at = |text| LogLine {
                    path: &cur.path,
                    number: cur.lines,
                    end: line_end,
                    text,
                };
                if self.skipping {
                    skipped(SkippedLine {
                        path: cur.path.clone(),
                        line: cur.lines,
                        bytes: self.partial.len() + end,
                    });
                    self.skipping = false;
                    self.partial.clear();
                } else if self.partial.is_empty() {
                    line(at(&rest[..end]));
                } else {
                    self.partial.extend_from_slice(&rest[..end]);
                    line(at(&self.partial));
                    self.partial.clear();
                }
                rest = &rest[end + 1..];
            }
            if self.skipping {
                continue;
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE_BYTES {
                self.skipping = true;
            }
        }
    }

    /// Switches files when the current one was replaced (to the file now at its name) or a
    /// newer one exists; `true` when it switched (the new file is then read from its start).
    fn moved_on(&mut self) -> io::Result<bool> {
        let Some(cur) = self.current.as_ref() else {
            return Ok(false);
        };
        match std::fs::metadata(&cur.path) {
            Ok(m) if identity(&m) != cur.identity => {
                let path = cur.path.clone();
                return self.open(path);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if self.last_dir_check.is_some_and(|t| t.elapsed() < DIR_CHECK) {
            return Ok(false);
        }
        self.last_dir_check = Some(Instant::now());
        let (id, modified) = (cur.identity, cur.modified);
        match newest_log(&self.dir)? {
            Some((path, meta)) if identity(&meta) != id && meta.modified()? >= modified => {
                self.open(path)
            }
            _ => Ok(false),
        }
    }

    /// Opens the newest OpenClaw log of the directory, if there is one; `true` when it did.
    fn open_newest(&mut self) -> io::Result<bool> {
        match newest_log(&self.dir)? {
            Some((path, _)) => self.open(path),
            None => Ok(false),
        }
    }

    /// Starts reading `path` from its start; `false` when it has gone meanwhile.
    fn open(&mut self, path: PathBuf) -> io::Result<bool> {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        log::debug!("following {}", path.display());
        self.current = Some(Current {
            path,
            identity: identity(&meta),
            modified: meta.modified()?,
            file,
            offset: 0,
            lines: 0,
        });
        self.partial.clear();
        self.skipping = false;
        Ok(true)
    }
}

/// Whether `name` is one of OpenClaw's file logs (`openclaw-….log`).
pub fn is_log_name(name: &str) -> bool {
    name.starts_with("openclaw-") && name.ends_with(".log")
}

/// The most recently modified OpenClaw log in `dir` (the later name on a tie), if any.
pub fn newest_log(dir: &Path) -> io::Result<Option<(PathBuf, std::fs::Metadata)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut best: Option<(SystemTime, PathBuf, std::fs::Metadata)> = None;
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(is_log_name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified()?;
        let path = entry.path();
        let newer = best
            .as_ref()
            .is_none_or(|(t, p, _)| (modified, &path) > (*t, p));
        if newer {
            best = Some((modified, path, meta));
        }
    }
    Ok(best.map(|(_, p, m)| (p, m)))
}

/// A file's identity: device and inode where the platform has them.
#[cfg(unix)]
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// A file's identity: its creation time, where there are no inodes.
#[cfg(not(unix))]
fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    let created = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    (created, 0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open");
        f.write_all(text.as_bytes()).expect("write");
    }

    fn poll(tail: &mut LogTail) -> (Vec<String>, Vec<SkippedLine>) {
        let mut lines = Vec::new();
        let mut skipped = Vec::new();
        tail.poll(
            |l| {
                let name = l.path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                let text = String::from_utf8_lossy(l.text);
                lines.push(format!("{name}:{}:{text}@{}", l.number, l.end));
            },
            |s| skipped.push(s),
        )
        .expect("poll");
        (lines, skipped)
    }

    /// Set a file's modification time `secs` seconds after the epoch, so that which file is
    /// newer does not depend on the file system's timestamp granularity.
    fn set_modified(path: &Path, secs: u64) {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .expect("set mtime");
    }

    #[test]
    fn hands_out_each_complete_line_once_even_when_written_in_pieces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tail = LogTail::new(dir.path());
        assert_eq!(poll(&mut tail).0, Vec::<String>::new(), "no file yet");
        let log = dir.path().join("openclaw-2026-12-04.log");
        append(&log, "a\nb");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:a@2"]);
        append(&log, "c");
        assert_eq!(poll(&mut tail).0, Vec::<String>::new(), "b is not complete");
        append(&log, "\n\nd\n");
        assert_eq!(
            poll(&mut tail).0,
            [
                "openclaw-2026-12-04.log:2:bc@5",
                "openclaw-2026-12-04.log:3:@6",
                "openclaw-2026-12-04.log:4:d@8"
            ]
        );
        assert_eq!(poll(&mut tail).0, Vec::<String>::new());
    }

    #[test]
    fn reads_a_rotated_file_to_its_end_then_the_new_one_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        append(&log, "1\n");
        let mut tail = LogTail::new(dir.path());
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:1@2"]);
        append(&log, "2\n");
        std::fs::rename(&log, dir.path().join("openclaw-2026-12-04.1.log")).expect("rename");
        append(&log, "3\n");
        let (lines, _) = poll(&mut tail);
        assert_eq!(
            lines,
            [
                "openclaw-2026-12-04.log:2:2@4",
                "openclaw-2026-12-04.log:1:3@2"
            ]
        );
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        append(&log, "first line\nsecond\n");
        let mut tail = LogTail::new(dir.path());
        assert_eq!(poll(&mut tail).0.len(), 2);
        std::fs::write(&log, "x\n").expect("truncate");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:x@2"]);
    }

    #[test]
    fn moves_to_the_next_day_once_it_is_written_and_ignores_older_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let today = dir.path().join("openclaw-2026-12-04.log");
        let older = dir.path().join("openclaw-2026-12-03.log");
        append(&older, "old\n");
        set_modified(&older, 1_000);
        append(&today, "t1\n");
        set_modified(&today, 2_000);
        append(&dir.path().join("other.log"), "not openclaw\n");
        let mut tail = LogTail::new(dir.path());
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:t1@3"]);
        append(&today, "t2\n");
        set_modified(&today, 3_000);
        let tomorrow = dir.path().join("openclaw-2026-12-05.log");
        append(&tomorrow, "n1\n");
        set_modified(&tomorrow, 4_000);
        tail.last_dir_check = None;
        assert_eq!(
            poll(&mut tail).0,
            [
                "openclaw-2026-12-04.log:2:t2@6",
                "openclaw-2026-12-05.log:1:n1@3"
            ]
        );
        assert_eq!(
            tail.current(),
            Some(tomorrow.as_path()),
            "stays on the newest file"
        );
    }

    #[test]
    fn an_overlong_line_is_skipped_and_reported_and_the_next_one_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        let mut tail = LogTail::new(dir.path());
        append(&log, &"x".repeat(MAX_LINE_BYTES + 10));
        assert_eq!(poll(&mut tail), (Vec::new(), Vec::new()));
        append(&log, "tail\nnext\n");
        let (lines, skipped) = poll(&mut tail);
        assert_eq!(
            lines,
            [format!(
                "openclaw-2026-12-04.log:2:next@{}",
                MAX_LINE_BYTES + 20
            )]
        );
        assert_eq!(
            skipped,
            [SkippedLine {
                path: log,
                line: 1,
                bytes: MAX_LINE_BYTES + 14
            }]
        );
    }
}
