//! `--format html`: one self-contained page (inline CSS and SVG, no scripts, fonts or network)
//! with the summary cards and table, per session a legend and the SVG timeline ([`super::svg`]),
//! and the inputs read.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::format::{bytes_pair, kind_name, latency, opt_pair};
use super::markup::{colour, esc, put};
use super::svg::session_svg;
use crate::analyze::summary::report::Report;
use crate::analyze::summary::session::Summary;

/// One row of the summary table.
fn summary_rows(out: &mut String, s: &Summary) {
    put!(
        out,
        "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{}\">{} ({:.0}%)</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>${:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&s.session_id),
        s.session_key.as_deref().map(|k| format!("<br><small>{}</small>", esc(k))).unwrap_or_default(),
        s.llm_calls,
        s.tool_calls,
        if s.errors > 0 { "err" } else { "" },
        s.errors,
        s.error_rate * 100.0,
        s.tokens.input,
        s.tokens.output,
        s.tokens.cache_read,
        s.tokens.cache_write,
        s.tokens.total,
        s.cost_usd,
        latency(s.llm_latency_ms.as_ref(), " / "),
        latency(s.tool_latency_ms.as_ref(), " / "),
        opt_pair(s.resources.avg_process_cpu_percent, s.resources.max_process_cpu_percent, 1),
        bytes_pair(s.resources.avg_process_rss_bytes, s.resources.max_process_rss_bytes),
    );
}

/// Writes the page.
pub fn write_html(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let o = &r.overall;
    let charts = &r.charts;
    let mut h = String::new();
    h.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>trace-claw report</title><style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:28px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:18px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-size:13px}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}.err{color:#c00;font-weight:bold}
svg text{font-size:11px;fill:#333}.note{color:#666;font-size:12px}.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
</style></head><body>"#);
    put!(
        h,
        "<h1>trace-claw report</h1><div class=\"note\">{} · {} → {}</div><div class=\"cards\">",
        esc(&r.generated_by),
        o.start.map_or_else(|| "-".into(), |t| t.to_string()),
        o.end.map_or_else(|| "-".into(), |t| t.to_string())
    );
    let lat = o.llm_latency_ms.as_ref();
    for (value, label) in [
        (o.sessions.to_string(), "sessions"),
        (o.llm_calls.to_string(), "LLM calls"),
        (o.tool_calls.to_string(), "tool calls"),
        (
            format!("{} ({:.0}%)", o.errors, o.error_rate * 100.0),
            "errors",
        ),
        (o.tokens.total.to_string(), "tokens"),
        (
            format!("{} / {}", o.tokens.input, o.tokens.output),
            "input / output tokens",
        ),
        (
            format!("{} / {}", o.tokens.cache_read, o.tokens.cache_write),
            "cache read / write",
        ),
        (format!("${:.4}", o.cost_usd), "cost"),
        (
            lat.map_or_else(
                || "-".into(),
                |l| format!("{:.0} / {:.0} / {:.0} ms", l.p50, l.p95, l.p99),
            ),
            "LLM p50 / p95 / p99",
        ),
        (
            lat.map_or_else(|| "-".into(), |l| format!("{:.0} ms", l.max)),
            "LLM max",
        ),
    ] {
        put!(
            h,
            "<div class=\"card\"><b>{}</b><span>{label}</span></div>",
            esc(&value)
        );
    }
    h.push_str("</div><table><tr><th>session</th><th>LLM</th><th>tool</th><th>errors</th><th>tokens in</th><th>out</th><th>cache r / w</th><th>total</th><th>cost</th><th>LLM ms p50/95/99/max</th><th>tool ms p50/95/99/max</th><th>proc CPU % avg / max</th><th>proc RSS avg / max</th></tr>");
    for s in &r.sessions {
        summary_rows(&mut h, s);
    }
    summary_rows(&mut h, o);
    h.push_str("</table>");
    if r.sessions.len() > charts.len() {
        put!(
            h,
            "<div class=\"note\">timelines of the first {} of {} sessions (use --session, --since or --until to see others)</div>",
            charts.len(),
            r.sessions.len()
        );
    }
    for c in charts {
        put!(h, "<h2>session {}</h2>", esc(&c.session_id));
        let mut names: Vec<&str> = c
            .actions
            .iter()
            .map(|a| a.name.as_deref().unwrap_or(&a.action))
            .collect();
        names.sort_unstable();
        names.dedup();
        h.push_str("<div class=\"legend\">");
        for n in names {
            put!(
                h,
                "<span><i style=\"background:{}\"></i>{}</span>",
                colour(n),
                esc(n)
            );
        }
        h.push_str("<span><i style=\"border:2px solid #d00\"></i>error</span></div>");
        if c.actions_total > c.actions.len() {
            put!(
                h,
                "<div class=\"note\">showing the first {} of {} actions (use --since/--until/--session to zoom)</div>",
                c.actions.len(),
                c.actions_total
            );
        }
        if c.ticks_total > c.ticks.len() {
            put!(
                h,
                "<div class=\"note\">showing {} of {} process events</div>",
                c.ticks.len(),
                c.ticks_total
            );
        }
        h.push_str(&session_svg(c));
        h.push_str("<div class=\"note\">resource series are averaged into 240 buckets per session; hover a bar for its tokens, cost, duration and resource cost</div>");
    }
    let bad: u64 = r.inputs.iter().map(|f| f.bad_lines).sum();
    put!(h, "<h2>inputs</h2><table><tr><th>file</th><th>kind</th><th>lines</th><th>records</th><th>bad</th></tr>");
    for f in &r.inputs {
        put!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.path),
            esc(&kind_name(f.kind)),
            f.lines,
            f.records,
            f.bad_lines
        );
    }
    h.push_str("</table>");
    if bad > 0 {
        h.push_str("<div class=\"note\">skipped lines:<br>");
        for b in r.inputs.iter().flat_map(|f| &f.first_bad) {
            put!(h, "{}<br>", esc(b));
        }
        h.push_str("</div>");
    }
    for note in r
        .inputs
        .iter()
        .filter_map(|f| f.incomplete_last_line.as_ref())
    {
        put!(h, "<div class=\"note\">{}</div>", esc(note));
    }
    h.push_str("</body></html>\n");
    out.write_all(h.as_bytes())
}
