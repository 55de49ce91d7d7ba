//! `--format table`, the terminal default: aligned tables (comfy-table; fits the terminal
//! width; colour only when asked, i.e. on a TTY without NO_COLOR), ending with the footer.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};

use super::footer::{omitted, write_footer};
use super::format::{approx, bytes, bytes_pair, latency, opt, opt_pair};
use crate::analyze::summary::report::Report;
use crate::analyze::summary::session::Summary;
use crate::analyze::summary::timeline::ResourceCost;

/// OpenClaw metrics worth a row in the terminal report (all are in the JSON).
const SHOWN_METRICS: &[&str] = &[
    "openclaw.tokens",
    "openclaw.cost.usd",
    "openclaw.run.duration_ms",
    "openclaw.model_call.duration_ms",
    "openclaw.message.processed",
    "openclaw.webhook.received",
    "openclaw.webhook.error",
    "openclaw.session.stuck",
];

fn new_table(color: bool, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // Width: the terminal's when stdout is one, else $COLUMNS when set, else unbounded.
    // Styling is only ever added when `color` is set (TTY and no NO_COLOR).
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
    {
        if !t.is_tty() {
            t.set_width(w);
        }
    }
    t.set_header(header.iter().map(|h| {
        let c = Cell::new(h);
        if color {
            c.add_attribute(comfy_table::Attribute::Bold)
        } else {
            c
        }
    }));
    t
}

fn num_cell(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

fn session_label(s: &Summary) -> String {
    match &s.session_key {
        Some(k) if *k != s.session_id => format!("{}\n{k}", s.session_id),
        _ => s.session_id.clone(),
    }
}

fn summary_row(s: &Summary, color: bool) -> Vec<Cell> {
    let mut errors = num_cell(format!("{} ({:.0}%)", s.errors, s.error_rate * 100.0));
    if color && s.errors > 0 {
        errors = errors.fg(Color::Red);
    }
    vec![
        Cell::new(session_label(s)),
        num_cell(s.llm_calls.to_string()),
        num_cell(s.tool_calls.to_string()),
        errors,
        num_cell(s.tokens.input.to_string()),
        num_cell(s.tokens.output.to_string()),
        num_cell(format!("{}/{}", s.tokens.cache_read, s.tokens.cache_write)),
        num_cell(s.tokens.total.to_string()),
        num_cell(format!("{:.4}", s.cost_usd)),
        num_cell(latency(s.llm_latency_ms.as_ref(), "/")),
        num_cell(latency(s.tool_latency_ms.as_ref(), "/")),
    ]
}

fn resource_row(s: &Summary) -> Vec<Cell> {
    let r = &s.resources;
    let c = s.action_cost.unwrap_or_default();
    vec![
        Cell::new(s.session_id.clone()),
        num_cell(opt_pair(
            r.avg_system_cpu_percent,
            r.max_system_cpu_percent,
            1,
        )),
        num_cell(opt_pair(
            r.avg_system_memory_percent,
            r.max_system_memory_percent,
            1,
        )),
        num_cell(opt_pair(
            r.avg_process_cpu_percent,
            r.max_process_cpu_percent,
            1,
        )),
        num_cell(bytes_pair(r.avg_process_rss_bytes, r.max_process_rss_bytes)),
        num_cell(approx(&c, opt(c.cpu_seconds, 3))),
        num_cell(approx(&c, bytes_pair(c.read_bytes, c.write_bytes))),
        num_cell(approx(&c, bytes_pair(c.net_sent_bytes, c.net_recv_bytes))),
        num_cell(opt(s.idle_cost.and_then(|i| i.cpu_seconds), 3)),
    ]
}

/// Writes the tables.
pub fn write_tables(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "Sessions: {}   LLM calls: {}   tool calls: {}   errors: {}   tokens: {}   cost: ${:.4}",
        r.overall.sessions,
        r.overall.llm_calls,
        r.overall.tool_calls,
        r.overall.errors,
        r.overall.tokens.total,
        r.overall.cost_usd
    )?;
    let mut t = new_table(
        color,
        &[
            "session",
            "llm",
            "tool",
            "errors",
            "tok in",
            "tok out",
            "cache r/w",
            "tok total",
            "cost $",
            "llm ms p50/95/99/max",
            "tool ms p50/95/99/max",
        ],
    );
    for s in r.sessions.iter().chain(std::iter::once(&r.overall)) {
        t.add_row(summary_row(s, color));
    }
    writeln!(out, "\nSession summary\n{t}")?;

    let mut t = new_table(
        color,
        &[
            "session",
            "sys cpu% avg/max",
            "mem% avg/max",
            "proc cpu% avg/max",
            "proc rss avg/max",
            "actions cpu s",
            "actions read/write",
            "actions sent/recv",
            "idle cpu s",
        ],
    );
    for s in r.sessions.iter().chain(std::iter::once(&r.overall)) {
        t.add_row(resource_row(s));
    }
    writeln!(out, "\nResources ({} samples)\n{t}", r.resource_samples)?;
    if let Some(o) = &r.overall.other_trees {
        writeln!(
            out,
            "Other matching process trees (charged to no action): {}, {} CPU s, read/write {}",
            o.trees,
            opt(o.cost.cpu_seconds, 3),
            bytes_pair(o.cost.read_bytes, o.cost.write_bytes)
        )?;
    }

    let mut t = new_table(
        color,
        &[
            "action",
            "time",
            "session",
            "name",
            "ms",
            "tokens",
            "status",
            "cpu%",
            "mem%",
            "proc cpu%",
            "proc rss",
            "cpu s",
            "read/write",
            "sent/recv",
            "source",
        ],
    );
    for a in &r.action_timeline.rows {
        let c = a.resource_cost.unwrap_or(ResourceCost::default());
        let mut status = Cell::new(&a.status);
        if color && a.status != "ok" {
            status = status.fg(Color::Red);
        }
        let mut source = a.source.clone();
        if !a.also_seen_in.is_empty() {
            source = format!("{source} (+{})", a.also_seen_in.join(","));
        }
        t.add_row(vec![
            Cell::new(&a.action),
            Cell::new(a.time.to_string()),
            Cell::new(&a.session_id),
            Cell::new(a.name.as_deref().unwrap_or("-")),
            num_cell(format!("{:.0}", a.duration_ms)),
            num_cell(a.tokens.to_string()),
            status,
            num_cell(opt(a.snapshot.cpu_percent, 1)),
            num_cell(opt(a.snapshot.memory_percent, 1)),
            num_cell(opt(a.snapshot.process_cpu_percent, 1)),
            num_cell(bytes(a.snapshot.process_rss_bytes)),
            num_cell(approx(&c, opt(c.cpu_seconds, 3))),
            num_cell(approx(&c, bytes_pair(c.read_bytes, c.write_bytes))),
            num_cell(approx(&c, bytes_pair(c.net_sent_bytes, c.net_recv_bytes))),
            Cell::new(source),
        ]);
    }
    writeln!(out, "\nAction timeline\n{t}")?;
    omitted(out, r.action_timeline.omitted, "actions")?;

    let mut t = new_table(
        color,
        &["time", "category", "session", "what", "detail", "value"],
    );
    for row in &r.timeline.rows {
        t.add_row(vec![
            Cell::new(row.time.to_string()),
            Cell::new(row.category),
            Cell::new(row.session_id.as_deref().unwrap_or("")),
            Cell::new(&row.what),
            Cell::new(&row.detail),
            num_cell(row.value.map_or_else(String::new, |v| format!("{v}"))),
        ]);
    }
    writeln!(out, "\nFull timeline\n{t}")?;
    omitted(out, r.timeline.omitted, "timeline rows")?;

    let shown: Vec<_> = r
        .openclaw_metrics
        .iter()
        .filter(|m| SHOWN_METRICS.contains(&m.name.as_str()))
        .collect();
    if !shown.is_empty() {
        let mut t = new_table(color, &["OpenClaw metric", "series", "total", "count"]);
        for m in shown {
            t.add_row(vec![
                Cell::new(&m.name),
                Cell::new(&m.series),
                num_cell(format!("{}", m.total)),
                num_cell(m.count.to_string()),
            ]);
        }
        writeln!(out, "\nOpenClaw OTLP metrics (cumulative totals)\n{t}")?;
    }
    write_footer(r, out)
}
