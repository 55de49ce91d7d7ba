//! `top`'s side of the socket: connects, checks the hello's version, then reads ticks on a
//! thread of its own so the view never waits on the agent. Lines that do not parse are counted
//! and skipped.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use super::{Hello, Tick, PROTOCOL_VERSION};

/// Longest line read from the agent; a longer one ends the connection instead of growing.
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// Attaching to an agent failed, or the agent went away.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// No agent answers on the path.
    #[error("cannot connect to the agent socket '{path}'")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The first line is not a hello.
    #[error("the agent socket '{path}' sent no valid hello: {message}")]
    Hello {
        /// The socket.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The agent speaks another protocol version.
    #[error(
        "the agent socket '{path}' speaks protocol version {agent}, this top speaks version \
         {ours}; run a top of the same release as the agent"
    )]
    Version {
        /// The socket.
        path: PathBuf,
        /// The agent's version.
        agent: u64,
        /// [`PROTOCOL_VERSION`].
        ours: u32,
    },
    /// The agent closed the connection (it stopped), or reading failed.
    #[error("the agent on '{0}' closed the connection")]
    Closed(PathBuf),
}

/// A connection to a running agent.
#[derive(Debug)]
pub struct Attached {
    /// What the agent said first.
    pub hello: Hello,
    path: PathBuf,
    ticks: Receiver<Tick<'static>>,
    malformed: Arc<AtomicU64>,
}

impl Attached {
    /// Connects to `path` and reads the hello; fails on any version but [`PROTOCOL_VERSION`].
    pub fn connect(path: &Path) -> Result<Self, AttachError> {
        let stream = UnixStream::connect(path).map_err(|source| AttachError::Connect {
            path: path.to_owned(),
            source,
        })?;
        let mut reader = BufReader::new(stream);
        let hello_err = |message: String| AttachError::Hello {
            path: path.to_owned(),
            message,
        };
        let mut line = String::new();
        (&mut reader)
            .take(MAX_LINE)
            .read_line(&mut line)
            .map_err(|e| hello_err(e.to_string()))?;
        // The version first, from any JSON object, so a newer hello's shape is not the error.
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| hello_err(format!("not JSON: {e}")))?;
        let agent = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| hello_err("no 'version'".to_owned()))?;
        if agent != u64::from(PROTOCOL_VERSION) {
            return Err(AttachError::Version {
                path: path.to_owned(),
                agent,
                ours: PROTOCOL_VERSION,
            });
        }
        let hello: Hello = serde_json::from_value(value).map_err(|e| hello_err(e.to_string()))?;
        let (tx, ticks) = mpsc::channel();
        let malformed = Arc::new(AtomicU64::new(0));
        let bad = malformed.clone();
        std::thread::Builder::new()
            .name("top-attach".to_owned())
            .spawn(move || read_ticks(reader, &tx, &bad))
            .map_err(|e| hello_err(format!("cannot start the reader: {e}")))?;
        Ok(Self {
            hello,
            path: path.to_owned(),
            ticks,
            malformed,
        })
    }

    /// The ticks received since the last call; an error once the agent is gone.
    pub fn poll(&self) -> Result<Vec<Tick<'static>>, AttachError> {
        let mut out = Vec::new();
        loop {
            match self.ticks.try_recv() {
                Ok(t) => out.push(t),
                Err(TryRecvError::Empty) => return Ok(out),
                Err(TryRecvError::Disconnected) if out.is_empty() => {
                    return Err(AttachError::Closed(self.path.clone()))
                }
                Err(TryRecvError::Disconnected) => return Ok(out),
            }
        }
    }

    /// Lines from the agent that were not a tick.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }
}

/// Reads ticks until the agent closes the socket or `top` is gone.
fn read_ticks(
    mut reader: BufReader<UnixStream>,
    tx: &mpsc::Sender<Tick<'static>>,
    malformed: &AtomicU64,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match serde_json::from_str::<Tick<'static>>(&line) {
            Ok(t) => {
                if tx.send(t).is_err() {
                    return;
                }
            }
            Err(_) => {
                malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
