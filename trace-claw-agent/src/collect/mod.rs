//! `collect`: one interval ticker drives the collectors; their samples go to every sink.
//!
//! Collectors push into one [`SampleBuffer`] that stamps the tick's time once. A sink that fails
//! is reported and the tick goes on; SIGINT/SIGTERM stop the loop after a final flush.
//!
//! - `system`: host CPU, memory and network (sysinfo).
//! - `source` picks the process backend: `ebpf` (the kernel programs) or `polling` (the
//!   process table each tick). Both build on `process` (the [`ProcessTable`] trait, and the
//!   samples and tree totals of the tracked processes); `procfs` (Linux) and `sysproc`
//!   (elsewhere) are the process tables.

mod container;
pub mod ebpf;
mod polling;
mod process;
mod selection;
mod source;
mod system;
pub mod tree_costs;

#[cfg(target_os = "linux")]
mod procfs;
#[cfg(not(target_os = "linux"))]
mod sysproc;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use trace_claw_common::names::MetricDef;
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

pub use polling::ProcessCollector;
pub use process::{ProcStat, ProcessTable};
pub use source::ProcessSource;
pub use system::{SystemCollector, SystemFamilies};

use crate::action_watch::ActionWatch;
use crate::agent_socket::{Hello, SocketServer, Tick, PROTOCOL_VERSION};
use crate::config::Config;
use crate::export::{ExportError, Sinks};
use crate::openclaw_feed::LiveFeed;

/// How often the OpenClaw feed reads the file log (calls reach the trace directory this soon
/// after they end) and the events files are read for the sinks that export actions.
const FEED_POLL: Duration = Duration::from_millis(250);

/// Collects one tick's samples, stamping each with the tick's time and its unit.
///
/// The samples of the last tick are overwritten in place rather than dropped: a tick pushes the
/// same metrics with the same label keys as the one before, so their strings and label maps
/// are reused and a steady tick allocates almost nothing (allocating and freeing them was a
/// fifth of the agent's CPU).
#[derive(Debug, Default)]
pub struct SampleBuffer {
    timestamp: Timestamp,
    samples: Vec<MetricSample>,
    /// Samples of this tick: `samples[..len]`; the rest are last tick's, kept for reuse.
    len: usize,
}

impl SampleBuffer {
    /// Starts a new tick at `timestamp`; the last tick's samples are no longer returned (their
    /// allocations are kept, up to the largest tick so far, for the next pushes).
    pub fn start_tick(&mut self, timestamp: Timestamp) {
        self.timestamp = timestamp;
        self.len = 0;
    }

    /// The tick's time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Adds one value of `metric` with `labels`.
    pub fn push(&mut self, metric: &MetricDef, value: f64, labels: &[(&str, &str)]) {
        if self.len == self.samples.len() {
            self.samples.push(MetricSample {
                timestamp: self.timestamp,
                name: String::new(),
                value: 0.0,
                unit: String::new(),
                labels: BTreeMap::new(),
            });
        }
        let sample = &mut self.samples[self.len];
        self.len += 1;
        sample.timestamp = self.timestamp;
        sample.value = value;
        replace(&mut sample.name, metric.name);
        replace(&mut sample.unit, metric.unit);
        let same_keys = sample.labels.len() == labels.len()
            && labels.iter().all(|(k, _)| sample.labels.contains_key(*k));
        if same_keys {
            for (k, v) in labels {
                if let Some(old) = sample.labels.get_mut(*k) {
                    replace(old, v);
                }
            }
        } else {
            sample.labels.clear();
            sample.labels.extend(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
        }
    }

    /// The tick's samples so far.
    pub fn samples(&self) -> &[MetricSample] {
        &self.samples[..self.len]
    }
}

/// Sets `s` to `value`, reusing its allocation.
fn replace(s: &mut String, value: &str) {
    if s != value {
        s.clear();
        s.push_str(value);
    }
}

/// When `collect` stops by itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunLimits {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many ticks.
    pub count: Option<u64>,
}

/// Why collection could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The async runtime could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    /// The host's metrics cannot be read.
    #[error("cannot read system metrics")]
    System(#[source] sysinfo::Error),
    /// A sink could not be opened.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// `--ebpf require` and the kernel programs cannot be used.
    #[error("eBPF required but unavailable")]
    EbpfUnavailable(#[source] ebpf::EbpfError),
    /// The OTLP receiver could not start.
    #[error(transparent)]
    Receive(#[from] crate::receive::ReceiveError),
    /// The pod watch could not start.
    #[error("cannot name the node's pods")]
    Kubernetes(#[source] crate::k8s::WatchError),
    /// Targets are picked by pod, and there is no API server to learn the pods from.
    #[error(
        "kubernetes.namespace / kubernetes.pod_selector pick the targets by pod, but there is no \
         API server or node name to watch the pods with (set NODE_NAME, or kubernetes.api_server \
         and kubernetes.node_name)"
    )]
    NoClusterForPodSelection,
    /// The OpenClaw feed could not start.
    #[error("cannot start the OpenClaw feed")]
    Feed(#[source] crate::openclaw_feed::FeedError),
}

/// The platform's process table: procfs under `proc_root`.
#[cfg(target_os = "linux")]
pub(crate) fn process_table(proc_root: &Path) -> Result<Box<dyn ProcessTable>, CollectError> {
    Ok(Box::new(procfs::ProcfsTable::new(proc_root)))
}

/// The platform's process table: sysinfo (`proc_root` is a procfs-only setting).
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_table(_proc_root: &Path) -> Result<Box<dyn ProcessTable>, CollectError> {
    Ok(Box::new(
        sysproc::SysinfoTable::new().map_err(CollectError::System)?,
    ))
}

/// The process backend `config` asks for, started as `collect` starts it; `None` when no
/// process is tracked.
pub fn process_source(
    config: &Config,
    total_memory_bytes: u64,
) -> Result<ProcessSource, CollectError> {
    ProcessSource::choose(
        config,
        process_table(&config.collector.proc_root)?,
        total_memory_bytes,
    )
}

/// Runs `collect` until a signal or a limit stops it.
pub fn run(config: &Config, limits: RunLimits) -> Result<(), CollectError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CollectError::Runtime)?;
    runtime.block_on(run_loop(config, limits))
}

async fn run_loop(config: &Config, limits: RunLimits) -> Result<(), CollectError> {
    // First of all, so a signal during start-up (eBPF loading takes a moment) still ends in an
    // orderly shutdown instead of the default action.
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut sinks = Sinks::from_config(config)?;
    let receiver = (config.receiver.enabled)
        .then(|| crate::receive::Receiver::spawn(&config.receiver, &config.output_dir))
        .transpose()?;
    let c = &config.collector;
    let mut system = SystemCollector::new(SystemFamilies {
        cpu: c.cpu,
        memory: c.memory,
        network: c.network,
    })
    .map_err(CollectError::System)?;
    let mut process = if c.enabled && c.process_filter_enabled {
        Some(process_source(config, system.total_memory_bytes())?)
    } else {
        None
    };
    // After the kernel programs are loaded: their loader briefly refuses new file descriptors
    // (`collect::ebpf::load`), and the pod watch connects as soon as it starts.
    start_pod_names(config)?;
    log::info!(
        "collecting every {}s: target {} ({}), sinks: {}",
        c.interval_seconds,
        match (&process, config.kubernetes.pod_selection()) {
            (None, _) => "none".to_owned(),
            (Some(_), Ok(Some(_))) => format!(
                "'{}' in pods of namespace {} selected by '{}'",
                c.process_name,
                config.kubernetes.namespace.as_deref().unwrap_or("any"),
                config.kubernetes.pod_selector.as_deref().unwrap_or("")
            ),
            (Some(_), _) => format!("'{}'", c.process_name),
        },
        process
            .as_ref()
            .map_or(trace_claw_common::names::labels::SOURCE_PROCFS, |p| p
                .source()),
        sinks.describe()
    );

    let mut socket = serve_socket(config, process.as_ref().map(|p| p.source()));
    let mut feed = LiveFeed::from_config(config).map_err(CollectError::Feed)?;
    let mut actions = sinks
        .want_actions()
        .then(|| ActionWatch::new(&config.output_dir));

    let start = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval_at(start + config.interval(), config.interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut feed_ticker = tokio::time::interval(FEED_POLL);
    feed_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let deadline = limits.duration.map(|d| start + d);

    let mut buf = SampleBuffer::default();
    let mut ticks = 0u64;
    let mut samples = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = feed_ticker.tick(), if feed.is_some() || actions.is_some() => {
                if let Some(f) = feed.as_mut() {
                    f.poll();
                }
                if let Some(a) = actions.as_mut() {
                    sinks.export_actions(&a.poll());
                }
                continue;
            }
            () = accept_opt(socket.as_mut()) => continue,
            () = &mut shutdown => break,
            () = sleep_until_opt(deadline) => break,
        }
        buf.start_tick(Timestamp::now());
        if c.enabled {
            system.collect(&mut buf);
        }
        let mut events = Vec::new();
        if let Some(p) = process.as_mut() {
            p.collect(&mut buf);
            events = p.drain_events();
        }
        for (metric, value) in sinks.self_metrics() {
            buf.push(&metric, value, &[]);
        }
        if let Some(r) = &receiver {
            let rejected = r.rejected() as f64;
            buf.push(
                &trace_claw_common::names::RECEIVER_REJECTED_REQUESTS,
                rejected,
                &[],
            );
        }
        sinks.export(buf.samples(), &events);
        if let Some(s) = socket.as_mut() {
            s.publish(&Tick {
                timestamp: buf.timestamp(),
                samples: buf.samples().into(),
                events: events.as_slice().into(),
            });
        }
        ticks += 1;
        samples += buf.samples().len();
        if limits.count.is_some_and(|n| ticks >= n) {
            break;
        }
    }
    if let Some(mut f) = feed {
        f.poll();
        f.report();
    }
    if let Some(mut a) = actions {
        sinks.export_actions(&a.poll());
    }
    if let Some(r) = receiver {
        r.shutdown();
    }
    if let Some(s) = socket {
        if s.dropped() > 0 {
            log::warn!(
                "socket '{}': {} ticks dropped for clients that read too slowly",
                s.path().display(),
                s.dropped()
            );
        }
        log::info!(
            "socket '{}': {} clients served",
            s.path().display(),
            s.served()
        );
    }
    sinks.shutdown();
    log::info!("stopped after {ticks} ticks, {samples} samples");
    Ok(())
}

/// The socket `top` attaches to, when `socket.enabled`; a failure to serve it is said once and
/// the agent goes on without it.
fn serve_socket(config: &Config, source: Option<&str>) -> Option<SocketServer> {
    if !config.socket.enabled {
        return None;
    }
    let hello = Hello {
        version: PROTOCOL_VERSION,
        source: source
            .unwrap_or(trace_claw_common::names::labels::SOURCE_PROCFS)
            .to_owned(),
        output_dir: std::path::absolute(&config.output_dir)
            .unwrap_or_else(|_| config.output_dir.clone()),
        interval_seconds: config.collector.interval_seconds,
    };
    match SocketServer::bind(&config.socket.path, &hello) {
        Ok(s) => Some(s),
        // Not root, and nobody asked for a socket: nothing to warn about (`top` then collects
        // on its own).
        Err(e)
            if e.is_permission_denied()
                && config.socket.path == Path::new(crate::config::DEFAULT_SOCKET_PATH) =>
        {
            log::info!("{e}; running without the socket `top` attaches to (it needs root)");
            None
        }
        Err(e) => {
            log::warn!(
                "{e}; running without the socket `top` attaches to (set socket.path or --socket, \
                 or --no-socket)"
            );
            None
        }
    }
}

/// The next client of `socket`, or never without one.
async fn accept_opt(socket: Option<&mut SocketServer>) {
    match socket {
        Some(s) => s.accept().await,
        None => std::future::pending().await,
    }
}

/// Starts naming the node's pods from the API server when `kubernetes.pod_names` asks for it,
/// or (absent) when the agent runs in a cluster.
fn start_pod_names(config: &Config) -> Result<(), CollectError> {
    let k = &config.kubernetes;
    if k.pod_names == Some(false) || !config.collector.process_filter_enabled {
        return Ok(());
    }
    // Validated with the configuration.
    let by_pod = matches!(k.pod_selection(), Ok(Some(_)));
    let access = crate::k8s::ClusterAccess::discover(
        k.api_server.as_deref(),
        k.node_name.as_deref(),
        |var| std::env::var(var).ok().filter(|v| !v.is_empty()),
    );
    match access {
        Some(access) => crate::k8s::start(&access).map_err(CollectError::Kubernetes),
        None if by_pod => Err(CollectError::NoClusterForPodSelection),
        None if k.pod_names == Some(true) => {
            log::warn!(
                "kubernetes.pod_names: no API server or node name (set NODE_NAME, or \
                 kubernetes.api_server and kubernetes.node_name); pods keep their uid labels"
            );
            Ok(())
        }
        None => Ok(()),
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Installs the SIGINT and SIGTERM handlers now and resolves when either arrives.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match streams {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                log::warn!("cannot install signal handlers; stop with --duration or --count");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_claw_common::names;

    /// What a tick holds must not depend on the ticks before it: a reused buffer gives the
    /// same samples as a fresh one, whatever the last tick pushed (more samples, other metrics,
    /// other label keys and values).
    #[test]
    fn a_reused_buffer_holds_only_this_ticks_samples() {
        let tick = |buf: &mut SampleBuffer, t: i64, pid: &str, extra: bool| {
            buf.start_tick(Timestamp(t));
            buf.push(
                &names::PROCESS_CPU_USAGE,
                1.5,
                &[("pid", pid), ("source", "ebpf")],
            );
            if extra {
                buf.push(&names::PROCESS_THREADS, 4.0, &[("pid", pid)]);
                buf.push(&names::PROCESS_THREADS, 9.0, &[]);
            }
            buf.push(&names::PROCESS_COUNT, 2.0, &[("cpu", "0")]);
        };
        let mut reused = SampleBuffer::default();
        tick(&mut reused, 1, "12", true);
        assert_eq!(reused.samples().len(), 4);
        tick(&mut reused, 2, "7", false);
        let mut fresh = SampleBuffer::default();
        tick(&mut fresh, 2, "7", false);
        assert_eq!(reused.samples(), fresh.samples());
        assert_eq!(reused.samples()[0].label("pid"), Some("7"));
        assert_eq!(reused.samples()[1].name, names::PROCESS_COUNT.name);
        assert_eq!(reused.samples()[1].label("pid"), None);
        assert_eq!(reused.samples()[1].timestamp, Timestamp(2));
    }
}
