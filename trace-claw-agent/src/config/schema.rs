//! The configuration's shape: one serde struct per YAML section, each with its defaults, and
//! the [`Config`] every command runs with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Local-only or also pushing to an OTLP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// JSONL files only.
    Local,
    /// JSONL files (unless `local.enabled: false`) plus OTLP/HTTP export to `otel.endpoint`.
    Online,
}

/// How to use the kernel programs: key `ebpf`, `TRACE_CLAW_EBPF` or `--ebpf` (hence
/// `ValueEnum`, which also parses the variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EbpfMode {
    /// Load eBPF when possible, else poll procfs with one warning naming the cause.
    Auto,
    /// Fail (exit code 3) when eBPF cannot load.
    Require,
    /// Never load eBPF; poll procfs.
    Off,
}

/// `otel.protocol`: OTLP over HTTP with protobuf bodies (port 4318), the default.
pub const OTLP_HTTP_PROTOBUF: &str = "http/protobuf";
/// `otel.protocol`: OTLP over gRPC (port 4317).
pub const OTLP_GRPC: &str = "grpc";

/// The validated configuration every command runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `local` or `online`.
    pub mode: Mode,
    /// Directory of the JSONL files.
    pub output_dir: PathBuf,
    /// Use of the kernel programs.
    pub ebpf: EbpfMode,
    /// What to sample and how often.
    pub collector: CollectorConfig,
    /// Where online mode exports.
    pub otel: OtelConfig,
    /// What `generate-config` tells OpenClaw.
    pub openclaw: OpenclawConfig,
    /// The embedded OTLP/HTTP receiver.
    pub receiver: ReceiverConfig,
    /// The local JSONL sink.
    pub local: LocalConfig,
    /// The Prometheus pull endpoint.
    pub prometheus: PrometheusConfig,
    /// Pod names from the Kubernetes API server.
    pub kubernetes: KubernetesConfig,
    /// The local socket `top` attaches to.
    pub socket: SocketConfig,
}

/// `socket.*`: the Unix socket a running agent serves its ticks on, for `top` (docs/agent-socket.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketConfig {
    /// Serve the socket (`collect` only; `top` still looks for one at `path`).
    pub enabled: bool,
    /// Where; its directory is created.
    pub path: PathBuf,
}

/// `socket.path` by default.
pub const DEFAULT_SOCKET_PATH: &str = "/run/trace-claw/agent.sock";

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from(DEFAULT_SOCKET_PATH),
        }
    }
}

/// `kubernetes.*`: naming the pods and containers of the node from the API server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Watch the node's pods for `k8s.pod.name`, `k8s.namespace.name`, `k8s.container.name`;
    /// absent: when running in a cluster (`KUBERNETES_SERVICE_HOST` and `NODE_NAME` set).
    pub pod_names: Option<bool>,
    /// The API server's URL (default: from `KUBERNETES_SERVICE_HOST`/`_PORT`).
    pub api_server: Option<String>,
    /// This node's name (default: `NODE_NAME`, which the DaemonSet sets from `spec.nodeName`).
    pub node_name: Option<String>,
    /// Track only processes of pods in this namespace (needs the pod watch).
    pub namespace: Option<String>,
    /// Track only processes of pods whose labels meet this selector, as `kubectl -l` takes it
    /// (`app=gateway,env in (prod,staging),!canary`; needs the pod watch).
    pub pod_selector: Option<String>,
}

impl KubernetesConfig {
    /// The pods targets must run in, when `namespace` or `pod_selector` is set.
    pub fn pod_selection(&self) -> Result<Option<crate::k8s::PodSelector>, String> {
        crate::k8s::PodSelector::new(self.namespace.as_deref(), self.pod_selector.as_deref())
    }
}

/// `collector.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Run the collectors at all.
    pub enabled: bool,
    /// Seconds between samples (> 0).
    pub interval_seconds: f64,
    /// System CPU and load averages.
    pub cpu: bool,
    /// System memory and swap.
    pub memory: bool,
    /// Per-interface network bytes.
    pub network: bool,
    /// Trace the processes named by `process_name`.
    pub process_filter_enabled: bool,
    /// Case-insensitive substring of comm, `argv[0]` basename or exe basename.
    pub process_name: String,
    /// Root of the proc filesystem (`/proc`; `/host/proc` in a container).
    pub proc_root: PathBuf,
}

/// Compression of OTLP request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Sent as is.
    None,
    /// gzip (`Content-Encoding: gzip`).
    Gzip,
}

/// `otel.tls.*`: PEM files for servers with a private CA or that require a client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelTlsConfig {
    /// Certificate authorities to trust besides the built-in and system ones.
    pub ca_file: Option<PathBuf>,
    /// The client's certificate chain (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<PathBuf>,
}

/// `otel.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// OTLP/HTTP base URL (`http://` or `https://`); `/v1/metrics` is appended.
    pub endpoint: String,
    /// The full URL metrics go to, used as is (instead of `endpoint` + `/v1/metrics`).
    pub metrics_endpoint: Option<String>,
    /// The full URL the spans of actions go to, used as is (instead of `endpoint` + `/v1/traces`).
    pub traces_endpoint: Option<String>,
    /// Export each LLM and tool call the agent learns of as a span (online mode).
    pub export_actions: bool,
    /// The OTLP transport: `http/protobuf` or `grpc`.
    pub protocol: String,
    /// Headers sent with every request, e.g. an API key.
    pub headers: BTreeMap<String, String>,
    /// Request body compression: `none` or `gzip`.
    pub compression: Compression,
    /// TLS settings for `https://` endpoints.
    pub tls: OtelTlsConfig,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Per-request timeout in seconds.
    pub timeout_seconds: f64,
    /// Batches held while the endpoint is slow or down; the oldest is dropped beyond this.
    pub queue_batches: usize,
    /// Extra resource attributes (e.g. `host.name: <node>`); the standard
    /// `OTEL_RESOURCE_ATTRIBUTES` variable (`k=v,k2=v2`) adds to and overrides them.
    pub resource_attributes: BTreeMap<String, String>,
}

/// `openclaw.*`: the live action feed of `collect`, and the diagnostics settings
/// `generate-config` writes for OpenClaw.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenclawConfig {
    /// Follow OpenClaw's file log while collecting and write its calls to the events files;
    /// absent: only when the tracked processes include an OpenClaw gateway.
    pub follow: Option<bool>,
    /// OpenClaw's log directory (`logging.file`'s directory; `/tmp/openclaw` by default).
    pub log_dir: PathBuf,
    /// OpenClaw's state directory, whose SQLite stores (`agents/*/agent/*.sqlite`,
    /// `state/openclaw.sqlite`) the feed follows too; absent: `$OPENCLAW_STATE_DIR`, else
    /// `~/.openclaw`.
    pub state_dir: Option<PathBuf>,
    /// Endpoint OpenClaw exports to when the receiver is off.
    pub otel_endpoint: String,
    /// OpenClaw's `service.name`.
    pub service_name: String,
    /// Export spans.
    pub traces: bool,
    /// Export metrics.
    pub metrics: bool,
    /// Export log records.
    pub logs: bool,
    /// Trace sampling ratio, 0 to 1.
    pub sample_rate: f64,
    /// OpenClaw's metric export interval in milliseconds (its minimum is 1000).
    pub flush_interval_ms: u64,
}

/// `receiver.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Start the receiver with `collect`.
    pub enabled: bool,
    /// Address to listen on.
    pub listen: String,
    /// Upstream OTLP/HTTP base URL each request is re-sent to, unchanged.
    pub forward_to: Option<String>,
    /// Largest accepted request body (after decompression), in bytes.
    pub max_body_bytes: usize,
    /// Seconds a client may take to send one request.
    pub request_timeout_seconds: f64,
}

/// `local.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Write samples to JSONL files (may be turned off in online mode only).
    pub enabled: bool,
}

/// `prometheus.*`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Serve the latest samples on `http://<listen>/metrics` (off when absent); `IP:PORT`, e.g.
    /// `127.0.0.1:9464`, or `0.0.0.0:9464` to be scraped from other hosts.
    pub listen: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::Local,
            output_dir: PathBuf::from("./trace_data"),
            ebpf: EbpfMode::Auto,
            collector: CollectorConfig::default(),
            otel: OtelConfig::default(),
            openclaw: OpenclawConfig::default(),
            receiver: ReceiverConfig::default(),
            local: LocalConfig { enabled: true },
            prometheus: PrometheusConfig::default(),
            kubernetes: KubernetesConfig::default(),
            socket: SocketConfig::default(),
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 2.0,
            cpu: true,
            memory: true,
            network: true,
            process_filter_enabled: true,
            process_name: "node".to_owned(),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

impl Default for OtelConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://localhost:4318".to_owned(),
            metrics_endpoint: None,
            traces_endpoint: None,
            export_actions: true,
            protocol: OTLP_HTTP_PROTOBUF.to_owned(),
            headers: BTreeMap::new(),
            compression: Compression::None,
            tls: OtelTlsConfig::default(),
            service_name: "trace-claw-resources".to_owned(),
            timeout_seconds: 5.0,
            queue_batches: 64,
            resource_attributes: BTreeMap::new(),
        }
    }
}

impl Default for OpenclawConfig {
    fn default() -> Self {
        Self {
            follow: None,
            log_dir: PathBuf::from("/tmp/openclaw"),
            state_dir: None,
            otel_endpoint: "http://localhost:4318".to_owned(),
            service_name: "openclaw-gateway".to_owned(),
            traces: true,
            metrics: true,
            logs: true,
            sample_rate: 1.0,
            flush_interval_ms: 5000,
        }
    }
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: "127.0.0.1:4318".to_owned(),
            forward_to: None,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_seconds: 30.0,
        }
    }
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Config {
    /// Time between samples.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.collector.interval_seconds)
    }

    /// Whether samples are pushed over OTLP.
    pub fn exports_otlp(&self) -> bool {
        self.mode == Mode::Online
    }
}
