//! trace-claw's own action and process-event files, read chunk by chunk (stateless lines).

use std::sync::Arc;

use trace_claw_common::event::{ActionEvent, ProcessEvent};

use super::action::{Action, Source};
use super::lines::{self, json_reason, Chunk};
use super::parsed::Parsed;
use crate::analyze::error::AnalyzeError;

/// Reads `events-*.jsonl` lines ([`ActionEvent`]).
pub fn read_events(chunk: &Chunk) -> Result<Parsed, AnalyzeError> {
    let file: Arc<str> = chunk.path.display().to_string().into();
    let mut out = Parsed::default();
    let read = lines::for_each_line_in_chunk(chunk, |no, line| {
        if lines::is_blank(line) {
            return;
        }
        match serde_json::from_slice::<ActionEvent>(line) {
            Ok(e) if e.duration_ms < 0.0 => out.stats.bad(no, "negative duration_ms"),
            Ok(e) => {
                out.stats.records += 1;
                out.actions
                    .push(Action::new(e, Source::EventLog, &file, no));
            }
            Err(e) => out.stats.bad(no, json_reason(&e)),
        }
    })?;
    out.stats.read(read);
    Ok(out)
}

/// Reads `process-events-*.jsonl` lines ([`ProcessEvent`]).
pub fn read_process_events(chunk: &Chunk) -> Result<Parsed, AnalyzeError> {
    let mut out = Parsed::default();
    let read = lines::for_each_line_in_chunk(chunk, |no, line| {
        if lines::is_blank(line) {
            return;
        }
        match serde_json::from_slice::<ProcessEvent>(line) {
            Ok(e) => {
                out.stats.records += 1;
                out.process_events.push(e);
            }
            Err(e) => out.stats.bad(no, json_reason(&e)),
        }
    })?;
    out.stats.read(read);
    Ok(out)
}
