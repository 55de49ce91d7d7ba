//! The README's metric table matches the one definition of the names.

use trace_claw_common::names::{MetricKind, ALL_METRICS};

use crate::util::repo_root;

#[test]
fn readme_lists_every_metric_with_its_unit_and_kind() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("metrics-table"))
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("| `"))
        .collect();
    assert_eq!(
        table.len(),
        ALL_METRICS.len(),
        "README metric table has a row per metric"
    );
    for m in ALL_METRICS {
        let row = table
            .iter()
            .find(|l| l.starts_with(&format!("| `{}` |", m.name)))
            .unwrap_or_else(|| panic!("{} missing from the README", m.name));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], m.unit, "{} unit", m.name);
        let kind = match m.kind {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        };
        assert_eq!(cells[3], kind, "{} kind", m.name);
    }
}
