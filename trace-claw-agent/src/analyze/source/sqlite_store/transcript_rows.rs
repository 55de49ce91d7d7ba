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
        let seq: i64 = row.get(1).unwrap_or(-1);
        let Ok(session) = row.get::<_, String>(0) else {
            out.stats
                .bad(no, format!("seq {seq}: session_id is not text"));
            continue;
        };
        if current.as_ref().is_some_and(|(s, _)| *s != session) {
            current = None;
        }
        let (_, events) = current.get_or_insert_with(|| {
            let events = Events::new(
                Arc::clone(file),
                Source::SqliteTranscript,
                Some(session.clone()),
            );
            (session.clone(), events)
        });
        match payload::event(row.get_ref(2)?, row.get_ref(3)?, row.get_ref(4)?) {
            Ok(json) => events.read(no, &json, out),
            Err(reason) => out
                .stats
                .bad(no, format!("session '{session}' seq {seq}: {reason}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::source::sqlite_store::layout;

    #[test]
    fn a_bad_row_is_a_bad_line_naming_its_session_and_seq_and_reading_goes_on() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            r#"CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_zstd BLOB);
               INSERT INTO transcript_events VALUES ('s', 1, x'00'), ('s', 2, NULL);"#,
        )
        .expect("schema");
        let table = layout::detect(&conn)
            .expect("layout")
            .transcript_events
            .expect("table");
        let mut out = Parsed::default();
        read(&conn, &table, &Arc::from("store"), &mut out).expect("read");
        assert_eq!((out.stats.lines, out.stats.bad), (2, 2));
        let reasons: Vec<&str> = out
            .stats
            .first_bad
            .iter()
            .map(|b| b.reason.as_str())
            .collect();
        assert!(
            reasons[0].starts_with("session 's' seq 1: event_zstd is not a zstd frame"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("session 's' seq 2: the row holds neither"),
            "{reasons:?}"
        );
    }
}
