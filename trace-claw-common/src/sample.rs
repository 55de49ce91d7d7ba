//! [`MetricSample`]: one line of `resources-YYYY-MM-DD.jsonl`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// One measured value of one metric at one instant.
///
/// ```json
/// {"timestamp":"2026-11-24T10:00:00.123456Z","name":"process.cpu.usage_percent","value":12.5,
///  "unit":"%","labels":{"pid":"4242","process_name":"node","source":"ebpf"}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// When the value was read.
    pub timestamp: Timestamp,
    /// Metric name, one of [`crate::names::ALL_METRICS`] for samples trace-claw writes.
    pub name: String,
    /// The value, in `unit`.
    pub value: f64,
    /// UCUM unit (`%`, `By`, `s`, `By/s`, `1`).
    #[serde(default)]
    pub unit: String,
    /// Labels such as `pid`, `process_name`, `source`, `cpu`, `interface`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl MetricSample {
    /// The value of a label, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_line() {
        let line = r#"{"timestamp":"2026-11-24T10:00:00.123456Z","name":"process.cpu.usage_percent","value":12.5,"unit":"%","labels":{"pid":"4242","process_name":"node","source":"ebpf"}}"#;
        let s: MetricSample = serde_json::from_str(line).expect("valid line");
        assert_eq!(s.label("source"), Some("ebpf"));
        assert_eq!(serde_json::to_string(&s).expect("serializes"), line);
    }
}
