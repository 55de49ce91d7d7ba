//! OpenClaw transcripts (`agents/*/sessions/*.jsonl`) and their `sessions.json` index:
//! `analyze::source::transcript::read` and `read_index`.
//!
//! Invariants: no panic; line counts of the JSONL reader add up (leniently: see
//! `check_counts_lenient`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::analyze::source::transcript;

fuzz_target!(|data: &[u8]| {
    match transcript::read(Path::new("session-fuzz.jsonl"), data) {
        Ok(parsed) => trace_claw_fuzz::analyze::check_counts_lenient(data, &parsed),
        Err(e) => panic!("reading from memory cannot fail: {e}"),
    }
    // The index is one JSON document; an error is fine, a panic is not.
    let _ = transcript::read_index(Path::new("sessions.json"), data);
});
