//! `transcript_events` rows, session by session in `seq` order, through the JSONL transcript
//! reader ([`transcript::Events`]): the same event objects give the same actions, whichever
//! way they were stored.

use std::sync::Arc;

use rusqlite::Connection;

use super::layout::Table;
use super::payload;
use crate::analyze::source::action::Source;
use crate::analyze::source::parsed::Parsed;
use crate::analyze::source::transcript::Events;

/// Reads every transcript row of `table` into `out`; rows are numbered from 1 as lines are, in
/// `(session_id, seq)` order, and one that holds no usable event is a bad line saying why.
pub fn read(
    conn: &Connection,
    table: &Table,
    file: &Arc<str>,
    out: &mut Parsed,
) -> rusqlite::Result<()> {
    let sql = format!(
        "{} ORDER BY session_id, seq",
        table.select(&[
            "session_id",
            "seq",
            "event_json",
            "event_zstd",
            "event_utf8_bytes"
        ])
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut current: Option<(String, Events)> = None;
    while let Some(row) = rows.next()? {
        out.stats.lines += 1;
        let no = out.stats.lines;
        let session: String = row.get(0)?;
        let seq: i64 = row.get(1).unwrap_or(-1);
        if current.as_ref().is_none_or(|(s, _)| *s != session) {
            let events = Events::new(
                Arc::clone(file),
                Source::SqliteTranscript,
                Some(session.clone()),
            );
            current = Some((session.clone(), events));
        }
        let Some((_, events)) = current.as_mut() else {
            continue;
        };
        match payload::event(row.get_ref(2)?, row.get_ref(3)?, row.get_ref(4)?) {
            Ok(json) => events.read(no, &json, out),
            Err(reason) => out
                .stats
                .bad(no, format!("session '{session}' seq {seq}: {reason}")),
        }
    }
    Ok(())
}
