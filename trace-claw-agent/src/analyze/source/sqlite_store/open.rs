//! Opening a store without disturbing the gateway that writes it: read-only twice over (the
//! `SQLITE_OPEN_READ_ONLY` flag and a `mode=ro` URI), `query_only` on top, and a busy timeout.
//! In WAL mode (OpenClaw's) a reader never waits for the writer and sees its last commit,
//! including what is still in the `-wal` file; under a rollback journal a writer's lock makes
//! the read wait [`BUSY_TIMEOUT`] and then give up on the store, never take a lock of its own.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long a read waits for a writer's lock before giving up on the store.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// The bytes a `file:` URI path may hold as they are; every other byte is %-escaped.
fn is_uri_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~')
}

/// `file:<path>?mode=ro`, the path %-escaped (a `?`, `#` or `%` in it would otherwise end or
/// change the URI).
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if is_uri_safe(b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro");
    uri
}

/// Opens the store at `path` for reading only.
pub fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(read_only_uri(path), flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_what_would_end_or_change_it() {
        assert_eq!(
            read_only_uri(Path::new("/home/a b/x?#%.sqlite")),
            "file:/home/a%20b/x%3F%23%25.sqlite?mode=ro"
        );
    }

    #[test]
    fn a_read_only_connection_cannot_write() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.sqlite");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER)"))
            .expect("create");
        let conn = read_only(&path).expect("open");
        assert!(conn.execute_batch("INSERT INTO t VALUES (1)").is_err());
        assert!(conn.is_readonly(rusqlite::MAIN_DB).expect("main db"));
    }
}
