//! Follows a family of daily files in one directory as they grow (OpenClaw's file log
//! `openclaw-YYYY-MM-DD.log`, trace-claw's own `events-YYYY-MM-DD.jsonl`), handing out complete
//! lines once each, in order within each file.
//!
//! Every file of the family is followed by its identity (device and inode), not its name: a new
//! file (a new day, a size rotation) is read from its start, a file renamed away is still read
//! to its end, a file that shrinks was truncated and is read again from its start, and several
//! files may grow at once (events are filed by the day they started, OpenClaw's CLI and gateway
//! share a file). Files are read oldest change first. What the directory held when the tail
//! started is skipped, except (for [`LogTail::new`]) the newest file, read from its start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Longest line kept while waiting for its newline; a longer one is skipped and reported.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// How often, at most, the directory is listed for new and renamed files.
const DIR_CHECK: Duration = Duration::from_secs(1);

/// Which files of the directory are followed: `prefix…suffix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFamily {
    /// How the names start (`openclaw-`).
    pub prefix: &'static str,
    /// How they end (`.log`).
    pub suffix: &'static str,
}

impl FileFamily {
    /// Whether `name` is one of the family.
    pub fn has(self, name: &str) -> bool {
        name.len() > self.prefix.len() + self.suffix.len()
            && name.starts_with(self.prefix)
            && name.ends_with(self.suffix)
    }
}

/// OpenClaw's file log, `openclaw-YYYY-MM-DD.log` (and its rotated parts).
pub const OPENCLAW_LOGS: FileFamily = FileFamily {
    prefix: "openclaw-",
    suffix: ".log",
};

/// One complete line of a file.
#[derive(Debug, Clone, Copy)]
pub struct LogLine<'a> {
    /// The file (its name when it was last listed).
    pub path: &'a Path,
    /// Its line number (from 1; counted from where the tail started reading the file).
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

/// One file being followed.
#[derive(Debug)]
struct Followed {
    path: PathBuf,
    identity: (u64, u64),
    modified: SystemTime,
    /// Open while the file grows; a file that has not changed since the tail skipped its
    /// content is left closed (a month of idle daily files holds no descriptors) and only
    /// looked at, until it changes.
    file: Option<File>,
    offset: u64,
    /// Complete lines handed out so far (the number of the next one is this + 1).
    lines: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// `partial` belongs to an over-long line that is being skipped.
    skipping: bool,
    /// Whether the last listing of the directory still showed it.
    listed: bool,
}

/// Where the first listing starts reading the files already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstListing {
    /// The newest from its start, the others from their end.
    ReadsNewest,
    /// Every one from its end.
    SkipsAll,
    /// The first listing was made.
    Made,
}

/// Reads the lines appended to a family of files.
#[derive(Debug)]
pub struct LogTail {
    dir: PathBuf,
    family: FileFamily,
    files: Vec<Followed>,
    start: FirstListing,
    last_dir_check: Option<Instant>,
    buf: Vec<u8>,
}

impl LogTail {
    /// Follows `family` in `dir` (which need not exist yet), from the start of its newest file.
    pub fn new(dir: &Path, family: FileFamily) -> Self {
        Self {
            dir: dir.to_owned(),
            family,
            files: Vec::new(),
            start: FirstListing::ReadsNewest,
            last_dir_check: None,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Follows `family` in `dir` from now on: what its files hold already is skipped (a file
    /// that appears later is read from its start).
    pub fn from_end(dir: &Path, family: FileFamily) -> Self {
        let mut tail = Self {
            start: FirstListing::SkipsAll,
            ..Self::new(dir, family)
        };
        // Nothing to skip when the directory cannot be read now.
        let _listed = tail.list();
        tail
    }

    /// The directory followed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls `line` for every complete line written since the last call, and `skipped` for
    /// each line longer than [`MAX_LINE_BYTES`].
    pub fn poll(
        &mut self,
        mut line: impl FnMut(LogLine<'_>),
        mut skipped: impl FnMut(SkippedLine),
    ) -> io::Result<()> {
        let due = self.last_dir_check.is_none_or(|t| t.elapsed() >= DIR_CHECK);
        if due {
            self.list()?;
        }
        for f in &mut self.files {
            if f.file.is_none() && !due {
                // A closed file that grew (between listings) is opened now.
                let grew = std::fs::metadata(&f.path)
                    .is_ok_and(|m| identity(&m) == f.identity && m.len() != f.offset);
                if grew {
                    f.file = open(&f.path)?;
                }
            }
            read_new(f, &mut self.buf, &mut line, &mut skipped)?;
        }
        // A file gone from the listing was read to its end just now: let it go.
        if due {
            self.files.retain(|f| f.listed);
        }
        Ok(())
    }

    /// Lists the family's files: starts following new ones, notes renames, and orders the
    /// files oldest change first.
    fn list(&mut self) -> io::Result<()> {
        self.last_dir_check = Some(Instant::now());
        let found = family_files(&self.dir, self.family)?;
        for f in &mut self.files {
            f.listed = false;
        }
        let newest = found.iter().map(|(_, m)| m.modified().ok()).max().flatten();
        let start = std::mem::replace(&mut self.start, FirstListing::Made);
        for (path, meta) in found {
            let id = identity(&meta);
            if let Some(known) = self.files.iter_mut().find(|f| f.identity == id) {
                known.listed = true;
                if known.file.is_none() && meta.len() != known.offset {
                    known.file = open(&path)?;
                }
                known.path = path;
                known.modified = meta.modified()?;
                continue;
            }
            let modified = meta.modified()?;
            let offset = match start {
                FirstListing::Made => 0,
                FirstListing::ReadsNewest if Some(modified) == newest => 0,
                FirstListing::ReadsNewest | FirstListing::SkipsAll => meta.len(),
            };
            let file = if offset == meta.len() {
                None
            } else {
                match open(&path)? {
                    Some(f) => Some(f),
                    None => continue,
                }
            };
            log::debug!("following {} from byte {offset}", path.display());
            self.files.push(Followed {
                path,
                identity: id,
                modified,
                file,
                offset,
                lines: 0,
                partial: Vec::new(),
                skipping: false,
                listed: true,
            });
        }
        self.files
            .sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        Ok(())
    }
}

/// `path` opened for reading; `None` when it is gone.
fn open(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads what `f` holds past its offset, handing out complete lines.
fn read_new(
    f: &mut Followed,
    buf: &mut [u8],
    line: &mut impl FnMut(LogLine<'_>),
    skipped: &mut impl FnMut(SkippedLine),
) -> io::Result<()> {
    let Some(file) = f.file.as_mut() else {
        return Ok(());
    };
    let len = file.metadata()?.len();
    if len < f.offset {
        log::info!(
            "{} was truncated; reading it again from the start",
            f.path.display()
        );
        f.offset = 0;
        f.lines = 0;
        f.partial.clear();
        f.skipping = false;
    }
    if len == f.offset {
        return Ok(());
    }
    file.seek(SeekFrom::Start(f.offset))?;
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut line_end = f.offset;
        f.offset += n as u64;
        let mut rest = &buf[..n];
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            f.lines += 1;
            line_end += (end + 1) as u64;
            let at = |text| LogLine {
                path: &f.path,
                number: f.lines,
                end: line_end,
                text,
            };
            if f.skipping {
                skipped(SkippedLine {
                    path: f.path.clone(),
                    line: f.lines,
                    bytes: f.partial.len() + end,
                });
                f.skipping = false;
                f.partial.clear();
            } else if f.partial.is_empty() {
                line(at(&rest[..end]));
            } else {
                f.partial.extend_from_slice(&rest[..end]);
                line(at(&f.partial));
                f.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        if f.skipping {
            continue;
        }
        f.partial.extend_from_slice(rest);
        if f.partial.len() > MAX_LINE_BYTES {
            f.skipping = true;
        }
    }
}

/// The files of `family` in `dir` with their metadata (none when `dir` does not exist).
fn family_files(dir: &Path, family: FileFamily) -> io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(|n| family.has(n)) {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            if meta.is_file() {
                out.push((entry.path(), meta));
            }
        }
    }
    Ok(out)
}

/// The most recently modified file of `family` in `dir` (the later name on a tie), if any.
pub fn newest_log(
    dir: &Path,
    family: FileFamily,
) -> io::Result<Option<(PathBuf, std::fs::Metadata)>> {
    let mut best: Option<(SystemTime, PathBuf, std::fs::Metadata)> = None;
    for (path, meta) in family_files(dir, family)? {
        let modified = meta.modified()?;
        if best
            .as_ref()
            .is_none_or(|(t, p, _)| (modified, &path) > (*t, p))
        {
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

    /// Polls with a fresh listing of the directory (which the tail otherwise makes once a
    /// second).
    fn poll(tail: &mut LogTail) -> (Vec<String>, Vec<SkippedLine>) {
        tail.last_dir_check = None;
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
        let mut tail = LogTail::new(dir.path(), OPENCLAW_LOGS);
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
        let mut tail = LogTail::new(dir.path(), OPENCLAW_LOGS);
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:1@2"]);
        append(&log, "2\n");
        std::fs::rename(&log, dir.path().join("openclaw-2026-12-04.1.log")).expect("rename");
        append(&log, "3\n");
        let (lines, _) = poll(&mut tail);
        assert_eq!(
            lines,
            [
                "openclaw-2026-12-04.1.log:2:2@4",
                "openclaw-2026-12-04.log:1:3@2"
            ]
        );
    }

    #[test]
    fn from_end_hands_out_only_lines_written_after_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        append(&log, "before\n");
        append(&dir.path().join("openclaw-.log"), "not a dated file\n");
        let mut tail = LogTail::from_end(dir.path(), OPENCLAW_LOGS);
        assert_eq!(poll(&mut tail).0, Vec::<String>::new());
        append(&log, "after\n");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:after@13"]);
    }

    #[test]
    fn files_that_do_not_change_hold_no_descriptor() {
        let dir = tempfile::tempdir().expect("tempdir");
        for day in 1..=3 {
            append(
                &dir.path().join(format!("openclaw-2026-12-0{day}.log")),
                "old\n",
            );
        }
        let mut tail = LogTail::from_end(dir.path(), OPENCLAW_LOGS);
        assert_eq!(tail.files.len(), 3);
        assert!(tail.files.iter().all(|f| f.file.is_none()));
        append(&dir.path().join("openclaw-2026-12-02.log"), "new\n");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-02.log:1:new@8"]);
        assert_eq!(tail.files.iter().filter(|f| f.file.is_some()).count(), 1);
    }

    #[test]
    fn a_truncated_file_is_read_again_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        append(&log, "first line\nsecond\n");
        let mut tail = LogTail::new(dir.path(), OPENCLAW_LOGS);
        assert_eq!(poll(&mut tail).0.len(), 2);
        std::fs::write(&log, "x\n").expect("truncate");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:x@2"]);
    }

    #[test]
    fn reads_the_next_day_from_its_start_and_only_new_lines_of_older_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let today = dir.path().join("openclaw-2026-12-04.log");
        let older = dir.path().join("openclaw-2026-12-03.log");
        append(&older, "old\n");
        set_modified(&older, 1_000);
        append(&today, "t1\n");
        set_modified(&today, 2_000);
        append(&dir.path().join("other.log"), "not openclaw\n");
        let mut tail = LogTail::new(dir.path(), OPENCLAW_LOGS);
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-04.log:1:t1@3"]);
        append(&today, "t2\n");
        set_modified(&today, 3_000);
        let tomorrow = dir.path().join("openclaw-2026-12-05.log");
        append(&tomorrow, "n1\n");
        set_modified(&tomorrow, 4_000);
        assert_eq!(
            poll(&mut tail).0,
            [
                "openclaw-2026-12-04.log:2:t2@6",
                "openclaw-2026-12-05.log:1:n1@3"
            ]
        );
        // A late line in an older file (another process, an action filed by its start day).
        append(&older, "late\n");
        assert_eq!(poll(&mut tail).0, ["openclaw-2026-12-03.log:1:late@9"]);
    }

    #[test]
    fn an_overlong_line_is_skipped_and_reported_and_the_next_one_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("openclaw-2026-12-04.log");
        let mut tail = LogTail::new(dir.path(), OPENCLAW_LOGS);
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
