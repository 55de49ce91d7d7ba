//! OpenClaw's SQLite stores followed while collecting: a store created after the agent
//! started and grown row by row (the real 2026.4.29 transcripts, in both layouts) must leave
//! in the trace directory what gives exactly the calls, tokens, cost and session keys of the
//! JSONL transcripts; a store that is not yet a database and one locked by its writer are
//! named in clear warnings and do not stop the rest. Followed beside OpenClaw's file log of the
//! same capture, each call is still counted once.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::openclaw_sqlite::{
    analyze_json, analyze_state, create_tables, event_rows, insert_event, numbers, Layout, SESSIONS,
};
use crate::util::{collect_nothing, fixture, sigterm, Reaped};

/// The transcript lines copied so far under `dir` (the trace directory's `openclaw-state`).
fn copied_lines(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .map(|p| {
            if p.is_dir() {
                copied_lines(&p)
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                std::fs::read_to_string(&p).map_or(0, |s| s.lines().count())
            } else {
                0
            }
        })
        .sum()
}

#[cfg(unix)]
#[test]
fn stores_grown_while_collecting_give_the_numbers_of_the_jsonl_transcripts() {
    let rows = event_rows();
    // The second run follows OpenClaw's file log of the same capture as well: the log's calls
    // (written to the events files) and the store's must be counted once, as in place.
    let log = fixture("openclaw/logs/openclaw-2026-11-24.log");
    for (layout, journal, with_log) in
        [(Layout::Json, "wal", false), (Layout::Zstd, "delete", true)]
    {
        let in_place = if with_log {
            let dir = fixture("openclaw/logs");
            analyze_state(
                &fixture("openclaw/state"),
                &["--openclaw-logs", &dir.display().to_string()],
            )
        } else {
            analyze_state(&fixture("openclaw/state"), &[])
        };
        let expected = numbers(&in_place.0);
        let tmp = tempfile::tempdir().expect("tempdir");
        let (state, trace, logs) = (
            tmp.path().join("state"),
            tmp.path().join("trace"),
            tmp.path().join("logs"),
        );
        std::fs::create_dir(&logs).expect("log dir");
        // Another agent's store that is not (yet) a complete database.
        let broken_dir = state.join("agents/coder/agent");
        std::fs::create_dir_all(&broken_dir).expect("agent dir");
        let broken = broken_dir.join("openclaw-agent.sqlite");
        std::fs::write(&broken, b"SQLite format 3\0 and nothing else").expect("write");
        let mut child = Reaped(
            collect_nothing("0.2", &trace)
                .arg("--openclaw")
                .arg("--openclaw-log-dir")
                .arg(&logs)
                .arg("--openclaw-state-dir")
                .arg(&state)
                .stderr(Stdio::piped())
                .spawn()
                .expect("agent starts"),
        );
        std::thread::sleep(Duration::from_millis(500));
        if with_log {
            std::fs::copy(&log, logs.join("openclaw-2026-11-24.log")).expect("log");
        }
        // The gateway creates its store after the agent started, then writes it turn by turn.
        let dir = state.join("agents/main/agent");
        std::fs::create_dir_all(&dir).expect("agent dir");
        let writer = Connection::open(dir.join("openclaw-agent.sqlite")).expect("create");
        writer
            .pragma_update(None, "journal_mode", journal)
            .expect("journal mode");
        create_tables(&writer, layout);
        for (i, chunk) in rows.chunks(6).enumerate() {
            writer.execute_batch("BEGIN").expect("begin");
            for row in chunk {
                insert_event(&writer, layout, row);
            }
            writer.execute_batch("COMMIT").expect("commit");
            if i == 2 && journal == "delete" {
                // Once the agent follows the store (it looks for new stores every 2 s), a
                // writer that holds its lock across several polls.
                let deadline = Instant::now() + Duration::from_secs(20);
                while copied_lines(&trace.join("openclaw-state")) < 12 && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                writer.execute_batch("BEGIN EXCLUSIVE").expect("lock");
                std::thread::sleep(Duration::from_millis(1200));
                writer.execute_batch("COMMIT").expect("unlock");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        let mirror = trace.join("openclaw-state");
        let deadline = Instant::now() + Duration::from_secs(20);
        while copied_lines(&mirror) < rows.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, stderr) = sigterm(&mut child);
        assert!(status.success(), "{stderr}");
        assert_eq!(
            copied_lines(&mirror),
            rows.len(),
            "every row once\n{stderr}"
        );
        if with_log {
            assert!(stderr.contains("13 calls written from"), "{stderr}");
        }
        assert!(
            stderr.contains(&broken.display().to_string())
                && stderr.contains("not a complete SQLite database"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("{} transcript rows copied", rows.len())),
            "{stderr}"
        );
        if journal == "delete" {
            assert!(stderr.contains("locked by a writer"), "{stderr}");
            assert!(stderr.contains("readable again"), "{stderr}");
        }
        drop(writer);

        let (report, _) = analyze_json(&trace, &["--no-openclaw-state".as_ref()]);
        assert_eq!(numbers(&report), expected, "{stderr}");
        let sub = report["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .find(|s| s["session_id"] == SESSIONS[1].0)
            .expect("error session");
        assert_eq!(sub["session_key"], SESSIONS[1].1);
        assert_eq!(sub["openclaw"]["agent"], "main");
        assert_eq!(sub["openclaw"]["channel"], SESSIONS[1].2);
        assert_eq!(sub["openclaw"]["created_via"], SESSIONS[1].3);
        assert_eq!(sub["openclaw"]["parent_session_key"], "agent:main:main");
    }
}
