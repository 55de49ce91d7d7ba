//! Cell text shared by the terminal tables, the plain lines and the HTML page: optional
//! numbers, byte sizes, `a / b` pairs, latency percentiles and file kinds. A missing value is
//! `-` everywhere.

use crate::analyze::source::classify::FileKind;
use crate::analyze::summary::session::Latency;
use crate::analyze::summary::timeline::ResourceCost;

/// `v` with `digits` decimals, `-` when absent.
pub fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// `1.5 MiB`-style sizes, `-` when absent.
pub fn bytes(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Two optional numbers as `a / b` (average / peak).
pub fn opt_pair(a: Option<f64>, b: Option<f64>, digits: usize) -> String {
    format!("{} / {}", opt(a, digits), opt(b, digits))
}

/// Two optional sizes as `a / b` (average / peak, read / write, sent / received).
pub fn bytes_pair(a: Option<f64>, b: Option<f64>) -> String {
    format!("{} / {}", bytes(a), bytes(b))
}

/// `text` of a value of cost `c`, marked `~` when `c` was interpolated between samples rather
/// than measured over the action's own window.
pub fn approx(c: &ResourceCost, text: String) -> String {
    if c.is_interpolated() && text != "-" {
        format!("~{text}")
    } else {
        text
    }
}

/// p50, p95, p99 and max in whole milliseconds joined by `sep`, `-` when nothing was measured.
pub fn latency(l: Option<&Latency>, sep: &str) -> String {
    l.map_or_else(
        || "-".into(),
        |l| {
            format!(
                "{:.0}{sep}{:.0}{sep}{:.0}{sep}{:.0}",
                l.p50, l.p95, l.p99, l.max
            )
        },
    )
}

/// A file kind as the JSON names it (`openclaw_log`, ...).
pub fn kind_name(kind: FileKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_and_a_dash_when_absent() {
        assert_eq!(bytes(Some(512.0)), "512 B");
        assert_eq!(bytes(Some(1536.0)), "1.5 KiB");
        assert_eq!(bytes(Some(3.0 * 1024.0 * 1024.0)), "3.0 MiB");
        assert_eq!(bytes(None), "-");
        assert_eq!(bytes_pair(Some(2048.0), None), "2.0 KiB / -");
        assert_eq!(opt_pair(Some(1.25), None, 1), "1.2 / -");
    }

    #[test]
    fn latency_cells_join_the_percentiles() {
        let l = Latency {
            count: 3,
            mean: 2.0,
            p50: 2.0,
            p95: 2.9,
            p99: 3.0,
            max: 3.0,
        };
        assert_eq!(latency(Some(&l), "/"), "2/3/3/3");
        assert_eq!(latency(Some(&l), " / "), "2 / 3 / 3 / 3");
        assert_eq!(latency(None, "/"), "-");
        assert_eq!(kind_name(FileKind::OpenclawLog), "openclaw_log");
    }
}
