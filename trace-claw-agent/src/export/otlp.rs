//! Online mode: every tick's samples pushed as OTLP/HTTP protobuf to `<otel.endpoint>/v1/metrics`
//! (or `otel.metrics_endpoint`), over http or https, with the configured headers, optionally
//! gzip-compressed.
//!
//! The collect loop only appends to a bounded queue; a background thread turns the queued ticks
//! into requests (`otlp_request`) and sends them. When the endpoint is down, slow, or answers
//! 429/502/503/504, the batch at the head is retried after an exponential backoff with jitter
//! (or the server's `Retry-After`); any other answer is final and its batches are dropped. The
//! oldest batch is dropped once the queue is full. Every dropped batch is counted in
//! `trace_claw.export.failed_batches`. Each distinct error is logged once, and so is the recovery.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::sync::Notify;
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::names::{self, MetricDef};
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

use super::otlp_request::{resource, to_request};
use super::{ExportError, Exporter};
use crate::config::{Compression, OtelConfig};
use crate::error::error_chain;
use crate::http_client::{HttpPoster, PostError, PostOptions, TlsFiles};
use crate::runtime::block_on;

/// First retry delay after a failed request.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Queued ticks merged into one request when catching up.
const MAX_BATCHES_PER_REQUEST: usize = 16;

/// Where metrics go: `otel.metrics_endpoint` as is, else `<otel.endpoint>/v1/metrics`.
pub fn metrics_url_of(config: &OtelConfig) -> String {
    match &config.metrics_endpoint {
        Some(url) => url.clone(),
        None => metrics_url(&config.endpoint),
    }
}

/// `<endpoint>/v1/metrics`, unless the endpoint already names that path.
pub fn metrics_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/metrics") {
        base.to_owned()
    } else {
        format!("{base}/v1/metrics")
    }
}

/// Ticks waiting to be sent, shared by the collect loop and the sender thread.
struct Queue {
    state: Mutex<QueueState>,
    /// A batch was queued or shutdown began.
    wake: Notify,
    /// Shutdown began (interrupts the retry backoff).
    closing: Notify,
    capacity: usize,
    /// Batches dropped or given up on: `trace_claw.export.failed_batches`.
    failed: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    batches: VecDeque<Vec<MetricSample>>,
    closing: bool,
    overflow_reported: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the queue inconsistent (push/pop only).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The OTLP/HTTP metrics sink.
pub struct OtlpExporter {
    url: String,
    queue: Arc<Queue>,
    worker: Option<JoinHandle<()>>,
}

impl OtlpExporter {
    /// Starts the sender thread for `config.endpoint`.
    pub fn new(config: &OtelConfig) -> Result<Self, ExportError> {
        let url = metrics_url_of(config);
        let fail = |e| ExportError::Otlp {
            url: url.clone(),
            source: Box::new(e),
        };
        let headers = config
            .headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad_header(k, &e))?,
                    HeaderValue::from_str(v).map_err(|e| bad_header(k, &e))?,
                ))
            })
            .collect::<Result<Vec<_>, PostError>>()
            .map_err(fail)?;
        let options = PostOptions {
            timeout: Duration::from_secs_f64(config.timeout_seconds),
            headers,
            tls: TlsFiles {
                ca_file: config.tls.ca_file.clone(),
                client_cert: config.tls.client_cert.clone(),
                client_key: config.tls.client_key.clone(),
            },
        };
        let poster = HttpPoster::for_url(&url, &options).map_err(fail)?;
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            closing: Notify::new(),
            capacity: config.queue_batches.max(1),
            failed: AtomicU64::new(0),
        });
        let sender = Sender {
            url: url.clone(),
            queue: Arc::clone(&queue),
            poster,
            gzip: config.compression == Compression::Gzip,
            resource: resource(&config.service_name, &config.resource_attributes),
            start_time: Timestamp::now().unix_nanos().max(0).unsigned_abs(),
        };
        let worker = std::thread::Builder::new()
            .name("otlp-export".to_owned())
            .spawn(move || sender.run())
            .map_err(|source| ExportError::Thread {
                what: "otlp-export",
                source,
            })?;
        Ok(Self {
            url,
            queue,
            worker: Some(worker),
        })
    }

    /// Batches dropped or undeliverable so far.
    pub fn failed_batches(&self) -> u64 {
        self.queue.failed.load(Ordering::Relaxed)
    }
}

impl Exporter for OtlpExporter {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    fn export(&mut self, samples: &[MetricSample], _: &[ProcessEvent]) -> Result<(), ExportError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut state = self.queue.lock();
        if state.batches.len() >= self.queue.capacity {
            state.batches.pop_front();
            self.queue.failed.fetch_add(1, Ordering::Relaxed);
            if !state.overflow_reported {
                state.overflow_reported = true;
                log::warn!(
                    "otlp export queue full ({} batches): dropping the oldest while {} is slow or down",
                    self.queue.capacity,
                    self.url
                );
            }
        }
        state.batches.push_back(samples.to_vec());
        drop(state);
        self.queue.wake.notify_one();
        Ok(())
    }

    fn self_metrics(&self) -> Vec<(MetricDef, f64)> {
        vec![(names::EXPORT_FAILED_BATCHES, self.failed_batches() as f64)]
    }

    fn shutdown(&mut self) -> Result<(), ExportError> {
        self.queue.lock().closing = true;
        self.queue.wake.notify_one();
        self.queue.closing.notify_one();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                log::error!("otlp export thread panicked");
            }
        }
        Ok(())
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        // Errors were logged by the sender; shutdown itself cannot fail.
        let _ = self.shutdown();
    }
}

/// The sender thread's state.
struct Sender {
    url: String,
    queue: Arc<Queue>,
    poster: HttpPoster,
    gzip: bool,
    resource: Resource,
    start_time: u64,
}

/// A header of `otel.headers` that HTTP cannot carry.
fn bad_header(name: &str, e: &dyn std::fmt::Display) -> PostError {
    PostError::BadUrl {
        url: format!("otel.headers.{name}"),
        reason: e.to_string(),
    }
}

/// `body` gzip-compressed.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_all(&mut encoder, body);
    encoder.finish().unwrap_or_default()
}

/// `backoff` with jitter: a uniformly random delay between half and all of it, so that agents
/// that failed together do not retry together.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() / 2.0)
}

impl Sender {
    fn run(self) {
        if let Err(e) = block_on(self.send_loop()) {
            log::error!("otlp export: cannot start its runtime: {e}; nothing will be sent");
        }
    }

    async fn send_loop(self) {
        let content_type = HeaderValue::from_static("application/x-protobuf");
        let mut last_error: Option<String> = None;
        let mut failures = 0u64;
        let mut backoff = MIN_BACKOFF;
        loop {
            let (batches, closing) = {
                let mut state = self.queue.lock();
                let n = state.batches.len().min(MAX_BATCHES_PER_REQUEST);
                let batches: Vec<Vec<MetricSample>> = state.batches.drain(..n).collect();
                (batches, state.closing)
            };
            if batches.is_empty() {
                if closing {
                    break;
                }
                self.queue.wake.notified().await;
                continue;
            }
            let samples: Vec<&MetricSample> = batches.iter().flatten().collect();
            let mut body = to_request(&samples, &self.resource, self.start_time).encode_to_vec();
            if self.gzip {
                body = gzip(&body);
            }
            let encoding = self.gzip.then_some("gzip");
            match self
                .poster
                .post(&self.url, Some(content_type.clone()), encoding, body.into())
                .await
            {
                Ok(()) => {
                    backoff = MIN_BACKOFF;
                    if last_error.take().is_some() {
                        log::info!(
                            "otlp export to {} recovered after {failures} failed attempts",
                            self.url
                        );
                        failures = 0;
                    }
                    self.queue.lock().overflow_reported = false;
                }
                Err(e) => {
                    failures += 1;
                    let message = error_chain(&e);
                    let retry = e.is_retryable();
                    if last_error.as_deref() != Some(message.as_str()) {
                        log::error!(
                            "otlp export to {}: {message} ({}; collection goes on)",
                            self.url,
                            if retry {
                                "retrying"
                            } else {
                                "not retryable: its batches are dropped"
                            }
                        );
                        last_error = Some(message.clone());
                    }
                    if !retry {
                        self.queue
                            .failed
                            .fetch_add(batches.len() as u64, Ordering::Relaxed);
                        continue;
                    }
                    if closing {
                        self.give_up(batches.len(), &message);
                        break;
                    }
                    self.requeue(batches);
                    let wait = e.retry_after().unwrap_or_else(|| jittered(backoff));
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.queue.closing.notified() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Puts unsent batches back at the head, dropping (and counting) what no longer fits.
    fn requeue(&self, batches: Vec<Vec<MetricSample>>) {
        let mut state = self.queue.lock();
        for batch in batches.into_iter().rev() {
            if state.batches.len() >= self.queue.capacity {
                self.queue.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                state.batches.push_front(batch);
            }
        }
    }

    /// At shutdown with the endpoint failing: counts and reports what will never be sent.
    fn give_up(&self, in_flight: usize, message: &str) {
        let mut state = self.queue.lock();
        let lost = in_flight + state.batches.len();
        state.batches.clear();
        self.queue.failed.fetch_add(lost as u64, Ordering::Relaxed);
        log::error!(
            "otlp export to {}: {lost} batches not delivered at shutdown: {message}",
            self.url
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_gets_the_metrics_path_once() {
        assert_eq!(metrics_url("http://h:4318"), "http://h:4318/v1/metrics");
        assert_eq!(metrics_url("http://h:4318/"), "http://h:4318/v1/metrics");
        assert_eq!(
            metrics_url("http://h:8428/opentelemetry/v1/metrics"),
            "http://h:8428/opentelemetry/v1/metrics"
        );
        assert!(crate::http_client::check_url("h:1").is_err());
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Duration::from_secs(4);
        for _ in 0..1000 {
            let d = jittered(backoff);
            assert!(d >= backoff / 2 && d <= backoff, "{d:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        let body = b"0123456789".repeat(100);
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&gzip(&body)[..]),
            &mut out,
        )
        .expect("gunzip");
        assert_eq!(out, body);
    }
}
