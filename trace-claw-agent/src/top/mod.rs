//! `trace-claw-agent top`: a live terminal view of the tracked process tree, its exec/exit
//! events and the LLM and tool calls that run in it, refreshed every `--interval`.
//!
//! It collects in-process, as `collect` does (the kernel programs when they load, else procfs),
//! follows OpenClaw's file log when a gateway is tracked (or with `--openclaw`), and shows the
//! actions written to the trace directory (`-o`, default `./trace_data`: where `log-event` and
//! the feed write). With `-o` it also writes the usual JSONL there.
//!
//! - `model`: the state on screen, updated from samples, events and actions.
//! - `view`: drawing it (ratatui).

mod model;
mod view;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use trace_claw_common::time::Timestamp;

use crate::action_watch::ActionWatch;
use crate::collect::{self, SampleBuffer, SystemCollector, SystemFamilies};
use crate::config::{Config, Mode};
use crate::export::Sinks;
use crate::openclaw_feed::LiveFeed;

pub use model::{Model, SortBy};

/// How often keys, the feed and the events files are looked at between ticks.
const POLL: Duration = Duration::from_millis(200);

/// The terminal is needed and missing.
#[derive(Debug, thiserror::Error)]
#[error("top draws a full-screen view and needs a terminal on stdout; use `collect` or `analyze` otherwise")]
pub struct NotATerminal;

/// What `top` runs with, besides the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TopOptions {
    /// Write the JSONL files to the output directory too.
    pub write_files: bool,
    /// Finished actions kept on screen.
    pub actions: usize,
}

/// Runs the view until `q`.
pub fn run(config: &Config, options: TopOptions) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        return Err(NotATerminal.into());
    }
    let mut config = config.clone();
    // A view: no receiver, no pull endpoint, no export; files only when asked.
    config.receiver.enabled = false;
    config.prometheus.listen = None;
    config.mode = Mode::Local;
    config.local.enabled = options.write_files;
    let c = &config.collector;
    let mut system = SystemCollector::new(SystemFamilies {
        cpu: c.cpu,
        memory: c.memory,
        network: c.network,
    })
    .map_err(collect::CollectError::System)?;
    let mut process = collect::process_source(&config, system.total_memory_bytes())?;
    let mut sinks = options
        .write_files
        .then(|| Sinks::from_config(&config))
        .transpose()?;
    let mut feed = LiveFeed::from_config(&config)?;
    let mut watch = ActionWatch::new(&config.output_dir);
    let mut model = Model::new(process.source(), options.actions);
    let mut chrome = view::Chrome {
        colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ..view::Chrome::default()
    };

    // Log lines would be drawn over the view: what start-up had to say is on the screen before
    // the view takes it; from here on only the view speaks.
    let level = log::max_level();
    log::set_max_level(log::LevelFilter::Off);
    let mut terminal = ratatui::init();
    let interval = config.interval();
    let mut next_tick = Instant::now();
    let mut buf = SampleBuffer::default();
    let outcome = (|| -> anyhow::Result<()> {
        loop {
            if Instant::now() >= next_tick {
                next_tick += interval;
                buf.start_tick(Timestamp::now());
                system.collect(&mut buf);
                process.collect(&mut buf);
                let events = process.drain_events();
                if let Some(s) = sinks.as_mut() {
                    s.export(buf.samples(), &events);
                }
                if !model.paused {
                    model.tick(buf.timestamp(), buf.samples());
                    model.events(&events);
                }
            }
            if let Some(f) = feed.as_mut() {
                f.poll();
            }
            let actions = watch.poll();
            if !model.paused {
                model.actions(actions);
            }
            terminal.draw(|frame| view::draw(frame, &model, &chrome))?;
            let wait = next_tick
                .saturating_duration_since(Instant::now())
                .min(POLL);
            if event::poll(wait)? {
                if let Event::Key(key) = event::read()? {
                    if key.kind == KeyEventKind::Press && !on_key(key, &mut model, &mut chrome) {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    log::set_max_level(level);
    if let Some(s) = sinks.as_mut() {
        s.shutdown();
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// Applies one key; `false` to quit.
fn on_key(key: KeyEvent, model: &mut Model, chrome: &mut view::Chrome) -> bool {
    if let Some(filter) = chrome.editing_filter.as_mut() {
        match key.code {
            KeyCode::Enter => {
                model.filter = filter.to_lowercase();
                model.selected = 0;
                chrome.editing_filter = None;
            }
            KeyCode::Esc => chrome.editing_filter = None,
            KeyCode::Backspace => {
                filter.pop();
            }
            KeyCode::Char(c) => filter.push(c),
            _ => {}
        }
        return true;
    }
    if chrome.help {
        chrome.help = false;
        return true;
    }
    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => return false,
        _ if ctrl_c => return false,
        KeyCode::Char('j') | KeyCode::Down => {
            let last = model.rows().len().saturating_sub(1);
            model.selected = (model.selected + 1).min(last);
        }
        KeyCode::Char('k') | KeyCode::Up => model.selected = model.selected.saturating_sub(1),
        KeyCode::Char('s') => model.sort = model.sort.next(),
        KeyCode::Char('/') => chrome.editing_filter = Some(model.filter.clone()),
        KeyCode::Char('p') => model.paused = !model.paused,
        KeyCode::Char('t') => model.tree = !model.tree,
        KeyCode::Char('?') => chrome.help = true,
        _ => {}
    }
    true
}
