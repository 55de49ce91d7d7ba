//! OpenClaw's SQLite stores, read in place (OpenClaw 2026.5 and later keep transcripts there,
//! not in JSONL files): every `agents/<agent>/agent/*.sqlite` and the shared
//! `state/openclaw.sqlite`. Each is opened read-only ([`open`]), its tables and columns are
//! looked up rather than assumed ([`layout`]), transcript rows (`event_json` or `event_zstd`,
//! [`payload`]) go through the JSONL transcript reader ([`transcript_rows`]) so they give the
//! same actions, and the session tables give session keys and [`SessionInfo`] ([`sessions`]).
//!
//! A store that cannot be read (locked by a writer past the busy timeout, truncated, not a
//! database) keeps what was read before the error, counts as one bad line saying why, and is
//! named in one warning; the rest of the analysis goes on.
//!
//! [`SessionInfo`]: super::parsed::SessionInfo

pub mod layout;
pub mod open;
pub mod payload;
pub mod sessions;
pub mod transcript_rows;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::ErrorCode;

use super::parsed::Parsed;

/// OpenClaw's stores under its state directory `state`: every `agents/*/agent/*.sqlite` (not
/// their `-wal`/`-shm` sidecars, which SQLite reads itself) and `state/openclaw.sqlite`, those
/// that exist now.
pub fn stores_in(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(agents) = std::fs::read_dir(state.join("agents")) {
        for agent in agents.flatten() {
            let Ok(entries) = std::fs::read_dir(agent.path().join("agent")) else {
                continue;
            };
            out.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sqlite") && p.is_file()),
            );
        }
    }
    let shared = state.join("state").join("openclaw.sqlite");
    if shared.is_file() {
        out.push(shared);
    }
    out
}

/// The agent a store belongs to, from its path `agents/<agent>/agent/<file>.sqlite`.
pub fn agent_of_path(path: &Path) -> Option<String> {
    let agent_dir = path.parent()?;
    if agent_dir.file_name()? != "agent" {
        return None;
    }
    let agent = agent_dir.parent()?;
    if agent.parent()?.file_name()? != "agents" {
        return None;
    }
    agent.file_name()?.to_str().map(str::to_owned)
}

/// Why a store could not be read, in words a user can act on; `then` says what happens after
/// a writer held its lock past `busy_timeout`.
pub fn explain(e: &rusqlite::Error, busy_timeout: Duration, then: &str) -> String {
    let what = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => format!(
            "locked by a writer (OpenClaw's gateway?) for more than {} ms, {then}",
            busy_timeout.as_millis()
        ),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            "not a complete SQLite database (truncated, or copied while it was being written)"
                .to_owned()
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            "cannot be opened for reading".to_owned()
        }
        _ => "cannot be read".to_owned(),
    };
    format!("{what}: {e}")
}

fn read_into(path: &Path, file: &Arc<str>, out: &mut Parsed) -> rusqlite::Result<()> {
    let conn = open::read_only(path)?;
    // One read transaction: both tables from the same commit.
    let snapshot = conn.unchecked_transaction()?;
    let layout = layout::detect(&snapshot)?;
    if let Some(events) = &layout.transcript_events {
        if events.has("event_json") || events.has("event_zstd") {
            transcript_rows::read(&snapshot, events, file, out)?;
        } else {
            out.stats.bad(
                0,
                "transcript_events has neither event_json nor event_zstd: a schema this version does not know",
            );
        }
    }
    sessions::read(
        &snapshot,
        layout.session_windows.as_ref(),
        layout.session_nodes.as_ref(),
        agent_of_path(path).as_deref(),
        out,
    )?;
    snapshot.finish()
}

/// Reads the store at `path`; never fails (see the module doc).
pub fn read(path: &Path) -> Parsed {
    let file: Arc<str> = path.display().to_string().into();
    let mut out = Parsed::default();
    if let Err(e) = read_into(path, &file, &mut out) {
        let why = explain(&e, open::BUSY_TIMEOUT, "analyze again when it is idle");
        let kept = match out.stats.lines {
            0 => "skipped".to_owned(),
            n => format!("the {n} row(s) read before are kept"),
        };
        log::warn!("OpenClaw store '{file}': {why}; {kept}, the rest of the analysis goes on");
        out.stats.bad(out.stats.lines + 1, why);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_comes_from_the_store_path() {
        let p = Path::new("/h/.openclaw/agents/coder/agent/openclaw-agent.sqlite");
        assert_eq!(agent_of_path(p).as_deref(), Some("coder"));
        assert_eq!(
            agent_of_path(Path::new("/h/.openclaw/state/openclaw.sqlite")),
            None
        );
    }

    #[test]
    fn a_file_that_is_no_database_is_one_bad_line_saying_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.sqlite");
        std::fs::write(&path, b"SQLite format 3\0 and then nothing").expect("write");
        let out = read(&path);
        assert_eq!(out.stats.bad, 1);
        let reason = &out.stats.first_bad[0].reason;
        assert!(
            reason.contains("not a complete SQLite database"),
            "{reason}"
        );
    }
}
