//! Daily JSON Lines files (`<prefix>-YYYY-MM-DD.jsonl`, UTC date), written so that the file
//! always ends on a complete line: records are serialized into memory and appended with one
//! `write_all` per flush, through a file opened in append mode.
//!
//! The `jsonl` sink, the OTLP receiver's capture and the event log all write through
//! [`DailyJsonl`], and every file name prefix they use is defined here. Failures are
//! [`ExportError::Io`], naming the file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use trace_claw_common::time::Timestamp;

use crate::export::ExportError;

/// File name prefix of resource samples.
pub const RESOURCES_PREFIX: &str = "resources";
/// File name prefix of process lifecycle events.
pub const PROCESS_EVENTS_PREFIX: &str = "process-events";
/// File name prefix of action events.
pub const EVENTS_PREFIX: &str = "events";
/// File name prefix of the OTLP receiver's capture.
pub const OTLP_PREFIX: &str = "openclaw-otlp";

/// The path of the daily file of `prefix` holding records from `at`.
pub fn daily_path(dir: &Path, prefix: &str, at: Timestamp) -> PathBuf {
    dir.join(format!("{prefix}-{}.jsonl", at.utc_date()))
}

/// Appends records to daily files, one complete line each.
pub struct DailyJsonl {
    dir: PathBuf,
    prefix: &'static str,
    pending: Vec<u8>,
    /// The UTC day (days since the epoch) of the buffered lines, and its file.
    pending_day: Option<(i64, PathBuf)>,
    file: Option<(PathBuf, File)>,
}

impl DailyJsonl {
    /// Files `<dir>/<prefix>-YYYY-MM-DD.jsonl`; `dir` is created when missing.
    pub fn new(dir: &Path, prefix: &'static str) -> Result<Self, ExportError> {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            prefix,
            pending: Vec::with_capacity(64 * 1024),
            pending_day: None,
            file: None,
        })
    }

    /// Buffers one record dated `at`; a record of a new day flushes the previous day first.
    pub fn append<T: Serialize>(&mut self, at: Timestamp, record: &T) -> Result<(), ExportError> {
        // Comparing day numbers, not paths: this runs once per sample.
        let day = at.utc_day();
        if self.pending_day.as_ref().is_some_and(|(d, _)| *d != day) {
            self.flush()?;
        }
        let start = self.pending.len();
        if let Err(e) = serde_json::to_writer(&mut self.pending, record) {
            self.pending.truncate(start);
            return Err(ExportError::Io {
                path: daily_path(&self.dir, self.prefix, at),
                source: e.into(),
            });
        }
        self.pending.push(b'\n');
        if self.pending_day.is_none() {
            self.pending_day = Some((day, daily_path(&self.dir, self.prefix, at)));
        }
        Ok(())
    }

    /// Writes the buffered lines with one `write_all`. On failure the lines are kept and retried
    /// at the next flush, up to 64 MiB, beyond which the oldest are dropped.
    pub fn flush(&mut self) -> Result<(), ExportError> {
        let Some((_, path)) = self.pending_day.clone() else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.write_pending(&path);
        match result {
            Ok(()) => {
                self.pending.clear();
                self.pending_day = None;
                Ok(())
            }
            Err(source) => {
                self.file = None;
                self.trim_pending();
                Err(ExportError::Io { path, source })
            }
        }
    }

    fn write_pending(&mut self, path: &Path) -> std::io::Result<()> {
        if self.file.as_ref().is_none_or(|(p, _)| p != path) {
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            self.file = Some((path.to_owned(), file));
        }
        let Some((_, file)) = self.file.as_mut() else {
            return Ok(());
        };
        let before = file.metadata()?.len();
        let written = file.write_all(&self.pending);
        if written.is_err() {
            // A short write (disk full) leaves a partial line, and the retry would append the
            // whole buffer after it: cut the file back so it ends on a complete line again.
            // This file has one writer (events files: one line per `log-event` call), so the
            // cut removes only our own bytes. If even the cut fails, the write error is the
            // one to report; the torn line then stays.
            if let Err(e) = file.set_len(before) {
                log::debug!(
                    "cannot cut '{}' back to {before} bytes: {e}",
                    path.display()
                );
            }
        }
        written
    }

    fn trim_pending(&mut self) {
        const LIMIT: usize = 64 * 1024 * 1024;
        if self.pending.len() > LIMIT {
            let cut = self.pending.len() - LIMIT;
            let boundary = self.pending[cut..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.pending.len(), |i| cut + i + 1);
            self.pending.drain(..boundary);
        }
    }
}

#[cfg(test)]
mod tests {
    use trace_claw_common::sample::MetricSample;

    use super::*;

    #[test]
    fn writes_complete_lines_that_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = DailyJsonl::new(dir.path(), RESOURCES_PREFIX).expect("open");
        let t = Timestamp::parse_rfc3339("2026-11-24T23:59:59Z").expect("ts");
        let sample = MetricSample {
            timestamp: t,
            name: "x".into(),
            value: 1.5,
            unit: "1".into(),
            labels: Default::default(),
        };
        w.append(t, &sample).expect("append");
        let next_day = Timestamp(t.0 + 2_000_000_000);
        w.append(
            next_day,
            &MetricSample {
                timestamp: next_day,
                ..sample.clone()
            },
        )
        .expect("append");
        w.flush().expect("flush");
        let day1 =
            std::fs::read_to_string(dir.path().join("resources-2026-11-24.jsonl")).expect("day 1");
        let day2 =
            std::fs::read_to_string(dir.path().join("resources-2026-11-25.jsonl")).expect("day 2");
        assert!(day1.ends_with('\n') && day2.ends_with('\n'));
        let back: MetricSample = serde_json::from_str(day1.trim_end()).expect("parses");
        assert_eq!(back, sample);
    }
}
