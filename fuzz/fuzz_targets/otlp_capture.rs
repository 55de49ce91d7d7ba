//! OTLP capture lines (`openclaw-otlp-*.jsonl`, one OTLP/JSON request a line):
//! `analyze::source::otlp::read`.
//!
//! Invariants: no panic; line counts add up.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::analyze::source::otlp;

fuzz_target!(|data: &[u8]| {
    match otlp::read(Path::new("openclaw-otlp-fuzz.jsonl"), data) {
        Ok(parsed) => trace_claw_fuzz::analyze::check_counts(data, &parsed),
        Err(e) => panic!("reading from memory cannot fail: {e}"),
    }
});
