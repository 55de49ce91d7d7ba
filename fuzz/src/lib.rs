//! Invariants shared by the fuzz targets: what must hold for any input a parser accepts.
//!
//! Each target feeds raw bytes to one parser; a panic, an abort, a timeout or an out-of-memory
//! is a finding. Beyond "does not crash", accepted values must survive the round trip through
//! the JSONL writer: what trace-claw writes, it can read back.

pub mod analyze;

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;
use trace_claw_common::time::Timestamp;

/// The input as lines, the way the JSONL readers see a file: split on `\n`, invalid UTF-8
/// replaced (a reader reports such a line; it must never panic on it).
pub fn lines(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l).into_owned())
}

/// A timestamp as it reads back after being written (the files keep microseconds).
pub fn as_written(t: Timestamp) -> Timestamp {
    Timestamp(t.0 - t.0.rem_euclid(1000))
}

/// Serializes `value` to one line and parses it back; both must succeed and the line must be
/// one line (no raw newline inside).
pub fn reread<T: Serialize + DeserializeOwned>(value: &T) -> (String, T) {
    let line = match serde_json::to_string(value) {
        Ok(l) => l,
        Err(e) => panic!("an accepted value does not serialize: {e}"),
    };
    assert!(!line.contains('\n'), "written line spans lines: {line}");
    match serde_json::from_str(&line) {
        Ok(back) => (line, back),
        Err(e) => panic!("written line does not read back: {e}: {line}"),
    }
}

/// Whether two floats are equal up to the last bits lost by a decimal round trip.
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15
}

/// A per-process scratch directory in memory (`/dev/shm` when present).
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("trace-claw-fuzz-{name}-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create scratch dir '{}': {e}", dir.display());
    }
    dir
}
