//! One OTLP/HTTP metrics request from a tick's samples.
//!
//! The request is built directly from the opentelemetry-proto types rather than through the
//! OpenTelemetry SDK's Meter API: each tick already holds explicit, timestamped values (gauges,
//! and cumulative totals read from the kernel or /proc), whereas the SDK wants instruments that
//! it aggregates and timestamps itself, would need one observable callback per series, and
//! reports export failures only to its global error handler, where they cannot be counted.
//!
//! Gauges ([`MetricKind::Gauge`]) become OTLP gauges, cumulative counters
//! ([`MetricKind::Counter`]) monotonic cumulative sums; sample labels become attributes; the
//! resource carries `service.name` and `host.name`.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use trace_claw_common::names::{self, MetricKind};
use trace_claw_common::sample::MetricSample;

/// The resource every request carries ([`super::resource_attributes`]).
pub(super) fn resource(service_name: &str, extra: &BTreeMap<String, String>) -> Resource {
    Resource {
        attributes: super::resource_attributes(service_name, extra)
            .iter()
            .map(|(k, v)| string_attr(k, v))
            .collect(),
        ..Default::default()
    }
}

fn string_attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

/// One export request: a metric per name (in first-seen order), a data point per sample.
/// Counters carry `start_time` (when the exporter started) as their cumulative start.
pub(super) fn to_request(
    samples: &[&MetricSample],
    resource: &Resource,
    start_time: u64,
) -> ExportMetricsServiceRequest {
    let mut metrics: Vec<Metric> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for sample in samples {
        let i = *index.entry(sample.name.as_str()).or_insert_with(|| {
            metrics.push(empty_metric(sample));
            metrics.len() - 1
        });
        let time = sample.timestamp.unix_nanos().max(0).unsigned_abs();
        let mut point = NumberDataPoint {
            attributes: sample
                .labels
                .iter()
                .map(|(k, v)| string_attr(k, v))
                .collect(),
            time_unix_nano: time,
            value: Some(number_data_point::Value::AsDouble(sample.value)),
            ..Default::default()
        };
        match &mut metrics[i].data {
            Some(metric::Data::Sum(sum)) => {
                point.start_time_unix_nano = start_time.min(time);
                sum.data_points.push(point);
            }
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.push(point),
            _ => {}
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "trace-claw".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The metric a sample's name maps to: a monotonic cumulative sum for counters, else a gauge
/// (names outside [`names::ALL_METRICS`] are treated as gauges).
fn empty_metric(sample: &MetricSample) -> Metric {
    let def = names::metric_by_name(&sample.name);
    let data = match def.map(|d| d.kind) {
        Some(MetricKind::Counter) => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        _ => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
    };
    Metric {
        name: sample.name.clone(),
        description: def.map_or(String::new(), |d| d.description.to_owned()),
        unit: sample.unit.clone(),
        data: Some(data),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn sample(name: &str, value: f64, labels: &[(&str, &str)]) -> MetricSample {
        crate::export::test_sample(name, "By", value, labels)
    }

    #[test]
    fn counters_become_monotonic_sums_and_the_rest_gauges() {
        let a = sample(
            "system.network.bytes_sent_total",
            10.0,
            &[("interface", "lo")],
        );
        let b = sample(
            "system.network.bytes_sent_total",
            20.0,
            &[("interface", "eth0")],
        );
        let c = sample("system.memory.used_bytes", 5.0, &[]);
        let d = sample("not.a.known.metric", 1.0, &[]);
        let request = to_request(&[&a, &c, &b, &d], &resource("svc", &BTreeMap::new()), 7);
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 3);
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("counter is not a sum: {:?}", metrics[0]);
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        assert_eq!(sum.data_points.len(), 2);
        assert_eq!(sum.data_points[1].start_time_unix_nano, 7);
        assert_eq!(sum.data_points[1].attributes[0].key, "interface");
        assert!(matches!(metrics[1].data, Some(metric::Data::Gauge(_))));
        assert!(matches!(metrics[2].data, Some(metric::Data::Gauge(_))));
        let attrs = &request.resource_metrics[0]
            .resource
            .as_ref()
            .expect("resource")
            .attributes;
        assert!(attrs.iter().any(|kv| kv.key == "host.name"));
        assert_eq!(attrs[0].key, "service.name");
    }
}
