//! Resource sample lines (`resources-*.jsonl`), read chunk by chunk: each sample is routed to
//! the series and stats it feeds and added to the chunk's [`Aggregate`].

use std::borrow::Cow;

use serde::Deserialize;
use trace_claw_common::names::{self, labels};
use trace_claw_common::time::Timestamp;

use super::aggregate::{Aggregate, Plan, StatKind, TimelineSample};
use super::series::{Pt, Series};
use crate::analyze::error::AnalyzeError;
use crate::analyze::source::lines::{self, json_reason, Chunk, LineStats};

#[derive(Deserialize)]
struct RawSample<'a> {
    timestamp: Timestamp,
    #[serde(borrow)]
    name: Cow<'a, str>,
    value: f64,
    #[serde(default, borrow)]
    labels: RawLabels<'a>,
}

#[derive(Deserialize, Default)]
struct RawLabels<'a> {
    #[serde(borrow)]
    pid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cpu: Option<Cow<'a, str>>,
    #[serde(borrow)]
    interface: Option<Cow<'a, str>>,
    #[serde(borrow)]
    process_name: Option<Cow<'a, str>>,
}

/// Which series and stat a sample feeds.
fn route(name: &str, l: &RawLabels<'_>) -> (Option<Series>, Option<StatKind>) {
    let total = l.pid.as_deref() == Some(labels::PID_TOTAL);
    if name == names::SYSTEM_CPU_USAGE.name {
        if l.cpu.as_deref().is_none_or(|c| c == labels::CPU_TOTAL) {
            return (Some(Series::SysCpu), Some(StatKind::SysCpu));
        }
    } else if name == names::SYSTEM_MEMORY_USAGE.name {
        return (Some(Series::SysMem), Some(StatKind::SysMem));
    } else if name == names::PROCESS_CPU_USAGE.name {
        return if total {
            (Some(Series::ProcCpu), Some(StatKind::ProcCpuTotal))
        } else {
            (None, Some(StatKind::ProcCpuPid))
        };
    } else if name == names::PROCESS_MEMORY_RSS.name {
        return if total {
            (Some(Series::ProcRss), Some(StatKind::ProcRssTotal))
        } else {
            (None, Some(StatKind::ProcRssPid))
        };
    } else if total {
        let s = if name == names::PROCESS_CPU_TIME.name {
            Series::CpuTime
        } else if name == names::PROCESS_IO_READ.name {
            Series::IoRead
        } else if name == names::PROCESS_IO_WRITE.name {
            Series::IoWrite
        } else if name == names::PROCESS_IO_BLOCK_READ.name {
            Series::BlockRead
        } else if name == names::PROCESS_NET_SENT.name {
            Series::NetSent
        } else if name == names::PROCESS_NET_RECV.name {
            Series::NetRecv
        } else {
            return (None, None);
        };
        return (Some(s), None);
    }
    (None, None)
}

fn label_text(l: &RawLabels<'_>) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        (labels::PID, &l.pid),
        (labels::PROCESS_NAME, &l.process_name),
        (labels::CPU, &l.cpu),
        (labels::INTERFACE, &l.interface),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

/// Reads one chunk of a resources file.
pub fn read_chunk(chunk: &Chunk, plan: &Plan) -> Result<Aggregate, AnalyzeError> {
    let mut agg = Aggregate::new(plan);
    let mut stats = LineStats::default();
    let read = lines::for_each_line_in_chunk(chunk, |no, line| {
        if lines::is_blank(line) {
            return;
        }
        let s: RawSample<'_> = match serde_json::from_slice(line) {
            Ok(s) => s,
            Err(e) => return stats.bad(no, json_reason(&e)),
        };
        stats.records += 1;
        let t = s.timestamp.0;
        if t < plan.since || t >= plan.until || !s.value.is_finite() {
            return;
        }
        agg.add(
            plan,
            Pt { t, v: s.value },
            route(&s.name, &s.labels),
            || TimelineSample {
                t,
                name: s.name.into_owned(),
                labels: label_text(&s.labels),
                value: s.value,
            },
        );
    })?;
    stats.read(read);
    agg.lines = stats;
    Ok(agg)
}
