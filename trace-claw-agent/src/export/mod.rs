//! Sinks for collected samples and process events, and the fan-out that feeds them.
//!
//! A failing sink is reported once per distinct error (and once when it recovers); the others
//! keep receiving every tick.

pub mod jsonl;
pub mod otlp;
mod otlp_request;
mod otlp_spans;
pub mod otlp_transport;
pub mod prometheus;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use trace_claw_common::event::{ActionEvent, ProcessEvent};
use trace_claw_common::names::MetricDef;
use trace_claw_common::sample::MetricSample;

use crate::config::Config;
use crate::error::error_chain;

/// The attributes that describe where samples come from, in the order the sinks write them:
/// `service.name`, `service.version`, `host.name` (the host's name unless `extra` sets it, e.g.
/// to the Kubernetes node name), then `extra` (`otel.resource_attributes`).
pub fn resource_attributes(
    service_name: &str,
    extra: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut attributes = vec![
        ("service.name".to_owned(), service_name.to_owned()),
        (
            "service.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ];
    if !extra.contains_key("host.name") {
        let host = sysinfo::System::host_name().unwrap_or_else(|_| "unknown".to_owned());
        attributes.push(("host.name".to_owned(), host));
    }
    for (key, value) in extra.iter().filter(|(k, _)| k.as_str() != "service.name") {
        attributes.push((key.clone(), value.clone()));
    }
    attributes
}

/// A sink failure.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file could not be created or written.
    #[error("cannot write '{path}'")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The OTLP endpoint cannot be used.
    #[error("otlp endpoint '{url}'")]
    Otlp {
        /// `<otel.endpoint>/v1/metrics`.
        url: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The Prometheus endpoint cannot listen on `prometheus.listen`.
    #[error("cannot serve prometheus metrics on '{addr}'")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sink's background thread could not start.
    #[error("cannot start the {what} thread")]
    Thread {
        /// The thread's name.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A destination for samples and process events.
pub trait Exporter: Send {
    /// Short name for logs (`jsonl`, `otlp`).
    fn name(&self) -> &'static str;
    /// Where it sends, for the start-up line.
    fn describe(&self) -> String;
    /// Hands over one tick's samples and events; may buffer.
    fn export(
        &mut self,
        samples: &[MetricSample],
        events: &[ProcessEvent],
    ) -> Result<(), ExportError>;
    /// Whether the sink takes actions ([`Exporter::export_actions`]).
    fn wants_actions(&self) -> bool {
        false
    }
    /// Hands over actions (LLM and tool calls) that ended; may buffer.
    fn export_actions(&mut self, _actions: &[ActionEvent]) -> Result<(), ExportError> {
        Ok(())
    }
    /// The sink's own counters (e.g. failed batches), sampled once per tick.
    fn self_metrics(&self) -> Vec<(MetricDef, f64)> {
        Vec::new()
    }
    /// Sends or writes whatever is buffered and releases resources.
    fn shutdown(&mut self) -> Result<(), ExportError>;
}

/// Every configured sink, with per-sink error state so each cause is logged once.
pub struct Sinks {
    exporters: Vec<Box<dyn Exporter>>,
    last_error: HashMap<&'static str, String>,
}

impl Sinks {
    /// Opens the sinks the config asks for.
    pub fn from_config(config: &Config) -> Result<Self, ExportError> {
        let mut exporters: Vec<Box<dyn Exporter>> = Vec::new();
        if config.local.enabled {
            exporters.push(Box::new(jsonl::JsonlExporter::new(&config.output_dir)?));
        }
        if config.exports_otlp() {
            exporters.push(Box::new(otlp::OtlpExporter::new(&config.otel)?));
        }
        if let Some(listen) = &config.prometheus.listen {
            exporters.push(Box::new(prometheus::PrometheusExporter::new(
                listen, config,
            )?));
        }
        Ok(Self {
            exporters,
            last_error: HashMap::new(),
        })
    }

    /// One line naming every sink.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .exporters
            .iter()
            .map(|e| format!("{} {}", e.name(), e.describe()))
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Every sink's own counters, to be sampled with the tick.
    pub fn self_metrics(&self) -> Vec<(MetricDef, f64)> {
        self.exporters
            .iter()
            .flat_map(|e| e.self_metrics())
            .collect()
    }

    /// Whether any sink takes actions.
    pub fn want_actions(&self) -> bool {
        self.exporters.iter().any(|e| e.wants_actions())
    }

    /// Hands actions to every sink that takes them.
    pub fn export_actions(&mut self, actions: &[ActionEvent]) {
        for i in 0..self.exporters.len() {
            let result = self.exporters[i].export_actions(actions);
            self.note(i, result);
        }
    }

    /// Hands one tick to every sink.
    pub fn export(&mut self, samples: &[MetricSample], events: &[ProcessEvent]) {
        for i in 0..self.exporters.len() {
            let result = self.exporters[i].export(samples, events);
            self.note(i, result);
        }
    }

    /// Flushes and closes every sink, reporting each failure.
    pub fn shutdown(&mut self) {
        for i in 0..self.exporters.len() {
            let result = self.exporters[i].shutdown();
            self.note(i, result);
        }
    }

    fn note(&mut self, index: usize, result: Result<(), ExportError>) {
        let name = self.exporters[index].name();
        match result {
            Ok(()) => {
                if self.last_error.remove(name).is_some() {
                    log::info!("{name} sink recovered");
                }
            }
            Err(e) => {
                let message = error_chain(&e);
                if self.last_error.get(name) != Some(&message) {
                    log::error!("{name} sink: {message}");
                    self.last_error.insert(name, message);
                }
            }
        }
    }
}

/// A sample for the exporters' tests: `name` in `unit` at a fixed time, with `labels`.
#[cfg(test)]
pub(crate) fn test_sample(
    name: &str,
    unit: &str,
    value: f64,
    labels: &[(&str, &str)],
) -> trace_claw_common::sample::MetricSample {
    trace_claw_common::sample::MetricSample {
        timestamp: trace_claw_common::time::Timestamp(1_800_000_000_000_000_000),
        name: name.to_owned(),
        value,
        unit: unit.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}
