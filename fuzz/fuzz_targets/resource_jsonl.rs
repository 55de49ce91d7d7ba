//! Resource JSONL (`resources-*.jsonl`): every line parsed as a `MetricSample`, the way the
//! analyzer reads it; what parses is written through `DailyJsonl` and must read back.
//!
//! Invariants: no panic on any line; an accepted sample survives write + read (timestamp to
//! the microsecond, value to the last bits, name, unit and labels exactly); the written file
//! ends on a complete line.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trace_claw_agent::daily_jsonl::{daily_path, DailyJsonl, RESOURCES_PREFIX};
use trace_claw_common::sample::MetricSample;
use trace_claw_fuzz::{as_written, close, lines, reread, scratch_dir};

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch_dir("resources"))
}

fuzz_target!(|data: &[u8]| {
    let mut accepted = Vec::new();
    for line in lines(data) {
        let Ok(sample) = serde_json::from_str::<MetricSample>(&line) else {
            continue;
        };
        let (_, back) = reread(&sample);
        assert_eq!(back.timestamp, as_written(sample.timestamp), "{line}");
        assert!(
            close(back.value, sample.value),
            "{} vs {}",
            back.value,
            sample.value
        );
        assert_eq!(
            (&back.name, &back.unit, &back.labels),
            (&sample.name, &sample.unit, &sample.labels)
        );
        let _ = sample.timestamp.utc_date();
        accepted.push(sample);
    }
    if accepted.is_empty() {
        return;
    }
    let Ok(mut w) = DailyJsonl::new(dir(), RESOURCES_PREFIX) else {
        return;
    };
    for s in &accepted {
        if let Err(e) = w.append(s.timestamp, s) {
            panic!("cannot append an accepted sample: {e}");
        }
    }
    if let Err(e) = w.flush() {
        panic!("cannot flush: {e}");
    }
    let mut paths: Vec<_> = accepted
        .iter()
        .map(|s| daily_path(dir(), RESOURCES_PREFIX, s.timestamp))
        .collect();
    paths.dedup();
    let mut read = 0;
    for path in paths {
        let Ok(body) = std::fs::read_to_string(&path) else {
            continue;
        };
        assert!(body.ends_with('\n'), "file does not end on a complete line");
        for l in body.lines() {
            if let Err(e) = serde_json::from_str::<MetricSample>(l) {
                panic!("written line does not read back: {e}: {l}");
            }
            read += 1;
        }
        let _ = std::fs::remove_file(&path);
    }
    assert_eq!(read, accepted.len(), "every accepted sample written once");
});
