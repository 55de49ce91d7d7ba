//! Drawing the [`Model`]: header, sparklines of the tree, the process table, the last actions,
//! the exec/exit strip and a key line; panes are dropped, least useful first, when the terminal
//! is small. Colour only when asked for (a TTY without `NO_COLOR`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;
use trace_claw_common::time::Timestamp;

use super::model::{Model, SortBy};

/// How the view looks and what is open on top of it.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Use colours.
    pub colour: bool,
    /// The help overlay is open.
    pub help: bool,
    /// The filter being typed (after `/`), if any.
    pub editing_filter: Option<String>,
}

/// Bytes as B, K, M or G with one decimal.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = v.max(0.0);
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn hms(t: Timestamp) -> String {
    let secs = t.0.div_euclid(1_000_000_000);
    let ms = t.0.rem_euclid(1_000_000_000) / 1_000_000;
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, model: &Model, chrome: &Chrome) {
    let area = frame.area();
    let accent = if chrome.colour {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default()
    };
    let tall = area.height >= 24;
    let roomy = area.height >= 18;
    let mut constraints = vec![Constraint::Length(1)];
    if tall {
        constraints.push(Constraint::Length(3));
    }
    constraints.push(Constraint::Min(3));
    if roomy {
        let (actions, strip) = if area.height >= 36 { (10, 8) } else { (6, 4) };
        constraints.push(Constraint::Length(actions));
        constraints.push(Constraint::Length(strip));
    }
    constraints.push(Constraint::Length(1));
    let panes = Layout::vertical(constraints).split(area);
    let mut i = 0;
    header(frame, panes[i], model, accent);
    i += 1;
    if tall {
        sparklines(frame, panes[i], model, chrome.colour);
        i += 1;
    }
    processes(frame, panes[i], model, chrome.colour);
    i += 1;
    if roomy {
        actions(frame, panes[i], model);
        strip(frame, panes[i + 1], model);
        i += 2;
    }
    footer(frame, panes[i], model, chrome);
    if chrome.help {
        help(frame, area);
    }
}

fn header(frame: &mut Frame<'_>, area: Rect, model: &Model, accent: Style) {
    let (used, total) = model.host_mem;
    let mut spans = vec![
        Span::styled("trace-claw top", accent.add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  host CPU {:.0}%  mem {}/{}  source {}  dropped {:.0}  procs {}",
            model.host_cpu,
            bytes(used),
            bytes(total),
            model.source,
            model.dropped,
            model.procs.len()
        )),
    ];
    if model.paused {
        spans.push(Span::styled("  [paused]", accent));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn sparklines(frame: &mut Frame<'_>, area: Rect, model: &Model, colour: bool) {
    let halves =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    let width = usize::from(halves[0].width.saturating_sub(2));
    let tail = |f: fn(&(Timestamp, f64, f64)) -> f64| -> Vec<u64> {
        let n = model.history.len();
        model
            .history
            .iter()
            .skip(n.saturating_sub(width))
            .map(|h| f(h).max(0.0) as u64)
            .collect()
    };
    let cpu = tail(|h| h.1 * 10.0);
    let rss = tail(|h| h.2 / 1024.0);
    let last = model.history.back();
    let growth = model.rss_growth_per_hour().map_or(String::new(), |g| {
        format!(" {}{}/h", if g < 0.0 { "-" } else { "+" }, bytes(g.abs()))
    });
    let style = if colour {
        Style::default().fg(Color::Green)
    } else {
        Style::default()
    };
    let cpu_title = format!(" tree CPU {:.1}% ", last.map_or(0.0, |h| h.1));
    let rss_title = format!(" tree RSS {}{growth} ", bytes(last.map_or(0.0, |h| h.2)));
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(cpu_title))
            .data(&cpu)
            .style(style),
        halves[0],
    );
    frame.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(rss_title))
            .data(&rss)
            .style(style),
        halves[1],
    );
}

fn processes(frame: &mut Frame<'_>, area: Rect, model: &Model, colour: bool) {
    let marked = |s: SortBy, text: &'static str| {
        if model.sort == s {
            format!("{text}▼")
        } else {
            text.to_owned()
        }
    };
    let head = Row::new(vec![
        marked(SortBy::Pid, "PID"),
        "PPID".to_owned(),
        marked(SortBy::Name, "NAME"),
        marked(SortBy::Cpu, "CPU%"),
        marked(SortBy::Rss, "RSS"),
        marked(SortBy::Io, "READ/s"),
        "WRITE/s".to_owned(),
        marked(SortBy::Net, "SENT/s"),
        "RECV/s".to_owned(),
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row<'_>> = model
        .rows()
        .into_iter()
        .map(|(depth, r)| {
            let indent = if depth == 0 {
                String::new()
            } else {
                format!("{}└ ", "  ".repeat(depth - 1))
            };
            Row::new(vec![
                r.pid.to_string(),
                r.ppid.to_string(),
                format!("{indent}{}", r.name),
                format!("{:.1}", r.cpu_pct),
                bytes(r.rss),
                bytes(r.rates[0]),
                bytes(r.rates[1]),
                bytes(r.rates[2]),
                bytes(r.rates[3]),
            ])
        })
        .collect();
    let count = rows.len();
    let widths = [
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Min(12),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    let selected = if colour {
        Style::default().bg(Color::Blue)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    };
    let title = format!(
        " processes ({count}) sort {}{}{} ",
        model.sort.label(),
        if model.tree { ", tree" } else { "" },
        if model.filter.is_empty() {
            String::new()
        } else {
            format!(", filter '{}'", model.filter)
        }
    );
    let table = Table::new(rows, widths)
        .header(head)
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(selected);
    let mut state =
        TableState::default().with_selected((count > 0).then(|| model.selected.min(count - 1)));
    frame.render_stateful_widget(table, area, &mut state);
}

fn actions(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let visible = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line<'_>> = model
        .actions
        .iter()
        .rev()
        .take(visible)
        .map(|(a, cpu)| {
            let what = a.model.as_deref().or(a.tool_name.as_deref()).unwrap_or("-");
            let tokens = a.tokens_total();
            let cpu = cpu.map_or("-".to_owned(), |c| format!("~{c:.3}s"));
            Line::raw(format!(
                "{} {:<5} {:<18} {:<12} {:>8.0}ms {:>7} tok {:<5} CPU {cpu}",
                hms(a.timestamp),
                a.event_type,
                what,
                a.session_id.as_deref().unwrap_or("-"),
                a.duration_ms,
                tokens,
                a.status,
            ))
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" last actions (tree CPU over each, ~ interpolated between ticks) "),
        ),
        area,
    );
}

fn strip(frame: &mut Frame<'_>, area: Rect, model: &Model) {
    let visible = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line<'_>> = model
        .strip
        .iter()
        .rev()
        .take(visible)
        .map(|e| Line::raw(format!("{} {}", hms(e.at), e.text)))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" exec / exit "),
        ),
        area,
    );
}

fn footer(frame: &mut Frame<'_>, area: Rect, model: &Model, chrome: &Chrome) {
    let text = match &chrome.editing_filter {
        Some(f) => format!("filter: {f}▏ (Enter apply, Esc cancel)"),
        None => format!(
            "q quit  j/k move  s sort ({})  / filter  p {}  t tree  ? help",
            model.sort.label(),
            if model.paused { "resume" } else { "pause" }
        ),
    };
    frame.render_widget(Paragraph::new(text), area);
}

fn help(frame: &mut Frame<'_>, area: Rect) {
    let text = vec![
        Line::raw("q        quit"),
        Line::raw("j k ↑ ↓  move the selection"),
        Line::raw("s        cycle the sort: CPU, RSS, disk, net, pid, name"),
        Line::raw("/        filter processes by name (Enter, Esc)"),
        Line::raw("p        pause / resume updates"),
        Line::raw("t        tree / flat list"),
        Line::raw("?        this help (any key closes)"),
    ];
    let w = 60.min(area.width);
    let h = 9.min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" help ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use super::*;

    #[test]
    fn fits_80x24_and_degrades_below_it() {
        for (w, h) in [(80, 24), (60, 12), (20, 5)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
            let model = Model::new("procfs".to_owned(), 5);
            terminal
                .draw(|f| draw(f, &model, &Chrome::default()))
                .expect("draws");
            let screen: String = terminal
                .backend()
                .buffer()
                .content()
                .iter()
                .map(|c| c.symbol())
                .collect();
            assert!(screen.contains("trace-claw"), "{w}x{h}");
        }
        assert_eq!(bytes(1536.0), "1.5K");
        assert_eq!(hms(Timestamp(3_723_004_000_000)), "01:02:03.004");
    }
}
