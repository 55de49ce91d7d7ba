//! Terminal output: aligned tables (comfy-table; fits the terminal width; colour only when
//! asked, i.e. on a TTY without NO_COLOR) and `--no-table` plain `key=value` lines for piping.
//! Both end with the skipped-lines summary.

use std::io::{self, Write};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};

use super::report::Report;
use super::summary::{Latency, Summary};
use super::timeline::ResourceCost;

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

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// `1.5 MiB`-style sizes.
pub fn bytes(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn latency(l: Option<&Latency>) -> String {
    l.map_or_else(
        || "-".into(),
        |l| format!("{:.0}/{:.0}/{:.0}/{:.0}", l.p50, l.p95, l.p99, l.max),
    )
}

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
        num_cell(latency(s.llm_latency_ms.as_ref())),
        num_cell(latency(s.tool_latency_ms.as_ref())),
    ]
}

fn resource_row(s: &Summary) -> Vec<Cell> {
    let r = &s.resources;
    let c = s.action_cost.unwrap_or_default();
    vec![
        Cell::new(s.session_id.clone()),
        num_cell(format!(
            "{} / {}",
            opt(r.avg_system_cpu_percent, 1),
            opt(r.max_system_cpu_percent, 1)
        )),
        num_cell(format!(
            "{} / {}",
            opt(r.avg_system_memory_percent, 1),
            opt(r.max_system_memory_percent, 1)
        )),
        num_cell(format!(
            "{} / {}",
            opt(r.avg_process_cpu_percent, 1),
            opt(r.max_process_cpu_percent, 1)
        )),
        num_cell(format!(
            "{} / {}",
            bytes(r.avg_process_rss_bytes),
            bytes(r.max_process_rss_bytes)
        )),
        num_cell(opt(c.cpu_seconds, 3)),
        num_cell(format!(
            "{} / {}",
            bytes(c.read_bytes),
            bytes(c.write_bytes)
        )),
        num_cell(format!(
            "{} / {}",
            bytes(c.net_sent_bytes),
            bytes(c.net_recv_bytes)
        )),
    ]
}

fn omitted(out: &mut dyn Write, n: u64, what: &str) -> io::Result<()> {
    if n > 0 {
        writeln!(
            out,
            "… {n} more {what} not shown (use --limit, --since, --until or --session)"
        )?;
    }
    Ok(())
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
        ],
    );
    for s in r.sessions.iter().chain(std::iter::once(&r.overall)) {
        t.add_row(resource_row(s));
    }
    writeln!(out, "\nResources ({} samples)\n{t}", r.resource_samples)?;

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
            num_cell(opt(c.cpu_seconds, 3)),
            num_cell(format!(
                "{} / {}",
                bytes(c.read_bytes),
                bytes(c.write_bytes)
            )),
            num_cell(format!(
                "{} / {}",
                bytes(c.net_sent_bytes),
                bytes(c.net_recv_bytes)
            )),
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

/// Duplicates merged, files read and skipped lines: the end of both outputs.
fn write_footer(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    for d in &r.duplicates {
        writeln!(
            out,
            "merged: {} {} cop{} of calls also seen in {} (kept {})",
            d.count,
            d.dropped,
            if d.count == 1 { "y" } else { "ies" },
            d.kept,
            d.kept
        )?;
    }
    for f in &r.inputs {
        writeln!(
            out,
            "input: {} ({}) lines={} records={} bad={}",
            f.path,
            serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            f.lines,
            f.records,
            f.bad_lines
        )?;
    }
    let bad: u64 = r.inputs.iter().map(|f| f.bad_lines).sum();
    if bad > 0 {
        writeln!(out, "skipped {bad} bad line(s):")?;
        for f in r.inputs.iter().filter(|f| f.bad_lines > 0) {
            for b in &f.first_bad {
                writeln!(out, "  {b}")?;
            }
            if f.bad_lines > f.first_bad.len() as u64 {
                writeln!(
                    out,
                    "  {}: {} more",
                    f.path,
                    f.bad_lines - f.first_bad.len() as u64
                )?;
            }
        }
    }
    Ok(())
}

fn kv_summary(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    let r = &s.resources;
    let c = s.action_cost.unwrap_or_default();
    let l = |x: Option<&Latency>, f: fn(&Latency) -> f64| opt(x.map(f), 1);
    writeln!(
        out,
        "summary session={} key={} llm_calls={} tool_calls={} other_actions={} errors={} error_rate={:.4} \
         tokens_input={} tokens_output={} tokens_cache_read={} tokens_cache_write={} tokens_total={} cost_usd={:.6} \
         llm_p50_ms={} llm_p95_ms={} llm_p99_ms={} llm_max_ms={} tool_p50_ms={} tool_max_ms={} \
         avg_system_cpu_percent={} max_system_cpu_percent={} avg_system_memory_percent={} max_system_memory_percent={} \
         avg_process_cpu_percent={} max_process_cpu_percent={} avg_process_rss_bytes={} max_process_rss_bytes={} \
         actions_cpu_seconds={} actions_read_bytes={} actions_write_bytes={} actions_net_sent_bytes={} actions_net_recv_bytes={}",
        s.session_id,
        s.session_key.as_deref().unwrap_or("-"),
        s.llm_calls,
        s.tool_calls,
        s.other_actions,
        s.errors,
        s.error_rate,
        s.tokens.input,
        s.tokens.output,
        s.tokens.cache_read,
        s.tokens.cache_write,
        s.tokens.total,
        s.cost_usd,
        l(s.llm_latency_ms.as_ref(), |x| x.p50),
        l(s.llm_latency_ms.as_ref(), |x| x.p95),
        l(s.llm_latency_ms.as_ref(), |x| x.p99),
        l(s.llm_latency_ms.as_ref(), |x| x.max),
        l(s.tool_latency_ms.as_ref(), |x| x.p50),
        l(s.tool_latency_ms.as_ref(), |x| x.max),
        opt(r.avg_system_cpu_percent, 2),
        opt(r.max_system_cpu_percent, 2),
        opt(r.avg_system_memory_percent, 2),
        opt(r.max_system_memory_percent, 2),
        opt(r.avg_process_cpu_percent, 2),
        opt(r.max_process_cpu_percent, 2),
        opt(r.avg_process_rss_bytes, 0),
        opt(r.max_process_rss_bytes, 0),
        opt(c.cpu_seconds, 6),
        opt(c.read_bytes, 0),
        opt(c.write_bytes, 0),
        opt(c.net_sent_bytes, 0),
        opt(c.net_recv_bytes, 0),
    )
}

/// Writes plain lines, one record per line, for piping.
pub fn write_text(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    for s in r.sessions.iter().chain(std::iter::once(&r.overall)) {
        kv_summary(out, s)?;
    }
    for a in &r.action_timeline.rows {
        let c = a.resource_cost.unwrap_or_default();
        writeln!(
            out,
            "action {} {} session={} name={} duration_ms={:.1} tokens={} cost_usd={:.6} status={} \
             cpu_percent={} mem_percent={} proc_cpu_percent={} proc_rss_bytes={} \
             cpu_seconds={} read_bytes={} write_bytes={} net_sent_bytes={} net_recv_bytes={} source={}{}",
            a.time,
            a.action,
            a.session_id,
            a.name.as_deref().unwrap_or("-"),
            a.duration_ms,
            a.tokens,
            a.cost_usd,
            a.status,
            opt(a.snapshot.cpu_percent, 1),
            opt(a.snapshot.memory_percent, 1),
            opt(a.snapshot.process_cpu_percent, 1),
            opt(a.snapshot.process_rss_bytes, 0),
            opt(c.cpu_seconds, 6),
            opt(c.read_bytes, 0),
            opt(c.write_bytes, 0),
            opt(c.net_sent_bytes, 0),
            opt(c.net_recv_bytes, 0),
            a.source,
            if a.also_seen_in.is_empty() {
                String::new()
            } else {
                format!(" also_seen_in={}", a.also_seen_in.join(","))
            }
        )?;
    }
    omitted(out, r.action_timeline.omitted, "actions")?;
    for row in &r.timeline.rows {
        writeln!(
            out,
            "timeline {} {} {}{} {}{}",
            row.time,
            row.category,
            row.session_id
                .as_deref()
                .map(|s| format!("session={s} "))
                .unwrap_or_default(),
            row.what,
            row.detail,
            row.value.map(|v| format!(" value={v}")).unwrap_or_default()
        )?;
    }
    omitted(out, r.timeline.omitted, "timeline rows")?;
    write_footer(r, out)
}
