//! A stand-in for OpenClaw's gateway writing its SQLite store, for `bench overhead --openclaw`:
//! a WAL store at `<state>/agents/main/agent/openclaw-agent.sqlite` (the `event_json` layout)
//! that gains the real 2026.4.29 transcript lines, one commit per line at a steady rate, from a
//! thread, until dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection};

use crate::proc_util::workspace_root;

/// The real transcripts the rows come from.
const TRANSCRIPTS: &str = "tests/fixtures/openclaw/state/agents/main/sessions";

/// Writes transcript rows into a store until dropped.
pub struct StoreWriter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<u64>>>,
}

/// The transcript lines of the fixture sessions, in file order.
fn lines() -> anyhow::Result<Vec<String>> {
    let dir = workspace_root().join(TRANSCRIPTS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        out.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    Ok(out)
}

impl StoreWriter {
    /// Creates the store under `state` and starts adding a row every `every`.
    pub fn start(state: &Path, every: Duration) -> anyhow::Result<Self> {
        let dir = state.join("agents/main/agent");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("openclaw-agent.sqlite");
        let conn =
            Connection::open(&path).with_context(|| format!("cannot create {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.execute_batch(
            "CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
               event_json TEXT NOT NULL, created_at INTEGER NOT NULL,
               PRIMARY KEY (session_id, seq)) STRICT;",
        )?;
        let lines = lines()?;
        anyhow::ensure!(!lines.is_empty(), "no transcript lines in {TRANSCRIPTS}");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || -> anyhow::Result<u64> {
            let mut seq = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let line = &lines[(seq as usize) % lines.len()];
                seq += 1;
                // One session per pass over the transcripts, as a gateway starts new ones.
                let session = format!("bench-{}", seq as usize / lines.len());
                conn.execute(
                    "INSERT INTO transcript_events VALUES (?1, ?2, ?3, 0)",
                    params![session, seq as i64, line],
                )?;
                std::thread::sleep(every);
            }
            Ok(seq)
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops writing; returns the rows written.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(rows)) => rows,
            Some(Err(_)) => anyhow::bail!("the store writer panicked"),
            None => Ok(0),
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
