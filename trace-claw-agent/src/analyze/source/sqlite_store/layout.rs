//! Which of OpenClaw's tables a store holds, and with which columns, read from
//! `sqlite_master` and `pragma_table_info`: the schema changes between releases (`event_json`
//! alone, or `event_zstd` and `event_utf8_bytes` beside it), so nothing is assumed.

use std::collections::HashSet;

use rusqlite::Connection;

/// The transcript events, one row per event: `session_id, seq, event_json` (and, in newer
/// schemas, `event_zstd, event_utf8_bytes`).
pub const TRANSCRIPT_EVENTS: &str = "transcript_events";
/// One row per session id: its key, channel, model, start, end and parent.
pub const SESSION_WINDOWS: &str = "session_windows";
/// One row per session key: how it was created and its parent.
pub const SESSION_NODES: &str = "session_nodes";

/// A table and the columns it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    name: &'static str,
    columns: HashSet<String>,
}

impl Table {
    /// Whether the table has `column`.
    pub fn has(&self, column: &str) -> bool {
        self.columns.contains(column)
    }

    /// `column` when the table has it, else `NULL`: one entry of a SELECT list that works on
    /// every schema.
    pub fn column_or_null<'a>(&self, column: &'a str) -> &'a str {
        if self.has(column) {
            column
        } else {
            "NULL"
        }
    }

    fn column_list(&self, columns: &[&str]) -> String {
        let list: Vec<&str> = columns.iter().map(|c| self.column_or_null(c)).collect();
        list.join(", ")
    }

    /// `SELECT <columns, NULL where missing> FROM <table>`.
    pub fn select(&self, columns: &[&str]) -> String {
        format!("SELECT {} FROM {}", self.column_list(columns), self.name)
    }

    /// `SELECT rowid, <columns> FROM <table> WHERE rowid > ?1 ORDER BY rowid`: the rows added
    /// since a high-water mark, oldest first, found through the rowid index (no scan).
    pub fn select_after_rowid(&self, columns: &[&str]) -> String {
        format!(
            "SELECT rowid, {} FROM {} WHERE rowid > ?1 ORDER BY rowid",
            self.column_list(columns),
            self.name
        )
    }
}

/// The tables of interest a store holds (`None`: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// [`TRANSCRIPT_EVENTS`].
    pub transcript_events: Option<Table>,
    /// [`SESSION_WINDOWS`].
    pub session_windows: Option<Table>,
    /// [`SESSION_NODES`].
    pub session_nodes: Option<Table>,
}

fn table(conn: &Connection, name: &'static str) -> rusqlite::Result<Option<Table>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let columns = stmt
        .query_map([name], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<HashSet<String>>>()?;
    Ok(Some(Table { name, columns }))
}

/// Reads the layout of the store behind `conn`.
pub fn detect(conn: &Connection) -> rusqlite::Result<Layout> {
    Ok(Layout {
        transcript_events: table(conn, TRANSCRIPT_EVENTS)?,
        session_windows: table(conn, SESSION_WINDOWS)?,
        session_nodes: table(conn, SESSION_NODES)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tables_and_columns_a_store_has() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_json TEXT,
                 event_zstd BLOB, event_utf8_bytes INTEGER);
             CREATE TABLE session_nodes (session_key TEXT, spawned_by TEXT);",
        )
        .expect("schema");
        let layout = detect(&conn).expect("layout");
        let events = layout.transcript_events.expect("transcript_events");
        assert!(events.has("event_zstd") && events.has("event_json"));
        assert_eq!(layout.session_windows, None);
        let nodes = layout.session_nodes.expect("session_nodes");
        assert_eq!(
            nodes.select(&["session_key", "created_via", "spawned_by"]),
            "SELECT session_key, NULL, spawned_by FROM session_nodes"
        );
    }
}
