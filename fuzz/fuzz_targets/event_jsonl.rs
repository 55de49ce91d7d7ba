//! Event JSONL (`events-*.jsonl`, `process-events-*.jsonl`): every line parsed as an
//! `ActionEvent` and as a `ProcessEvent`; the whole input also as a timestamp.
//!
//! Invariants: no panic (including the derived values the analyzer computes: end time, token
//! total); an accepted record survives write + read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trace_claw_common::event::{ActionEvent, ProcessEvent};
use trace_claw_common::time::Timestamp;
use trace_claw_fuzz::{as_written, close, lines, reread};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = Timestamp::parse_rfc3339(s) {
            let back = Timestamp::parse_rfc3339(&t.to_string());
            assert_eq!(back, Some(as_written(t)), "{s}");
        }
    }
    for line in lines(data) {
        if let Ok(e) = serde_json::from_str::<ActionEvent>(&line) {
            let end = e.end();
            assert!(
                end >= e.timestamp,
                "end {end:?} before start {:?}",
                e.timestamp
            );
            let _ = (e.tokens_total(), e.is_error(), e.timestamp.utc_date());
            let (_, back) = reread(&e);
            assert_eq!(back.timestamp, as_written(e.timestamp));
            assert!(close(back.duration_ms, e.duration_ms) && close(back.cost_usd, e.cost_usd));
            assert_eq!(back.tokens_total(), e.tokens_total());
            assert_eq!(
                (
                    &back.event_type,
                    &back.session_id,
                    &back.status,
                    &back.error,
                    &back.tool_name
                ),
                (
                    &e.event_type,
                    &e.session_id,
                    &e.status,
                    &e.error,
                    &e.tool_name
                )
            );
        }
        if let Ok(p) = serde_json::from_str::<ProcessEvent>(&line) {
            let (_, back) = reread(&p);
            assert_eq!(back.timestamp, as_written(p.timestamp));
            assert_eq!(
                (back.kind, back.pid, back.totals),
                (p.kind, p.pid, p.totals)
            );
        }
    }
});
