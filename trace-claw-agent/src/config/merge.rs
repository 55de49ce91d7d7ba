//! The layers over the config file: `TRACE_CLAW_*` variables, `OTEL_RESOURCE_ATTRIBUTES` and
//! `collect` flags, and the record of which layer set each key, for error messages.

use std::path::{Path, PathBuf};

use super::schema::{Compression, Config, EbpfMode, Mode};
use super::yaml_pos::line_of_key;
use super::ConfigError;
use crate::cli::CollectArgs;

/// Where a setting came from, for error messages.
pub(super) struct Origins<'a> {
    file: Option<(&'a Path, &'a str)>,
    env: Vec<(&'static str, &'static str)>,
    flags: Vec<(&'static str, &'static str)>,
}

impl<'a> Origins<'a> {
    /// Nothing overridden yet; `file` is the config file's path and text, if one was read.
    pub(super) fn new(file: Option<(&'a Path, &'a str)>) -> Self {
        Self {
            file,
            env: Vec::new(),
            flags: Vec::new(),
        }
    }

    /// Where `key` was last set: a flag, an environment variable, `file:line` or `default`.
    pub(super) fn of(&self, key: &str) -> String {
        if let Some((_, flag)) = self.flags.iter().find(|(k, _)| *k == key) {
            return format!("flag {flag}");
        }
        if let Some((_, var)) = self.env.iter().rev().find(|(k, _)| *k == key) {
            return format!("environment {var}");
        }
        match self.file {
            Some((path, text)) => format!("{}:{}", path.display(), line_of_key(text, key)),
            None => "default".to_owned(),
        }
    }
}

/// Environment overrides: (variable, dotted key), applied in this order, so a later one wins.
/// The OpenTelemetry exporter variables come first, each signal-specific (`_METRICS_`) one after
/// its general form, as the OTel specification orders them; trace-claw's own come after those.
/// The endpoints come before `TRACE_CLAW_MODE`: an endpoint switches to online mode, and an
/// explicit mode still has the last word. `OTEL_EXPORTER_OTLP_*TIMEOUT` is in milliseconds.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "otel.endpoint"),
    (
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "otel.metrics_endpoint",
    ),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "otel.protocol"),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "otel.protocol"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "otel.headers"),
    ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "otel.headers"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "otel.compression"),
    ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "otel.compression"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "otel.timeout_seconds"),
    ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "otel.timeout_seconds"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "otel.tls.ca_file"),
    ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "otel.tls.ca_file"),
    (
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "otel.tls.client_cert",
    ),
    (
        "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
        "otel.tls.client_cert",
    ),
    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "otel.tls.client_key"),
    (
        "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
        "otel.tls.client_key",
    ),
    ("TRACE_CLAW_OTEL_ENDPOINT", "otel.endpoint"),
    ("TRACE_CLAW_MODE", "mode"),
    (
        "TRACE_CLAW_COLLECTOR_INTERVAL",
        "collector.interval_seconds",
    ),
    ("TRACE_CLAW_COLLECTOR_PROCESS", "collector.process_name"),
    ("TRACE_CLAW_OUTPUT_DIR", "output_dir"),
    ("TRACE_CLAW_EBPF", "ebpf"),
    ("TRACE_CLAW_PROC_ROOT", "collector.proc_root"),
    ("TRACE_CLAW_PROMETHEUS_LISTEN", "prometheus.listen"),
    ("TRACE_CLAW_SOCKET", "socket.path"),
    ("TRACE_CLAW_OPENCLAW_FOLLOW", "openclaw.follow"),
    ("TRACE_CLAW_OPENCLAW_LOG_DIR", "openclaw.log_dir"),
    ("TRACE_CLAW_OPENCLAW_STATE_DIR", "openclaw.state_dir"),
    ("TRACE_CLAW_K8S_POD_NAMES", "kubernetes.pod_names"),
    ("TRACE_CLAW_K8S_API_SERVER", "kubernetes.api_server"),
    ("TRACE_CLAW_K8S_NAMESPACE", "kubernetes.namespace"),
    ("TRACE_CLAW_K8S_POD_SELECTOR", "kubernetes.pod_selector"),
];

impl Config {
    /// Applies the [`ENV_OVERRIDES`] that `env` returns, then adds the attributes of
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    pub(super) fn apply_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
        origins: &mut Origins<'_>,
    ) -> Result<(), ConfigError> {
        for (var, key) in ENV_OVERRIDES {
            if let Some(mut value) = env(var).filter(|v| !v.is_empty()) {
                if var.ends_with("_TIMEOUT") {
                    value = millis_as_seconds(&value).map_err(|message| ConfigError::Invalid {
                        origin: format!("environment {var}"),
                        key: (*key).to_owned(),
                        message,
                    })?;
                }
                self.set(key, &value)
                    .map_err(|message| ConfigError::Invalid {
                        origin: format!("environment {var}"),
                        key: (*key).to_owned(),
                        message,
                    })?;
                origins.env.push((key, var));
            }
        }
        if let Some(attrs) = env("OTEL_RESOURCE_ATTRIBUTES").filter(|v| !v.trim().is_empty()) {
            let parsed = parse_key_values(&attrs).map_err(|message| ConfigError::Invalid {
                origin: "environment OTEL_RESOURCE_ATTRIBUTES".to_owned(),
                key: "otel.resource_attributes".to_owned(),
                message,
            })?;
            self.otel.resource_attributes.extend(parsed);
        }
        Ok(())
    }

    /// Sets the dotted `key` from the text of an environment variable.
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "mode" => {
                self.mode = match value.to_ascii_lowercase().as_str() {
                    "local" => Mode::Local,
                    "online" => Mode::Online,
                    _ => return Err(format!("expected 'local' or 'online', got '{value}'")),
                }
            }
            "ebpf" => {
                self.ebpf = <EbpfMode as clap::ValueEnum>::from_str(value, true)
                    .map_err(|_| format!("expected auto, require or off, got '{value}'"))?
            }
            "otel.endpoint" => {
                self.otel.endpoint = value.to_owned();
                self.mode = Mode::Online;
            }
            "otel.metrics_endpoint" => {
                self.otel.metrics_endpoint = Some(value.to_owned());
                self.mode = Mode::Online;
            }
            "otel.traces_endpoint" => self.otel.traces_endpoint = Some(value.to_owned()),
            "otel.protocol" => self.otel.protocol = value.trim().to_owned(),
            "otel.headers" => self.otel.headers.extend(parse_key_values(value)?),
            "otel.compression" => {
                self.otel.compression = match value.trim().to_ascii_lowercase().as_str() {
                    "gzip" => Compression::Gzip,
                    "none" => Compression::None,
                    _ => return Err(format!("expected gzip or none, got '{value}'")),
                }
            }
            "otel.timeout_seconds" => {
                self.otel.timeout_seconds = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected a number, got '{value}'"))?
            }
            "otel.tls.ca_file" => self.otel.tls.ca_file = Some(PathBuf::from(value)),
            "otel.tls.client_cert" => self.otel.tls.client_cert = Some(PathBuf::from(value)),
            "otel.tls.client_key" => self.otel.tls.client_key = Some(PathBuf::from(value)),
            "collector.interval_seconds" => {
                self.collector.interval_seconds = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected a number of seconds, got '{value}'"))?
            }
            "collector.process_name" => {
                self.collector.process_name = value.to_owned();
                self.collector.process_filter_enabled = true;
            }
            "output_dir" => self.output_dir = PathBuf::from(value),
            "collector.proc_root" => self.collector.proc_root = PathBuf::from(value),
            "prometheus.listen" => self.prometheus.listen = Some(value.to_owned()),
            "socket.path" => self.socket.path = PathBuf::from(value),
            "openclaw.follow" => self.openclaw.follow = auto_bool(value)?,
            "openclaw.log_dir" => self.openclaw.log_dir = PathBuf::from(value),
            "openclaw.state_dir" => self.openclaw.state_dir = Some(PathBuf::from(value)),
            "kubernetes.pod_names" => self.kubernetes.pod_names = auto_bool(value)?,
            "kubernetes.api_server" => self.kubernetes.api_server = Some(value.to_owned()),
            "kubernetes.namespace" => self.kubernetes.namespace = Some(value.to_owned()),
            "kubernetes.pod_selector" => self.kubernetes.pod_selector = Some(value.to_owned()),
            _ => return Err(format!("no such key '{key}'")),
        }
        Ok(())
    }

    /// Applies the `collect` flags that were given, noting in `origins` those validated later.
    pub(super) fn apply_flags(&mut self, f: &CollectArgs, origins: &mut Origins<'_>) {
        if let Some(name) = &f.process {
            self.collector.process_name.clone_from(name);
            self.collector.process_filter_enabled = true;
            origins.flags.push(("collector.process_name", "--process"));
        }
        if let Some(interval) = f.interval {
            self.collector.interval_seconds = interval;
            origins
                .flags
                .push(("collector.interval_seconds", "--interval"));
        }
        if let Some(dir) = &f.output_dir {
            self.output_dir.clone_from(dir);
        }
        if let Some(mode) = f.ebpf {
            self.ebpf = mode;
        }
        if let Some(endpoint) = &f.otlp_endpoint {
            self.otel.endpoint.clone_from(endpoint);
            self.mode = Mode::Online;
            origins.flags.push(("otel.endpoint", "--otlp-endpoint"));
        }
        if f.receive {
            self.receiver.enabled = true;
        }
        if let Some(listen) = &f.receive_listen {
            self.receiver.listen.clone_from(listen);
            self.receiver.enabled = true;
            origins.flags.push(("receiver.listen", "--receive-listen"));
        }
        if let Some(listen) = &f.prometheus_listen {
            self.prometheus.listen = Some(listen.clone());
            origins
                .flags
                .push(("prometheus.listen", "--prometheus-listen"));
        }
        if let Some(path) = &f.socket {
            self.socket.path.clone_from(path);
        }
        if f.no_socket {
            self.socket.enabled = false;
        }
        if f.openclaw.openclaw {
            self.openclaw.follow = Some(true);
        }
        if f.openclaw.no_openclaw {
            self.openclaw.follow = Some(false);
        }
        if let Some(dir) = &f.openclaw.openclaw_log_dir {
            self.openclaw.log_dir.clone_from(dir);
        }
        let by_pod = f.k8s_namespace.is_some() || f.k8s_pod_selector.is_some();
        if let Some(namespace) = &f.k8s_namespace {
            self.kubernetes.namespace = Some(namespace.clone());
            origins
                .flags
                .push(("kubernetes.namespace", "--k8s-namespace"));
        }
        if let Some(selector) = &f.k8s_pod_selector {
            self.kubernetes.pod_selector = Some(selector.clone());
            origins
                .flags
                .push(("kubernetes.pod_selector", "--k8s-pod-selector"));
        }
        if by_pod {
            // Picked by pod on the command line: --process narrows, and without it every
            // process of the pods is a target (not the configured name).
            if f.process.is_none() {
                self.collector.process_name.clear();
            }
            self.collector.process_filter_enabled = true;
        }
        if let Some(dir) = &f.openclaw.openclaw_state_dir {
            self.openclaw.state_dir = Some(dir.clone());
        }
    }
}

/// An on/off setting whose absence means "decide by what is found": `true`, `false` or `auto`.
fn auto_bool(value: &str) -> Result<Option<bool>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(None),
        "true" | "1" | "on" => Ok(Some(true)),
        "false" | "0" | "off" => Ok(Some(false)),
        _ => Err(format!("expected true, false or auto, got '{value}'")),
    }
}

/// `OTEL_EXPORTER_OTLP_*TIMEOUT` milliseconds as the seconds of `otel.timeout_seconds`.
fn millis_as_seconds(value: &str) -> Result<String, String> {
    let ms: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("expected milliseconds, got '{value}'"))?;
    Ok((ms / 1000.0).to_string())
}

/// Parses the OpenTelemetry `key=value` list format of `OTEL_RESOURCE_ATTRIBUTES` and
/// `OTEL_EXPORTER_OTLP_HEADERS`: pairs separated by commas, values percent-encoded.
fn parse_key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got '{pair}'"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("empty key in '{pair}'"));
            }
            Ok((key.to_owned(), percent_decode(value.trim())?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in '{s}'"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::cli::CollectArgs;
    use crate::config::testing::{load_text, no_env};
    use crate::config::{Config, Mode, DEFAULT_SOCKET_PATH};

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        let text = "collector:\n  interval_seconds: 3\n  process_name: fromfile\n";
        let c = load_text(text, no_env).expect("valid");
        assert_eq!(c.collector.interval_seconds, 3.0);
        assert_eq!(c.collector.process_name, "fromfile");
        assert!(c.collector.cpu, "default kept");

        let env = |k: &str| match k {
            "TRACE_CLAW_COLLECTOR_INTERVAL" => Some("4".to_owned()),
            "TRACE_CLAW_MODE" => Some("online".to_owned()),
            _ => None,
        };
        let c = load_text(text, env).expect("valid");
        assert_eq!(c.collector.interval_seconds, 4.0);
        assert_eq!(c.mode, Mode::Online);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).expect("write");
        let flags = CollectArgs {
            interval: Some(5.0),
            ..Default::default()
        };
        let c = Config::load(Some(&path), env, Some(&flags)).expect("valid");
        assert_eq!(c.collector.interval_seconds, 5.0);
    }

    #[test]
    fn socket_path_comes_from_file_then_env_then_flag_and_no_socket_turns_it_off() {
        let c = load_text("", no_env).expect("valid");
        assert!(c.socket.enabled);
        assert_eq!(c.socket.path, PathBuf::from(DEFAULT_SOCKET_PATH));
        let text = "socket:\n  path: /tmp/a.sock\n";
        assert_eq!(
            load_text(text, no_env).expect("valid").socket.path,
            PathBuf::from("/tmp/a.sock")
        );
        let env = |k: &str| (k == "TRACE_CLAW_SOCKET").then(|| "/tmp/b.sock".to_owned());
        assert_eq!(
            load_text(text, env).expect("valid").socket.path,
            PathBuf::from("/tmp/b.sock")
        );
        let flags = CollectArgs {
            socket: Some(PathBuf::from("/tmp/c.sock")),
            ..Default::default()
        };
        let c = Config::load(None, env, Some(&flags)).expect("valid");
        assert_eq!(c.socket.path, PathBuf::from("/tmp/c.sock"));
        assert!(c.socket.enabled);
        let flags = CollectArgs {
            no_socket: true,
            ..Default::default()
        };
        assert!(
            !Config::load(None, no_env, Some(&flags))
                .expect("valid")
                .socket
                .enabled
        );
        let text = "socket:\n  enabled: false\n";
        assert!(!load_text(text, no_env).expect("valid").socket.enabled);
    }

    #[test]
    fn prometheus_listen_is_off_unless_file_env_or_flag_sets_it() {
        assert_eq!(
            load_text("", no_env).expect("valid").prometheus.listen,
            None
        );
        let text = "prometheus:\n  listen: 127.0.0.1:9464\n";
        let c = load_text(text, no_env).expect("valid");
        assert_eq!(c.prometheus.listen.as_deref(), Some("127.0.0.1:9464"));
        let env =
            |k: &str| (k == "TRACE_CLAW_PROMETHEUS_LISTEN").then(|| "0.0.0.0:9100".to_owned());
        let c = load_text(text, env).expect("valid");
        assert_eq!(c.prometheus.listen.as_deref(), Some("0.0.0.0:9100"));
        let flags = CollectArgs {
            prometheus_listen: Some("9464".to_owned()),
            ..Default::default()
        };
        let msg = Config::load(None, env, Some(&flags))
            .expect_err("not IP:PORT")
            .to_string();
        assert!(msg.contains("prometheus.listen"), "{msg}");
        assert!(msg.contains("--prometheus-listen"), "{msg}");
    }

    #[test]
    fn openclaw_follow_is_auto_unless_file_env_or_flag_sets_it() {
        assert_eq!(load_text("", no_env).expect("valid").openclaw.follow, None);
        let text = "openclaw:\n  follow: false\n  log_dir: /var/log/openclaw\n";
        let c = load_text(text, no_env).expect("valid");
        assert_eq!(c.openclaw.follow, Some(false));
        assert_eq!(
            c.openclaw.log_dir,
            std::path::Path::new("/var/log/openclaw")
        );
        let env = |k: &str| (k == "TRACE_CLAW_OPENCLAW_FOLLOW").then(|| "auto".to_owned());
        assert_eq!(load_text(text, env).expect("valid").openclaw.follow, None);
        let flags = CollectArgs {
            openclaw: crate::cli::OpenclawFlags {
                openclaw: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let c = Config::load(None, env, Some(&flags)).expect("valid");
        assert_eq!(c.openclaw.follow, Some(true));
        let env = |k: &str| (k == "TRACE_CLAW_OPENCLAW_FOLLOW").then(|| "maybe".to_owned());
        let msg = load_text("", env).expect_err("bad value").to_string();
        assert!(msg.contains("TRACE_CLAW_OPENCLAW_FOLLOW"), "{msg}");
        assert!(msg.contains("openclaw.follow"), "{msg}");
    }

    #[test]
    fn otel_exporter_variables_follow_the_spec_and_yield_to_trace_claws_own() {
        let env = |k: &str| {
            let v = match k {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => "https://generic:4318",
                "OTEL_EXPORTER_OTLP_HEADERS" => "api-key=one,x-tenant=a%20b",
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS" => "api-key=two",
                "OTEL_EXPORTER_OTLP_COMPRESSION" => "none",
                "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION" => "GZIP",
                "OTEL_EXPORTER_OTLP_TIMEOUT" => "2500",
                "OTEL_EXPORTER_OTLP_CERTIFICATE" => "/etc/ca.pem",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let c = load_text("mode: local\n", env).expect("valid");
        assert_eq!(c.mode, Mode::Online);
        assert_eq!(c.otel.endpoint, "https://generic:4318");
        assert_eq!(c.otel.headers["api-key"], "two", "the _METRICS_ form wins");
        assert_eq!(c.otel.headers["x-tenant"], "a b");
        assert_eq!(c.otel.compression, super::Compression::Gzip);
        assert_eq!(c.otel.timeout_seconds, 2.5);
        assert_eq!(
            c.otel.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let ours = |k: &str| match k {
            "TRACE_CLAW_OTEL_ENDPOINT" => Some("http://ours:4318".to_owned()),
            other => env(other),
        };
        assert_eq!(
            load_text("", ours).expect("valid").otel.endpoint,
            "http://ours:4318"
        );
        let json = |k: &str| (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_owned());
        let msg = load_text("", json).expect_err("http/json").to_string();
        assert!(msg.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{msg}");
        assert!(msg.contains("http/protobuf"), "{msg}");
        let grpc = |k: &str| (k == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned());
        assert_eq!(load_text("", grpc).expect("valid").otel.protocol, "grpc");
        let header = |k: &str| (k == "OTEL_EXPORTER_OTLP_HEADERS").then(|| "bad key=1".to_owned());
        let msg = load_text("", header).expect_err("bad header").to_string();
        assert!(msg.contains("otel.headers"), "{msg}");
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let env = |k: &str| (k == "TRACE_CLAW_COLLECTOR_INTERVAL").then(|| "soon".to_owned());
        let msg = load_text("mode: local\n", env)
            .expect_err("bad env")
            .to_string();
        assert!(msg.contains("TRACE_CLAW_COLLECTOR_INTERVAL"), "{msg}");
    }

    #[test]
    fn endpoint_variable_switches_to_online_unless_mode_is_set() {
        let env = |k: &str| (k == "TRACE_CLAW_OTEL_ENDPOINT").then(|| "http://c:4318".to_owned());
        let c = load_text("mode: local\n", env).expect("valid");
        assert_eq!(
            (c.mode, c.otel.endpoint.as_str()),
            (Mode::Online, "http://c:4318")
        );
        let env = |k: &str| match k {
            "TRACE_CLAW_OTEL_ENDPOINT" => Some("http://c:4318".to_owned()),
            "TRACE_CLAW_MODE" => Some("local".to_owned()),
            _ => None,
        };
        assert_eq!(load_text("", env).expect("valid").mode, Mode::Local);
    }

    #[test]
    fn resource_attributes_come_from_file_and_otel_variable() {
        let env = |k: &str| {
            (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "host.name=node-7,team=a%2Cb".to_owned())
        };
        let c = load_text(
            "otel:\n  resource_attributes:\n    team: x\n    zone: z1\n",
            env,
        )
        .expect("valid");
        let attrs: Vec<(&str, &str)> = c
            .otel
            .resource_attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            attrs,
            [("host.name", "node-7"), ("team", "a,b"), ("zone", "z1")]
        );
        let env = |k: &str| (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "novalue".to_owned());
        let msg = load_text("", env).expect_err("malformed").to_string();
        assert!(msg.contains("OTEL_RESOURCE_ATTRIBUTES"), "{msg}");
    }
}
