//! The action timeline (each action with the nearest resource snapshot and its exact resource
//! cost from the cumulative counters) and the full timeline (actions, process events, log
//! errors and resource samples merged by time).

use serde::Serialize;
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::time::Timestamp;

use crate::analyze::merge::lookup::Lookup;
use crate::analyze::source::action::Action;
use crate::analyze::source::parsed::Note;
use crate::analyze::source::resources::aggregate::TimelineSample;
use crate::analyze::source::resources::series::Series;

/// Resources one action used during `[start, end]`, from the tracked tree's counters
/// interpolated between samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResourceCost {
    /// On-CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Bytes read.
    pub read_bytes: Option<f64>,
    /// Bytes written.
    pub write_bytes: Option<f64>,
    /// Bytes read from block devices.
    pub block_read_bytes: Option<f64>,
    /// Socket bytes sent.
    pub net_sent_bytes: Option<f64>,
    /// Socket bytes received.
    pub net_recv_bytes: Option<f64>,
}

impl ResourceCost {
    fn fields(&mut self) -> [&mut Option<f64>; 6] {
        [
            &mut self.cpu_seconds,
            &mut self.read_bytes,
            &mut self.write_bytes,
            &mut self.block_read_bytes,
            &mut self.net_sent_bytes,
            &mut self.net_recv_bytes,
        ]
    }

    /// Adds another cost field by field.
    pub fn add(&mut self, o: &ResourceCost) {
        let mut o = *o;
        for (mine, theirs) in self.fields().into_iter().zip(o.fields()) {
            if let Some(v) = *theirs {
                *mine = Some(mine.unwrap_or(0.0) + v);
            }
        }
    }

    /// Whether no counter covered the action.
    pub fn is_empty(&self) -> bool {
        let mut c = *self;
        c.fields().iter().all(|f| f.is_none())
    }
}

const COUNTERS: [Series; 6] = [
    Series::CpuTime,
    Series::IoRead,
    Series::IoWrite,
    Series::BlockRead,
    Series::NetSent,
    Series::NetRecv,
];

/// The cost of `[start, end]`; counter decreases (a process of the tree exited) count as 0.
pub fn cost(look: &Lookup, start: Timestamp, end: Timestamp) -> Option<ResourceCost> {
    let mut c = ResourceCost::default();
    for (slot, series) in c.fields().into_iter().zip(COUNTERS) {
        if let (Some(a), Some(b)) = (
            look.interpolate(series, start.0),
            look.interpolate(series, end.0),
        ) {
            *slot = Some((b - a).max(0.0));
        }
    }
    (!c.is_empty()).then_some(c)
}

/// The resource readings nearest to an action's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// System CPU percent.
    pub cpu_percent: Option<f64>,
    /// System memory percent.
    pub memory_percent: Option<f64>,
    /// Tracked tree CPU percent.
    pub process_cpu_percent: Option<f64>,
    /// Tracked tree RSS.
    pub process_rss_bytes: Option<f64>,
}

/// The nearest snapshot at `t`.
pub fn snapshot(look: &Lookup, t: Timestamp) -> Snapshot {
    let v = |s| look.nearest(s, t.0).map(|p| p.v);
    Snapshot {
        cpu_percent: v(Series::SysCpu),
        memory_percent: v(Series::SysMem),
        process_cpu_percent: v(Series::ProcCpu),
        process_rss_bytes: v(Series::ProcRss),
    }
}

/// One row of the action timeline.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRow {
    /// Start.
    pub time: Timestamp,
    /// End.
    pub end: Timestamp,
    /// Session.
    pub session_id: String,
    /// `llm`, `tool`, or another action type.
    pub action: String,
    /// Model (LLM) or tool name.
    pub name: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    /// Error message.
    pub error: Option<String>,
    /// Duration.
    pub duration_ms: f64,
    /// Input tokens (excluding cache).
    pub tokens_input: u64,
    /// Output tokens.
    pub tokens_output: u64,
    /// Cache reads.
    pub tokens_cache_read: u64,
    /// Cache writes.
    pub tokens_cache_write: u64,
    /// All tokens.
    pub tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// The source that won.
    pub source: String,
    /// Other sources that saw the same call.
    pub also_seen_in: Vec<String>,
    /// Where it was read.
    pub file: String,
    /// Line of that file.
    pub line: u64,
    /// Nearest resource readings.
    pub snapshot: Snapshot,
    /// Exact resource cost during the action, when counters cover it.
    pub resource_cost: Option<ResourceCost>,
}

impl ActionRow {
    /// Builds a row.
    pub fn new(a: &Action, snapshot: Snapshot, resource_cost: Option<ResourceCost>) -> Self {
        let e = &a.event;
        Self {
            time: a.start(),
            end: a.end(),
            session_id: a.session().to_owned(),
            action: e.event_type.clone(),
            name: e.tool_name.clone().or_else(|| e.model.clone()),
            status: if e.is_error() {
                "error".into()
            } else {
                e.status.clone()
            },
            error: e.error.clone(),
            duration_ms: e.duration_ms,
            tokens_input: e.tokens_input,
            tokens_output: e.tokens_output,
            tokens_cache_read: e.tokens_cache_read,
            tokens_cache_write: e.tokens_cache_write,
            tokens: e.tokens_total(),
            cost_usd: e.cost_usd,
            source: a.source.as_str().into(),
            also_seen_in: a
                .also_seen_in
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            file: a.file.to_string(),
            line: a.line,
            snapshot,
            resource_cost,
        }
    }
}

/// One row of the full timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineRow {
    /// When.
    pub time: Timestamp,
    /// `action`, `process`, `log` or `resource`.
    pub category: &'static str,
    /// Session, for actions and notes that have one.
    pub session_id: Option<String>,
    /// What: action type, process event kind, log level or metric name.
    pub what: String,
    /// Details.
    pub detail: String,
    /// Numeric value of a resource sample.
    pub value: Option<f64>,
}

/// Merges everything by time; returns the first `limit` rows and how many were left out.
pub fn full_timeline(
    actions: &[&Action],
    process_events: &[ProcessEvent],
    notes: &[Note],
    samples: Vec<TimelineSample>,
    sample_total: u64,
    limit: usize,
) -> (Vec<TimelineRow>, u64) {
    let mut rows: Vec<TimelineRow> = Vec::new();
    for a in actions {
        let e = &a.event;
        let name = e.tool_name.as_deref().or(e.model.as_deref()).unwrap_or("-");
        rows.push(TimelineRow {
            time: a.start(),
            category: "action",
            session_id: Some(a.session().to_owned()),
            what: e.event_type.clone(),
            detail: format!(
                "{name} {:.0} ms tokens={} {}{}",
                e.duration_ms,
                e.tokens_total(),
                if e.is_error() { "error" } else { "ok" },
                e.error
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            value: None,
        });
    }
    for p in process_events {
        rows.push(TimelineRow {
            time: p.timestamp,
            category: "process",
            session_id: None,
            what: format!("{:?}", p.kind).to_lowercase(),
            detail: format!(
                "pid={} ppid={} comm={}{}{}",
                p.pid,
                p.ppid,
                p.comm,
                p.filename
                    .as_deref()
                    .map(|f| format!(" file={f}"))
                    .unwrap_or_default(),
                p.exit_code
                    .map(|c| format!(" exit={c}"))
                    .unwrap_or_default()
            ),
            value: None,
        });
    }
    for n in notes {
        rows.push(TimelineRow {
            time: n.timestamp,
            category: "log",
            session_id: n.session_id.clone(),
            what: n.level.clone(),
            detail: n.text.clone(),
            value: None,
        });
    }
    let kept_samples = samples.len() as u64;
    for s in samples {
        rows.push(TimelineRow {
            time: Timestamp(s.t),
            category: "resource",
            session_id: None,
            what: s.name,
            detail: s.labels,
            value: Some(s.value),
        });
    }
    rows.sort_by(|a, b| a.time.cmp(&b.time).then(a.category.cmp(b.category)));
    let total = rows.len() as u64 + sample_total.saturating_sub(kept_samples);
    rows.truncate(limit);
    let omitted = total - rows.len() as u64;
    (rows, omitted)
}
