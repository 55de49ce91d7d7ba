//! `analyze`: reads a trace directory (plus OpenClaw's logs and state, in place) and prints
//! per-session summaries, the action timeline with each action's resource cost, and the full
//! timeline.
//!
//! Two parallel passes (rayon, files and 8 MiB chunks): first everything but resource samples
//! (every action is kept in memory, then merged across sources; `docs/analyze-scale.md` says
//! what that costs on a busy gateway), then the resource samples, streamed into aggregates
//! sized by the actions and sessions, never by the samples.
//!
//! The folders follow the data, each depending only on the ones before it:
//! - [`source`]: finding and classifying the input files and reading each format (actions,
//!   notes, metric points, resource aggregates);
//! - [`merge`]: one action per call across sources, the sessions they form, resource values at
//!   the actions' times;
//! - [`summary`]: the result model, [`summary::report::Report`]: summaries, timelines and chart
//!   data;
//! - [`render`]: the report as tables, plain lines, JSON or an HTML page.
//!
//! [`pipeline`] runs the passes in that order; [`run`], here, is the command around it:
//! validate the flags, analyze, render in the chosen format and write the result out.

pub mod cost;
pub mod error;
pub mod heap;
pub mod merge;
pub mod options;
pub mod pipeline;
pub mod render;
pub mod source;
pub mod summary;

use std::io::Write;
use std::process::ExitCode;

use crate::cli::{AnalyzeArgs, AnalyzeFormat};
pub use error::AnalyzeError;
pub use options::Options;
pub use pipeline::analyze;
use render::{html, json, table, text};

/// Runs `analyze`: exit 0 when anything was analyzed, 1 when nothing could be.
pub fn run(args: &AnalyzeArgs) -> Result<ExitCode, AnalyzeError> {
    let opts = Options::from_args(args)?;
    heap::return_large_blocks();
    for dir in std::iter::once(Some(&opts.trace_dir))
        .chain([opts.openclaw_logs.as_ref(), opts.openclaw_state.as_ref()])
        .flatten()
    {
        if !dir.is_dir() {
            log::warn!("'{}' is not a directory; skipping it", dir.display());
        }
    }
    let report = analyze(&opts)?;
    for e in report.inputs.iter().filter_map(|f| f.error.as_ref()) {
        log::warn!("cannot read {e}");
    }
    if !report.analyzed_anything() {
        for f in &report.inputs {
            for b in &f.first_bad {
                log::warn!("{b}");
            }
        }
        log::error!(
            "nothing to analyze: no readable trace-claw or OpenClaw records under '{}' ({} file(s) looked at)",
            opts.trace_dir.display(),
            report.inputs.len()
        );
        return Ok(ExitCode::from(1));
    }
    let format = if args.no_table && args.format == AnalyzeFormat::Table {
        AnalyzeFormat::Text
    } else {
        args.format
    };
    let to_file = args
        .output
        .clone()
        .or_else(|| (format == AnalyzeFormat::Html).then(|| opts.trace_dir.join("report.html")));
    let color = to_file.is_none()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut buf = Vec::new();
    let written = match format {
        AnalyzeFormat::Json => json::write_json(&report, &mut buf),
        AnalyzeFormat::Table => table::write_tables(&report, color, &mut buf),
        AnalyzeFormat::Text => text::write_text(&report, &mut buf),
        AnalyzeFormat::Html => html::write_html(&report, &mut buf),
    };
    let place = to_file
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    let write_err = |source| AnalyzeError::Write {
        path: place.clone(),
        source,
    };
    written.map_err(write_err)?;
    match &to_file {
        Some(p) => {
            std::fs::write(p, &buf).map_err(write_err)?;
            log::info!("wrote {}", p.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(&buf).and_then(|()| out.flush()) {
                Ok(()) => {}
                // a closed pipe (`| head`) is not an error of the analysis
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(write_err(e)),
            }
        }
    }
    for f in report.inputs.iter().filter(|f| f.bad_lines > 0) {
        log::warn!("{}: {} bad line(s) skipped", f.path, f.bad_lines);
    }
    Ok(ExitCode::SUCCESS)
}
