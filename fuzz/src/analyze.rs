//! Invariants of the analyzer's per-source readers on any input.

use trace_claw_agent::analyze::parsed::Parsed;

/// Line counts add up: every line is read once, and every reported bad line is a real line
/// number of the input.
pub fn check_counts(data: &[u8], parsed: &Parsed) {
    let s = &parsed.stats;
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let expected = newlines + u64::from(!data.is_empty() && !data.ends_with(b"\n"));
    assert_eq!(s.lines, expected, "lines read vs lines in the input");
    assert!(
        s.records + s.bad <= s.lines,
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
