//! Line-numbered streaming readers: whole files or newline-aligned byte ranges of a file, one
//! reused buffer, bad lines counted and the first few kept as `file:line: reason`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::analyze::error::AnalyzeError;

/// How many bad lines per file are reported with their reason.
pub const BAD_LINES_SHOWN: usize = 5;

/// Files larger than this are split into chunks read in parallel.
pub const CHUNK_BYTES: u64 = 8 * 1024 * 1024;

/// One bad line: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number within the file (within the chunk until [`LineStats::absorb`]).
    pub line: u64,
    /// What was wrong with it.
    pub reason: String,
}

/// Line counts of one file or chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Lines read (including blank and bad ones).
    pub lines: u64,
    /// Lines that held a record the parser used or understood.
    pub records: u64,
    /// Lines that could not be parsed.
    pub bad: u64,
    /// The first [`BAD_LINES_SHOWN`] bad lines.
    pub first_bad: Vec<BadLine>,
    /// The last line, when it has no newline yet: the file may still be being written, so it
    /// is left unparsed (counted in `lines`, neither a record nor bad).
    pub incomplete_last_line: Option<u64>,
}

impl LineStats {
    /// Counts a bad line, keeping its reason when it is among the first few.
    pub fn bad(&mut self, line: u64, reason: impl Into<String>) {
        self.bad += 1;
        if self.first_bad.len() < BAD_LINES_SHOWN {
            self.first_bad.push(BadLine {
                line,
                reason: reason.into(),
            });
        }
    }

    /// Takes the line count of a reading (and its incomplete last line, if any).
    pub fn read(&mut self, r: LinesRead) {
        self.lines = r.lines;
        self.incomplete_last_line = r.incomplete_last_line;
    }

    /// Adds the counts of a later chunk of the same file whose first line is `offset + 1`.
    pub fn absorb(&mut self, other: LineStats, offset: u64) {
        self.lines += other.lines;
        self.records += other.records;
        self.bad += other.bad;
        if let Some(line) = other.incomplete_last_line {
            self.incomplete_last_line = Some(line + offset);
        }
        for b in other.first_bad {
            if self.first_bad.len() < BAD_LINES_SHOWN {
                self.first_bad.push(BadLine {
                    line: b.line + offset,
                    reason: b.reason,
                });
            }
        }
    }
}

/// What a line reader went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinesRead {
    /// Lines, the incomplete last one included.
    pub lines: u64,
    /// The number of the last line when it had no newline (it was not passed on).
    pub incomplete_last_line: Option<u64>,
}

/// A newline-aligned part of a file: the lines that start in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The file.
    pub path: PathBuf,
    /// Index of the chunk within the file.
    pub index: usize,
    /// First byte owned by the chunk.
    pub start: u64,
    /// One past the last byte at which a line owned by the chunk may start.
    pub end: u64,
}

/// Splits a file into [`CHUNK_BYTES`]-sized chunks (one chunk for small files).
pub fn chunks(path: &Path, len: u64) -> Vec<Chunk> {
    let n = len.div_ceil(CHUNK_BYTES).max(1);
    (0..n)
        .map(|i| Chunk {
            path: path.to_owned(),
            index: i as usize,
            start: i * CHUNK_BYTES,
            end: if i + 1 == n {
                u64::MAX
            } else {
                (i + 1) * CHUNK_BYTES
            },
        })
        .collect()
}

/// Opens a file for reading, naming it in the error.
pub fn open(path: &Path) -> Result<File, AnalyzeError> {
    File::open(path).map_err(|source| AnalyzeError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Calls `f(line_number, line)` for every complete line of the chunk (without the newline; a
/// final `\r` is stripped too). Line numbers are 1-based and relative to the chunk's first
/// line. A last line without a newline is counted, not passed on.
pub fn for_each_line_in_chunk(
    chunk: &Chunk,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<LinesRead, AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: chunk.path.clone(),
        source,
    };
    let mut file = open(&chunk.path)?;
    let mut pos = chunk.start;
    let mut buf = Vec::with_capacity(64 * 1024);
    if chunk.start > 0 {
        // The line that straddles `start` belongs to the previous chunk: skip through the
        // newline at or after `start - 1`.
        file.seek(SeekFrom::Start(chunk.start - 1)).map_err(io)?;
        pos = chunk.start - 1;
    }
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    if chunk.start > 0 {
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        pos += n as u64;
        buf.clear();
    }
    let mut read = LinesRead::default();
    while pos < chunk.end {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        if !read.line(&buf) {
            break;
        }
        f(read.lines, trim_newline(&buf));
    }
    Ok(read)
}

/// Calls `f(line_number, line)` for every complete line of any reader (see
/// [`for_each_line_in_chunk`]).
pub fn for_each_line(
    path: &Path,
    reader: impl Read,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<LinesRead, AnalyzeError> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut read = LinesRead::default();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| AnalyzeError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 || !read.line(&buf) {
            return Ok(read);
        }
        f(read.lines, trim_newline(&buf));
    }
}

impl LinesRead {
    /// Counts `line` as read; whether it is complete (ends in a newline).
    fn line(&mut self, line: &[u8]) -> bool {
        self.lines += 1;
        let complete = line.ends_with(b"\n");
        if !complete {
            self.incomplete_last_line = Some(self.lines);
        }
        complete
    }
}

fn trim_newline(mut line: &[u8]) -> &[u8] {
    if let [rest @ .., b'\n'] = line {
        line = rest;
    }
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

/// Whether a line holds nothing but whitespace.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A short, one-line description of a JSON error for `file:line: reason` reports.
pub fn json_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    // serde_json appends " at line 1 column N"; the column is useful, the "line 1" is not.
    s.replace(" at line 1 column", " at column")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn chunks_own_each_line_exactly_once() {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        let mut expected = Vec::new();
        for i in 0..1000 {
            let line = format!("line-{i}-{}", "x".repeat(i % 37));
            writeln!(f, "{line}").expect("write");
            expected.push(line);
        }
        f.flush().expect("flush");
        let len = f.as_file().metadata().expect("meta").len();
        for size in [1u64, 7, 100, 4096] {
            let n = len.div_ceil(size);
            let mut got = Vec::new();
            for i in 0..n {
                let chunk = Chunk {
                    path: f.path().to_owned(),
                    index: i as usize,
                    start: i * size,
                    end: if i + 1 == n { u64::MAX } else { (i + 1) * size },
                };
                for_each_line_in_chunk(&chunk, |_, l| {
                    got.push(String::from_utf8_lossy(l).into_owned());
                })
                .expect("read");
            }
            assert_eq!(got, expected, "chunk size {size}");
        }
    }

    #[test]
    fn a_last_line_without_newline_is_counted_but_not_passed_on() {
        let text = b"one\ntwo\nthr";
        let mut got = Vec::new();
        let read = for_each_line(Path::new("f"), &text[..], |no, l| {
            got.push((no, l.to_vec()))
        })
        .expect("read");
        assert_eq!(got, [(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert_eq!(
            read,
            LinesRead {
                lines: 3,
                incomplete_last_line: Some(3)
            }
        );
        let whole = for_each_line(Path::new("f"), &b"one\n"[..], |_, _| {}).expect("read");
        assert_eq!(whole.incomplete_last_line, None);
    }

    #[test]
    fn stats_shift_line_numbers_of_later_chunks() {
        let mut a = LineStats {
            lines: 10,
            ..LineStats::default()
        };
        a.bad(3, "x");
        let mut b = LineStats {
            lines: 5,
            ..LineStats::default()
        };
        b.bad(2, "y");
        b.incomplete_last_line = Some(5);
        a.absorb(b, 10);
        assert_eq!(a.bad, 2);
        assert_eq!(a.first_bad[1].line, 12);
        assert_eq!(a.incomplete_last_line, Some(15));
    }
}
