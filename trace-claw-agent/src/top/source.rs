//! Where `top`'s ticks come from: collected in-process, as `collect` does, or read from a
//! running agent's socket. Both hand the same samples and process events to the model.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trace_claw_common::event::ProcessEvent;
use trace_claw_common::sample::MetricSample;
use trace_claw_common::time::Timestamp;

use crate::agent_socket::Attached;
use crate::collect::{self, ProcessSource, SampleBuffer, SystemCollector, SystemFamilies};
use crate::config::{Config, Mode};
use crate::export::Sinks;
use crate::openclaw_feed::LiveFeed;

/// How often keys, the feed and the socket are looked at between ticks.
pub const POLL: Duration = Duration::from_millis(200);

/// The ticks `top` shows.
pub enum Source {
    /// Collected here.
    Local(Box<Local>),
    /// A running agent's, over its socket.
    Attached(Attached),
}

/// In-process collection: the kernel programs or procfs, the OpenClaw feed, optional files.
pub struct Local {
    system: SystemCollector,
    process: ProcessSource,
    sinks: Option<Sinks>,
    feed: Option<LiveFeed>,
    buf: SampleBuffer,
    interval: Duration,
    next_tick: Instant,
}

impl Source {
    /// Collects in-process with `config` (no receiver, pull endpoint or export; files only
    /// when `write_files`).
    pub fn local(config: &Config, write_files: bool) -> anyhow::Result<Self> {
        let mut config = config.clone();
        config.receiver.enabled = false;
        config.prometheus.listen = None;
        config.mode = Mode::Local;
        config.local.enabled = write_files;
        let c = &config.collector;
        let system = SystemCollector::new(SystemFamilies {
            cpu: c.cpu,
            memory: c.memory,
            network: c.network,
        })
        .map_err(collect::CollectError::System)?;
        let process = collect::process_source(&config, system.total_memory_bytes())?;
        let sinks = write_files
            .then(|| Sinks::from_config(&config))
            .transpose()?;
        let feed = LiveFeed::from_config(&config)?;
        Ok(Self::Local(Box::new(Local {
            system,
            process,
            sinks,
            feed,
            buf: SampleBuffer::default(),
            interval: config.interval(),
            next_tick: Instant::now(),
        })))
    }

    /// How processes are measured, as the header says it.
    pub fn describe(&self, socket: &Path) -> String {
        match self {
            Self::Local(l) => l.process.source().to_owned(),
            Self::Attached(a) => format!("{} via {}", a.hello.source, socket.display()),
        }
    }

    /// The trace directory whose actions are shown.
    pub fn actions_dir(&self, config: &Config) -> PathBuf {
        match self {
            Self::Local(_) => config.output_dir.clone(),
            Self::Attached(a) => a.hello.output_dir.clone(),
        }
    }

    /// Hands each tick due since the last call to `on_tick`.
    pub fn poll(
        &mut self,
        mut on_tick: impl FnMut(Timestamp, &[MetricSample], &[ProcessEvent]),
    ) -> anyhow::Result<()> {
        match self {
            Self::Local(l) => {
                if Instant::now() >= l.next_tick {
                    l.next_tick += l.interval;
                    l.buf.start_tick(Timestamp::now());
                    l.system.collect(&mut l.buf);
                    l.process.collect(&mut l.buf);
                    let events = l.process.drain_events();
                    if let Some(s) = l.sinks.as_mut() {
                        s.export(l.buf.samples(), &events);
                    }
                    on_tick(l.buf.timestamp(), l.buf.samples(), &events);
                }
                if let Some(f) = l.feed.as_mut() {
                    f.poll();
                }
            }
            Self::Attached(a) => {
                for t in a.poll()? {
                    on_tick(t.timestamp, &t.samples, &t.events);
                }
            }
        }
        Ok(())
    }

    /// How long to wait for a key before polling again.
    pub fn wait(&self) -> Duration {
        match self {
            Self::Local(l) => l
                .next_tick
                .saturating_duration_since(Instant::now())
                .min(POLL),
            Self::Attached(_) => POLL,
        }
    }

    /// Flushes the files, says what was malformed.
    pub fn finish(self) {
        match self {
            Self::Local(mut l) => {
                if let Some(s) = l.sinks.as_mut() {
                    s.shutdown();
                }
            }
            Self::Attached(a) => {
                if a.malformed() > 0 {
                    log::warn!("{} lines from the agent were not ticks", a.malformed());
                }
            }
        }
    }
}
