//! `trace-claw-agent top`: a live terminal view of the tracked process tree, its exec/exit
//! events and the LLM and tool calls that run in it, refreshed every `--interval`.
//!
//! It attaches to a running agent's socket (`--connect PATH`, or `socket.path` when it exists:
//! see docs/agent-socket.md) and shows that agent's ticks and the actions in its trace
//! directory. Without an agent it collects in-process, as `collect` does (the kernel programs
//! when they load, else procfs), follows OpenClaw's file log when a gateway is tracked (or with
//! `--openclaw`), and shows the actions written to the trace directory (`-o`, default
//! `./trace_data`: where `log-event` and the feed write). With `-o` it also writes the usual
//! JSONL there.
//!
//! - `model`: the state on screen, updated from samples, events and actions.
//! - `source`: where the ticks come from (in-process or the agent's socket).
//! - `view`: drawing it (ratatui).

mod model;
mod source;
mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::action_watch::ActionWatch;
use crate::agent_socket::{AttachError, Attached};
use crate::config::Config;

pub use model::{Model, SortBy};
use source::Source;

/// The terminal is needed and missing.
#[derive(Debug, thiserror::Error)]
#[error("top draws a full-screen view and needs a terminal on stdout; use `collect` or `analyze` otherwise")]
pub struct NotATerminal;

/// What `top` runs with, besides the configuration.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// Write the JSONL files to the output directory too.
    pub write_files: bool,
    /// Finished actions kept on screen.
    pub actions: usize,
    /// Attach to this socket, and fail if no agent serves it.
    pub connect: Option<PathBuf>,
}

/// Runs the view until `q`.
pub fn run(config: &Config, options: TopOptions) -> anyhow::Result<ExitCode> {
    // The agent first, so `--connect` to a wrong one says so even without a terminal.
    let (mut source, socket) = match &options.connect {
        Some(path) => (Source::Attached(Attached::connect(path)?), path.clone()),
        None => (
            attach_if_served(&config.socket.path)?.map_or_else(
                || Source::local(config, options.write_files),
                |a| Ok(Source::Attached(a)),
            )?,
            config.socket.path.clone(),
        ),
    };
    if !std::io::stdout().is_terminal() {
        return Err(NotATerminal.into());
    }
    let mut watch = ActionWatch::new(&source.actions_dir(config));
    let mut model = Model::new(source.describe(&socket), options.actions);
    let mut chrome = view::Chrome {
        colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ..view::Chrome::default()
    };

    // Log lines would be drawn over the view: what start-up had to say is on the screen before
    // the view takes it; from here on only the view speaks.
    let level = log::max_level();
    log::set_max_level(log::LevelFilter::Off);
    let mut terminal = ratatui::init();
    let outcome = (|| -> anyhow::Result<()> {
        loop {
            let paused = model.paused;
            source.poll(|at, samples, events| {
                if !paused {
                    model.tick(at, samples);
                    model.events(events);
                }
            })?;
            let actions = watch.poll();
            if !model.paused {
                model.actions(actions);
            }
            terminal.draw(|frame| view::draw(frame, &model, &chrome))?;
            if event::poll(source.wait())? {
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
    source.finish();
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// The agent serving `path`, when its socket exists and answers; `None` (collect here) when
/// there is no socket or nobody answers on it. Another protocol version is an error.
fn attach_if_served(path: &Path) -> Result<Option<Attached>, AttachError> {
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    match Attached::connect(path) {
        Ok(a) => Ok(Some(a)),
        Err(e @ (AttachError::Version { .. } | AttachError::Hello { .. })) => Err(e),
        Err(e) => {
            log::info!("{e}; collecting here instead");
            Ok(None)
        }
    }
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
