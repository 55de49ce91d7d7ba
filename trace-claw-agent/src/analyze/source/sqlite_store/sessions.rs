//! `session_windows` (one row per session id) and `session_nodes` (one row per session key)
//! into session keys and [`SessionInfo`]: agent, channel, model, start, end, how the session
//! was created and its parent. Times are epoch milliseconds.

use std::collections::HashMap;

use rusqlite::{Connection, Row};
use trace_claw_common::time::Timestamp;

use super::layout::Table;
use crate::analyze::source::parsed::{Parsed, SessionInfo};

/// What a `session_nodes` row adds to the windows of its key.
#[derive(Debug, Default)]
struct Node {
    current_session_id: Option<String>,
    created_via: Option<String>,
    parent_session_key: Option<String>,
    spawned_by: Option<String>,
}

fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    row.get::<_, Option<String>>(i)
}

fn epoch_ms(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    Ok(row
        .get::<_, Option<i64>>(i)?
        .and_then(|ms| ms.checked_mul(1_000_000))
        .map(Timestamp))
}

/// The agent of session key `agent:<id>:...`.
fn agent_of_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("agent:")?;
    let agent = rest.split(':').next()?;
    (!agent.is_empty()).then(|| agent.to_owned())
}

fn nodes(conn: &Connection, table: &Table) -> rusqlite::Result<HashMap<String, Node>> {
    let sql = table.select(&[
        "session_key",
        "current_session_id",
        "created_via",
        "parent_session_key",
        "spawned_by",
    ]);
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        if let Some(key) = text(r, 0)? {
            let node = Node {
                current_session_id: text(r, 1)?,
                created_via: text(r, 2)?,
                parent_session_key: text(r, 3)?,
                spawned_by: text(r, 4)?,
            };
            out.insert(key, node);
        }
    }
    Ok(out)
}

/// Reads the session tables there are into `out` (`agent`: the agent whose store it is, when
/// the path says). A window's own parent wins over its node's; a node whose current session
/// has no window still names that session's key.
pub fn read(
    conn: &Connection,
    windows: Option<&Table>,
    nodes_table: Option<&Table>,
    agent: Option<&str>,
    out: &mut Parsed,
) -> rusqlite::Result<()> {
    let mut nodes = match nodes_table {
        Some(t) => nodes(conn, t)?,
        None => HashMap::new(),
    };
    if let Some(t) = windows {
        let sql = t.select(&[
            "session_id",
            "session_key",
            "channel",
            "model_provider",
            "model",
            "started_at",
            "ended_at",
            "parent_session_key",
            "spawned_by",
        ]);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            out.stats.lines += 1;
            let Some(id) = text(r, 0)? else {
                out.stats
                    .bad(out.stats.lines, "session_windows row without a session_id");
                continue;
            };
            let key = text(r, 1)?;
            let node = key.as_ref().and_then(|k| nodes.get(k));
            let info = SessionInfo {
                agent: agent
                    .map(str::to_owned)
                    .or_else(|| key.as_deref().and_then(agent_of_key)),
                channel: text(r, 2)?,
                model_provider: text(r, 3)?,
                model: text(r, 4)?,
                started_at: epoch_ms(r, 5)?,
                ended_at: epoch_ms(r, 6)?,
                created_via: node.and_then(|n| n.created_via.clone()),
                parent_session_key: text(r, 7)?
                    .or_else(|| node.and_then(|n| n.parent_session_key.clone())),
                spawned_by: text(r, 8)?.or_else(|| node.and_then(|n| n.spawned_by.clone())),
            };
            if let Some(n) = key.as_ref().and_then(|k| nodes.get_mut(k)) {
                if n.current_session_id.as_deref() == Some(id.as_str()) {
                    n.current_session_id = None;
                }
            }
            out.stats.records += 1;
            if let Some(k) = key {
                out.session_keys.push((id.clone(), k));
            }
            out.session_infos.push((id, info));
        }
    }
    for (key, node) in nodes {
        if let Some(id) = node.current_session_id {
            let info = SessionInfo {
                agent: agent.map(str::to_owned).or_else(|| agent_of_key(&key)),
                created_via: node.created_via,
                parent_session_key: node.parent_session_key,
                spawned_by: node.spawned_by,
                ..SessionInfo::default()
            };
            out.session_keys.push((id.clone(), key));
            out.session_infos.push((id, info));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::source::sqlite_store::layout;

    #[test]
    fn agent_comes_from_the_session_key() {
        assert_eq!(agent_of_key("agent:main:main").as_deref(), Some("main"));
        assert_eq!(
            agent_of_key("agent:coder:subagent:1").as_deref(),
            Some("coder")
        );
        assert_eq!(agent_of_key("main"), None);
    }

    #[test]
    fn windows_and_nodes_give_keys_and_parents() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch(
            "CREATE TABLE session_nodes (session_key TEXT, current_session_id TEXT,
                 created_via TEXT, parent_session_key TEXT, spawned_by TEXT);
             CREATE TABLE session_windows (session_id TEXT, session_key TEXT, channel TEXT,
                 model_provider TEXT, model TEXT, started_at INTEGER, ended_at INTEGER);
             INSERT INTO session_nodes VALUES
                 ('agent:main:subagent:x', 'sub-2', 'spawn', 'agent:main:main', 'agent:main:main'),
                 ('agent:main:cron:nightly', 'cron-1', 'cron', NULL, NULL);
             INSERT INTO session_windows VALUES
                 ('sub-1', 'agent:main:subagent:x', 'webchat', 'e2e', 'm', 1795535000000, NULL);",
        )
        .expect("schema");
        let l = layout::detect(&conn).expect("layout");
        let mut out = Parsed::default();
        read(
            &conn,
            l.session_windows.as_ref(),
            l.session_nodes.as_ref(),
            None,
            &mut out,
        )
        .expect("read");
        let mut infos = out.session_infos.clone();
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        let ids: Vec<&str> = infos.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["cron-1", "sub-1", "sub-2"]);
        let sub = &infos[1].1;
        assert_eq!(sub.agent.as_deref(), Some("main"));
        assert_eq!(sub.channel.as_deref(), Some("webchat"));
        assert_eq!(sub.started_at, Some(Timestamp(1_795_535_000_000_000_000)));
        assert_eq!(sub.ended_at, None);
        assert_eq!(sub.created_via.as_deref(), Some("spawn"));
        assert_eq!(sub.parent_session_key.as_deref(), Some("agent:main:main"));
        assert_eq!(infos[0].1.created_via.as_deref(), Some("cron"));
        assert_eq!(out.session_keys.len(), 3);
        assert_eq!(out.stats.records, 1);
    }
}
