//! The agent's side of the socket: binds it owner-only, replaces a stale one, never takes over
//! a live one, and hands each tick to every client through a bounded queue, so a slow client
//! loses ticks (counted) instead of holding the agent up. With no client a tick costs one
//! `is_empty` check.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::{Hello, Tick};

/// Ticks queued per client before further ones are dropped for it.
pub const CLIENT_QUEUE: usize = 16;

/// The socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another agent answers on the path.
    #[error("a running agent already serves the socket '{0}'; leaving it alone")]
    InUse(PathBuf),
    /// Creating the directory, removing a stale socket, binding or setting the mode failed.
    #[error("cannot serve the socket '{path}': cannot {what}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The hello line could not be encoded.
    #[error("cannot encode the socket's hello")]
    Encode(#[source] serde_json::Error),
}

impl BindError {
    /// Whether binding failed for want of permission (the default path under `/run` needs
    /// root).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
    }
}

/// A served socket and its clients; the socket file is removed on drop.
#[derive(Debug)]
pub struct SocketServer {
    path: PathBuf,
    listener: UnixListener,
    hello: Arc<[u8]>,
    clients: Vec<mpsc::Sender<Arc<[u8]>>>,
    served: u64,
    dropped: u64,
}

impl SocketServer {
    /// Serves `path` (mode 0600, its directory created), greeting each client with `hello`.
    /// A socket file nobody answers on is replaced; one a live agent answers on is not.
    /// Must be called inside a tokio runtime.
    pub fn bind(path: &Path, hello: &Hello) -> Result<Self, BindError> {
        let io = |what| {
            move |source| BindError::Io {
                path: path.to_owned(),
                what,
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create its directory"))?;
        }
        if path.symlink_metadata().is_ok() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(BindError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(io("remove the stale socket"))?;
        }
        // Bound under a temporary name and renamed once owner-only, so the socket is never
        // reachable with the default mode.
        let mut staging = path.as_os_str().to_owned();
        staging.push(format!(".{}", std::process::id()));
        let staging = PathBuf::from(staging);
        // A leftover from a dead agent that had this pid, if any; absent is the usual case.
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging).map_err(io("bind it"))?;
        let owner_only = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&staging, path));
        if let Err(e) = owner_only {
            // Best effort: the error returned says what failed.
            let _ = std::fs::remove_file(&staging);
            return Err(io("make it owner-only")(e));
        }
        let mut line = serde_json::to_vec(hello).map_err(BindError::Encode)?;
        line.push(b'\n');
        Ok(Self {
            path: path.to_owned(),
            listener,
            hello: line.into(),
            clients: Vec::new(),
            served: 0,
            dropped: 0,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next client and starts writing to it.
    pub async fn accept(&mut self) {
        match self.listener.accept().await {
            Ok((stream, _)) => {
                let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
                tokio::spawn(write_to(stream, self.hello.clone(), rx));
                self.clients.push(tx);
                self.served += 1;
            }
            Err(e) => log::debug!("socket '{}': accept: {e}", self.path.display()),
        }
    }

    /// Hands one tick to every client: encoded once, and only when someone listens.
    pub fn publish(&mut self, tick: &Tick<'_>) {
        if self.clients.is_empty() {
            return;
        }
        let mut line = match serde_json::to_vec(tick) {
            Ok(l) => l,
            Err(e) => {
                log::debug!("socket: cannot encode a tick: {e}");
                return;
            }
        };
        line.push(b'\n');
        let line: Arc<[u8]> = line.into();
        let dropped = &mut self.dropped;
        self.clients.retain(|c| match c.try_send(line.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                *dropped += 1;
                true
            }
            Err(TrySendError::Closed(_)) => false,
        });
    }

    /// Ticks not sent to a client because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Clients served since start.
    pub fn served(&self) -> u64 {
        self.served
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        // Ours: bind refused to replace a live socket, so nobody else bound this path since.
        // Already gone is fine.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes the hello, then each queued tick, until the client goes or the agent stops.
async fn write_to(mut stream: UnixStream, hello: Arc<[u8]>, mut rx: mpsc::Receiver<Arc<[u8]>>) {
    if stream.write_all(&hello).await.is_err() {
        return;
    }
    while let Some(line) = rx.recv().await {
        if stream.write_all(&line).await.is_err() {
            return;
        }
    }
}
