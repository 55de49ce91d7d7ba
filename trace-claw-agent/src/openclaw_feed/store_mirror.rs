//! OpenClaw's SQLite stores followed while collecting: the transcript rows each store gains
//! are appended, as the JSONL transcripts they stand for, to
//! `<trace dir>/openclaw-state/<agent>/<store>/<session id>.jsonl`, and its session tables to a
//! `sessions.json` index beside them. `analyze` of the trace directory then reads the same
//! events, through the same transcript reader, that `analyze --openclaw-state` reads from the
//! stores: the same tokens, cost and model per call, and the session keys.
//!
//! Each store is opened like `analyze` opens it (read-only, `query_only`, WAL-aware), with a
//! short busy timeout so a writer's lock delays a poll by [`LIVE_BUSY_TIMEOUT`] at most. A poll
//! costs one `PRAGMA data_version` when nothing was committed since the last; otherwise it reads
//! the rows past the store's rowid high-water mark, which is kept in `.cursor` beside the copies
//! so a restarted agent does not copy a row twice. A store that appears after the start is
//! picked up at the next directory scan; one that is locked, not yet a complete database, or
//! without OpenClaw's tables is reported once (and again when the reason changes) and retried.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::analyze::source::parsed::{Parsed, SessionInfo};
use crate::analyze::source::sqlite_store::{self, layout, open, payload, sessions};
use crate::analyze::source::transcript::SESSION_INFO_KEY;

/// How long a poll waits for a writer's lock before trying again at the next poll.
pub const LIVE_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// How often the state directory is listed for stores created since.
const RESCAN: Duration = Duration::from_secs(2);

/// The trace directory's subdirectory that holds the copies.
pub const MIRROR_DIR: &str = "openclaw-state";

/// The file, beside a store's copies, holding the rowid of the last row copied.
const CURSOR_FILE: &str = ".cursor";

/// The transcript columns copied, after the rowid.
const EVENT_COLUMNS: [&str; 5] = [
    "session_id",
    "seq",
    "event_json",
    "event_zstd",
    "event_utf8_bytes",
];

/// Why a poll of one store failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("{0}")]
    Sqlite(String),
    #[error("has no transcript_events table yet (a store OpenClaw is still creating?)")]
    NoTranscripts,
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for PollError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(sqlite_store::explain(
            &e,
            LIVE_BUSY_TIMEOUT,
            "retrying at the next poll",
        ))
    }
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> PollError + '_ {
    move |source| PollError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// What the mirror has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    /// Stores followed.
    pub stores: u64,
    /// Transcript rows copied.
    pub rows: u64,
    /// Rows that held no usable event (reported, skipped).
    pub bad_rows: u64,
}

/// One store followed.
struct Store {
    path: PathBuf,
    /// Where its copies go.
    out: PathBuf,
    agent: Option<String>,
    conn: Option<Connection>,
    /// `PRAGMA data_version` at the last complete poll: unchanged, nothing was committed.
    data_version: Option<i64>,
    /// The rowid of the last transcript row copied.
    cursor: i64,
    /// The `sessions.json` last written.
    index: String,
    /// The problem last reported, so that a lasting one is reported once.
    problem: Option<String>,
}

impl Store {
    fn new(path: PathBuf, mirror_root: &Path) -> Self {
        let agent = sqlite_store::agent_of_path(&path);
        let stem = path
            .file_stem()
            .map_or_else(|| "store".to_owned(), |s| safe_name(&s.to_string_lossy()));
        let out = mirror_root
            .join(
                agent
                    .as_deref()
                    .map_or_else(|| "state".to_owned(), safe_name),
            )
            .join(stem);
        let cursor = std::fs::read_to_string(out.join(CURSOR_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Self {
            path,
            out,
            agent,
            conn: None,
            data_version: None,
            cursor,
            index: String::new(),
            problem: None,
        }
    }

    /// Copies what was committed since the last poll; returns the rows copied and the bad ones.
    fn poll(&mut self) -> Result<(u64, u64), PollError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            slot => {
                let c = open::read_only(&self.path)?;
                c.busy_timeout(LIVE_BUSY_TIMEOUT)?;
                slot.insert(c)
            }
        };
        let version: i64 = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        if self.data_version == Some(version) {
            return Ok((0, 0));
        }
        // One read transaction: rows and sessions from the same commit.
        let snapshot = conn.unchecked_transaction()?;
        let tables = layout::detect(&snapshot)?;
        let events = tables
            .transcript_events
            .as_ref()
            .ok_or(PollError::NoTranscripts)?;
        std::fs::create_dir_all(&self.out).map_err(write_error(&self.out))?;
        let copied = copy_rows(&snapshot, events, &self.path, &self.out, &mut self.cursor)?;
        let mut parsed = Parsed::default();
        sessions::read(
            &snapshot,
            tables.session_windows.as_ref(),
            tables.session_nodes.as_ref(),
            self.agent.as_deref(),
            &mut parsed,
        )?;
        snapshot.finish()?;
        let index = session_index(&parsed);
        if index != self.index {
            let path = self.out.join("sessions.json");
            write_atomically(&path, index.as_bytes())?;
            self.index = index;
        }
        write_atomically(
            &self.out.join(CURSOR_FILE),
            self.cursor.to_string().as_bytes(),
        )?;
        self.data_version = Some(version);
        Ok(copied)
    }
}

/// Appends the rows past `cursor` to their sessions' files and moves `cursor` past them.
fn copy_rows(
    conn: &Connection,
    events: &layout::Table,
    store: &Path,
    out: &Path,
    cursor: &mut i64,
) -> Result<(u64, u64), PollError> {
    let mut stmt = conn.prepare(&events.select_after_rowid(&EVENT_COLUMNS))?;
    let mut rows = stmt.query([*cursor])?;
    let mut files: HashMap<String, BufWriter<File>> = HashMap::new();
    let (mut copied, mut bad) = (0u64, 0u64);
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        let seq: i64 = row.get(2).unwrap_or(-1);
        let session = row.get::<_, String>(1).ok();
        let event = payload::event(row.get_ref(3)?, row.get_ref(4)?, row.get_ref(5)?);
        *cursor = rowid;
        let (session, json) = match (session, event) {
            (Some(s), Ok(json)) => (s, json),
            (session, event) => {
                let why = event
                    .err()
                    .unwrap_or_else(|| "session_id is not text".into());
                log::warn!(
                    "OpenClaw store '{}': session '{}' seq {seq}: {why}; row skipped",
                    store.display(),
                    session.as_deref().unwrap_or("?")
                );
                bad += 1;
                continue;
            }
        };
        let line = one_line(&json);
        let path = out.join(format!("{}.jsonl", safe_name(&session)));
        let file = match files.entry(session) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(write_error(&path))?;
                v.insert(BufWriter::new(f))
            }
        };
        file.write_all(&line)
            .and_then(|()| file.write_all(b"\n"))
            .map_err(write_error(&path))?;
        copied += 1;
    }
    for (session, mut f) in files {
        let path = out.join(format!("{}.jsonl", safe_name(&session)));
        f.flush().map_err(write_error(&path))?;
    }
    Ok((copied, bad))
}

/// The event as one JSONL line: as stored when it has no line break (OpenClaw writes compact
/// JSON), else re-serialised compactly (or kept with its breaks escaped when it is not JSON).
fn one_line(json: &[u8]) -> Vec<u8> {
    if memchr::memchr2(b'\n', b'\r', json).is_none() {
        return json.to_vec();
    }
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| {
            json.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                .collect()
        })
}

/// `sessions.json` in OpenClaw's JSONL layout (`{"<session key>": {"sessionId": ...}}`) for
/// the session keys the store's session tables name, each with what those tables say of the
/// session under [`SESSION_INFO_KEY`].
fn session_index(parsed: &Parsed) -> String {
    let infos: HashMap<&str, &SessionInfo> = parsed
        .session_infos
        .iter()
        .map(|(id, info)| (id.as_str(), info))
        .collect();
    let index: BTreeMap<&str, serde_json::Value> = parsed
        .session_keys
        .iter()
        .map(|(id, key)| {
            let mut entry = serde_json::json!({ "sessionId": id });
            if let Some(info) = infos.get(id.as_str()) {
                entry[SESSION_INFO_KEY] = serde_json::json!(info);
            }
            (key.as_str(), entry)
        })
        .collect();
    serde_json::to_string(&index).unwrap_or_default()
}

/// Writes `bytes` to `path` through a temporary file and a rename: a reader never sees half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PollError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(write_error(path))
}

/// `name` with every byte but `[A-Za-z0-9._-]` replaced by `_`, and no leading dot: a single
/// path component whatever OpenClaw put in it.
fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => s,
    }
}

/// Follows every store under one OpenClaw state directory into one trace directory.
pub struct StoreMirror {
    state_dir: PathBuf,
    root: PathBuf,
    stores: BTreeMap<PathBuf, Store>,
    scanned: Option<Instant>,
    counts: MirrorCounts,
}

impl StoreMirror {
    /// Follows the stores under `state_dir` into `trace_dir`.
    pub fn new(state_dir: &Path, trace_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_path_buf(),
            root: trace_dir.join(MIRROR_DIR),
            stores: BTreeMap::new(),
            scanned: None,
            counts: MirrorCounts::default(),
        }
    }

    /// The state directory followed.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// What the mirror has done so far.
    pub fn counts(&self) -> MirrorCounts {
        self.counts
    }

    /// Picks up new stores now and then, and copies what each gained; problems are logged,
    /// once each, and never stop the other stores.
    pub fn poll(&mut self) {
        if self.scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            self.scanned = Some(Instant::now());
            for path in sqlite_store::stores_in(&self.state_dir) {
                if !self.stores.contains_key(&path) {
                    log::info!("following OpenClaw store '{}'", path.display());
                    self.counts.stores += 1;
                    let store = Store::new(path.clone(), &self.root);
                    self.stores.insert(path, store);
                }
            }
        }
        for store in self.stores.values_mut() {
            match store.poll() {
                Ok((rows, bad)) => {
                    self.counts.rows += rows;
                    self.counts.bad_rows += bad;
                    if store.problem.take().is_some() {
                        log::info!("OpenClaw store '{}' readable again", store.path.display());
                    }
                }
                Err(e) => {
                    // Reopen next time: a store still being created may be complete by then.
                    store.conn = None;
                    store.data_version = None;
                    let text = crate::error::error_chain(&e);
                    if store.problem.as_deref() != Some(text.as_str()) {
                        log::warn!(
                            "OpenClaw store '{}': {text}; the other stores go on",
                            store.path.display()
                        );
                        store.problem = Some(text);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_store_stay_one_path_component() {
        assert_eq!(safe_name("8388168c-cf83.x_y"), "8388168c-cf83.x_y");
        assert_eq!(safe_name("../etc/passwd"), "_._etc_passwd");
        assert_eq!(safe_name(".cursor"), "_cursor");
    }

    #[test]
    fn an_event_with_line_breaks_becomes_one_line_of_the_same_json() {
        let pretty = b"{\n  \"type\": \"message\",\n  \"n\": 1\n}";
        let line = one_line(pretty);
        assert!(!line.contains(&b'\n'));
        let a: serde_json::Value = serde_json::from_slice(pretty).expect("json");
        let b: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(a, b);
        assert_eq!(one_line(b"{\"a\":1}"), b"{\"a\":1}");
    }

    #[test]
    fn rows_are_copied_once_across_polls_and_restarts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store_dir = dir.path().join("state/agents/main/agent");
        std::fs::create_dir_all(&store_dir).expect("dirs");
        let path = store_dir.join("openclaw-agent.sqlite");
        let writer = Connection::open(&path).expect("create");
        writer
            .execute_batch(
                "PRAGMA journal_mode = wal;
                 CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_json TEXT);
                 INSERT INTO transcript_events VALUES ('s', 1, '{\"type\":\"session\",\"id\":\"s\"}');",
            )
            .expect("schema");
        let trace = dir.path().join("trace");
        let copy = trace.join("openclaw-state/main/openclaw-agent/s.jsonl");
        let lines = || std::fs::read_to_string(&copy).map_or(0, |s| s.lines().count());
        let mut mirror = StoreMirror::new(&dir.path().join("state"), &trace);
        mirror.poll();
        mirror.poll();
        assert_eq!(lines(), 1);
        writer
            .execute(
                "INSERT INTO transcript_events VALUES ('s', 2, '{\"type\":\"message\"}')",
                [],
            )
            .expect("insert");
        mirror.poll();
        assert_eq!(lines(), 2);
        // A new agent on the same trace directory resumes from the cursor.
        let mut again = StoreMirror::new(&dir.path().join("state"), &trace);
        again.poll();
        assert_eq!(lines(), 2);
        assert_eq!(again.counts().rows, 0);
        assert_eq!(mirror.counts().rows, 2);
    }
}
