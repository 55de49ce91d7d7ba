//! How `analyze` treats whole files: daily files outside `--since`/`--until` are left unread
//! (counted by the bytes it says it reads), and a last line without its newline is a note, not
//! a bad line.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::{agent, run_ok};

fn analyze(dir: &Path, extra: &[&str]) -> Output {
    run_ok(
        agent()
            .args(["-v", "analyze", "--format", "json", "--trace-dir"])
            .arg(dir)
            .args(extra)
            .env_remove("RUST_LOG"),
    )
}

/// The files and bytes `analyze` says it reads, from its debug line.
fn read_files_and_bytes(out: &Output) -> (u64, u64) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("reading ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no 'reading' line in {stderr}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// A month of daily events and resources files, 2026-11-01 to 2026-11-30: an LLM call per
/// minute and a CPU sample per 10 s, all in session `month`.
fn month(dir: &Path) -> u64 {
    let mut day_bytes = 0;
    for day in 1..=30 {
        let mut events = String::new();
        let mut samples = String::new();
        for minute in 0..24 * 60 {
            let at = format!("2026-11-{day:02}T{:02}:{:02}", minute / 60, minute % 60);
            events += &format!(
                r#"{{"timestamp":"{at}:00Z","event_type":"llm","session_id":"month","duration_ms":1500,"tokens_input":10}}"#
            );
            events.push('\n');
            for s in (0..60).step_by(10) {
                samples += &format!(
                    r#"{{"timestamp":"{at}:{s:02}Z","name":"system.cpu.usage_percent","value":25,"labels":{{"cpu":"total"}}}}"#
                );
                samples.push('\n');
            }
        }
        if day == 10 {
            day_bytes = (events.len() + samples.len()) as u64;
        }
        std::fs::write(dir.join(format!("events-2026-11-{day:02}.jsonl")), events)
            .expect("write events");
        std::fs::write(
            dir.join(format!("resources-2026-11-{day:02}.jsonl")),
            samples,
        )
        .expect("write samples");
    }
    day_bytes
}

#[test]
fn a_day_of_a_month_reads_only_that_days_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let day_bytes = month(dir.path());

    let all = analyze(dir.path(), &[]);
    let (files, bytes) = read_files_and_bytes(&all);
    assert_eq!(files, 60);
    assert!(bytes > 29 * day_bytes, "{bytes} bytes for the month");

    let day = analyze(
        dir.path(),
        &[
            "--since",
            "2026-11-10T00:00:00Z",
            "--until",
            "2026-11-11T00:00:00Z",
        ],
    );
    assert_eq!(read_files_and_bytes(&day), (2, day_bytes));
    let r: Value = serde_json::from_slice(&day.stdout).expect("json");
    assert_eq!(r["overall"]["llm_calls"], 24 * 60);
    assert_eq!(r["resource_samples"], 24 * 60 * 6);
    let inputs = r["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 2, "{inputs:?}");
}
