//! [`EventLogger`]: the Rust API (and `log-event` backend) for recording LLM and tool actions to
//! `events-YYYY-MM-DD.jsonl`. Each call appends one complete line and flushes, so several
//! processes may log into the same directory.

use std::path::Path;

use trace_claw_common::event::{ActionEvent, EVENT_LLM, EVENT_TOOL};
use trace_claw_common::time::Timestamp;

use crate::daily_jsonl::{DailyJsonl, EVENTS_PREFIX};
use crate::export::ExportError;

/// Appends [`ActionEvent`]s to daily files in one directory.
pub struct EventLogger {
    out: DailyJsonl,
}

impl EventLogger {
    /// Logs into `dir` (created when missing).
    pub fn new(dir: &Path) -> Result<Self, ExportError> {
        Ok(Self {
            out: DailyJsonl::new(dir, EVENTS_PREFIX)?,
        })
    }

    /// Records any action and writes it out; an action without a `pid` gets the caller's.
    pub fn log(&mut self, event: &ActionEvent) -> Result<(), ExportError> {
        if event.pid.is_none() {
            let mut own = event.clone();
            own.pid = Some(std::process::id());
            return self.append(&own);
        }
        self.append(event)
    }

    /// Writes an action out as it is (without a `pid` it is charged to the gateway's tree).
    pub fn append(&mut self, event: &ActionEvent) -> Result<(), ExportError> {
        self.out.append(event.timestamp, event)?;
        self.out.flush()
    }

    /// Records an LLM call that just finished after `duration_ms`.
    pub fn log_llm_call(
        &mut self,
        model: &str,
        provider: &str,
        tokens_input: u64,
        tokens_output: u64,
        duration_ms: f64,
        cost_usd: f64,
    ) -> Result<ActionEvent, ExportError> {
        let mut e = ActionEvent::new(EVENT_LLM, started_ago(duration_ms));
        e.pid = Some(std::process::id());
        e.model = Some(model.to_owned());
        e.provider = Some(provider.to_owned());
        e.tokens_input = tokens_input;
        e.tokens_output = tokens_output;
        e.duration_ms = duration_ms;
        e.cost_usd = cost_usd;
        self.log(&e)?;
        Ok(e)
    }

    /// Records a tool call that just finished after `duration_ms`.
    pub fn log_tool_call(
        &mut self,
        tool_name: &str,
        duration_ms: f64,
    ) -> Result<ActionEvent, ExportError> {
        let mut e = ActionEvent::new(EVENT_TOOL, started_ago(duration_ms));
        e.pid = Some(std::process::id());
        e.tool_name = Some(tool_name.to_owned());
        e.duration_ms = duration_ms;
        self.log(&e)?;
        Ok(e)
    }
}

/// The start of an action that ends now and lasted `duration_ms`.
pub fn started_ago(duration_ms: f64) -> Timestamp {
    let micros = (duration_ms.max(0.0) * 1e3) as i64;
    Timestamp(Timestamp::now().0 - micros * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_calls_read_back_as_action_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut logger = EventLogger::new(dir.path()).expect("open");
        let llm = logger
            .log_llm_call("gpt-4", "openai", 100, 50, 1200.0, 0.005)
            .expect("llm");
        logger.log_tool_call("web_search", 350.0).expect("tool");
        let path = dir
            .path()
            .join(format!("events-{}.jsonl", llm.timestamp.utc_date()));
        let text = std::fs::read_to_string(path).expect("file");
        let events: Vec<ActionEvent> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], llm);
        assert_eq!(events[1].tool_name.as_deref(), Some("web_search"));
        assert_eq!(events[1].pid, Some(std::process::id()));
    }
}
