//! OpenClaw file logs (`openclaw-*.log`, one JSON object a line): `analyze::source::openclaw_log::read`.
//!
//! Invariants: no panic; line counts add up; bad lines carry their line number and a reason.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::analyze::source::openclaw_log;

fuzz_target!(|data: &[u8]| {
    match openclaw_log::read(Path::new("openclaw-fuzz.log"), data) {
        Ok(parsed) => trace_claw_fuzz::analyze::check_counts(data, &parsed),
        Err(e) => panic!("reading from memory cannot fail: {e}"),
    }
});
