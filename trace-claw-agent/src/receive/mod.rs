//! The embedded OTLP/HTTP receiver: OpenClaw's spans, metrics and logs land in
//! `<output_dir>/openclaw-otlp-YYYY-MM-DD.jsonl` with no collector or Docker in between.
//!
//! It runs on its own [`ServerThread`], so neither a burst of requests nor a slow disk delays
//! the collection ticks, and a tick never delays a client.

pub mod decode;
mod server;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::ReceiverConfig;
use crate::daily_jsonl::{DailyJsonl, OTLP_PREFIX};
use crate::export::ExportError;
use crate::http_client::{HttpPoster, PostOptions};
use crate::http_server::{ServerOptions, ServerThread};
use server::Shared;

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// `receiver.listen` is not `host:port`.
    #[error("receiver.listen: '{0}' is not an address such as 127.0.0.1:4318")]
    BadAddress(String),
    /// The address is taken or not ours.
    #[error("cannot listen on '{addr}'")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The capture file's directory cannot be created.
    #[error(transparent)]
    Output(#[from] ExportError),
    /// The receiver thread could not start.
    #[error("cannot start the receiver thread")]
    Thread(#[source] std::io::Error),
    /// `receiver.forward_to` cannot be used.
    #[error("receiver.forward_to '{url}'")]
    Forward {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: crate::http_client::PostError,
    },
}

/// A running receiver; [`Receiver::shutdown`] (or drop) stops it and flushes the capture.
pub struct Receiver {
    server: ServerThread,
    rejected: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
}

impl Receiver {
    /// Binds `config.listen` and serves on a new thread, writing under `output_dir`.
    pub fn spawn(config: &ReceiverConfig, output_dir: &Path) -> Result<Self, ReceiveError> {
        let addr: SocketAddr = config
            .listen
            .parse()
            .map_err(|_| ReceiveError::BadAddress(config.listen.clone()))?;
        let bind_err = |source| ReceiveError::Bind {
            addr: config.listen.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;

        let forward = match &config.forward_to {
            Some(url) => Some((
                url.clone(),
                HttpPoster::for_url(url, &PostOptions::default()).map_err(|source| {
                    ReceiveError::Forward {
                        url: url.clone(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        let rejected = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            writer: Mutex::new(DailyJsonl::new(output_dir, OTLP_PREFIX)?),
            max_body_bytes: config.max_body_bytes,
            request_timeout: Duration::from_secs_f64(config.request_timeout_seconds),
            rejected: Arc::clone(&rejected),
            rejected_statuses: Mutex::default(),
            accepted: Arc::clone(&accepted),
            forward,
            write_error: Mutex::new(None),
            forward_error: Arc::new(Mutex::new(None)),
        });
        let options = ServerOptions {
            name: "otlp receiver",
            header_timeout: shared.request_timeout,
            max_buf_bytes: None,
        };
        let flushed = Arc::clone(&shared);
        let handler = move |req| server::handle(Arc::clone(&shared), req);
        let server = ServerThread::spawn(listener, options, handler, move || flush(&flushed))
            .map_err(ReceiveError::Thread)?;
        let addr = server.local_addr();
        log::info!(
            "otlp receiver listening on http://{addr} (/v1/traces, /v1/metrics, /v1/logs){}",
            config
                .forward_to
                .as_ref()
                .map_or(String::new(), |u| format!(", forwarding to {u}"))
        );
        Ok(Self {
            server,
            rejected,
            accepted,
        })
    }

    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Requests refused so far (`trace_claw.receiver.rejected_requests`).
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Requests written to the capture file so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Stops accepting, lets requests in flight finish (up to 2 s) and flushes the capture.
    pub fn shutdown(self) {
        self.server.shutdown();
    }
}

/// Flushes the capture file once the server has stopped.
fn flush(shared: &Shared) {
    match shared.writer.lock() {
        Ok(mut w) => {
            if let Err(e) = w.flush() {
                log::error!("otlp receiver: {}", crate::error::error_chain(&e));
            }
        }
        Err(_) => log::error!("otlp receiver: capture writer poisoned"),
    }
}
