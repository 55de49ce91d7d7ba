//! Prometheus names of OTLP metrics and attributes: the OTel Collector Prometheus exporter's
//! translation, default strategy `UnderscoreEscapingWithSuffixes` (prometheus/otlptranslator
//! `normalizeName`, used by opentelemetry-collector-contrib's prometheusexporter).
//!
//! The pull endpoint names its series with it, so a dashboard written against the collector's
//! output works unchanged on a direct scrape; `tests/it/deploy.rs` checks it against the names
//! VictoriaMetrics (a port of the same code) stored (`tests/fixtures/otlp/prometheus-names.tsv`).

use trace_claw_common::names::MetricKind;

/// The OTLP data types that decide the suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A gauge: no type suffix.
    Gauge,
    /// A monotonic sum: `_total`.
    MonotonicSum,
    /// A sum that may go down: exported as a gauge, no suffix.
    NonMonotonicSum,
    /// A histogram: `_bucket`, `_sum` and `_count` series.
    Histogram,
}

impl From<MetricKind> for Type {
    /// How trace-claw's OTLP exporter sends each kind (`export::otlp_request`).
    fn from(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Gauge => Self::Gauge,
            MetricKind::Counter => Self::MonotonicSum,
        }
    }
}

/// UCUM main units the translator spells out; anything else passes through.
fn main_unit(unit: &str) -> String {
    let mapped = match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    };
    mapped.to_owned()
}

fn per_unit(unit: &str) -> String {
    let mapped = match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    };
    mapped.to_owned()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces invalid characters by `_`, collapses runs of `_` and trims leading ones.
fn clean(unit: &str) -> String {
    let mapped: String = unit
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let mut out = String::new();
    for c in mapped.chars() {
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    out.trim_start_matches('_').to_owned()
}

/// Main and `per_` unit suffixes; units in braces (`{token}`) add nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        main_unit(main)
    };
    let per = match parts.next().map(str::trim) {
        Some(p) if !p.is_empty() && !p.contains(['{', '}']) => format!("per_{}", per_unit(p)),
        _ => String::new(),
    };
    (clean(&main), clean(&per))
}

/// The Prometheus metric family name of an OTLP metric.
pub fn family(name: &str, unit: &str, ty: Type) -> String {
    let mut tokens: Vec<String> = name
        .split(|c: char| !is_name_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (mut main, per) = unit_suffixes(unit);
    if tokens.contains(&main) {
        main.clear();
    }
    let per = if per == "per_" {
        String::new()
    } else {
        let p = per.trim_end_matches('_').to_owned();
        if tokens.contains(&p) {
            String::new()
        } else {
            p
        }
    };
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_owned();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if ty == Type::MonotonicSum {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_owned());
    }
    if unit == "1" && ty == Type::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_owned());
    }
    let joined = tokens.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// Every series name the exporter writes for the metric (histograms: bucket, sum, count).
pub fn series(name: &str, unit: &str, ty: Type) -> Vec<String> {
    let f = family(name, unit, ty);
    match ty {
        Type::Histogram => vec![
            format!("{f}_bucket"),
            format!("{f}_sum"),
            format!("{f}_count"),
        ],
        _ => vec![f],
    }
}

/// An OTLP attribute or resource attribute key as a Prometheus label name.
pub fn label(key: &str) -> String {
    let l: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if l.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{l}")
    } else {
        l
    }
}
