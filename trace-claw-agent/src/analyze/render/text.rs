//! `--no-table`: plain lines, one record each (`summary`, `action`, `timeline`) with
//! `key=value` fields, for piping. Ends like the tables, with the footer.

use std::io::{self, Write};

use super::footer::{omitted, write_footer};
use super::format::opt;
use crate::analyze::summary::report::Report;
use crate::analyze::summary::session::{Latency, Summary};
use crate::analyze::summary::timeline::{ActionRow, ResourceCost};

/// Appends ` {prefix}{key}={value}` per field.
fn put_fields(line: &mut String, prefix: &str, fields: &[(&str, String)]) {
    for (key, value) in fields {
        line.push(' ');
        line.push_str(prefix);
        line.push_str(key);
        line.push('=');
        line.push_str(value);
    }
}

/// The counters of a resource cost as fields (`-` where no counter covered the action), and
/// how they were measured (`time_slots`, or `interpolated` between samples).
fn cost_fields(c: &ResourceCost) -> [(&'static str, String); 6] {
    [
        ("cpu_seconds", opt(c.cpu_seconds, 6)),
        ("read_bytes", opt(c.read_bytes, 0)),
        ("write_bytes", opt(c.write_bytes, 0)),
        ("net_sent_bytes", opt(c.net_sent_bytes, 0)),
        ("net_recv_bytes", opt(c.net_recv_bytes, 0)),
        ("cost_method", c.method.unwrap_or("-").to_owned()),
    ]
}

/// One `summary key=value ...` line.
fn summary_line(s: &Summary) -> String {
    let r = &s.resources;
    let ms = |l: Option<&Latency>, f: fn(&Latency) -> f64| opt(l.map(f), 1);
    let (llm, tool) = (s.llm_latency_ms.as_ref(), s.tool_latency_ms.as_ref());
    let mut line = "summary".to_owned();
    put_fields(
        &mut line,
        "",
        &[
            ("session", s.session_id.clone()),
            ("key", s.session_key.as_deref().unwrap_or("-").to_owned()),
            ("llm_calls", s.llm_calls.to_string()),
            ("tool_calls", s.tool_calls.to_string()),
            ("other_actions", s.other_actions.to_string()),
            ("errors", s.errors.to_string()),
            ("error_rate", format!("{:.4}", s.error_rate)),
            ("tokens_input", s.tokens.input.to_string()),
            ("tokens_output", s.tokens.output.to_string()),
            ("tokens_cache_read", s.tokens.cache_read.to_string()),
            ("tokens_cache_write", s.tokens.cache_write.to_string()),
            ("tokens_total", s.tokens.total.to_string()),
            ("cost_usd", format!("{:.6}", s.cost_usd)),
            ("llm_p50_ms", ms(llm, |l| l.p50)),
            ("llm_p95_ms", ms(llm, |l| l.p95)),
            ("llm_p99_ms", ms(llm, |l| l.p99)),
            ("llm_max_ms", ms(llm, |l| l.max)),
            ("tool_p50_ms", ms(tool, |l| l.p50)),
            ("tool_max_ms", ms(tool, |l| l.max)),
            ("avg_system_cpu_percent", opt(r.avg_system_cpu_percent, 2)),
            ("max_system_cpu_percent", opt(r.max_system_cpu_percent, 2)),
            (
                "avg_system_memory_percent",
                opt(r.avg_system_memory_percent, 2),
            ),
            (
                "max_system_memory_percent",
                opt(r.max_system_memory_percent, 2),
            ),
            ("avg_process_cpu_percent", opt(r.avg_process_cpu_percent, 2)),
            ("max_process_cpu_percent", opt(r.max_process_cpu_percent, 2)),
            ("avg_process_rss_bytes", opt(r.avg_process_rss_bytes, 0)),
            ("max_process_rss_bytes", opt(r.max_process_rss_bytes, 0)),
        ],
    );
    put_fields(
        &mut line,
        "actions_",
        &cost_fields(&s.action_cost.unwrap_or_default()),
    );
    if let Some(idle) = &s.idle_cost {
        put_fields(&mut line, "idle_", &cost_fields(idle));
    }
    line
}

/// One `action <time> <type> key=value ...` line.
fn action_line(a: &ActionRow) -> String {
    let mut line = format!("action {} {}", a.time, a.action);
    put_fields(
        &mut line,
        "",
        &[
            ("session", a.session_id.clone()),
            ("name", a.name.as_deref().unwrap_or("-").to_owned()),
            ("duration_ms", format!("{:.1}", a.duration_ms)),
            ("tokens", a.tokens.to_string()),
            ("cost_usd", format!("{:.6}", a.cost_usd)),
            ("status", a.status.clone()),
            ("cpu_percent", opt(a.snapshot.cpu_percent, 1)),
            ("mem_percent", opt(a.snapshot.memory_percent, 1)),
            ("proc_cpu_percent", opt(a.snapshot.process_cpu_percent, 1)),
            ("proc_rss_bytes", opt(a.snapshot.process_rss_bytes, 0)),
        ],
    );
    put_fields(
        &mut line,
        "",
        &cost_fields(&a.resource_cost.unwrap_or_default()),
    );
    put_fields(&mut line, "", &[("source", a.source.clone())]);
    if !a.also_seen_in.is_empty() {
        put_fields(&mut line, "", &[("also_seen_in", a.also_seen_in.join(","))]);
    }
    line
}

/// Writes plain lines, one record per line, for piping.
pub fn write_text(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    for s in r.sessions.iter().chain(std::iter::once(&r.overall)) {
        writeln!(out, "{}", summary_line(s))?;
    }
    for a in &r.action_timeline.rows {
        writeln!(out, "{}", action_line(a))?;
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
