//! Daily files: the time range a file's name promises (`events-2026-11-24.jsonl`), so that
//! `--since`/`--until` skip whole files without opening them. A month of daily files analyzed
//! for one day reads that day's files.
//!
//! trace-claw's own files (`events-`, `resources-`, `process-events-`) are named by the UTC day
//! of each record's time, so that day is their range. OpenClaw names its file log by the
//! gateway's local date (UTC-12 to UTC+14) and a run logs its session on its first line, which
//! may be the evening before: such a log counts from a day before its date to half a day after.
//! The receiver names a capture by the day requests arrived, after the calls they describe: it
//! counts from a day before; the agent's tree-costs files from an hour before (a slot is written
//! at the tick after it closed). Any other file has no promised range and is always read.

use std::path::Path;

const DAY_NS: i64 = 86_400 * 1_000_000_000;
const HOUR_NS: i64 = 3_600 * 1_000_000_000;

/// The `[start, end)` Unix-nanosecond range the records of the file at `path` may have, when
/// its name promises one.
pub fn range(path: &Path) -> Option<(i64, i64)> {
    let name = path.file_name()?.to_str()?;
    let (stem, ext) = name.rsplit_once('.')?;
    let (prefix, date) = stem.split_at_checked(stem.len().checked_sub(11)?)?;
    let day = day_number(date.strip_prefix('-')?)?;
    let (before, after) = match (prefix, ext) {
        ("events" | "resources" | "process-events", "jsonl") => (0, 0),
        ("openclaw", "log") => (DAY_NS, 12 * HOUR_NS),
        ("openclaw-otlp", "jsonl") => (DAY_NS, 0),
        // Named by the tick that drained them; a slot may close up to one interval earlier.
        ("tree-costs", "jsonl") => (HOUR_NS, 0),
        _ => return None,
    };
    let start = day.checked_mul(DAY_NS)?;
    Some((start - before, start + DAY_NS + after))
}

/// Whether the file at `path` can hold nothing in `[since, until)`.
pub fn outside(path: &Path, since: i64, until: i64) -> bool {
    range(path).is_some_and(|(start, end)| end <= since || start >= until)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn day_number(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, m, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_claw_common::time::Timestamp;

    fn ns(rfc3339: &str) -> i64 {
        Timestamp::parse_rfc3339(rfc3339).expect("time").0
    }

    #[test]
    fn trace_claw_files_hold_their_utc_day() {
        let (a, b) = range(Path::new("/t/events-2026-11-24.jsonl")).expect("daily");
        assert_eq!(
            (a, b),
            (ns("2026-11-24T00:00:00Z"), ns("2026-11-25T00:00:00Z"))
        );
        let since = ns("2026-11-25T00:00:00Z");
        assert!(outside(
            Path::new("resources-2026-11-24.jsonl"),
            since,
            i64::MAX
        ));
        assert!(!outside(
            Path::new("resources-2026-11-25.jsonl"),
            since,
            i64::MAX
        ));
        assert!(outside(
            Path::new("resources-2026-11-26.jsonl"),
            i64::MIN,
            since
        ));
        assert_eq!(
            range(Path::new("process-events-1970-01-01.jsonl")),
            Some((0, DAY_NS))
        );
    }

    #[test]
    fn openclaw_logs_and_captures_reach_back_a_day() {
        let day = ns("2026-11-24T00:00:00Z");
        assert_eq!(
            range(Path::new("openclaw-2026-11-24.log")),
            Some((day - DAY_NS, day + DAY_NS + 12 * HOUR_NS))
        );
        assert_eq!(
            range(Path::new("openclaw-otlp-2026-11-24.jsonl")),
            Some((day - DAY_NS, day + DAY_NS))
        );
    }

    #[test]
    fn other_names_promise_nothing() {
        for name in [
            "sessions.json",
            "events-2026-13-01.jsonl",
            "events-2026-11-24.log",
            "mine-2026-11-24.jsonl",
            "8388168c-cf83-42e7-9f30-c88ae8bd3685.jsonl",
            "events-20261124.jsonl",
        ] {
            assert_eq!(range(Path::new(name)), None, "{name}");
            assert!(!outside(Path::new(name), 0, 1), "{name}");
        }
    }
}
