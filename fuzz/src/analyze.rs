//! Invariants of the analyzer's per-source readers on any input.

use trace_claw_agent::analyze::source::parsed::Parsed;

/// Line counts add up: every line is read once, no line is both a record and bad, and every
/// reported bad line is a real line number of the input.
pub fn check_counts(data: &[u8], parsed: &Parsed) {
    check(data, parsed, true);
}

/// [`check_counts`] without "no line is both a record and bad", for the transcript reader,
/// which counts a message line without a usable timestamp as both (reported in issue 8;
/// regression input `regressions/transcript/record_and_bad.jsonl`).
pub fn check_counts_lenient(data: &[u8], parsed: &Parsed) {
    check(data, parsed, false);
}

fn check(data: &[u8], parsed: &Parsed, exclusive: bool) {
    let s = &parsed.stats;
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let expected = newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
    assert_eq!(s.lines, expected, "lines read vs lines in the input");
    assert!(
        s.records.max(s.bad) <= s.lines,
        "more records or bad lines than lines"
    );
    assert!(
        !exclusive || s.records + s.bad <= s.lines,
        "{} records + {} bad > {} lines",
        s.records,
        s.bad,
        s.lines
    );
    for b in &s.first_bad {
        assert!(
            (1..=s.lines).contains(&b.line),
            "bad line {} outside 1..={}",
            b.line,
            s.lines
        );
        assert!(!b.reason.is_empty(), "bad line {} without a reason", b.line);
    }
}
