//! `--format html`: one self-contained page (inline CSS and SVG, no scripts, fonts or network)
//! with the summary and, per session, a timeline: one lane per action kind (LLM bars coloured
//! by model, tool bars by tool, errors outlined red, a `<title>` tooltip with tokens, cost,
//! duration and resource cost), exec/exit ticks, and under it on the same time axis the
//! tracked tree's CPU, RSS, disk and network rates and the system CPU and memory.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;
use trace_claw_common::time::Timestamp;

use super::charts::Panel;
use super::report::Report;
use super::summary::Summary;
use super::table::bytes;
use super::timeline::ActionRow;

/// `write!` into a `String`, whose `fmt::Write` impl never returns an error.
macro_rules! put {
    ($dst:expr, $($arg:tt)*) => {{
        // String's fmt::Write never fails: nothing to handle.
        let _ = write!($dst, $($arg)*);
    }};
}

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

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 160.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 26.0;
const PANEL: f64 = 64.0;
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac",
    "#ff9da7", "#e15759",
];
const LINE_COLOURS: [&str; 2] = ["#1f77b4", "#d62728"];

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A stable colour per name.
fn colour(name: &str) -> &'static str {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn hms(t: i64) -> String {
    let s = Timestamp(t).to_string();
    s.get(11..19).unwrap_or(&s).to_owned()
}

fn tooltip(a: &ActionRow) -> String {
    let mut t = format!(
        "{} {}\n{}  {:.0} ms  {}",
        a.action,
        a.name.as_deref().unwrap_or(""),
        a.time,
        a.duration_ms,
        a.status
    );
    if let Some(e) = &a.error {
        put!(t, ": {e}");
    }
    put!(
        t,
        "\ntokens {} (in {}, out {}, cache r/w {}/{})  cost ${:.6}",
        a.tokens,
        a.tokens_input,
        a.tokens_output,
        a.tokens_cache_read,
        a.tokens_cache_write,
        a.cost_usd
    );
    if let Some(c) = a.resource_cost {
        put!(
            t,
            "\ncpu {} s  read {}  write {}  sent {}  recv {}",
            opt(c.cpu_seconds, 4),
            bytes(c.read_bytes),
            bytes(c.write_bytes),
            bytes(c.net_sent_bytes),
            bytes(c.net_recv_bytes)
        );
    }
    put!(t, "\nsource {}", a.source);
    if !a.also_seen_in.is_empty() {
        put!(t, " (also {})", a.also_seen_in.join(", "));
    }
    t
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "By" => bytes(Some(v)),
        "By/s" => format!("{}/s", bytes(Some(v))),
        "%" => format!("{v:.1}%"),
        _ => format!("{v:.2}"),
    }
}

/// The SVG of one session.
pub fn session_svg(c: &SessionChart) -> String {
    let (mut t0, mut t1) = (i64::MAX, i64::MIN);
    for a in &c.actions {
        t0 = t0.min(a.time.0);
        t1 = t1.max(a.end.0);
    }
    if t0 > t1 {
        return String::new();
    }
    // At least the slack the session's resource window has, so a short session still shows
    // the samples around it.
    let pad = ((t1 - t0) / 50).max(super::SESSION_SLACK_NS);
    t0 -= pad;
    t1 += pad;
    let pw = WIDTH - LEFT - RIGHT;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * pw;
    let mut kinds: Vec<&str> = c.actions.iter().map(|a| a.action.as_str()).collect();
    kinds.sort_by_key(|k| (*k != "llm", *k != "tool", k.to_string()));
    kinds.dedup();
    let lanes_top = 34.0;
    let ticks_top = lanes_top + LANE * kinds.len() as f64;
    let has_ticks = !c.ticks.is_empty();
    let panels_top = ticks_top + if has_ticks { LANE } else { 0.0 } + 8.0;
    let height = panels_top + (PANEL + 12.0) * c.panels.len() as f64 + 4.0;
    let mut s = String::new();
    put!(
        s,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" data-session="{}" data-t0="{t0}" data-t1="{t1}" data-bars="{}">"#,
        esc(&c.session_id),
        c.actions.len()
    );
    // time axis: 6 ticks
    for i in 0..=5 {
        let t = t0 + (t1 - t0) / 5 * i;
        let xx = x(t);
        let anchor = match i {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        put!(
            s,
            r##"<line class="grid" x1="{xx:.1}" y1="22" x2="{xx:.1}" y2="{height}" stroke="#e5e5e5"/><text class="axis-label" x="{xx:.1}" y="16" text-anchor="{anchor}" data-t="{t}">{}</text>"##,
            hms(t)
        );
    }
    for (i, k) in kinds.iter().enumerate() {
        let y = lanes_top + LANE * i as f64;
        put!(
            s,
            r##"<text class="lane-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ccc"/>"##,
            LEFT - 8.0,
            y + LANE / 2.0 + 4.0,
            esc(k),
            y + LANE,
            WIDTH - RIGHT,
            y + LANE
        );
    }
    for a in &c.actions {
        let lane = kinds.iter().position(|k| *k == a.action).unwrap_or(0);
        let y = lanes_top + LANE * lane as f64 + 4.0;
        let x0 = x(a.time.0);
        let w = (x(a.end.0) - x0).max(1.5);
        let name = a.name.as_deref().unwrap_or(&a.action);
        let error = a.status != "ok";
        put!(
            s,
            r##"<rect class="bar {}{}" x="{x0:.2}" y="{y:.1}" width="{w:.2}" height="{:.1}" fill="{}" fill-opacity="0.85"{}><title>{}</title></rect>"##,
            esc(&a.action),
            if error { " error" } else { "" },
            LANE - 8.0,
            colour(name),
            if error {
                r##" stroke="#d00" stroke-width="2""##
            } else {
                ""
            },
            esc(&tooltip(a))
        );
    }
    if has_ticks {
        put!(
            s,
            r#"<text class="lane-label" x="{:.1}" y="{:.1}" text-anchor="end">process</text>"#,
            LEFT - 8.0,
            ticks_top + LANE / 2.0 + 4.0
        );
        for t in &c.ticks {
            let xx = x(t.time.0);
            let colour = if t.kind == "exit" { "#888" } else { "#333" };
            put!(
                s,
                r#"<line class="tick {}" x1="{xx:.2}" y1="{:.1}" x2="{xx:.2}" y2="{:.1}" stroke="{colour}"><title>{}</title></line>"#,
                esc(&t.kind),
                ticks_top + 5.0,
                ticks_top + LANE - 5.0,
                esc(&t.label)
            );
        }
    }
    for (i, p) in c.panels.iter().enumerate() {
        let top = panels_top + (PANEL + 12.0) * i as f64;
        let bottom = top + PANEL;
        let max = p
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|&(_, v)| v))
            .fold(0.0f64, f64::max);
        let unit = p.lines.first().map_or("", |l| l.unit);
        put!(
            s,
            r##"<g class="panel" data-title="{}" data-max="{max}"><rect x="{LEFT}" y="{top:.1}" width="{pw:.1}" height="{PANEL}" fill="#fafafa" stroke="#ddd"/><text class="panel-label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text class="panel-max" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            esc(p.title),
            LEFT - 8.0,
            top + 14.0,
            esc(p.title),
            LEFT - 8.0,
            top + 28.0,
            if max > 0.0 {
                format!("max {}", fmt_value(max, unit))
            } else {
                "no samples".into()
            }
        );
        if p.lines.len() > 1 {
            for (j, l) in p.lines.iter().enumerate() {
                put!(
                    s,
                    r#"<text class="series-label" x="{:.1}" y="{:.1}" text-anchor="end" style="fill:{}">{}</text>"#,
                    WIDTH - RIGHT - 6.0 - 48.0 * (p.lines.len() - 1 - j) as f64,
                    top + 13.0,
                    LINE_COLOURS[j % LINE_COLOURS.len()],
                    esc(l.name)
                );
            }
        }
        for (j, l) in p.lines.iter().enumerate() {
            let pts: Vec<String> = l
                .points
                .iter()
                .filter(|&&(t, _)| t >= t0 && t <= t1)
                .map(|&(t, v)| {
                    let y = if max > 0.0 {
                        bottom - v / max * (PANEL - 4.0)
                    } else {
                        bottom
                    };
                    format!("{:.1},{y:.1}", x(t))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            put!(
                s,
                r#"<polyline class="series" data-name="{}" fill="none" stroke="{}" stroke-width="1.5" points="{}"><title>{}</title></polyline>"#,
                esc(l.name),
                LINE_COLOURS[j % LINE_COLOURS.len()],
                pts.join(" "),
                esc(l.name)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

fn summary_rows(out: &mut String, s: &Summary) {
    let lat = |l: &Option<super::summary::Latency>| {
        l.as_ref().map_or_else(
            || "-".to_owned(),
            |l| format!("{:.0} / {:.0} / {:.0} / {:.0}", l.p50, l.p95, l.p99, l.max),
        )
    };
    put!(
        out,
        "<tr><td>{}{}</td><td>{}</td><td>{}</td><td class=\"{}\">{} ({:.0}%)</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>${:.4}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{} / {}</td></tr>",
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
        lat(&s.llm_latency_ms),
        lat(&s.tool_latency_ms),
        opt(s.resources.avg_process_cpu_percent, 1),
        opt(s.resources.max_process_cpu_percent, 1),
        bytes(s.resources.avg_process_rss_bytes),
        bytes(s.resources.max_process_rss_bytes),
    );
}

/// Writes the page.
pub fn write_html(r: &Report, charts: &[SessionChart], out: &mut dyn Write) -> io::Result<()> {
    let o = &r.overall;
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
            esc(serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
                .as_str()),
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
    h.push_str("</body></html>\n");
    out.write_all(h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(colour("gpt-4"), colour("gpt-4"));
    }
}
