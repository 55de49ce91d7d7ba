//! OTLP/HTTP request bodies as the receiver gets them: the first byte picks the signal (bits
//! 0-1: 0 traces, 1 metrics, else logs), the encoding (bit 4: JSON, else protobuf) and gzip
//! (bit 5); the rest is the body.
//! `receive::decode::decompress` then `decode`.
//!
//! Invariants: no panic, decompression bounded by the limit; an accepted request is written as
//! a capture line that the analyzer reads back as one record with no bad line (what the
//! receiver stores, the analyzer can read) -- for requests holding at least one item.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::analyze::source::otlp;
use trace_claw_agent::receive::decode::{decode, decompress, CaptureLine, Encoding, Signal};
use trace_claw_common::time::Timestamp;

const LIMIT: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let signal = match selector & 0x03 {
        0 => Signal::Traces,
        1 => Signal::Metrics,
        _ => Signal::Logs,
    };
    let encoding = if selector & 0x10 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let gzip = (selector & 0x20 != 0).then_some("gzip");
    let body = match decompress(body, gzip, LIMIT) {
        Ok(b) => b,
        Err(_) => return,
    };
    assert!(body.len() <= LIMIT, "decompressed past the limit");
    let Ok(request) = decode(signal, encoding, &body) else {
        return;
    };
    assert_eq!(request.signal(), signal);
    // An empty request (`{}`, a zero-byte protobuf) is accepted and written as e.g.
    // `"resourceSpans":[]`, which the analyzer counts as a bad line: a known finding, kept as
    // the ignored test reliability::bad_input::receiver_capture_of_an_empty_request_*.
    if request.item_count() == 0 {
        return;
    }
    let line = CaptureLine {
        signal,
        received_at: Timestamp(1_795_535_334_389_000_000),
        request: &request,
    };
    let mut text = match serde_json::to_vec(&line) {
        Ok(t) => t,
        Err(e) => panic!("an accepted request does not serialize: {e}"),
    };
    assert!(!text.contains(&b'\n'), "capture line spans lines");
    text.push(b'\n');
    let parsed = match otlp::read(Path::new("openclaw-otlp-fuzz.jsonl"), text.as_slice()) {
        Ok(p) => p,
        Err(e) => panic!("reading from memory cannot fail: {e}"),
    };
    assert_eq!(
        (parsed.stats.records, parsed.stats.bad),
        (1, 0),
        "the analyzer rejects a capture line the receiver wrote: {:?}\n{}",
        parsed.stats.first_bad,
        String::from_utf8_lossy(&text[..text.len().min(2000)])
    );
});
