//! One tick's samples in the Prometheus text exposition format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Each family is written once, with `# HELP` (the names.rs description) and `# TYPE`, its
//! series sorted by labels; names, units and `_total` follow [`super::naming`], the labels are
//! the sample's labels and then the resource attributes, as the OTel Collector's exporter writes
//! them with `resource_to_telemetry_conversion`. No timestamps: Prometheus stamps the scrape.

use std::collections::BTreeMap;
use std::fmt::Write;

use trace_claw_common::names::{self, MetricKind};
use trace_claw_common::sample::MetricSample;

use super::naming::{self, Type};

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The series of one family: labels -> value (a later duplicate replaces an earlier one).
struct Family<'a> {
    help: &'a str,
    counter: bool,
    series: BTreeMap<&'a BTreeMap<String, String>, f64>,
}

/// Appends `samples` to `out`; `resource` holds the labels every series gets, already as
/// Prometheus label names ([`resource_labels`]), unless a sample has a label of the same name.
pub fn render(samples: &[MetricSample], resource: &[(String, String)], out: &mut String) {
    let mut families: BTreeMap<String, Family<'_>> = BTreeMap::new();
    for sample in samples {
        let def = names::metric_by_name(&sample.name);
        let unit = def.map_or(sample.unit.as_str(), |d| d.unit);
        let kind = def.map_or(MetricKind::Gauge, |d| d.kind);
        let name = naming::family(&sample.name, unit, Type::from(kind));
        families
            .entry(name)
            .or_insert_with(|| Family {
                help: def.map_or(sample.name.as_str(), |d| d.description),
                counter: kind == MetricKind::Counter,
                series: BTreeMap::new(),
            })
            .series
            .insert(&sample.labels, sample.value);
    }
    for (name, family) in &families {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
        let kind = if family.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in &family.series {
            out.push_str(name);
            write_labels(labels, resource, out);
            out.push(' ');
            write_value(*value, out);
            out.push('\n');
        }
    }
}

/// Resource attributes as Prometheus label names (`host.name` -> `host_name`).
pub fn resource_labels(attributes: &[(String, String)]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|(k, v)| (naming::label(k), v.clone()))
        .collect()
}

fn write_labels(
    labels: &BTreeMap<String, String>,
    resource: &[(String, String)],
    out: &mut String,
) {
    let own: Vec<String> = labels.keys().map(|k| naming::label(k)).collect();
    let pairs = own.iter().map(String::as_str).zip(labels.values()).chain(
        resource
            .iter()
            .filter(|(k, _)| !own.contains(k))
            .map(|(k, v)| (k.as_str(), v)),
    );
    let mut first = true;
    for (key, value) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(key);
        out.push_str("=\"");
        escape_label_value(value, out);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use trace_claw_common::names::labels;

    use super::*;

    fn sample(name: &str, value: f64, labels: &[(&str, &str)]) -> MetricSample {
        crate::export::test_sample(name, "", value, labels)
    }

    #[test]
    fn writes_each_family_once_with_help_type_units_and_total() {
        let samples = [
            sample(names::PROCESS_CPU_TIME.name, 1.5, &[(labels::PID, "42")]),
            sample(names::SYSTEM_MEMORY_USED.name, 1024.0, &[]),
            sample(names::PROCESS_CPU_TIME.name, 3.0, &[(labels::PID, "7")]),
            sample(names::PROCESS_THREADS.name, 4.0, &[(labels::PID, "7")]),
        ];
        let resource = vec![("host_name".to_owned(), "h1".to_owned())];
        let mut out = String::new();
        render(&samples, &resource, &mut out);
        let want = "\
# HELP process_cpu_time_seconds_total On-CPU time since start (user + system)
# TYPE process_cpu_time_seconds_total counter
process_cpu_time_seconds_total{pid=\"42\",host_name=\"h1\"} 1.5
process_cpu_time_seconds_total{pid=\"7\",host_name=\"h1\"} 3
# HELP process_threads_ratio Number of threads
# TYPE process_threads_ratio gauge
process_threads_ratio{pid=\"7\",host_name=\"h1\"} 4
# HELP system_memory_used_bytes Memory in use (total minus available)
# TYPE system_memory_used_bytes gauge
system_memory_used_bytes{host_name=\"h1\"} 1024
";
        assert_eq!(out, want);
    }

    #[test]
    fn escapes_label_values_and_translates_label_names() {
        let samples = [sample(
            names::PROCESS_MEMORY_RSS.name,
            f64::NAN,
            &[("container.id", "a\"b\\c\nd"), ("host_name", "own")],
        )];
        let resource = vec![("host_name".to_owned(), "h1".to_owned())];
        let mut out = String::new();
        render(&samples, &resource, &mut out);
        assert!(
            out.contains(
                r#"process_memory_rss_bytes{container_id="a\"b\\c\nd",host_name="own"} NaN"#
            ),
            "{out}"
        );
    }

    #[test]
    fn a_later_duplicate_series_replaces_the_earlier_one() {
        let samples = [
            sample(names::PROCESS_COUNT.name, 1.0, &[]),
            sample(names::PROCESS_COUNT.name, f64::INFINITY, &[]),
        ];
        let mut out = String::new();
        render(&samples, &[], &mut out);
        assert!(out.ends_with("\nprocess_count_ratio +Inf\n"), "{out}");
        assert_eq!(out.matches("\nprocess_count_ratio ").count(), 1, "{out}");
    }
}
