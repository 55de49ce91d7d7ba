//! Per-session and overall summaries: counts, tokens, cost, latency percentiles
//! (hdrhistogram), error rate, resource averages and peaks.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use trace_claw_common::event::{EVENT_LLM, EVENT_TOOL};
use trace_claw_common::time::Timestamp;

use super::timeline::ResourceCost;
use crate::analyze::cost::charge::OtherTrees;
use crate::analyze::source::action::Action;
use crate::analyze::source::parsed::SessionInfo;
use crate::analyze::source::resources::aggregate::{Stat, StatKind, N_STATS};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Number of calls measured.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum (exact).
    pub max: f64,
}

/// Records durations with 3 significant digits at microsecond resolution.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Option<Histogram<u64>>,
    max: f64,
    sum: f64,
    count: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self {
            hist: Histogram::new(3).ok(),
            max: 0.0,
            sum: 0.0,
            count: 0,
        }
    }
}

impl LatencyRecorder {
    /// Records one duration.
    pub fn record(&mut self, ms: f64) {
        let ms = ms.max(0.0);
        if let Some(h) = &mut self.hist {
            // auto-resizing histogram: recording cannot fail for u64 values
            if h.record((ms * 1000.0).round() as u64).is_err() {
                log::debug!("latency {ms} ms out of histogram range");
            }
        }
        self.max = self.max.max(ms);
        self.sum += ms;
        self.count += 1;
    }

    /// The percentiles, when anything was recorded.
    pub fn finish(&self) -> Option<Latency> {
        let h = self.hist.as_ref()?;
        (self.count > 0).then(|| {
            // hdrhistogram reports the bucket's upper edge; never above the exact maximum
            let q = |p: f64| (h.value_at_quantile(p) as f64 / 1000.0).min(self.max);
            Latency {
                count: self.count,
                mean: self.sum / self.count as f64,
                p50: q(0.50),
                p95: q(0.95),
                p99: q(0.99),
                max: self.max,
            }
        })
    }
}

/// Token counts (input excludes cache reads and writes; total includes them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Input tokens not served from or written to the cache.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache reads.
    pub cache_read: u64,
    /// Cache writes.
    pub cache_write: u64,
    /// Sum of the four.
    pub total: u64,
}

/// Resource averages and peaks over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// Mean system CPU percent.
    pub avg_system_cpu_percent: Option<f64>,
    /// Peak system CPU percent.
    pub max_system_cpu_percent: Option<f64>,
    /// Mean system memory percent.
    pub avg_system_memory_percent: Option<f64>,
    /// Peak system memory percent.
    pub max_system_memory_percent: Option<f64>,
    /// Mean CPU percent of the tracked process tree (per process when no tree total exists).
    pub avg_process_cpu_percent: Option<f64>,
    /// Peak CPU percent of the tracked process tree.
    pub max_process_cpu_percent: Option<f64>,
    /// Mean RSS of the tracked process tree.
    pub avg_process_rss_bytes: Option<f64>,
    /// Peak RSS of the tracked process tree.
    pub max_process_rss_bytes: Option<f64>,
}

impl Resources {
    /// From the stats of one window.
    pub fn from_stats(s: &[Stat; N_STATS]) -> Self {
        let pick = |total: StatKind, pid: StatKind| {
            if s[total as usize].count > 0 {
                s[total as usize]
            } else {
                s[pid as usize]
            }
        };
        let cpu = pick(StatKind::ProcCpuTotal, StatKind::ProcCpuPid);
        let rss = pick(StatKind::ProcRssTotal, StatKind::ProcRssPid);
        let sys = s[StatKind::SysCpu as usize];
        let mem = s[StatKind::SysMem as usize];
        Self {
            avg_system_cpu_percent: sys.avg(),
            max_system_cpu_percent: sys.peak(),
            avg_system_memory_percent: mem.avg(),
            max_system_memory_percent: mem.peak(),
            avg_process_cpu_percent: cpu.avg(),
            max_process_cpu_percent: cpu.peak(),
            avg_process_rss_bytes: rss.avg(),
            max_process_rss_bytes: rss.peak(),
        }
    }
}

/// The summary of one session, or of all of them.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Session id (`default` for actions without one, `all` for the overall summary).
    pub session_id: String,
    /// OpenClaw session key (`agent:main:main`), when known.
    pub session_key: Option<String>,
    /// What OpenClaw's SQLite store says about the session (agent, channel, model, start,
    /// end, parent), when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openclaw: Option<SessionInfo>,
    /// Number of sessions summarized (1 for a session).
    pub sessions: usize,
    /// Start of the first action.
    pub start: Option<Timestamp>,
    /// End of the last action.
    pub end: Option<Timestamp>,
    /// LLM calls (failed attempts included).
    pub llm_calls: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Other actions (webhooks, messages, liveness warnings, custom events).
    pub other_actions: u64,
    /// Failed actions.
    pub errors: u64,
    /// Failed LLM calls.
    pub llm_errors: u64,
    /// Failed tool calls.
    pub tool_errors: u64,
    /// errors / all actions.
    pub error_rate: f64,
    /// Tokens of all LLM calls.
    pub tokens: Tokens,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// LLM call latency.
    pub llm_latency_ms: Option<Latency>,
    /// Tool call latency.
    pub tool_latency_ms: Option<Latency>,
    /// Actions per winning source.
    pub sources: BTreeMap<String, u64>,
    /// Resource averages and peaks while the session ran.
    pub resources: Resources,
    /// What the actions cost together: measured from time slots, a time several actions
    /// shared counts once; interpolated, the sum of their costs (overlaps count twice).
    pub action_cost: Option<ResourceCost>,
    /// What the charged trees used between the first action's start and the last one's end
    /// while no action ran (time slots only; the overall summary: the whole analyzed range).
    pub idle_cost: Option<ResourceCost>,
    /// Trees that matched the target but ran no action (overall summary, time slots only).
    pub other_trees: Option<OtherTrees>,
}

/// A summary being built, one action at a time in start order: what a session needs while
/// its actions stream by (counts, sums, two latency histograms).
#[derive(Debug)]
pub struct SummaryBuilder {
    summary: Summary,
    llm: LatencyRecorder,
    tool: LatencyRecorder,
    total: u64,
}

impl SummaryBuilder {
    /// An empty summary of `session_id`, with the resource averages and peaks of `stats`.
    pub fn new(session_id: &str, stats: &[Stat; N_STATS]) -> Self {
        Self {
            summary: Summary {
                session_id: session_id.to_owned(),
                session_key: None,
                openclaw: None,
                sessions: 1,
                start: None,
                end: None,
                llm_calls: 0,
                tool_calls: 0,
                other_actions: 0,
                errors: 0,
                llm_errors: 0,
                tool_errors: 0,
                error_rate: 0.0,
                tokens: Tokens::default(),
                cost_usd: 0.0,
                llm_latency_ms: None,
                tool_latency_ms: None,
                sources: BTreeMap::new(),
                resources: Resources::from_stats(stats),
                action_cost: None,
                idle_cost: None,
                other_trees: None,
            },
            llm: LatencyRecorder::default(),
            tool: LatencyRecorder::default(),
            total: 0,
        }
    }

    /// Counts action `a` and its resource cost.
    pub fn add(&mut self, a: &Action, cost: Option<&ResourceCost>) {
        let s = &mut self.summary;
        let e = &a.event;
        self.total += 1;
        s.start = Some(s.start.map_or(a.start(), |t| t.min(a.start())));
        s.end = Some(s.end.map_or(a.end(), |t| t.max(a.end())));
        let failed = e.is_error();
        s.errors += u64::from(failed);
        match &*e.event_type {
            EVENT_LLM => {
                s.llm_calls += 1;
                s.llm_errors += u64::from(failed);
                self.llm.record(e.duration_ms);
            }
            EVENT_TOOL => {
                s.tool_calls += 1;
                s.tool_errors += u64::from(failed);
                self.tool.record(e.duration_ms);
            }
            _ => s.other_actions += 1,
        }
        s.tokens.input += e.tokens_input;
        s.tokens.output += e.tokens_output;
        s.tokens.cache_read += e.tokens_cache_read;
        s.tokens.cache_write += e.tokens_cache_write;
        s.tokens.total += e.tokens_total();
        s.cost_usd += e.cost_usd;
        match s.sources.get_mut(a.source.as_str()) {
            Some(n) => *n += 1,
            None => {
                s.sources.insert(a.source.as_str().to_owned(), 1);
            }
        }
        if let Some(c) = cost {
            s.action_cost
                .get_or_insert_with(ResourceCost::default)
                .add(c);
        }
    }

    /// The summary of the actions added.
    pub fn finish(self) -> Summary {
        let mut s = self.summary;
        s.error_rate = if self.total > 0 {
            s.errors as f64 / self.total as f64
        } else {
            0.0
        };
        s.llm_latency_ms = self.llm.finish();
        s.tool_latency_ms = self.tool.finish();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred() {
        let mut r = LatencyRecorder::default();
        for i in 1..=100 {
            r.record(f64::from(i));
        }
        let l = r.finish().expect("recorded");
        assert_eq!(l.count, 100);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p95 - 95.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert_eq!(l.max, 100.0);
        assert!(LatencyRecorder::default().finish().is_none());
    }
}
