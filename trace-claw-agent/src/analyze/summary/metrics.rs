//! OpenClaw's own OTLP metrics: cumulative data points reduced to one total per series.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analyze::source::parsed::MetricPoint;

/// The increase of one cumulative OpenClaw OTLP metric series (the last value of each counter
/// lifetime, summed; cumulative temporality).
#[derive(Debug, Clone, Serialize)]
pub struct OtlpMetric {
    /// Metric name.
    pub name: String,
    /// Attributes identifying the series, `k=v,k=v`.
    pub series: String,
    /// `sum` or `histogram`.
    pub kind: &'static str,
    /// Sum total (counter) or sum of observations (histogram).
    pub total: f64,
    /// Number of observations (histograms only).
    pub count: u64,
}

/// Cumulative points -> per series, the last value of each counter lifetime, summed.
pub fn totals(points: &[MetricPoint]) -> Vec<OtlpMetric> {
    let mut last: BTreeMap<(&str, &str, i64), &MetricPoint> = BTreeMap::new();
    for p in points {
        let e = last.entry((&p.name, &p.series, p.start)).or_insert(p);
        if p.time >= e.time {
            *e = p;
        }
    }
    let mut out: BTreeMap<(&str, &str), OtlpMetric> = BTreeMap::new();
    for ((name, series, _), p) in last {
        let m = out.entry((name, series)).or_insert_with(|| OtlpMetric {
            name: name.to_owned(),
            series: series.to_owned(),
            kind: if p.histogram { "histogram" } else { "sum" },
            total: 0.0,
            count: 0,
        });
        m.total += p.value;
        m.count += p.count;
    }
    out.into_values().collect()
}
