//! Which backend samples the tracked processes: the kernel programs, or procfs polling.
//!
//! `--ebpf auto` tries the kernel programs and falls back to polling with one warning naming
//! the cause; `require` turns that cause into an error (exit code 3); `off` always polls.

use trace_claw_common::event::ProcessEvent;
use trace_claw_common::names::labels;

use super::ebpf::{EbpfError, EbpfOptions};
use super::selection::TargetSelection;
use super::{CollectError, ProcessCollector, ProcessTable, SampleBuffer};
use crate::config::{Config, EbpfMode};

/// The process collector in use.
pub enum ProcessSource {
    /// Polling the process table each tick.
    Polling(Box<ProcessCollector>),
    /// Kernel counters and lifecycle events.
    #[cfg(not(no_ebpf))]
    Ebpf(Box<super::ebpf::EbpfCollector>),
}

impl ProcessSource {
    /// Picks the backend for `config.ebpf`.
    pub fn choose(
        config: &Config,
        table: Box<dyn ProcessTable>,
        total_memory_bytes: u64,
    ) -> Result<Self, CollectError> {
        let c = &config.collector;
        if config.ebpf == EbpfMode::Off {
            return Ok(Self::polling(table, config, total_memory_bytes));
        }
        let options = EbpfOptions {
            process_name: c.process_name.clone(),
            pod_selector: pod_selection(config),
            proc_root: c.proc_root.clone(),
            total_memory_bytes,
            fast_entries: None,
            tree_costs_dir: Some(config.output_dir.clone()),
            disabled_hooks: disabled_hooks(),
        };
        match start_ebpf(&options) {
            Ok(source) => Ok(source),
            Err(e) if config.ebpf == EbpfMode::Require => Err(CollectError::EbpfUnavailable(e)),
            Err(e) => {
                log::warn!(
                    "eBPF unavailable: {}; falling back to procfs polling",
                    crate::error::error_chain(&e)
                );
                Ok(Self::polling(table, config, total_memory_bytes))
            }
        }
    }

    /// Polling, with each tree's use per interval in `tree-costs-*.jsonl` when that file can
    /// be created (else without: costs are then interpolated over all matching trees).
    fn polling(table: Box<dyn ProcessTable>, config: &Config, total_memory_bytes: u64) -> Self {
        let c = &config.collector;
        let selection = TargetSelection::new(&c.process_name, pod_selection(config), &c.proc_root);
        let mut collector = ProcessCollector::new(table, selection, total_memory_bytes);
        if let Err(e) = collector.write_tree_costs(&config.output_dir) {
            log::warn!(
                "cannot write tree costs (per-action costs will be interpolated over all \
                 matching trees): {}",
                crate::error::error_chain(&e)
            );
        }
        Self::Polling(Box::new(collector))
    }

    /// The `source` label value of this backend's samples.
    pub fn source(&self) -> &'static str {
        match self {
            Self::Polling(_) => labels::SOURCE_PROCFS,
            #[cfg(not(no_ebpf))]
            Self::Ebpf(_) => labels::SOURCE_EBPF,
        }
    }

    /// Pushes this tick's per-process and tree-total samples.
    pub fn collect(&mut self, buf: &mut SampleBuffer) {
        match self {
            Self::Polling(p) => p.collect(buf),
            #[cfg(not(no_ebpf))]
            Self::Ebpf(e) => e.collect(buf),
        }
    }

    /// Lifecycle events since the last call.
    pub fn drain_events(&mut self) -> Vec<ProcessEvent> {
        match self {
            Self::Polling(p) => p.drain_events(),
            #[cfg(not(no_ebpf))]
            Self::Ebpf(e) => e.drain_events(),
        }
    }
}

/// The pods targets must run in (the configuration was validated, so the selector reads).
fn pod_selection(config: &Config) -> Option<crate::k8s::PodSelector> {
    config.kubernetes.pod_selection().ok().flatten()
}

/// The optional eBPF programs `TRACE_CLAW_EBPF_DISABLE` names (comma-separated), a diagnostic
/// that makes the loader treat their hooks as missing.
fn disabled_hooks() -> Vec<String> {
    std::env::var(super::ebpf::DISABLE_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Starts the eBPF backend and says so in one line, naming what it cannot measure here.
#[cfg(not(no_ebpf))]
fn start_ebpf(options: &EbpfOptions) -> Result<ProcessSource, EbpfError> {
    let collector = super::ebpf::EbpfCollector::start(options)?;
    let left_out = collector.left_out();
    if left_out.is_empty() {
        log::info!(
            "eBPF loaded: tracking {} processes matching '{}'",
            collector.tracked_count(),
            options.process_name
        );
    } else {
        let missing: Vec<String> = left_out
            .iter()
            .map(|l| format!("{} ({}: {})", l.metric.name, l.program, l.reason))
            .collect();
        log::warn!(
            "eBPF loaded without {} of its hooks: tracking {} processes matching '{}'; left \
             out of the samples (not reported as 0): {}",
            left_out.len(),
            collector.tracked_count(),
            options.process_name,
            missing.join(", ")
        );
    }
    Ok(ProcessSource::Ebpf(Box::new(collector)))
}

#[cfg(no_ebpf)]
fn start_ebpf(_options: &EbpfOptions) -> Result<ProcessSource, EbpfError> {
    Err(super::ebpf::probe().unwrap_or(EbpfError::NotBuiltIn))
}
