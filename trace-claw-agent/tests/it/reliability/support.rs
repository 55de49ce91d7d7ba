//! Helpers for the reliability tests: root checks, stderr watching, JSONL integrity.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr};
use std::sync::mpsc;

/// Whether a root-only test can run; prints why not (panics under `CI=true`).
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "{test}: needs root, and CI=true");
    eprintln!("skipping {test}: needs root");
    false
}

/// Streams a child's stderr lines into a channel (and keeps them all for messages).
pub struct StderrLines {
    rx: mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl StderrLines {
    /// Takes the child's piped stderr.
    pub fn of(child: &mut Child) -> Self {
        let err: ChildStderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Blocks until a line containing `needle` arrives (true) or the stream ends (false).
    pub fn wait_for(&mut self, needle: &str) -> bool {
        while let Ok(line) = self.rx.recv() {
            let hit = line.contains(needle);
            self.seen.push(line);
            if hit {
                return true;
            }
        }
        false
    }

    /// Reads to the end of the stream.
    pub fn rest(&mut self) -> &[String] {
        while let Ok(line) = self.rx.recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(needle)).count()
    }

    /// All lines, for assertion messages.
    pub fn joined(&self) -> String {
        self.seen.join("\n")
    }
}

/// Checks that every file with `prefix` under `dir` is whole lines of JSON objects, and
/// returns (lines, distinct `timestamp` values).
pub fn check_jsonl(dir: &Path, prefix: &str) -> (usize, BTreeSet<String>) {
    let mut lines = 0;
    let mut stamps = BTreeSet::new();
    for e in std::fs::read_dir(dir).expect("output dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let body = std::fs::read(e.path()).expect("readable");
        assert!(
            body.is_empty() || body.ends_with(b"\n"),
            "{name} ends in a partial line"
        );
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|err| {
                panic!(
                    "{name}:{}: {err}: {}",
                    i + 1,
                    String::from_utf8_lossy(&line[..line.len().min(300)])
                )
            });
            assert!(v.is_object(), "{name}:{}: not an object", i + 1);
            if let Some(t) = v["timestamp"].as_str() {
                stamps.insert(t.to_owned());
            }
            lines += 1;
        }
    }
    (lines, stamps)
}

/// The tick count from the agent's `stopped after N ticks` line.
pub fn ticks_reported(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.split("stopped after ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'stopped after' line in:\n{stderr}"))
}
