//! The two reading passes: every file to the reader of its kind, in parallel (rayon; whole
//! files for the formats that need their earlier lines, 8 MiB chunks for stateless lines),
//! with each file's line counts gathered chunk by chunk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::action::Action;
use super::classify::FileKind;
use super::lines::{self, Chunk, LineStats};
use super::parsed::Parsed;
use super::resources::aggregate::{Aggregate, Plan};
use super::resources::read::read_chunk;
use super::{openclaw_log, otlp, records, sqlite_store, transcript};
use crate::analyze::error::AnalyzeError;

/// Line counts per input file (by index), gathered chunk by chunk.
#[derive(Debug, Default)]
pub struct FileStats(HashMap<usize, Vec<(usize, LineStats)>>);

impl FileStats {
    /// Records the counts of chunk `chunk` of file `file`.
    pub fn push(&mut self, file: usize, chunk: usize, stats: LineStats) {
        self.0.entry(file).or_default().push((chunk, stats));
    }

    /// The counts of file `file`, its chunks folded in order (later chunks' line numbers
    /// shifted by the lines before them).
    pub fn take(&mut self, file: usize) -> LineStats {
        let mut parts = self.0.remove(&file).unwrap_or_default();
        parts.sort_by_key(|(i, _)| *i);
        let mut total = LineStats::default();
        for (_, s) in parts {
            let offset = total.lines;
            total.absorb(s, offset);
        }
        total
    }
}

enum Task {
    Whole(usize),
    Part(usize, Chunk),
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn read_whole(path: &Path, kind: FileKind) -> Result<Parsed, AnalyzeError> {
    if kind == FileKind::SqliteStore {
        return Ok(sqlite_store::read(path));
    }
    let file = lines::open(path)?;
    match kind {
        FileKind::Transcript => transcript::read(path, file),
        FileKind::SessionIndex => transcript::read_index(path, file),
        FileKind::OpenclawLog => openclaw_log::read(path, file),
        FileKind::OtlpCapture => otlp::read(path, file),
        _ => Ok(Parsed::default()),
    }
}

/// A file that could not be read counts as one bad line saying why.
fn unreadable(e: &AnalyzeError) -> LineStats {
    let mut s = LineStats::default();
    let cause = std::error::Error::source(e).map_or_else(String::new, ToString::to_string);
    s.bad(0, format!("{e}: {cause}"));
    s
}

/// Pass 1: everything but resource samples, files (and chunks of event files) in parallel.
/// The actions come apart, one list per file or chunk in reading order, so that the merge can
/// take them over one list at a time instead of holding a concatenated copy beside them.
pub fn read_sources(
    files: &[PathBuf],
    kinds: &[FileKind],
    stats: &mut FileStats,
) -> (Parsed, Vec<Vec<Action>>) {
    let mut tasks = Vec::new();
    for (i, (p, k)) in files.iter().zip(kinds).enumerate() {
        match k {
            FileKind::Events | FileKind::ProcessEvents => tasks.extend(
                lines::chunks(p, file_len(p))
                    .into_iter()
                    .map(|c| Task::Part(i, c)),
            ),
            FileKind::Transcript
            | FileKind::SessionIndex
            | FileKind::OpenclawLog
            | FileKind::OtlpCapture
            | FileKind::SqliteStore => tasks.push(Task::Whole(i)),
            _ => {}
        }
    }
    let results: Vec<(usize, usize, Parsed)> = tasks
        .into_par_iter()
        .map(|t| {
            let (i, chunk, r) = match t {
                Task::Whole(i) => (i, 0, read_whole(&files[i], kinds[i])),
                Task::Part(i, c) if kinds[i] == FileKind::Events => {
                    (i, c.index, records::read_events(&c))
                }
                Task::Part(i, c) => (i, c.index, records::read_process_events(&c)),
            };
            let mut parsed = r.unwrap_or_else(|e| Parsed {
                stats: unreadable(&e),
                ..Parsed::default()
            });
            // Every file's actions stay until the merge: no spare room left behind.
            parsed.actions.shrink_to_fit();
            (i, chunk, parsed)
        })
        .collect();
    let mut all = Parsed::default();
    let mut actions = Vec::with_capacity(results.len());
    for (i, chunk, mut p) in results {
        stats.push(i, chunk, std::mem::take(&mut p.stats));
        actions.push(std::mem::take(&mut p.actions));
        all.extend(p);
    }
    (all, actions)
}

/// Pass 2: resource samples, chunks in parallel, merged as they finish (rayon reduce) so
/// partial aggregates never pile up.
pub fn read_resources(
    files: &[PathBuf],
    kinds: &[FileKind],
    plan: &Plan,
    stats: &mut FileStats,
) -> Aggregate {
    let tasks: Vec<(usize, Chunk)> = files
        .iter()
        .zip(kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == FileKind::Resources)
        .flat_map(|(i, (p, _))| {
            lines::chunks(p, file_len(p))
                .into_iter()
                .map(move |c| (i, c))
        })
        .collect();
    let mut agg = tasks
        .into_par_iter()
        .map(|(i, c)| {
            let mut a = read_chunk(&c, plan).unwrap_or_else(|e| Aggregate {
                lines: unreadable(&e),
                ..Aggregate::default()
            });
            let lines = std::mem::take(&mut a.lines);
            a.chunk_lines.push((i, c.index, lines));
            a
        })
        .reduce(
            || Aggregate::new(plan),
            |mut a, b| {
                a.merge(b, plan.timeline_limit);
                a
            },
        );
    for (i, chunk, lines) in std::mem::take(&mut agg.chunk_lines) {
        stats.push(i, chunk, lines);
    }
    agg
}
