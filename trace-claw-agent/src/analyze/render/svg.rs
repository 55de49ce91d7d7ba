//! The SVG timeline of one session: one lane per action kind (LLM bars coloured by model, tool
//! bars by tool, errors outlined red, a `<title>` tooltip with tokens, cost, duration and
//! resource cost), exec/exit ticks, and under it on the same time axis the resource panels.
//!
//! One piece: every element is placed by the same time-to-x mapping and lane heights, computed
//! once at the top of [`session_svg`].

use std::fmt::Write as _;

use trace_claw_common::time::Timestamp;

use super::format::{bytes, opt};
use super::markup::{colour, esc, put};
use crate::analyze::merge::sessions::SESSION_SLACK_NS;
use crate::analyze::summary::charts::SessionChart;
use crate::analyze::summary::timeline::ActionRow;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 160.0;
const RIGHT: f64 = 20.0;
const LANE: f64 = 26.0;
const PANEL: f64 = 64.0;
const LINE_COLOURS: [&str; 2] = ["#1f77b4", "#d62728"];

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
    let pad = ((t1 - t0) / 50).max(SESSION_SLACK_NS);
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
