//! Finding the input files and telling what each one holds from its first valid lines (the
//! name is only a hint: copied or renamed files still classify correctly).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// OpenClaw's JSONL file log (tslog, `openclaw-YYYY-MM-DD.log`).
    OpenclawLog,
    /// An OpenClaw session transcript (`<sessionId>.jsonl`).
    Transcript,
    /// OpenClaw's `sessions.json` index (session key -> session id).
    SessionIndex,
    /// OTLP requests captured by the receiver (`openclaw-otlp-*.jsonl`).
    OtlpCapture,
    /// An OpenClaw SQLite store (`agents/*/agent/*.sqlite`, `state/openclaw.sqlite`): by the
    /// SQLite header, whatever its name.
    SqliteStore,
    /// trace-claw action events (`events-*.jsonl`).
    Events,
    /// trace-claw resource samples (`resources-*.jsonl`).
    Resources,
    /// trace-claw process lifecycle events (`process-events-*.jsonl`).
    ProcessEvents,
    /// The tracked trees' time slots (`tree-costs-*.jsonl`, eBPF).
    TreeCosts,
    /// OpenClaw's per-run trajectory trace: not needed, skipped.
    Trajectory,
    /// A backup copy of a transcript (`*.jsonl.bak-*`): skipped so calls are not counted twice.
    Backup,
    /// Anything else: skipped.
    Unknown,
}

impl FileKind {
    /// Whether the analyzer reads the file's records.
    pub fn is_analyzed(self) -> bool {
        !matches!(self, Self::Trajectory | Self::Backup | Self::Unknown)
    }
}

/// Top-level keys that tell the formats apart; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
struct Probe {
    #[serde(rename = "type")]
    kind_str: Option<String>,
    #[serde(rename = "resourceSpans")]
    resource_spans: Option<IgnoredAny>,
    #[serde(rename = "resourceMetrics")]
    resource_metrics: Option<IgnoredAny>,
    #[serde(rename = "resourceLogs")]
    resource_logs: Option<IgnoredAny>,
    #[serde(rename = "_meta")]
    meta: Option<IgnoredAny>,
    time: Option<IgnoredAny>,
    timestamp: Option<IgnoredAny>,
    name: Option<IgnoredAny>,
    value: Option<IgnoredAny>,
    event_type: Option<IgnoredAny>,
    kind: Option<IgnoredAny>,
    pid: Option<IgnoredAny>,
    root_pid: Option<IgnoredAny>,
    comm: Option<IgnoredAny>,
    message: Option<IgnoredAny>,
}

const TRANSCRIPT_TYPES: &[&str] = &[
    "session",
    "message",
    "model_change",
    "thinking_level_change",
    "custom",
    "custom_message",
    "compaction",
];

fn classify_probe(p: &Probe) -> Option<FileKind> {
    if p.resource_spans.is_some() || p.resource_metrics.is_some() || p.resource_logs.is_some() {
        return Some(FileKind::OtlpCapture);
    }
    if p.meta.is_some() && (p.time.is_some() || p.message.is_some()) {
        return Some(FileKind::OpenclawLog);
    }
    if let Some(t) = &p.kind_str {
        if TRANSCRIPT_TYPES.contains(&t.as_str()) {
            return Some(FileKind::Transcript);
        }
        if t.contains('.') {
            return Some(FileKind::Trajectory);
        }
    }
    if p.timestamp.is_some() && p.name.is_some() && p.value.is_some() {
        return Some(FileKind::Resources);
    }
    if p.timestamp.is_some() && p.event_type.is_some() {
        return Some(FileKind::Events);
    }
    if p.timestamp.is_some() && p.root_pid.is_some() {
        return Some(FileKind::TreeCosts);
    }
    if p.timestamp.is_some() && p.kind.is_some() && p.pid.is_some() && p.comm.is_some() {
        return Some(FileKind::ProcessEvents);
    }
    None
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// How many bytes of a file classification looks at, at most.
const SNIFF_BYTES: u64 = 4 * 1024 * 1024;
/// How many non-blank lines classification tries.
const SNIFF_LINES: usize = 8;

/// Classifies a file by its first valid JSON lines; names decide only for backups and the
/// session index, and break ties when no line parses (e.g. a first line longer than the
/// sniff window).
pub fn classify(path: &Path) -> FileKind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains(".jsonl.bak") || name.ends_with(".bak") {
        return FileKind::Backup;
    }
    if name == "sessions.json" {
        return FileKind::SessionIndex;
    }
    if name.ends_with(".trajectory.jsonl") || name.ends_with(".trajectory-path.json") {
        return FileKind::Trajectory;
    }
    let Ok(file) = File::open(path) else {
        return FileKind::Unknown;
    };
    let mut reader = BufReader::new(file.take(SNIFF_BYTES));
    if reader.fill_buf().is_ok_and(|b| b.starts_with(SQLITE_MAGIC)) {
        return FileKind::SqliteStore;
    }
    let mut buf = Vec::new();
    let mut tried = 0;
    let mut truncated_first = None;
    while tried < SNIFF_LINES {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if super::lines::is_blank(&buf) {
            continue;
        }
        tried += 1;
        if let Ok(p) = serde_json::from_slice::<Probe>(&buf) {
            if let Some(kind) = classify_probe(&p) {
                return kind;
            }
        } else if truncated_first.is_none() && !buf.ends_with(b"\n") {
            truncated_first = Some(sniff_prefix(&buf));
        }
    }
    if let Some(Some(kind)) = truncated_first {
        return kind;
    }
    FileKind::Unknown
}

/// A line too long for the sniff window: look at the first keys only.
fn sniff_prefix(buf: &[u8]) -> Option<FileKind> {
    let head = &buf[..buf.len().min(256)];
    let has = |k: &[u8]| memchr::memmem::find(head, k).is_some();
    if has(b"\"resourceSpans\"") || has(b"\"resourceMetrics\"") || has(b"\"resourceLogs\"") {
        Some(FileKind::OtlpCapture)
    } else {
        None
    }
}

/// Every file to analyze: regular files under `trace_dir` (recursively), `openclaw-*.log` in
/// the OpenClaw log directory, and in the OpenClaw state directory `agents/*/sessions/*`, the
/// agents' SQLite stores `agents/*/agent/*.sqlite` and the shared `state/openclaw.sqlite`.
/// Missing directories are reported by the caller; duplicates (same canonical path) dropped.
pub fn discover(
    trace_dir: &Path,
    openclaw_logs: Option<&Path>,
    openclaw_state: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(trace_dir, 4, &mut out);
    if let Some(dir) = openclaw_logs {
        walk(dir, 1, &mut out);
    }
    if let Some(state) = openclaw_state {
        if let Ok(agents) = std::fs::read_dir(state.join("agents")) {
            for agent in agents.flatten() {
                walk(&agent.path().join("sessions"), 1, &mut out);
            }
        }
        out.extend(super::sqlite_store::stores_in(state));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    out.sort();
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() && depth > 1 {
            walk(&path, depth - 1, out);
        } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn kind_of(name: &str, content: &str) -> FileKind {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(content.as_bytes()))
            .expect("write");
        classify(&path)
    }

    #[test]
    fn classifies_by_content_not_name() {
        assert_eq!(
            kind_of(
                "whatever.txt",
                "garbage\n{\"timestamp\":\"2026-11-24T10:00:00Z\",\"name\":\"x\",\"value\":1}\n"
            ),
            FileKind::Resources
        );
        assert_eq!(
            kind_of(
                "resources-2026-11-24.jsonl",
                "{\"timestamp\":\"2026-11-24T10:00:00Z\",\"event_type\":\"llm\"}\n"
            ),
            FileKind::Events
        );
        assert_eq!(
            kind_of("a.jsonl", "{\"signal\":\"traces\",\"resourceSpans\":[]}\n"),
            FileKind::OtlpCapture
        );
        assert_eq!(
            kind_of(
                "x.jsonl",
                "{\"type\":\"session\",\"version\":3,\"id\":\"s\"}\n"
            ),
            FileKind::Transcript
        );
        assert_eq!(kind_of("x.jsonl", "not json\n"), FileKind::Unknown);
        assert_eq!(
            kind_of("s.jsonl.bak-1-2", "{\"type\":\"session\"}\n"),
            FileKind::Backup
        );
    }
}
