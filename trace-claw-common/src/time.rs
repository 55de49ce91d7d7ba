//! Timestamps: Unix nanoseconds inside, RFC 3339 UTC with microseconds on disk.

use core::fmt;
use std::cell::RefCell;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A point in time as Unix nanoseconds (UTC).
///
/// Serialized as `2026-11-24T10:00:00.123456Z`; deserialized from any RFC 3339 string (any
/// offset) or from a number of Unix seconds, milliseconds or nanoseconds (told apart by size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time, truncated to the microseconds the JSONL files keep, so a
    /// value written and read back compares equal.
    pub fn now() -> Self {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        Self(nanos - nanos % 1000)
    }

    /// Builds a timestamp from Unix milliseconds.
    pub fn from_unix_ms(ms: f64) -> Self {
        Self((ms * 1e6) as i64)
    }

    /// Unix nanoseconds.
    pub fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Seconds since the Unix epoch, with fraction.
    pub fn unix_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Parses an RFC 3339 / ISO 8601 timestamp with offset (`Z` or `+hh:mm`).
    ///
    /// The common shape `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)` is parsed by hand (the
    /// analyzer reads millions of them); anything else goes to chrono, which also has the last
    /// word on everything the fast path is not sure of.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        fast_rfc3339(s.as_bytes()).or_else(|| {
            let dt = DateTime::parse_from_rfc3339(s.trim()).ok()?;
            dt.timestamp_nanos_opt().map(Self)
        })
    }

    /// Interprets a bare number as Unix seconds, milliseconds, microseconds or nanoseconds,
    /// choosing by magnitude (anything after 1973 in the chosen unit).
    pub fn from_unix_number(n: f64) -> Option<Self> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let nanos = if n < 1e11 {
            n * 1e9
        } else if n < 1e14 {
            n * 1e6
        } else if n < 1e17 {
            n * 1e3
        } else {
            n
        };
        (nanos < i64::MAX as f64).then_some(Self(nanos as i64))
    }

    /// The UTC calendar date, `YYYY-MM-DD`, used to name daily files.
    pub fn utc_date(self) -> String {
        self.to_datetime().format("%Y-%m-%d").to_string()
    }

    /// The UTC day as days since 1970-01-01 (cheap to compare; [`Self::utc_date`] names it).
    pub fn utc_day(self) -> i64 {
        const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;
        self.0.div_euclid(NANOS_PER_DAY)
    }

    fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }
}

/// The value of a run of ASCII digits.
fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)` without chrono; `None` for anything it does not
/// recognise, which the caller hands to chrono.
fn fast_rfc3339(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second (`:60`) is left to chrono.
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let v = h * 3600 + m * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(Timestamp(
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
    ))
}

/// Days in `month` (1-12) of proleptic Gregorian `year`.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The agent writes hundreds of samples per tick with one timestamp: each thread keeps
        // the last text it formatted, so a run of equal timestamps is formatted once.
        thread_local! {
            static LAST: RefCell<(i64, String)> = const { RefCell::new((0, String::new())) };
        }
        LAST.with_borrow_mut(|(at, text)| {
            if *at != self.0 || text.is_empty() {
                *text = self
                    .to_datetime()
                    .to_rfc3339_opts(SecondsFormat::Micros, true);
                *at = self.0;
            }
            f.write_str(text)
        })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or a Unix time number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .ok_or_else(|| E::custom(format!("invalid timestamp '{v}'")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_unix_number(v)
                    .ok_or_else(|| E::custom(format!("invalid Unix time {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_microseconds() {
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:00.123456Z").expect("valid");
        assert_eq!(t.to_string(), "2026-11-24T10:00:00.123456Z");
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(json, "\"2026-11-24T10:00:00.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parses"), t);
    }

    #[test]
    fn accepts_offsets_and_unix_numbers() {
        let a = Timestamp::parse_rfc3339("2026-11-24T15:42:58.692+00:00").expect("valid");
        let b = Timestamp::parse_rfc3339("2026-11-24T16:42:58.692+01:00").expect("valid");
        assert_eq!(a, b);
        let ms = Timestamp::from_unix_number(1_795_535_334_389.0).expect("ms");
        let s = Timestamp::from_unix_number(1_795_535_334.389).expect("s");
        assert!((ms.0 - s.0).abs() < 1_000, "{ms:?} vs {s:?}");
        assert_eq!(a.utc_date(), "2026-11-24");
        assert_eq!(a.utc_day(), 20_781); // 2026-11-24 is day 20,781 of the Unix epoch
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for s in [
            "2026-11-24T10:00:00.123456Z",
            "2026-11-24T15:42:58.692+00:00",
            "2026-02-28T23:59:59-05:30",
            "2024-02-29T00:00:00.5Z",
            "1999-12-31T23:59:59.999999999Z",
            "2026-11-24t10:00:00z",
            "2026-11-24 10:00:20.5+01:00",
            "2026-11-24T10:00:00.1234567891Z",
            "2026-02-31T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-11-24T23:59:60Z",
            "2026-11-24T10:00:60Z",
            "2026-11-24T10:00:00+24:00",
            "2026-11-24T10:00:00+23:60",
            "2026-11-24T10:00:00+99:99",
        ] {
            let chrono = DateTime::parse_from_rfc3339(s)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
                .map(Timestamp);
            if let Some(fast) = fast_rfc3339(s.as_bytes()) {
                assert_eq!(Some(fast), chrono, "{s}");
            }
            assert_eq!(Timestamp::parse_rfc3339(s), chrono, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert!(Timestamp::from_unix_number(f64::NAN).is_none());
        assert!(Timestamp::from_unix_number(-1.0).is_none());
    }
}
