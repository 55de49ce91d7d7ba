//! The embedded OTLP/HTTP receiver: OpenClaw's spans, metrics and logs land in
//! `<output_dir>/openclaw-otlp-YYYY-MM-DD.jsonl` with no collector or Docker in between.
//!
//! It runs on its own thread with its own single-threaded runtime, so neither a burst of
//! requests nor a slow disk delays the collection ticks, and a tick never delays a client.

pub mod decode;
mod server;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{oneshot, Semaphore};

use crate::config::ReceiverConfig;
use crate::daily_jsonl::{DailyJsonl, OTLP_PREFIX};
use crate::export::ExportError;
use crate::http_client::HttpPoster;
use server::Shared;

/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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
}

/// A running receiver; [`Receiver::shutdown`] (or drop) stops it and flushes the capture.
pub struct Receiver {
    addr: SocketAddr,
    rejected: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
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
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;

        let rejected = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            writer: Mutex::new(DailyJsonl::new(output_dir, OTLP_PREFIX)?),
            max_body_bytes: config.max_body_bytes,
            request_timeout: Duration::from_secs_f64(config.request_timeout_seconds),
            rejected: Arc::clone(&rejected),
            rejected_statuses: Mutex::default(),
            accepted: Arc::clone(&accepted),
            forward: config
                .forward_to
                .as_ref()
                .map(|url| (url.clone(), HttpPoster::new())),
            write_error: Mutex::new(None),
            forward_error: Arc::new(Mutex::new(None)),
        });
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".to_owned())
            .spawn(move || serve_thread(listener, shared, stopped))
            .map_err(ReceiveError::Thread)?;
        log::info!(
            "otlp receiver listening on http://{addr} (/v1/traces, /v1/metrics, /v1/logs){}",
            config
                .forward_to
                .as_ref()
                .map_or(String::new(), |u| format!(", forwarding to {u}"))
        );
        Ok(Self {
            addr,
            rejected,
            accepted,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may already be gone; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("otlp receiver thread panicked");
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn serve_thread(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stopped: oneshot::Receiver<()>,
) {
    let served = crate::runtime::block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                log::error!("otlp receiver: cannot register the listener: {e}");
                return;
            }
        };
        accept_loop(listener, Arc::clone(&shared), stopped).await;
        match shared.writer.lock() {
            Ok(mut w) => {
                if let Err(e) = w.flush() {
                    log::error!("otlp receiver: {}", crate::error::error_chain(&e));
                }
            }
            Err(_) => log::error!("otlp receiver: capture writer poisoned"),
        }
    });
    if let Err(e) = served {
        log::error!("otlp receiver: cannot start its runtime: {e}");
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut accept_error: Option<String> = None;
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stopped => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = &mut stopped => break,
        };
        let stream = match stream {
            Ok((stream, _)) => {
                accept_error = None;
                stream
            }
            Err(e) => {
                // EMFILE and friends: say so once and back off instead of spinning.
                let message = e.to_string();
                if accept_error.as_deref() != Some(message.as_str()) {
                    log::error!("otlp receiver: accept: {message}");
                    accept_error = Some(message);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small requests answer faster without Nagle; failing to set it changes nothing else.
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let timeout = shared.request_timeout;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(timeout);
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| server::handle(Arc::clone(&shared), req)),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!("otlp receiver: connection: {e}");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!("otlp receiver: requests still in flight after {SHUTDOWN_GRACE:?}, closed");
    }
}
