//! Online mode: every tick's samples pushed as OTLP to `otel.endpoint`, over HTTP/protobuf
//! (`/v1/metrics`) or gRPC, plain or TLS, with the configured headers, optionally gzip-compressed
//! (`otlp_transport`).
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

use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::Notify;
use trace_claw_common::event::{ActionEvent, ProcessEvent};
use trace_claw_common::names::{self, MetricDef};
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

use super::otlp_request::{resource, to_request};
use super::otlp_spans::to_trace_request;
use super::otlp_transport::{url_of, Request, Signal, Transport};
use super::{ExportError, Exporter};
use crate::config::OtelConfig;
use crate::error::error_chain;

/// First retry delay after a failed request.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Queued ticks merged into one request when catching up.
const MAX_BATCHES_PER_REQUEST: usize = 16;

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

/// What one queued entry holds: one tick's samples, or actions to send as spans.
enum Batch {
    Samples(Vec<MetricSample>),
    Actions(Vec<ActionEvent>),
}

impl Batch {
    fn is_samples(&self) -> bool {
        matches!(self, Self::Samples(_))
    }
}

#[derive(Default)]
struct QueueState {
    batches: VecDeque<Batch>,
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

/// The OTLP metrics sink (HTTP/protobuf or gRPC).
pub struct OtlpExporter {
    url: String,
    queue: Arc<Queue>,
    worker: Option<JoinHandle<()>>,
    exports_actions: bool,
}

impl OtlpExporter {
    /// Starts the sender thread for `config.endpoint`.
    pub fn new(config: &OtelConfig) -> Result<Self, ExportError> {
        let fail = |url: String, e| ExportError::Otlp {
            url,
            source: Box::new(e),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ExportError::Thread {
                what: "otlp-export",
                source,
            })?;
        let (transport, spans) = {
            // The gRPC channel's worker is spawned on this runtime.
            let _entered = runtime.enter();
            let open = |signal| {
                Transport::new(config, signal).map_err(|e| fail(url_of(config, signal), e))
            };
            let spans = config
                .export_actions
                .then(|| open(Signal::Traces))
                .transpose()?;
            (open(Signal::Metrics)?, spans)
        };
        let url = transport.url().to_owned();
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            closing: Notify::new(),
            capacity: config.queue_batches.max(1),
            failed: AtomicU64::new(0),
        });
        let exports_actions = spans.is_some();
        let sender = Sender {
            queue: Arc::clone(&queue),
            transport,
            spans,
            resource: resource(&config.service_name, &config.resource_attributes),
            start_time: Timestamp::now().unix_nanos().max(0).unsigned_abs(),
        };
        let worker = std::thread::Builder::new()
            .name("otlp-export".to_owned())
            .spawn(move || runtime.block_on(sender.send_loop()))
            .map_err(|source| ExportError::Thread {
                what: "otlp-export",
                source,
            })?;
        Ok(Self {
            url,
            queue,
            worker: Some(worker),
            exports_actions,
        })
    }

    /// Batches dropped or undeliverable so far.
    pub fn failed_batches(&self) -> u64 {
        self.queue.failed.load(Ordering::Relaxed)
    }

    /// Queues `batch`, dropping (and counting) the oldest when the queue is full.
    fn push(&self, batch: Batch) {
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
        state.batches.push_back(batch);
        drop(state);
        self.queue.wake.notify_one();
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
        if !samples.is_empty() {
            self.push(Batch::Samples(samples.to_vec()));
        }
        Ok(())
    }

    fn wants_actions(&self) -> bool {
        self.exports_actions
    }

    fn export_actions(&mut self, actions: &[ActionEvent]) -> Result<(), ExportError> {
        if self.exports_actions && !actions.is_empty() {
            self.push(Batch::Actions(actions.to_vec()));
        }
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
    queue: Arc<Queue>,
    transport: Transport,
    /// Where the spans of actions go, when they are exported.
    spans: Option<Transport>,
    resource: Resource,
    start_time: u64,
}

/// `backoff` with jitter: a uniformly random delay between half and all of it, so that agents
/// that failed together do not retry together.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() / 2.0)
}

impl Sender {
    async fn send_loop(mut self) {
        let mut last_error: Option<String> = None;
        let mut failures = 0u64;
        let mut backoff = MIN_BACKOFF;
        loop {
            let (batches, closing) = {
                let mut state = self.queue.lock();
                // Consecutive batches of one kind go in one request.
                let kind = state.batches.front().map(Batch::is_samples);
                let n = state
                    .batches
                    .iter()
                    .take(MAX_BATCHES_PER_REQUEST)
                    .take_while(|b| Some(b.is_samples()) == kind)
                    .count();
                let batches: Vec<Batch> = state.batches.drain(..n).collect();
                (batches, state.closing)
            };
            if batches.is_empty() {
                if closing {
                    break;
                }
                self.queue.wake.notified().await;
                continue;
            }
            let (transport, request) = self.request(&batches);
            match transport.send(request).await {
                Ok(()) => {
                    backoff = MIN_BACKOFF;
                    if last_error.take().is_some() {
                        log::info!(
                            "otlp export to {} recovered after {failures} failed attempts",
                            transport.url()
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
                            transport.url(),
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

    /// The transport and the request for `batches` (all of one kind).
    fn request(&mut self, batches: &[Batch]) -> (&mut Transport, Request) {
        if batches.first().is_some_and(Batch::is_samples) {
            let samples: Vec<&MetricSample> = batches
                .iter()
                .flat_map(|b| match b {
                    Batch::Samples(s) => s.as_slice(),
                    Batch::Actions(_) => &[],
                })
                .collect();
            let request = to_request(&samples, &self.resource, self.start_time);
            return (&mut self.transport, Request::Metrics(request));
        }
        let actions: Vec<&ActionEvent> = batches
            .iter()
            .flat_map(|b| match b {
                Batch::Actions(a) => a.as_slice(),
                Batch::Samples(_) => &[],
            })
            .collect();
        let request = Request::Traces(to_trace_request(&actions, &self.resource));
        // Actions are only queued when spans are exported.
        match self.spans.as_mut() {
            Some(spans) => (spans, request),
            None => (&mut self.transport, request),
        }
    }

    /// Puts unsent batches back at the head, dropping (and counting) what no longer fits.
    fn requeue(&self, batches: Vec<Batch>) {
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
            self.transport.url()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Duration::from_secs(4);
        for _ in 0..1000 {
            let d = jittered(backoff);
            assert!(d >= backoff / 2 && d <= backoff, "{d:?}");
        }
    }
}
