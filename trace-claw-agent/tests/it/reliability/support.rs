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

/// A minimal OTLP/HTTP endpoint: answers every request with one status and counts them.
pub struct FakeCollector {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl FakeCollector {
    /// Listens on a free loopback port, answering `status` to every request.
    pub fn start(status: u16) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let counter = std::sync::Arc::clone(&counter);
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 64 * 1024];
                    loop {
                        // Headers, then Content-Length bytes of body.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..head_end + len);
                        counter.fetch_add(1, Ordering::SeqCst);
                        let reply = format!(
                            "HTTP/1.1 {status} Status\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                        );
                        if conn.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, requests }
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}
