//! OpenClaw's SQLite stores (2026.5 and later), read in place: databases built from the real
//! 2026.4.29 transcripts in both layouts (`event_json`, and `event_zstd` with
//! `event_utf8_bytes`) give exactly the calls, tokens and cost the JSONL transcripts give; a
//! locked, a truncated and a half-written (WAL) store are handled without stopping the rest.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::util::{agent, fixture, run, text};

/// The real transcripts, one file per session.
pub fn transcripts() -> Vec<(String, Vec<String>)> {
    let dir = fixture("openclaw/state/agents/main/sessions");
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(&dir)
        .expect("fixture sessions")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            let id = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("session file name")
                .to_owned();
            let lines = std::fs::read_to_string(&p)
                .expect("transcript")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            (id, lines)
        })
        .collect();
    out.sort();
    out
}

/// How the events are stored.
#[derive(Clone, Copy, PartialEq)]
pub enum Layout {
    /// `event_json` only (OpenClaw 2026.9.6).
    Json,
    /// `event_zstd` + `event_utf8_bytes`, `event_json` NULL (newer schemas).
    Zstd,
}

/// The session tables of OpenClaw's agent schema (the columns the analyzer reads, and some
/// it does not).
const SESSION_TABLES: &str = "
CREATE TABLE session_nodes (session_key TEXT NOT NULL PRIMARY KEY, current_session_id TEXT NOT NULL,
  entry_json TEXT NOT NULL, updated_at INTEGER NOT NULL, created_via TEXT,
  parent_session_key TEXT, spawned_by TEXT, label TEXT) STRICT;
CREATE TABLE session_windows (session_id TEXT NOT NULL PRIMARY KEY, session_key TEXT NOT NULL,
  reason TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER,
  ended_at INTEGER, status TEXT, channel TEXT, model_provider TEXT, model TEXT,
  parent_session_key TEXT, spawned_by TEXT) STRICT;";

/// (session id, key, channel, created via, parent key)
pub const SESSIONS: [(&str, &str, &str, &str, Option<&str>); 3] = [
    (
        "8388168c-cf83-42e7-9f30-c88ae8bd3685",
        "agent:main:main",
        "webchat",
        "channel",
        None,
    ),
    (
        "capture-error-session",
        "agent:main:subagent:err",
        "webchat",
        "spawn",
        Some("agent:main:main"),
    ),
    (
        "capture-second-session",
        "agent:main:cron:nightly",
        "cron",
        "cron",
        None,
    ),
];

/// Started/ended of every session window (epoch ms; 2026-11-24T15:40Z and 16:00Z).
const STARTED_MS: i64 = 1_795_534_800_000;
const ENDED_MS: i64 = 1_795_536_000_000;

/// Creates OpenClaw's tables in `conn` and fills the session tables.
pub fn create_tables(conn: &Connection, layout: Layout) {
    let events = match layout {
        Layout::Json => "event_json TEXT NOT NULL",
        Layout::Zstd => "event_json TEXT, event_zstd BLOB, event_utf8_bytes INTEGER",
    };
    conn.execute_batch(&format!(
        "{SESSION_TABLES}
         CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, {events},
           created_at INTEGER NOT NULL, PRIMARY KEY (session_id, seq)) STRICT;"
    ))
    .expect("schema");
    for (id, key, channel, via, parent) in SESSIONS {
        conn.execute(
            "INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at,
               created_via, parent_session_key, spawned_by) VALUES (?1, ?2, '{}', ?3, ?4, ?5, ?5)",
            params![key, id, ENDED_MS, via, parent],
        )
        .expect("node");
        conn.execute(
            "INSERT INTO session_windows (session_id, session_key, reason, created_at, updated_at,
               started_at, ended_at, status, channel, model_provider, model)
             VALUES (?1, ?2, 'initial', ?3, ?4, ?3, ?4, 'done', ?5, 'e2e', 'e2e-model')",
            params![id, key, STARTED_MS, ENDED_MS, channel],
        )
        .expect("window");
    }
}

/// Every transcript line as the row it becomes: (session id, seq from 1, event).
pub fn event_rows() -> Vec<(String, i64, String)> {
    transcripts()
        .into_iter()
        .flat_map(|(id, lines)| {
            lines
                .into_iter()
                .enumerate()
                .map(move |(i, line)| (id.clone(), i as i64 + 1, line))
        })
        .collect()
}

/// Inserts one transcript row, stored the way `layout` stores events.
pub fn insert_event(conn: &Connection, layout: Layout, (id, seq, line): &(String, i64, String)) {
    match layout {
        Layout::Json => conn.execute(
            "INSERT INTO transcript_events VALUES (?1, ?2, ?3, ?4)",
            params![id, seq, line, STARTED_MS + seq],
        ),
        Layout::Zstd => {
            let z = ruzstd::encoding::compress_to_vec(
                line.as_bytes(),
                ruzstd::encoding::CompressionLevel::Fastest,
            );
            conn.execute(
                "INSERT INTO transcript_events VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
                params![id, seq, z, line.len() as i64, STARTED_MS + seq],
            )
        }
    }
    .expect("event");
}

/// Writes OpenClaw's tables with the real transcripts into `conn`.
fn fill(conn: &Connection, layout: Layout) {
    create_tables(conn, layout);
    for row in event_rows() {
        insert_event(conn, layout, &row);
    }
}

/// `<state>/agents/main/agent/openclaw-agent.sqlite`, created with a fresh connection in
/// `journal_mode`; the connection is returned open.
fn store(state: &Path, layout: Layout, journal_mode: &str) -> (PathBuf, Connection) {
    let dir = state.join("agents/main/agent");
    std::fs::create_dir_all(&dir).expect("agent dir");
    let path = dir.join("openclaw-agent.sqlite");
    let conn = Connection::open(&path).expect("create store");
    conn.pragma_update(None, "journal_mode", journal_mode)
        .expect("journal mode");
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("no checkpoints");
    fill(&conn, layout);
    (path, conn)
}

/// `analyze --format json` of `trace` with `extra` flags: the report and the stderr.
pub fn analyze_json(trace: &Path, extra: &[&std::ffi::OsStr]) -> (Value, String) {
    let o = run(agent()
        .args([
            "analyze",
            "--format",
            "json",
            "--limit",
            "1000",
            "--trace-dir",
        ])
        .arg(trace)
        .args(extra));
    assert!(o.status.success(), "{}", text(&o));
    let report = serde_json::from_slice(&o.stdout).expect("json report");
    (report, String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `analyze --format json` of an empty trace dir and `state` (plus `extra`).
pub fn analyze_state(state: &Path, extra: &[&str]) -> (Value, String) {
    let trace = tempfile::tempdir().expect("trace dir");
    let mut flags = vec!["--openclaw-state".as_ref(), state.as_os_str()];
    flags.extend(extra.iter().map(std::ffi::OsStr::new));
    analyze_json(trace.path(), &flags)
}

/// What must be equal between layouts: per call and per session, everything but provenance.
pub fn numbers(report: &Value) -> Value {
    let calls: Vec<Value> = report["action_timeline"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            serde_json::json!([
                r["time"],
                r["end"],
                r["session_id"],
                r["action"],
                r["name"],
                r["status"],
                r["tokens_input"],
                r["tokens_output"],
                r["tokens_cache_read"],
                r["tokens_cache_write"],
                r["cost_usd"]
            ])
        })
        .collect();
    let sessions: Vec<Value> = report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            serde_json::json!([
                s["session_id"],
                s["llm_calls"],
                s["tool_calls"],
                s["errors"],
                s["tokens"],
                s["cost_usd"]
            ])
        })
        .collect();
    let o = &report["overall"];
    serde_json::json!({
        "calls": calls,
        "sessions": sessions,
        "overall": [o["llm_calls"], o["tool_calls"], o["errors"], o["tokens"], o["cost_usd"]],
    })
}

fn store_input<'a>(report: &'a Value, path: &Path) -> &'a Value {
    report["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"] == path.display().to_string())
        .unwrap_or_else(|| panic!("{} not among the inputs", path.display()))
}

#[test]
fn both_sqlite_layouts_give_exactly_the_numbers_of_the_jsonl_transcripts() {
    let (jsonl, _) = analyze_state(&fixture("openclaw/state"), &[]);
    let expected = numbers(&jsonl);
    // The hand-counted totals (tests/fixtures/openclaw/README.md).
    let o = &jsonl["overall"];
    assert_eq!(
        (o["llm_calls"].as_u64(), o["tool_calls"].as_u64()),
        (Some(13), Some(1))
    );
    assert_eq!(o["tokens"]["input"].as_u64(), Some(32_836));
    assert_eq!(
        format!("{:.4}", o["cost_usd"].as_f64().expect("cost")),
        "0.1096"
    );
    for layout in [Layout::Json, Layout::Zstd] {
        let state = tempfile::tempdir().expect("state dir");
        let (path, conn) = store(state.path(), layout, "delete");
        drop(conn);
        let (report, stderr) = analyze_state(state.path(), &[]);
        assert_eq!(numbers(&report), expected, "{stderr}");
        let input = store_input(&report, &path);
        assert_eq!(input["kind"], "sqlite_store");
        assert_eq!(input["bad_lines"].as_u64(), Some(0), "{input}");
        let main = report["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|s| s["session_id"] == SESSIONS[1].0)
            .expect("error session");
        assert_eq!(main["session_key"], "agent:main:subagent:err");
        let info = &main["openclaw"];
        assert_eq!(info["agent"], "main");
        assert_eq!(info["channel"], "webchat");
        assert_eq!(info["model"], "e2e-model");
        assert_eq!(info["created_via"], "spawn");
        assert_eq!(info["parent_session_key"], "agent:main:main");
        assert_eq!(info["started_at"], "2026-11-24T15:40:00.000000Z");
        assert_eq!(info["ended_at"], "2026-11-24T16:00:00.000000Z");
        let sources = &report["overall"]["sources"];
        assert_eq!(sources["sqlite_transcript"].as_u64(), Some(14), "{sources}");
    }
}

#[test]
fn a_store_also_exported_to_jsonl_is_counted_once() {
    let state = tempfile::tempdir().expect("state dir");
    let (_, conn) = store(state.path(), Layout::Json, "delete");
    drop(conn);
    let sessions = state.path().join("agents/main/sessions");
    std::fs::create_dir_all(&sessions).expect("sessions dir");
    for (id, lines) in transcripts() {
        std::fs::write(
            sessions.join(format!("{id}.jsonl")),
            lines.join("\n") + "\n",
        )
        .expect("export");
    }
    let (report, _) = analyze_state(state.path(), &[]);
    let (jsonl, _) = analyze_state(&fixture("openclaw/state"), &[]);
    assert_eq!(numbers(&report), numbers(&jsonl));
    let dup = &report["duplicates"][0];
    assert_eq!(
        (&dup["dropped"], &dup["kept"], dup["count"].as_u64()),
        (
            &Value::from("sqlite_transcript"),
            &Value::from("transcript"),
            Some(14)
        )
    );
}

#[test]
fn a_gateway_writing_in_wal_mode_neither_blocks_nor_is_blocked() {
    let (jsonl, _) = analyze_state(&fixture("openclaw/state"), &[]);
    let state = tempfile::tempdir().expect("state dir");
    let (path, writer) = store(state.path(), Layout::Zstd, "wal");
    // The committed events are still in the -wal file (no checkpoint), and the writer is in
    // the middle of a transaction adding one more call.
    assert!(path.with_extension("sqlite-wal").is_file());
    writer.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    writer
        .execute(
            "INSERT INTO transcript_events VALUES ('capture-second-session', 999, ?1, NULL, NULL, 0)",
            [r#"{"type":"message","timestamp":"2026-11-24T15:59:00Z","message":{"role":"assistant","timestamp":1795535940000,"usage":{"input":5}}}"#],
        )
        .expect("uncommitted row");
    let (report, stderr) = analyze_state(state.path(), &[]);
    assert_eq!(numbers(&report), numbers(&jsonl), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    writer
        .execute_batch("COMMIT")
        .expect("the writer still commits");
}

#[test]
fn a_store_copied_while_written_is_read_with_the_commits_in_its_wal() {
    let (jsonl, _) = analyze_state(&fixture("openclaw/state"), &[]);
    let live = tempfile::tempdir().expect("live state");
    let (path, writer) = store(live.path(), Layout::Json, "wal");
    // What `cp` of a running gateway's store gets: the database file, which holds none of the
    // events yet (never checkpointed), and the -wal file, which holds them all; no -shm.
    let copy = tempfile::tempdir().expect("copied state");
    let dir = copy.path().join("agents/main/agent");
    std::fs::create_dir_all(&dir).expect("agent dir");
    for ext in ["sqlite", "sqlite-wal"] {
        std::fs::copy(
            path.with_extension(ext),
            dir.join(format!("openclaw-agent.{ext}")),
        )
        .expect("copy");
    }
    drop(writer);
    let (report, stderr) = analyze_state(copy.path(), &[]);
    assert_eq!(numbers(&report), numbers(&jsonl), "{stderr}");
}

/// `analyze` of `state` next to the real file log: exit 0, the log's calls still counted.
fn analyze_beside_the_log(state: &Path) -> (Value, String) {
    analyze_state(
        state,
        &[
            "--openclaw-logs",
            &fixture("openclaw/logs").display().to_string(),
        ],
    )
}

#[test]
fn a_locked_store_is_named_and_skipped_and_the_rest_is_analyzed() {
    let state = tempfile::tempdir().expect("state dir");
    let (path, writer) = store(state.path(), Layout::Json, "delete");
    writer
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock");
    let (report, stderr) = analyze_beside_the_log(state.path());
    writer.execute_batch("COMMIT").expect("unlock");
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("locked"),
        "{stderr}"
    );
    let input = store_input(&report, &path);
    assert_eq!(input["bad_lines"].as_u64(), Some(1), "{input}");
    assert!(input["first_bad"][0]
        .as_str()
        .is_some_and(|b| b.contains("locked")));
    assert!(
        report["overall"]["llm_calls"].as_u64() > Some(0),
        "the log is still analyzed"
    );
}

#[test]
fn a_truncated_store_is_named_and_skipped_and_the_rest_is_analyzed() {
    let state = tempfile::tempdir().expect("state dir");
    let (path, conn) = store(state.path(), Layout::Json, "delete");
    drop(conn);
    let len = std::fs::metadata(&path).expect("store").len();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let (report, stderr) = analyze_beside_the_log(state.path());
    assert!(
        stderr.contains(&path.display().to_string())
            && stderr.contains("not a complete SQLite database"),
        "{stderr}"
    );
    assert!(
        report["overall"]["llm_calls"].as_u64() > Some(0),
        "the log is still analyzed"
    );
}

#[test]
fn the_state_dir_defaults_to_openclaw_state_dir_then_home_and_can_be_left_out() {
    let home = tempfile::tempdir().expect("home");
    let (_, conn) = store(&home.path().join(".openclaw"), Layout::Json, "delete");
    drop(conn);
    let elsewhere = tempfile::tempdir().expect("other state");
    let trace = tempfile::tempdir().expect("trace dir");
    let llm_calls = |env_state: Option<&Path>, extra: &[&str]| {
        let mut c = agent();
        c.env("HOME", home.path())
            .args(["analyze", "--format", "json", "--trace-dir"])
            .arg(trace.path())
            .args(extra);
        if let Some(dir) = env_state {
            c.env("OPENCLAW_STATE_DIR", dir);
        }
        let o = run(&mut c);
        serde_json::from_slice::<Value>(&o.stdout)
            .ok()
            .and_then(|r| r["overall"]["llm_calls"].as_u64())
    };
    assert_eq!(llm_calls(None, &[]), Some(13), "~/.openclaw by default");
    assert_eq!(
        llm_calls(Some(elsewhere.path()), &[]),
        None,
        "OPENCLAW_STATE_DIR first"
    );
    assert_eq!(llm_calls(None, &["--no-openclaw-state"]), None, "left out");
}
