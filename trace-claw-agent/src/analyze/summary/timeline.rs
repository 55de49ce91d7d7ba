//! The action timeline (each action with the nearest resource snapshot and its exact resource
//! cost from the cumulative counters) and the full timeline (actions, process events, log
//! errors and resource samples merged by time).

use std::collections::BinaryHeap;

use serde::Serialize;
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::time::Timestamp;

use crate::analyze::merge::lookup::Lookup;
use crate::analyze::source::action::Action;
use crate::analyze::source::parsed::Note;
use crate::analyze::source::resources::aggregate::TimelineSample;
use crate::analyze::source::resources::series::Series;

/// Resources one action used during `[start, end]`: measured from its tree's 5 ms time slots
/// (eBPF, [`METHOD_TIME_SLOTS`]), else the tracked tree's counters interpolated between
/// samples ([`METHOD_INTERPOLATED`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ResourceCost {
    /// How it was measured: [`METHOD_TIME_SLOTS`] or [`METHOD_INTERPOLATED`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// How far apart the readings it comes from are, in ms: the slot width, or the sampling
    /// interval around the action's start and end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_ms: Option<f64>,
    /// The root of the tracked process tree charged (time slots only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_pid: Option<u32>,
    /// Other actions on the same tree overlapping this one; their shared window is in each
    /// one's cost, and counted once in session totals.
    #[serde(skip_serializing_if = "is_zero")]
    pub overlapping_actions: u32,
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

/// [`ResourceCost::method`] of a cost measured from the tree's 5 ms time slots (eBPF).
pub const METHOD_TIME_SLOTS: &str = "time_slots";
/// [`ResourceCost::method`] of a cost interpolated between the tree's counter samples.
pub const METHOD_INTERPOLATED: &str = "interpolated";

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ResourceCost {
    /// Whether the cost was interpolated between samples (shown with `~`).
    pub fn is_interpolated(&self) -> bool {
        self.method == Some(METHOD_INTERPOLATED)
    }

    /// The counters, in [`COUNTERS`] order.
    pub fn fields(&mut self) -> [&mut Option<f64>; 6] {
        [
            &mut self.cpu_seconds,
            &mut self.read_bytes,
            &mut self.write_bytes,
            &mut self.block_read_bytes,
            &mut self.net_sent_bytes,
            &mut self.net_recv_bytes,
        ]
    }

    /// Adds another cost field by field; the sum is interpolated if either part is, at the
    /// coarser resolution, and names a tree only if both parts name the same one.
    pub fn add(&mut self, o: &ResourceCost) {
        self.method = if self.is_interpolated() || o.is_interpolated() {
            Some(METHOD_INTERPOLATED)
        } else {
            self.method.or(o.method)
        };
        self.resolution_ms = match (self.resolution_ms, o.resolution_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if self.is_empty() {
            self.root_pid = o.root_pid;
        } else if self.root_pid != o.root_pid {
            self.root_pid = None;
        }
        self.overlapping_actions = 0;
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

/// The counter series of the fields, in [`ResourceCost::fields`] order.
const COUNTERS: [Series; 6] = [
    Series::CpuTime,
    Series::IoRead,
    Series::IoWrite,
    Series::BlockRead,
    Series::NetSent,
    Series::NetRecv,
];

/// The cost of `[start, end]` interpolated between the whole tracked set's samples (all
/// matching trees: the fallback without time slots); counter decreases (a process of the tree
/// exited) count as 0.
pub fn interpolated_cost(look: &Lookup, start: Timestamp, end: Timestamp) -> Option<ResourceCost> {
    let (at_start, at_end) = (look.counters_at(start.0)?, look.counters_at(end.0)?);
    let mut c = ResourceCost::default();
    let mut spacing_ns = 0i64;
    for (slot, series) in c.fields().into_iter().zip(COUNTERS) {
        if let (Some(a), Some(b)) = (at_start.read(series), at_end.read(series)) {
            *slot = Some((b.value - a.value).max(0.0));
            spacing_ns = spacing_ns.max(a.spacing_ns).max(b.spacing_ns);
        }
    }
    if c.is_empty() {
        return None;
    }
    c.method = Some(METHOD_INTERPOLATED);
    c.resolution_ms = Some(spacing_ns as f64 / 1e6);
    Some(c)
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
            action: e.event_type.to_string(),
            name: e
                .tool_name
                .as_deref()
                .or(e.model.as_deref())
                .map(str::to_owned),
            status: if e.is_error() {
                "error".into()
            } else {
                e.status.to_string()
            },
            error: e.error.as_deref().map(str::to_owned),
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

fn action_row(a: &Action) -> TimelineRow {
    let e = &a.event;
    let name = e.tool_name.as_deref().or(e.model.as_deref()).unwrap_or("-");
    TimelineRow {
        time: a.start(),
        category: "action",
        session_id: Some(a.session().to_owned()),
        what: e.event_type.to_string(),
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
    }
}

fn process_row(p: &ProcessEvent) -> TimelineRow {
    TimelineRow {
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
    }
}

fn note_row(n: &Note) -> TimelineRow {
    TimelineRow {
        time: n.timestamp,
        category: "log",
        session_id: n.session_id.clone(),
        what: n.level.clone(),
        detail: n.text.clone(),
        value: None,
    }
}

fn sample_row(s: TimelineSample) -> TimelineRow {
    TimelineRow {
        time: Timestamp(s.t),
        category: "resource",
        session_id: None,
        what: s.name,
        detail: s.labels,
        value: Some(s.value),
    }
}

/// Where a full-timeline row sorts: by time, then category, then the order the rows are
/// offered in (actions, process events, notes, samples), as a stable sort of all of them would
/// put them.
type RowKey = (Timestamp, &'static str, usize);

/// The `limit` smallest keys offered, in a max-heap: a key is only kept while fewer than
/// `limit` smaller ones have been seen, so the rows themselves are built for the kept ones
/// only, never for the whole timeline.
struct FirstKeys {
    heap: BinaryHeap<RowKey>,
    limit: usize,
}

impl FirstKeys {
    fn offer(&mut self, key: RowKey) {
        if self.heap.len() < self.limit {
            self.heap.push(key);
        } else if self.heap.peek().is_some_and(|top| key < *top) {
            self.heap.pop();
            self.heap.push(key);
        }
    }
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
    let mut first = FirstKeys {
        heap: BinaryHeap::with_capacity(limit.min(1 << 16)),
        limit,
    };
    let times = actions
        .iter()
        .map(|a| (a.start(), "action"))
        .chain(process_events.iter().map(|p| (p.timestamp, "process")))
        .chain(notes.iter().map(|n| (n.timestamp, "log")))
        .chain(samples.iter().map(|s| (Timestamp(s.t), "resource")));
    let mut offered = 0usize;
    for (seq, (t, category)) in times.enumerate() {
        first.offer((t, category, seq));
        offered += 1;
    }
    let mut keys = first.heap.into_vec();
    keys.sort_unstable();
    let (n_actions, n_process, n_notes) = (actions.len(), process_events.len(), notes.len());
    let mut samples: Vec<Option<TimelineSample>> = samples.into_iter().map(Some).collect();
    let rows: Vec<TimelineRow> = keys
        .into_iter()
        .filter_map(|(_, _, seq)| {
            if seq < n_actions {
                return Some(action_row(actions[seq]));
            }
            let seq = seq - n_actions;
            if seq < n_process {
                return Some(process_row(&process_events[seq]));
            }
            let seq = seq - n_process;
            if seq < n_notes {
                return Some(note_row(&notes[seq]));
            }
            samples.get_mut(seq - n_notes)?.take().map(sample_row)
        })
        .collect();
    let kept_samples = samples.len() as u64;
    let total = offered as u64 + sample_total.saturating_sub(kept_samples);
    let omitted = total - rows.len() as u64;
    (rows, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use trace_claw_common::event::{ActionEvent, ProcessEventKind};
    use trace_claw_common::names;

    use crate::analyze::merge::lookup::tests::read_samples;
    use crate::analyze::source::action::Source;

    const S: i64 = 1_000_000_000;

    /// A lookup over `(time, metric, labels JSON, value)` samples with the given probe times.
    fn lookup(samples: &[(i64, &str, &str, f64)], probes: &[i64]) -> Lookup {
        let lines: Vec<String> = samples
            .iter()
            .map(|(t, name, labels, v)| {
                format!(
                    r#"{{"timestamp":"{}","name":"{name}","value":{v},"labels":{labels}}}"#,
                    Timestamp(*t)
                )
            })
            .collect();
        let mut agg = read_samples(&lines, probes);
        Lookup::new(probes.to_vec(), None, &mut agg)
    }

    const TOTAL: &str = r#"{"pid":"total"}"#;

    fn action(kind: &str, start_s: i64, ms: f64) -> Action {
        let mut e = ActionEvent::new(kind, Timestamp(start_s * S));
        e.duration_ms = ms;
        e.session_id = Some("s".into());
        Action::new(e, Source::EventLog, &Arc::from("events.jsonl"), 7)
    }

    #[test]
    fn cost_is_the_interpolated_counter_increase_and_a_drop_counts_as_zero() {
        let cpu = names::PROCESS_CPU_TIME.name;
        let read = names::PROCESS_IO_READ.name;
        let look = lookup(
            &[
                (0, cpu, TOTAL, 10.0),
                (10 * S, cpu, TOTAL, 30.0),
                (0, read, TOTAL, 5000.0),
                (10 * S, read, TOTAL, 1000.0),
            ],
            &[2 * S, 7 * S],
        );
        let c = interpolated_cost(&look, Timestamp(2 * S), Timestamp(7 * S))
            .expect("counters cover it");
        assert_eq!(c.method, Some(METHOD_INTERPOLATED));
        assert_eq!(c.resolution_ms, Some(10_000.0), "samples 10 s apart");
        // 2 s of CPU per second of wall time, for 5 s
        assert!((c.cpu_seconds.expect("cpu") - 10.0).abs() < 1e-9, "{c:?}");
        assert_eq!(
            c.read_bytes,
            Some(0.0),
            "a process exited: no negative cost"
        );
        assert_eq!(c.net_sent_bytes, None, "no network samples");
    }

    #[test]
    fn interpolation_is_off_by_at_most_the_use_in_the_intervals_around_the_edges() {
        // Polling at 2 s; a 300 ms burst at 0.5-0.8 s, nothing else (docs/analyze-json.md).
        let cpu = names::PROCESS_CPU_TIME.name;
        let ms = S / 1000;
        let look = lookup(
            &[
                (0, cpu, TOTAL, 0.0),
                (2 * S, cpu, TOTAL, 0.3),
                (4 * S, cpu, TOTAL, 0.3),
            ],
            &[500 * ms, 800 * ms],
        );
        let c = interpolated_cost(&look, Timestamp(500 * ms), Timestamp(800 * ms)).expect("cost");
        let got = c.cpu_seconds.expect("cpu");
        assert!(
            (got - 0.045).abs() < 1e-9,
            "smeared over the interval: {got}"
        );
        assert_eq!(c.resolution_ms, Some(2000.0));
        assert!(c.is_interpolated());
        // The stated bound: use in the interval around the start plus the one around the end.
        let bound = 0.3 + 0.3;
        assert!((got - 0.3).abs() <= bound);
    }

    #[test]
    fn no_counter_on_both_sides_means_no_cost() {
        let cpu = names::PROCESS_CPU_TIME.name;
        let look = lookup(&[(5 * S, cpu, TOTAL, 1.0)], &[6 * S, 8 * S]);
        assert_eq!(
            interpolated_cost(&look, Timestamp(6 * S), Timestamp(8 * S)),
            None
        );
    }

    #[test]
    fn snapshot_takes_the_nearest_gauge_sample() {
        let sys = names::SYSTEM_CPU_USAGE.name;
        let rss = names::PROCESS_MEMORY_RSS.name;
        let look = lookup(
            &[
                (0, sys, r#"{"cpu":"total"}"#, 10.0),
                (10 * S, sys, r#"{"cpu":"total"}"#, 90.0),
                (10 * S, rss, TOTAL, 4096.0),
            ],
            &[3 * S],
        );
        let snap = snapshot(&look, Timestamp(3 * S));
        assert_eq!(snap.cpu_percent, Some(10.0));
        assert_eq!(snap.process_rss_bytes, Some(4096.0));
        assert_eq!(snap.memory_percent, None);
    }

    #[test]
    fn costs_add_field_by_field() {
        let mut a = ResourceCost {
            cpu_seconds: Some(1.0),
            ..ResourceCost::default()
        };
        assert!(!a.is_empty());
        a.add(&ResourceCost {
            cpu_seconds: Some(2.0),
            read_bytes: Some(5.0),
            ..ResourceCost::default()
        });
        assert_eq!(a.cpu_seconds, Some(3.0));
        assert_eq!(a.read_bytes, Some(5.0));
        assert_eq!(a.write_bytes, None);
        assert!(ResourceCost::default().is_empty());
    }

    #[test]
    fn a_row_names_the_tool_before_the_model_and_says_error() {
        let mut a = action("tool", 1, 250.0);
        a.event.model = Some("gpt".into());
        a.event.tool_name = Some("exec".into());
        a.event.error = Some("boom".into());
        a.also_seen_in.insert(Source::OtlpSpan);
        let row = ActionRow::new(&a, Snapshot::default(), None);
        assert_eq!(row.name.as_deref(), Some("exec"));
        assert_eq!(row.status, "error");
        assert_eq!(row.end, Timestamp(S + 250_000_000));
        assert_eq!(row.source, "event_log");
        assert_eq!(row.also_seen_in, vec!["otlp_span".to_owned()]);
        assert_eq!((row.file.as_str(), row.line), ("events.jsonl", 7));
    }

    #[test]
    fn the_full_timeline_is_ordered_by_time_then_category_and_counts_what_it_left_out() {
        let actions = [action("llm", 2, 1000.0), action("tool", 5, 10.0)];
        let refs: Vec<&Action> = actions.iter().collect();
        let exec = ProcessEvent {
            timestamp: Timestamp(S),
            kind: ProcessEventKind::Exec,
            pid: 42,
            ppid: 1,
            comm: "sh".into(),
            filename: Some("/bin/sh".into()),
            exit_code: None,
            totals: None,
            source: "procfs".into(),
        };
        let note = Note {
            timestamp: Timestamp(S),
            level: "error".into(),
            text: "rate limited".into(),
            session_id: None,
        };
        let sample = |t: i64| TimelineSample {
            t,
            name: "system.cpu.usage_percent".into(),
            labels: "cpu=total".into(),
            value: 12.5,
        };
        // 2 samples kept of 10 read
        let (rows, omitted) = full_timeline(
            &refs,
            &[exec],
            &[note],
            vec![sample(0), sample(4 * S)],
            10,
            4,
        );
        let got: Vec<(i64, &str)> = rows.iter().map(|r| (r.time.0 / S, r.category)).collect();
        assert_eq!(
            got,
            [(0, "resource"), (1, "log"), (1, "process"), (2, "action")]
        );
        assert_eq!(rows[2].detail, "pid=42 ppid=1 comm=sh file=/bin/sh");
        assert_eq!(rows[3].detail, "- 1000 ms tokens=0 ok");
        assert_eq!(rows[0].value, Some(12.5));
        // 2 actions + 1 process event + 1 note + 10 samples, 4 shown
        assert_eq!(omitted, 10);
    }
}
