//! Follows the trace directory's `events-YYYY-MM-DD.jsonl` while collecting, so that each action
//! written there from now on (by the live OpenClaw feed, `log-event`, or an application's
//! `EventLogger`) reaches the sinks that export actions (the OTLP exporter's spans).

use std::path::Path;

use trace_claw_common::event::ActionEvent;

use crate::tail::{FileFamily, LogTail};

/// The events files of a trace directory (`daily_jsonl::EVENTS_PREFIX`, a dash, the date).
const EVENTS_FILES: FileFamily = FileFamily {
    prefix: "events-",
    suffix: ".jsonl",
};

/// Reads the actions appended to a trace directory's events files.
pub struct ActionWatch {
    tail: LogTail,
    bad_lines: u64,
}

impl ActionWatch {
    /// Watches `dir`, from what its newest events file holds now.
    pub fn new(dir: &Path) -> Self {
        Self {
            tail: LogTail::from_end(dir, EVENTS_FILES),
            bad_lines: 0,
        }
    }

    /// The actions written since the last call; a line that is not an action is counted and
    /// reported (the first one by name), never fatal.
    pub fn poll(&mut self) -> Vec<ActionEvent> {
        let mut actions = Vec::new();
        let bad_lines = &mut self.bad_lines;
        let mut skipped = 0;
        let read = self.tail.poll(
            |line| match serde_json::from_slice::<ActionEvent>(line.text) {
                Ok(a) => actions.push(a),
                Err(_) if line.text.iter().all(u8::is_ascii_whitespace) => {}
                Err(e) => {
                    if *bad_lines == 0 {
                        log::warn!(
                            "{}:{}: not an action ({e}); such lines are skipped",
                            line.path.display(),
                            line.number
                        );
                    }
                    *bad_lines += 1;
                }
            },
            |_| skipped += 1,
        );
        self.bad_lines += skipped;
        if let Err(e) = read {
            log::debug!("events files of {}: {e}", self.tail.dir().display());
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use trace_claw_common::event::EVENT_TOOL;
    use trace_claw_common::time::Timestamp;

    use super::*;
    use crate::daily_jsonl::EVENTS_PREFIX;
    use crate::event_log::EventLogger;

    #[test]
    fn hands_out_the_actions_logged_after_it_started_and_skips_bad_lines() {
        assert!(EVENTS_FILES.has(&format!("{EVENTS_PREFIX}-2026-12-04.jsonl")));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = EventLogger::new(dir.path()).expect("logger");
        let old = ActionEvent::new(EVENT_TOOL, Timestamp::now());
        log.append(&old).expect("append");
        let mut watch = ActionWatch::new(dir.path());
        assert!(
            watch.poll().is_empty(),
            "what was there before is not handed out"
        );
        let mut new = ActionEvent::new(EVENT_TOOL, Timestamp::now());
        new.tool_name = Some("exec".into());
        log.append(&new).expect("append");
        let path = dir
            .path()
            .join(format!("events-{}.jsonl", new.timestamp.utc_date()));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        std::io::Write::write_all(&mut f, b"{not json\n").expect("write");
        assert_eq!(watch.poll(), [new]);
        assert_eq!(watch.bad_lines, 1);
    }
}
