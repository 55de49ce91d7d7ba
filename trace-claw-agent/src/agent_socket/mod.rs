//! The local Unix socket a running agent serves its ticks on, so `top` can show them without
//! loading the kernel programs a second time. The protocol (docs/agent-socket.md) is
//! newline-delimited JSON: one [`Hello`] naming [`PROTOCOL_VERSION`], then one [`Tick`] per
//! collection tick, with the same samples and process events the JSONL files get.
//!
//! - `server`: the agent's side (bind, permissions, stale sockets, per-client queues).
//! - `client`: `top`'s side (connect, version check, a reader thread).

mod client;
mod server;

use std::borrow::Cow;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

pub use client::{AttachError, Attached};
pub use server::{BindError, SocketServer, CLIENT_QUEUE};

/// The version this build speaks; a client refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first line the agent writes to each client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the agent.
    pub version: u32,
    /// How processes are measured: `ebpf` or `procfs`.
    pub source: String,
    /// The agent's trace directory, where the actions `top` shows are written.
    pub output_dir: PathBuf,
    /// Seconds between ticks.
    pub interval_seconds: f64,
}

/// One collection tick, as the agent exported it: borrowed when the agent writes it, owned
/// when `top` reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick<'a> {
    /// When the tick was taken.
    pub timestamp: Timestamp,
    /// Every sample of the tick.
    pub samples: Cow<'a, [MetricSample]>,
    /// The exec, fork and exit events since the previous tick.
    pub events: Cow<'a, [ProcessEvent]>,
}
