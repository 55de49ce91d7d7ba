//! The HTTP/1.1 server both listeners of the agent run (the OTLP receiver, the Prometheus
//! endpoint): its own thread with its own single-threaded runtime, one hyper connection task per
//! client, a bounded number of connections, a header deadline and an orderly shutdown that lets
//! requests in flight finish.
//!
//! Running on its own thread means neither a burst of requests nor a slow handler delays the
//! collection ticks, and a tick never delays a client.

use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::{oneshot, Semaphore};

/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How one server behaves towards its clients.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Prefix of its log lines and name of its thread (`otlp receiver`, `prometheus`).
    pub name: &'static str,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Largest read buffer of a connection, hence of a request head; `None`: hyper's default.
    pub max_buf_bytes: Option<usize>,
}

/// A server thread; [`ServerThread::shutdown`] (or drop) stops it.
pub struct ServerThread {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Serves `listener` with `handler` on a new thread; `after` runs on that thread once the
    /// server has stopped (e.g. to flush a file the handler writes).
    pub fn spawn<H, F>(
        listener: TcpListener,
        options: ServerOptions,
        handler: H,
        after: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<Self>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(options.name.replace(' ', "-"))
            .spawn(move || {
                let served = crate::runtime::block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, options, handler, stopped).await,
                        Err(e) => {
                            log::error!("{}: cannot register the listener: {e}", options.name)
                        }
                    }
                });
                if let Err(e) = served {
                    log::error!("{}: cannot start its runtime: {e}", options.name);
                }
                after();
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when the listener asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish (up to 2 s) and joins the thread.
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
                log::error!("server thread panicked");
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn accept_loop<H, F>(
    listener: tokio::net::TcpListener,
    options: ServerOptions,
    handler: H,
    mut stopped: oneshot::Receiver<()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let name = options.name;
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
                    log::error!("{name}: accept: {message}");
                    accept_error = Some(message);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small requests answer faster without Nagle; failing to set it changes nothing else.
        let _ = stream.set_nodelay(true);
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout);
        if let Some(max) = options.max_buf_bytes {
            builder.max_buf_size(max);
        }
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(handler.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!("{name}: connection: {e}");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!("{name}: requests still in flight after {SHUTDOWN_GRACE:?}, closed");
    }
}
