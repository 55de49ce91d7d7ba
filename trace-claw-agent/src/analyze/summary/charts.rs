//! What the HTML report draws per session, as data: the session's action bars, its process
//! exec/exit ticks and the resource panels under them (down-sampled series). Built only with
//! `--format html`; the renderer decides how it looks.

use serde::Serialize;
use trace_claw_common::event::ProcessEvent;
use trace_claw_common::time::Timestamp;

use super::timeline::ActionRow;
use crate::analyze::source::resources::buckets::Buckets;
use crate::analyze::source::resources::series::Series;

/// At most this many bars per session are drawn (the earliest); the page says when more exist.
pub const MAX_BARS: usize = 2000;
/// At most this many sessions get a timeline (the earliest); the page says when more exist.
pub const MAX_SESSIONS: usize = 50;
/// At most this many process ticks per session are drawn.
pub const MAX_TICKS: usize = 2000;

/// A process lifecycle tick.
#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    /// When.
    pub time: Timestamp,
    /// `exec` or `exit`.
    pub kind: String,
    /// Tooltip.
    pub label: String,
}

impl Tick {
    /// The tick of an exec or exit event.
    pub fn new(p: &ProcessEvent) -> Self {
        Self {
            time: p.timestamp,
            kind: format!("{:?}", p.kind).to_lowercase(),
            label: format!(
                "{:?} pid {} {}{}",
                p.kind,
                p.pid,
                p.comm,
                p.exit_code
                    .map(|c| format!(" exit {c}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// What the page draws for one session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionChart {
    /// Session id.
    pub session_id: String,
    /// Actions (at most [`MAX_BARS`]).
    pub actions: Vec<ActionRow>,
    /// Actions in the session.
    pub actions_total: usize,
    /// Resource panels.
    pub panels: Vec<Panel>,
    /// exec/exit ticks (at most [`MAX_TICKS`]).
    pub ticks: Vec<Tick>,
    /// Ticks in the session window.
    pub ticks_total: usize,
}

/// One plotted series.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Label.
    pub name: &'static str,
    /// `%`, `By`, `By/s`.
    pub unit: &'static str,
    /// (Unix ns, value).
    pub points: Vec<(i64, f64)>,
}

/// The series of one chart panel.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// Title.
    pub title: &'static str,
    /// Lines drawn in it.
    pub lines: Vec<Line>,
}

/// The panels under a session's action lanes.
pub fn panels(b: &Buckets) -> Vec<Panel> {
    let line = |name, unit, points| Line { name, unit, points };
    vec![
        Panel {
            title: "process tree CPU %",
            lines: vec![line("cpu", "%", b.gauge(Series::ProcCpu))],
        },
        Panel {
            title: "process tree RSS",
            lines: vec![line("rss", "By", b.gauge(Series::ProcRss))],
        },
        Panel {
            title: "disk bytes/s",
            lines: vec![
                line("read", "By/s", b.rate(Series::IoRead)),
                line("write", "By/s", b.rate(Series::IoWrite)),
            ],
        },
        Panel {
            title: "network bytes/s",
            lines: vec![
                line("sent", "By/s", b.rate(Series::NetSent)),
                line("recv", "By/s", b.rate(Series::NetRecv)),
            ],
        },
        Panel {
            title: "system CPU % / memory %",
            lines: vec![
                line("cpu", "%", b.gauge(Series::SysCpu)),
                line("mem", "%", b.gauge(Series::SysMem)),
            ],
        },
    ]
}
