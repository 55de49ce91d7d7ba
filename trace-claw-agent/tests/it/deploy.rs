//! The deploy files (Grafana dashboard, Kubernetes ConfigMap, OpenClaw diagnostics config) against
//! what the exporters and the agent really produce and accept.
//!
//! The dashboard check parses every PromQL expression and requires each metric it names to be a
//! name the OTel Collector's Prometheus exporter really emits: OpenClaw's metrics as captured
//! from openclaw 2026.4.29 (`tests/fixtures/otlp/`), trace-claw's from
//! `trace_claw_common::names::ALL_METRICS`, both run through the exporter's name translation
//! ([`prom`]). Renaming a metric on either side, or writing a name the translator would not
//! produce (`openclaw_run_duration_ms_bucket` without the unit suffix), fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use serde_json::Value;
use trace_claw_agent::config::{Config, Mode};
use trace_claw_agent::export::prometheus::naming as prom;
use trace_claw_agent::openclaw_config;
use trace_claw_common::names::{self, labels};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn read(rel: &str) -> String {
    let path = repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn translator_matches_the_documented_cases() {
    use prom::{family, Type};
    // Cases from prometheus/otlptranslator's metric_namer tests (WithMetricSuffixes, escaping).
    let cases = [
        ("requests", "", Type::MonotonicSum, "requests_total"),
        ("cpu_usage", "1", Type::Gauge, "cpu_usage_ratio"),
        ("items", "1", Type::MonotonicSum, "items_total"),
        (
            "response_time",
            "ms",
            Type::Gauge,
            "response_time_milliseconds",
        ),
        ("memory_usage", "By", Type::Gauge, "memory_usage_bytes"),
        ("requests", "1/s", Type::Gauge, "requests_per_second"),
        (
            "throughput",
            "By/s",
            Type::Gauge,
            "throughput_bytes_per_second",
        ),
        ("custom_metric", "{custom}", Type::Gauge, "custom_metric"),
        (
            "custom_metric",
            "By/{custom}",
            Type::Gauge,
            "custom_metric_bytes",
        ),
        ("requests_total", "", Type::MonotonicSum, "requests_total"),
        ("cpu_usage_ratio", "1", Type::Gauge, "cpu_usage_ratio"),
        (
            "response_time_seconds",
            "s",
            Type::Gauge,
            "response_time_seconds",
        ),
        (
            "request_duration",
            "s",
            Type::Histogram,
            "request_duration_seconds",
        ),
        (
            "active_connections",
            "",
            Type::NonMonotonicSum,
            "active_connections",
        ),
        (
            "metric__with__multiple__underscores",
            "unit__multiple__underscores",
            Type::Gauge,
            "metric_with_multiple_underscores_unit_multiple_underscores",
        ),
        (
            "http.server.request.duration",
            "s",
            Type::Histogram,
            "http_server_request_duration_seconds",
        ),
    ];
    for (name, unit, ty, want) in cases {
        assert_eq!(family(name, unit, ty), want, "{name} [{unit}] {ty:?}");
    }
}

#[test]
fn translator_agrees_with_a_real_implementation() {
    // prometheus-names.tsv: the series VictoriaMetrics (-opentelemetry.usePrometheusNaming, a port
    // of the collector's normalize_name) stored for the real OpenClaw export request and for every
    // names.rs metric; regenerate with tests/fixtures/otlp/prometheus_names.py.
    let tsv = read("tests/fixtures/otlp/prometheus-names.tsv");
    let mut rows = 0;
    for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [name, unit, ty, stored] = cols[..] else {
            panic!("prometheus-names.tsv: bad line {line:?}");
        };
        let ty = match ty {
            "gauge" => prom::Type::Gauge,
            "sum_monotonic" => prom::Type::MonotonicSum,
            "sum" => prom::Type::NonMonotonicSum,
            "histogram" => prom::Type::Histogram,
            other => panic!("prometheus-names.tsv: type {other}"),
        };
        let mut ours = prom::series(name, unit, ty);
        ours.sort();
        let theirs: Vec<String> = stored.split(' ').map(str::to_owned).collect();
        assert_eq!(ours, theirs, "{name} [{unit}]");
        rows += 1;
    }
    assert!(rows >= 60, "only {rows} rows in prometheus-names.tsv");
}

/// Attribute (or label) key -> the values it takes; `None`: any value.
type Attrs = BTreeMap<String, Option<BTreeSet<String>>>;

/// Records that `key` takes `value` (`None`: any value).
fn allow(attrs: &mut Attrs, key: &str, value: Option<&str>) {
    let entry = attrs
        .entry(key.to_owned())
        .or_insert_with(|| Some(BTreeSet::new()));
    match (entry.as_mut(), value) {
        (Some(values), Some(v)) => {
            values.insert(v.to_owned());
        }
        (Some(_), None) => *entry = None,
        (None, _) => {}
    }
}

/// One OTLP metric as an exporter sends it.
#[derive(Debug, Clone)]
struct OtlpMetric {
    name: String,
    unit: String,
    ty: prom::Type,
    /// Data-point attributes.
    attributes: Attrs,
}

fn otlp_type(m: &Value) -> prom::Type {
    if let Some(sum) = m.get("sum") {
        if sum.get("isMonotonic").and_then(Value::as_bool) == Some(true) {
            prom::Type::MonotonicSum
        } else {
            prom::Type::NonMonotonicSum
        }
    } else if m.get("histogram").is_some() {
        prom::Type::Histogram
    } else if m.get("gauge").is_some() {
        prom::Type::Gauge
    } else {
        panic!("unsupported OTLP metric type in {m}")
    }
}

/// Adds OTLP/JSON attributes with their observed values (non-string values: any).
fn allow_observed(attrs: &mut Attrs, list: Option<&Value>) {
    for a in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = a.get("key").and_then(Value::as_str) else {
            continue;
        };
        allow(attrs, key, a["value"]["stringValue"].as_str());
    }
}

/// OpenClaw's metrics: the captured export request (attribute values as observed), plus the
/// instruments the plugin defines but did not record during the capture (attribute values
/// unknown). Returns the metrics and the resource attributes.
fn openclaw_metrics() -> (Vec<OtlpMetric>, Attrs) {
    let capture = read_json("tests/fixtures/otlp/openclaw-2026.4.29/0062-metrics.json");
    let mut by_name: BTreeMap<String, OtlpMetric> = BTreeMap::new();
    let mut resource = Attrs::new();
    for rm in capture["resourceMetrics"]
        .as_array()
        .expect("resourceMetrics")
    {
        allow_observed(&mut resource, rm["resource"].get("attributes"));
        for sm in rm["scopeMetrics"].as_array().expect("scopeMetrics") {
            for m in sm["metrics"].as_array().expect("metrics") {
                let ty = otlp_type(m);
                let kind = match ty {
                    prom::Type::Histogram => "histogram",
                    prom::Type::Gauge => "gauge",
                    _ => "sum",
                };
                let mut attributes = Attrs::new();
                for dp in m[kind]["dataPoints"].as_array().into_iter().flatten() {
                    allow_observed(&mut attributes, dp.get("attributes"));
                }
                let name = m["name"].as_str().expect("name").to_owned();
                by_name.insert(
                    name.clone(),
                    OtlpMetric {
                        name,
                        unit: m["unit"].as_str().unwrap_or("").to_owned(),
                        ty,
                        attributes,
                    },
                );
            }
        }
    }
    let source_only = read_json("tests/fixtures/otlp/openclaw-2026.4.29-source-only-metrics.json");
    for m in source_only["metrics"].as_array().expect("metrics") {
        let name = m["name"].as_str().expect("name").to_owned();
        let ty = match (m["type"].as_str(), m["monotonic"].as_bool()) {
            (Some("histogram"), _) => prom::Type::Histogram,
            (Some("sum"), Some(true)) => prom::Type::MonotonicSum,
            other => panic!("{name}: unexpected type {other:?}"),
        };
        let unit = m["unit"].as_str().expect("unit").to_owned();
        let entry = by_name.entry(name.clone()).or_insert_with(|| OtlpMetric {
            name: name.clone(),
            unit: unit.clone(),
            ty,
            attributes: Attrs::new(),
        });
        assert_eq!(
            (entry.unit.as_str(), entry.ty),
            (unit.as_str(), ty),
            "{name}"
        );
        for a in m["attributes"].as_array().expect("attributes") {
            allow(&mut entry.attributes, a.as_str().expect("attribute"), None);
        }
    }
    (by_name.into_values().collect(), resource)
}

/// trace-claw's metrics as its OTLP exporter sends them: names.rs names and units, gauges for
/// Gauge, monotonic cumulative sums for Counter, sample labels as attributes. Labels with a
/// fixed vocabulary in names.rs are limited to it.
fn trace_claw_metrics() -> Vec<OtlpMetric> {
    let mut attributes = Attrs::new();
    for free in [
        labels::PPID,
        labels::PROCESS_NAME,
        labels::INTERFACE,
        labels::CONTAINER_ID,
        labels::K8S_POD_UID,
    ] {
        allow(&mut attributes, free, None);
    }
    // Dashboards select the tree total and the all-core CPU sample by these values.
    allow(&mut attributes, labels::PID, Some(labels::PID_TOTAL));
    allow(&mut attributes, labels::CPU, Some(labels::CPU_TOTAL));
    for v in [
        labels::SOURCE_EBPF,
        labels::SOURCE_PROCFS,
        labels::SOURCE_SYSINFO,
    ] {
        allow(&mut attributes, labels::SOURCE, Some(v));
    }
    for v in [labels::TRACKED_MATCH, labels::TRACKED_DESCENDANT] {
        allow(&mut attributes, labels::TRACKED, Some(v));
    }
    names::ALL_METRICS
        .iter()
        .map(|m| OtlpMetric {
            name: m.name.to_owned(),
            unit: m.unit.to_owned(),
            ty: m.kind.into(),
            attributes: attributes.clone(),
        })
        .collect()
}

/// Resource attributes trace-claw sets (service.name from `otel.service_name`, service.version,
/// host.name) or the deploy files add through OTEL_RESOURCE_ATTRIBUTES
/// (deploy/kubernetes/daemonset.yaml).
fn trace_claw_resource() -> Attrs {
    let mut r = Attrs::new();
    let service = Config::default().otel.service_name;
    allow(&mut r, "service.name", Some(&service));
    for any in ["service.version", "host.name", "k8s.node.name"] {
        allow(&mut r, any, None);
    }
    r
}

/// Labels the Prometheus exporter adds itself (job = service.name, instance =
/// service.instance.id) and the histogram bucket bound.
const EXPORTER_LABELS: &[&str] = &[
    "job",
    "instance",
    "le",
    "otel_scope_name",
    "otel_scope_version",
];

/// Prometheus series name -> its labels and their values.
type Known = BTreeMap<String, Attrs>;

fn add_known(known: &mut Known, metrics: &[OtlpMetric], resource: &Attrs) {
    for m in metrics {
        let allowed: Attrs = m
            .attributes
            .iter()
            .chain(resource)
            .map(|(k, v)| (prom::label(k), v.clone()))
            .chain(EXPORTER_LABELS.iter().map(|l| ((*l).to_owned(), None)))
            .collect();
        for s in prom::series(&m.name, &m.unit, m.ty) {
            let previous = known.insert(s.clone(), allowed.clone());
            assert!(previous.is_none(), "{s} produced by two metrics");
        }
    }
}

fn known_series() -> Known {
    let mut known = Known::new();
    let (openclaw, resource) = openclaw_metrics();
    add_known(&mut known, &openclaw, &resource);
    add_known(&mut known, &trace_claw_metrics(), &trace_claw_resource());
    known
}

/// A metric name and the label matchers of one selector: (label, value of an `=`/`!=` match).
#[derive(Debug)]
struct Selector {
    metric: Option<String>,
    labels: Vec<(String, Option<String>)>,
}

fn selectors(expr: &Expr, out: &mut Vec<Selector>) {
    let vs = |v: &promql_parser::parser::VectorSelector, out: &mut Vec<Selector>| {
        let matcher = |m: &promql_parser::label::Matcher| {
            let value = match m.op {
                MatchOp::Equal | MatchOp::NotEqual => Some(m.value.clone()),
                MatchOp::Re(_) | MatchOp::NotRe(_) => None,
            };
            (m.name.clone(), value)
        };
        let mut labels: Vec<(String, Option<String>)> =
            v.matchers.matchers.iter().map(matcher).collect();
        for group in &v.matchers.or_matchers {
            labels.extend(group.iter().map(matcher));
        }
        let metric = v.name.clone().or_else(|| {
            v.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        labels.retain(|(l, _)| l != "__name__");
        out.push(Selector { metric, labels });
    };
    match expr {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(v) => vs(v, out),
        Expr::MatrixSelector(m) => vs(&m.vs, out),
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `by (...)` labels of aggregations that no selector inside the aggregation can carry.
fn grouping_problems(expr: &Expr, known: &Known, out: &mut Vec<String>) {
    use promql_parser::parser::LabelModifier;
    match expr {
        Expr::Aggregate(a) => {
            if let Some(LabelModifier::Include(by)) = &a.modifier {
                let mut inner = Vec::new();
                selectors(&a.expr, &mut inner);
                let allowed: BTreeSet<&String> = inner
                    .iter()
                    .filter_map(|s| known.get(s.metric.as_deref()?))
                    .flat_map(Attrs::keys)
                    .collect();
                for l in by.labels.iter().filter(|l| !allowed.contains(l)) {
                    out.push(format!("grouping by {l}, which none of its series has"));
                }
            }
            grouping_problems(&a.expr, known, out);
        }
        Expr::Unary(u) => grouping_problems(&u.expr, known, out),
        Expr::Binary(b) => {
            grouping_problems(&b.lhs, known, out);
            grouping_problems(&b.rhs, known, out);
        }
        Expr::Paren(p) => grouping_problems(&p.expr, known, out),
        Expr::Subquery(s) => grouping_problems(&s.expr, known, out),
        Expr::Call(c) => {
            for a in &c.args.args {
                grouping_problems(a, known, out);
            }
        }
        _ => {}
    }
}

/// Replaces Grafana's template variables with values PromQL accepts.
fn expand_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "30s")
        .replace("$__range", "1h")
        .replace("$host", ".*")
}

/// Every Prometheus query of the dashboard: (where, PromQL).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn is_prometheus(ds: Option<&Value>) -> bool {
        ds.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("prometheus")
    }
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                let prometheus = if t.get("datasource").is_some() {
                    is_prometheus(t.get("datasource"))
                } else {
                    is_prometheus(p.get("datasource"))
                };
                if let (true, Some(expr)) = (prometheus, t["expr"].as_str()) {
                    let id = t["refId"].as_str().unwrap_or("?");
                    out.push((format!("panel {title:?} target {id}"), expr.to_owned()));
                }
            }
            if let Some(inner) = p["panels"].as_array() {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    out
}

fn dashboard() -> Value {
    read_json("configs/grafana/dashboards/openclaw-trace-dashboard.json")
}

#[test]
fn dashboard_promql_names_only_exported_metrics_and_labels() {
    let known = known_series();
    let queries = dashboard_queries(&dashboard());
    assert!(queries.len() >= 20, "only {} queries found", queries.len());
    let mut problems = Vec::new();
    for (at, expr) in &queries {
        let parsed = match parser::parse(&expand_grafana_variables(expr)) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("{at}: does not parse: {e}: {expr}"));
                continue;
            }
        };
        let mut grouping = Vec::new();
        grouping_problems(&parsed, &known, &mut grouping);
        problems.extend(grouping.into_iter().map(|g| format!("{at}: {g}")));
        let mut found = Vec::new();
        selectors(&parsed, &mut found);
        assert!(!found.is_empty(), "{at}: no selector in {expr}");
        for s in found {
            let Some(metric) = s.metric else {
                problems.push(format!("{at}: selector without a metric name: {expr}"));
                continue;
            };
            let Some(allowed) = known.get(&metric) else {
                problems.push(format!("{at}: no exporter produces {metric}"));
                continue;
            };
            for (label, value) in &s.labels {
                match (allowed.get(label), value) {
                    (None, _) => problems.push(format!("{at}: {metric} has no label {label}")),
                    (Some(Some(values)), Some(v)) if !values.contains(v) => problems.push(format!(
                        "{at}: {metric} never has {label}={v:?} (exported: {values:?})"
                    )),
                    _ => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn dashboard_variables_use_exported_labels() {
    let known = known_series();
    let all_labels: BTreeSet<&String> = known.values().flat_map(Attrs::keys).collect();
    let d = dashboard();
    for v in d["templating"]["list"].as_array().expect("templating") {
        let q = v["definition"].as_str().expect("definition");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unsupported variable query {q}"));
        let label = inner.rsplit(',').next().expect("label").trim().to_owned();
        assert!(
            all_labels.contains(&label),
            "variable {q}: no metric has label {label}"
        );
    }
}

#[test]
fn dashboard_shows_what_the_issue_asks_for() {
    let d = dashboard();
    assert_eq!(d["title"], "OpenClaw Trace Dashboard");
    let text: String = dashboard_queries(&d)
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .join("\n");
    // One series per topic of issue 7, by the metric that carries it.
    for needed in [
        "openclaw_model_call_duration_ms_milliseconds_count", // LLM calls/min
        "openclaw_tokens_total",                              // tokens by model
        "openclaw_cost_usd_total",                            // cost by model
        "openclaw_run_duration_ms_milliseconds_bucket",       // run latency percentiles
        "openclaw_message_duration_ms_milliseconds_bucket",   // message latency percentiles
        "openclaw_queue_depth_bucket",                        // queue depth
        "openclaw_queue_wait_ms_milliseconds_bucket",         // queue wait
        "openclaw_session_stuck_total",                       // stuck sessions
        "openclaw_webhook_error_total",                       // webhook errors
        "process_cpu_usage_percent",                          // gateway CPU
        "process_memory_rss_bytes",                           // gateway RSS
        "process_io_read_bytes_total",                        // gateway disk
        "process_io_write_bytes_total",
        "process_network_bytes_sent_total", // gateway network
        "process_network_bytes_recv_total",
    ] {
        assert!(text.contains(needed), "dashboard shows no {needed}");
    }
    // Shared crosshair: every panel follows the same time axis.
    assert_eq!(d["graphTooltip"], 1);
}

#[test]
fn unit_suffixes_are_required() {
    // The mistakes the translator check exists to catch.
    let known = known_series();
    for wrong in [
        "openclaw_run_duration_ms_bucket",
        "openclaw_tokens",
        "process_cpu_time_seconds",
        "process_threads",
        "system_network_bytes_sent_rate",
    ] {
        assert!(
            !known.contains_key(wrong),
            "{wrong} should not be a known series"
        );
    }
    for right in [
        "openclaw_run_duration_ms_milliseconds_bucket",
        "openclaw_tokens_total",
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "openclaw_model_call_request_bytes_bucket",
        "process_cpu_time_seconds_total",
        "process_threads_ratio",
        "system_network_bytes_sent_rate_per_second",
        "system_network_bytes_sent_total",
        "system_cpu_usage_percent",
    ] {
        assert!(
            known.contains_key(right),
            "{right} should be a known series"
        );
    }
}

#[test]
fn grafana_provisioning_puts_the_dashboard_in_its_folder() {
    let providers: Value = serde_norway::from_str(&read(
        "configs/grafana/provisioning/dashboards/dashboards.yaml",
    ))
    .expect("dashboards.yaml");
    let p = &providers["providers"][0];
    assert_eq!(p["folder"], "OpenClaw Tracing");
    assert_eq!(p["options"]["path"], "/var/lib/grafana/dashboards");
    let ds: Value = serde_norway::from_str(&read(
        "configs/grafana/provisioning/datasources/datasources.yaml",
    ))
    .expect("datasources.yaml");
    let types: BTreeSet<(&str, &str)> = ds["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .map(|d| {
            (
                d["type"].as_str().unwrap_or(""),
                d["uid"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(types.contains(&("prometheus", "prometheus")), "{types:?}");
    assert!(types.contains(&("jaeger", "jaeger")), "{types:?}");
    // Every datasource uid the dashboard refers to is provisioned.
    let text = read("configs/grafana/dashboards/openclaw-trace-dashboard.json");
    for uid in ["\"uid\": \"prometheus\"", "\"uid\": \"jaeger\""] {
        assert!(text.contains(uid), "dashboard does not use {uid}");
    }
}

fn k8s_doc(rel: &str) -> Value {
    serde_norway::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn configmap_is_a_valid_agent_config() {
    let cm = k8s_doc("deploy/kubernetes/configmap.yaml");
    let text = cm["data"]["trace_claw.yaml"]
        .as_str()
        .expect("trace_claw.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trace_claw.yaml");
    std::fs::write(&path, text).expect("write");
    // The same loader and validation the agent runs at start-up.
    let config = Config::load(Some(&path), |_| None, None).expect("ConfigMap trace_claw.yaml");
    assert_eq!(config.mode, Mode::Online);
    assert_eq!(config.collector.process_name, "node");
    assert_eq!(config.collector.proc_root, Path::new("/host/proc"));
    assert_eq!(config.otel.service_name, "trace-claw-resources");
    assert!(
        config.otel.endpoint.ends_with(":4318"),
        "{}",
        config.otel.endpoint
    );
}

#[test]
fn daemonset_runs_unprivileged_with_only_the_needed_capabilities() {
    let ds = k8s_doc("deploy/kubernetes/daemonset.yaml");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true);
    let c = &spec["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.windows(2).any(|w| w == ["--process", "node"]),
        "{args:?}"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let added: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .expect("add")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        added,
        BTreeSet::from(["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE"])
    );
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(c["resources"][k][r].is_string(), "resources.{k}.{r}");
        }
    }
    assert!(c["livenessProbe"].is_object());
    // Host paths are mounted read-only; only the data emptyDir is writable.
    let volumes = spec["volumes"].as_array().expect("volumes");
    let host_paths: BTreeMap<&str, &str> = volumes
        .iter()
        .filter_map(|v| Some((v["name"].as_str()?, v["hostPath"]["path"].as_str()?)))
        .collect();
    let wanted = [
        "/proc",
        "/sys/kernel/tracing",
        "/sys/kernel/btf",
        "/sys/fs/bpf",
    ];
    assert_eq!(
        host_paths.values().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(wanted)
    );
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().expect("name");
        if host_paths.contains_key(name) {
            assert_eq!(m["readOnly"], true, "mount {name} must be read-only");
        }
    }
    // The node name reaches the exported resource.
    let env = c["env"].as_array().expect("env");
    let node = env
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    let attrs = env
        .iter()
        .find(|e| e["name"] == "OTEL_RESOURCE_ATTRIBUTES")
        .and_then(|e| e["value"].as_str())
        .expect("OTEL_RESOURCE_ATTRIBUTES");
    assert!(attrs.contains("host.name=$(NODE_NAME)"), "{attrs}");
}

#[test]
fn daemonset_offers_the_prometheus_endpoint_of_the_configmap() {
    let cm = k8s_doc("deploy/kubernetes/configmap.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trace_claw.yaml");
    std::fs::write(&path, cm["data"]["trace_claw.yaml"].as_str().expect("text")).expect("write");
    let config = Config::load(Some(&path), |_| None, None).expect("ConfigMap trace_claw.yaml");
    let listen: std::net::SocketAddr = config
        .prometheus
        .listen
        .expect("prometheus.listen")
        .parse()
        .expect("IP:PORT");
    assert!(
        listen.ip().is_unspecified(),
        "scraped on the pod IP: {listen}"
    );
    let ds = k8s_doc("deploy/kubernetes/daemonset.yaml");
    let template = &ds["spec"]["template"];
    let port = template["spec"]["containers"][0]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics");
    assert_eq!(port["containerPort"], listen.port());
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], listen.port().to_string());
    assert_eq!(
        annotations["prometheus.io/path"],
        trace_claw_agent::export::prometheus::METRICS_PATH
    );
}

#[test]
fn kustomization_lists_every_manifest() {
    let k = k8s_doc("deploy/kubernetes/kustomization.yaml");
    let listed: BTreeSet<String> = k["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let dir = repo_root().join("deploy/kubernetes");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, on_disk);
    // Cluster-scoped kinds have no namespace; the others live in the kustomization's.
    const CLUSTER_SCOPED: [&str; 3] = ["Namespace", "ClusterRole", "ClusterRoleBinding"];
    for f in &on_disk {
        let doc = k8s_doc(&format!("deploy/kubernetes/{f}"));
        if !CLUSTER_SCOPED.iter().any(|k| doc["kind"] == *k) {
            assert_eq!(doc["metadata"]["namespace"], k["namespace"], "{f}");
        }
    }
}

#[test]
fn the_service_account_may_read_pods_and_nothing_else() {
    let role = k8s_doc("deploy/kubernetes/clusterrole.yaml");
    let rules = role["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1, "{role}");
    assert_eq!(rules[0]["apiGroups"], serde_json::json!([""]));
    assert_eq!(rules[0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );
    let binding = k8s_doc("deploy/kubernetes/clusterrolebinding.yaml");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let account = k8s_doc("deploy/kubernetes/serviceaccount.yaml");
    assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0]["namespace"],
        account["metadata"]["namespace"]
    );
    let ds = k8s_doc("deploy/kubernetes/daemonset.yaml");
    let env = ds["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let node_name = env
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME, the node whose pods are named");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
}

#[test]
fn openclaw_diagnostics_json_is_what_generate_config_prints() {
    let config = Config::default();
    let endpoint = openclaw_config::endpoint(&config, None);
    let want = openclaw_config::diagnostics_json(&config, &endpoint);
    let have = read_json("configs/openclaw/openclaw.diagnostics.json");
    assert_eq!(
        have, want,
        "regenerate: cargo run -q --bin trace-claw -- generate-config > configs/openclaw/openclaw.diagnostics.json"
    );
}
