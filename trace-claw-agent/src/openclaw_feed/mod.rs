//! The live action feed of `collect --openclaw`: OpenClaw's file log, followed as the gateway
//! writes it, turned into LLM and tool actions that are appended to the trace directory's
//! `events-YYYY-MM-DD.jsonl` as each call ends.
//!
//! A trace directory written while collecting then holds the actions next to the resource
//! samples, with no copying, and each action names the gateway's pid, so `analyze` charges it
//! to the gateway's process tree. The log is read by the same recogniser `analyze` uses
//! ([`Recogniser`]), so both see the same calls. What the file already held when the feed
//! started is read for the runs' sessions and models, but its calls are not written again: a
//! restarted agent does not log a call twice.
//!
//! The file log lacks tokens, cost and session keys; OpenClaw's SQLite stores (2026.5 and
//! later) hold them, and are followed beside the log ([`StoreMirror`]).
//!
//! - [`crate::tail`]: following the daily log across rotation and day changes.
//! - `gateway`: which process is the gateway.
//! - [`store_mirror`]: following the SQLite stores.

mod gateway;
pub mod store_mirror;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use trace_claw_common::time::Timestamp;

use crate::tail::{self, LogTail, MAX_LINE_BYTES, OPENCLAW_LOGS};
pub use gateway::{GatewayFinder, GATEWAY_COMMS};
pub use store_mirror::StoreMirror;

use crate::analyze::source::action::Source;
use crate::analyze::source::lines::LineStats;
use crate::analyze::source::openclaw_log::{feed_line, Recogniser};
use crate::event_log::EventLogger;
use crate::export::ExportError;

/// How long a call may stay open (its end line not seen) before it is forgotten.
const OPEN_CALL_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// Why the feed could not go on.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The log directory or a log file cannot be read.
    #[error("cannot read OpenClaw's log in {dir}")]
    Read {
        /// The directory followed.
        dir: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An action cannot be written to the trace directory.
    #[error(transparent)]
    Write(#[from] ExportError),
}

/// What the feed has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounts {
    /// Actions written to the events files.
    pub actions: u64,
    /// Log lines that were not log records (or too long to keep).
    pub bad_lines: u64,
}

/// Follows one OpenClaw log directory into one trace directory.
pub struct OpenclawFeed {
    tail: LogTail,
    recogniser: Recogniser,
    stats: LineStats,
    events: EventLogger,
    gateway: Option<GatewayFinder>,
    /// The file the feed started in and its length then: calls ending in it up to there were
    /// logged before the feed started.
    replay: Option<(Arc<Path>, u64)>,
    counts: FeedCounts,
    pruned: Instant,
}

impl OpenclawFeed {
    /// Follows the logs in `log_dir`, writing actions into `trace_dir`, each with the pid that
    /// `gateway` finds (none without one).
    pub fn new(
        log_dir: &Path,
        trace_dir: &Path,
        gateway: Option<GatewayFinder>,
    ) -> Result<Self, FeedError> {
        let replay = newest_len(log_dir);
        Ok(Self {
            tail: LogTail::new(log_dir, OPENCLAW_LOGS),
            recogniser: Recogniser::live(Source::OpenclawLog, log_dir.display().to_string().into()),
            stats: LineStats::default(),
            events: EventLogger::new(trace_dir)?,
            gateway,
            replay,
            counts: FeedCounts::default(),
            pruned: Instant::now(),
        })
    }

    /// The directory followed.
    pub fn log_dir(&self) -> &Path {
        self.tail.dir()
    }

    /// What the feed has done so far.
    pub fn counts(&self) -> FeedCounts {
        self.counts
    }

    /// Reads what was logged since the last poll and writes the calls that ended; returns how
    /// many it wrote.
    pub fn poll(&mut self) -> Result<u64, FeedError> {
        let Self {
            tail,
            recogniser,
            stats,
            replay,
            counts,
            ..
        } = self;
        let mut replayed = 0u64;
        let mut skipped = Vec::new();
        let read = tail.poll(
            |line| {
                feed_line(recogniser, stats, line.number, line.text);
                let before_start = replay
                    .as_ref()
                    .is_some_and(|(p, len)| **p == *line.path && line.end <= *len);
                if before_start {
                    replayed += recogniser.out.actions.len() as u64;
                    recogniser.out.actions.clear();
                }
                if stats.bad > counts.bad_lines {
                    if counts.bad_lines == 0 {
                        let reason = stats.first_bad.first().map_or("", |b| b.reason.as_str());
                        log::warn!(
                            "{}:{}: not an OpenClaw log record ({reason}); such lines are \
                             counted and skipped",
                            line.path.display(),
                            line.number
                        );
                    }
                    counts.bad_lines = stats.bad;
                }
            },
            |s| skipped.push(s),
        );
        for s in skipped {
            log::warn!(
                "{}:{}: skipped a {}-byte line (longer than {MAX_LINE_BYTES} bytes)",
                s.path.display(),
                s.line,
                s.bytes
            );
            counts.bad_lines += 1;
            stats.bad += 1;
        }
        read.map_err(|source| FeedError::Read {
            dir: tail.dir().display().to_string(),
            source,
        })?;
        if replayed > 0 {
            log::debug!("{replayed} calls were logged before the feed started; not written again");
        }
        self.write_ended()
    }

    /// Writes the actions the recogniser finished, and forgets stale state now and then.
    fn write_ended(&mut self) -> Result<u64, FeedError> {
        let actions = std::mem::take(&mut self.recogniser.out.actions);
        self.recogniser.out.notes.clear();
        self.recogniser.out.session_keys.clear();
        self.recogniser.out.run_sessions.clear();
        let pid = match (&mut self.gateway, actions.is_empty()) {
            (Some(g), false) => g.pid(),
            _ => None,
        };
        let mut written = 0;
        for a in actions {
            let mut event = a.event.to_event();
            event.pid = pid;
            if let Some(run) = a.run_id {
                event
                    .attributes
                    .insert("run_id".into(), Value::String(run.into()));
            }
            self.events.append(&event)?;
            written += 1;
        }
        self.counts.actions += written;
        if self.pruned.elapsed() >= Duration::from_secs(600) {
            self.pruned = Instant::now();
            let limit = OPEN_CALL_LIMIT.as_nanos() as i64;
            self.recogniser
                .forget_open_before(Timestamp(Timestamp::now().0 - limit));
        }
        Ok(written)
    }
}

/// The newest log's path and length now: the part of it the feed must not write again.
fn newest_len(dir: &Path) -> Option<(Arc<Path>, u64)> {
    let (path, meta) = tail::newest_log(dir, OPENCLAW_LOGS).ok()??;
    Some((Arc::from(path), meta.len()))
}

/// The feed as `collect` runs it: following, or waiting for a tracked gateway to appear
/// (`openclaw.follow` absent).
pub enum LiveFeed {
    /// Follows only once a gateway is among the tracked processes.
    Waiting {
        /// Finds the gateway (taken when following starts).
        gateway: Option<GatewayFinder>,
        /// OpenClaw's log directory.
        log_dir: std::path::PathBuf,
        /// OpenClaw's state directory.
        state_dir: std::path::PathBuf,
        /// The trace directory.
        trace_dir: std::path::PathBuf,
    },
    /// Following the log.
    Following {
        /// The feed.
        feed: Box<OpenclawFeed>,
        /// The SQLite stores followed beside it.
        stores: StoreMirror,
        /// The last error reported, so that a lasting one is reported once.
        last_error: Option<String>,
    },
}

impl LiveFeed {
    /// The feed `config` asks for: `None` when it is off.
    pub fn from_config(config: &crate::config::Config) -> Result<Option<Self>, FeedError> {
        let c = &config.collector;
        let tracks = c.enabled && c.process_filter_enabled;
        let gateway = || -> Result<Option<GatewayFinder>, FeedError> {
            if !tracks {
                return Ok(None);
            }
            let table =
                crate::collect::process_table(&c.proc_root).map_err(|e| FeedError::Read {
                    dir: c.proc_root.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            Ok(Some(GatewayFinder::new(table, &c.process_name)))
        };
        let dir = &config.openclaw.log_dir;
        let state_dir = state_dir(config.openclaw.state_dir.as_deref());
        match config.openclaw.follow {
            Some(false) => Ok(None),
            None if !tracks => Ok(None),
            None => Ok(gateway()?.map(|gateway| Self::Waiting {
                gateway: Some(gateway),
                log_dir: dir.clone(),
                state_dir,
                trace_dir: config.output_dir.clone(),
            })),
            Some(true) => {
                let feed = OpenclawFeed::new(dir, &config.output_dir, gateway()?)?;
                let stores = StoreMirror::new(&state_dir, &config.output_dir);
                log::info!(
                    "following OpenClaw's file log in {} and its SQLite stores in {}; what they \
                     record goes to {}",
                    dir.display(),
                    state_dir.display(),
                    config.output_dir.display()
                );
                Ok(Some(Self::following(feed, stores)))
            }
        }
    }

    fn following(feed: OpenclawFeed, stores: StoreMirror) -> Self {
        Self::Following {
            feed: Box::new(feed),
            stores,
            last_error: None,
        }
    }

    /// Follows the log one step (or checks for a gateway); problems are logged, once each.
    pub fn poll(&mut self) {
        match self {
            Self::Waiting {
                gateway,
                log_dir,
                state_dir,
                trace_dir,
            } => {
                let Some(pid) = gateway.as_mut().and_then(GatewayFinder::pid) else {
                    return;
                };
                match OpenclawFeed::new(log_dir, trace_dir, gateway.take()) {
                    Ok(feed) => {
                        log::info!(
                            "OpenClaw gateway found (pid {pid}): following its file log in {} \
                             and its SQLite stores in {}; what they record goes to {}",
                            log_dir.display(),
                            state_dir.display(),
                            trace_dir.display()
                        );
                        let stores = StoreMirror::new(state_dir, trace_dir);
                        *self = Self::following(feed, stores);
                    }
                    Err(e) => log::warn!("cannot follow OpenClaw's file log: {e}"),
                }
            }
            Self::Following {
                feed,
                stores,
                last_error,
            } => {
                match feed.poll() {
                    Ok(_) => *last_error = None,
                    Err(e) => {
                        let text = crate::error::error_chain(&e);
                        if last_error.as_deref() != Some(text.as_str()) {
                            log::warn!("OpenClaw feed: {text}; retrying");
                            *last_error = Some(text);
                        }
                    }
                }
                stores.poll();
            }
        }
    }

    /// Logs what the feed did, at shutdown.
    pub fn report(&self) {
        if let Self::Following { feed, stores, .. } = self {
            let n = feed.counts();
            log::info!(
                "OpenClaw feed: {} calls written from {}, {} lines skipped",
                n.actions,
                feed.log_dir().display(),
                n.bad_lines
            );
            let s = stores.counts();
            log::info!(
                "OpenClaw stores: {} transcript rows copied from {} store(s) in {}, {} rows skipped",
                s.rows,
                s.stores,
                stores.state_dir().display(),
                s.bad_rows
            );
        }
    }
}

/// OpenClaw's state directory: `configured`, else `$OPENCLAW_STATE_DIR` (OpenClaw's own
/// setting), else `~/.openclaw` (relative `.openclaw` without a home).
fn state_dir(configured: Option<&Path>) -> std::path::PathBuf {
    configured.map_or_else(
        || {
            std::env::var_os("OPENCLAW_STATE_DIR").map_or_else(
                || {
                    std::env::var_os("HOME")
                        .map_or_else(std::path::PathBuf::new, std::path::PathBuf::from)
                        .join(".openclaw")
                },
                std::path::PathBuf::from,
            )
        },
        Path::to_path_buf,
    )
}
