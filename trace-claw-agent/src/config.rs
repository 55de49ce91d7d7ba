//! Configuration: built-in defaults < YAML file < `TRACE_CLAW_*` environment < CLI flags.
//!
//! Every section is a serde struct with `deny_unknown_fields`, so a typo is an error naming the
//! key and its line instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{CollectArgs, EbpfMode};

/// File read when `-c` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "trace_claw.yaml";

/// Largest config file accepted, in bytes. Real configs are a few KiB; the limit keeps a wrong
/// `-c` path (a log, a disk image) from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Deepest `[` / `{` nesting accepted. A config needs none; the YAML parser's time grows with
/// the square of the depth (100,000 levels took minutes), so deeper input is refused first.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Local-only or also pushing to an OTLP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// JSONL files only.
    Local,
    /// JSONL files (unless `local.enabled: false`) plus OTLP/HTTP export to `otel.endpoint`.
    Online,
}

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
    /// Case-insensitive substring of comm, argv[0] basename or exe basename.
    pub process_name: String,
    /// Root of the proc filesystem (`/proc`; `/host/proc` in a container).
    pub proc_root: PathBuf,
}

/// `otel.*`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelConfig {
    /// OTLP/HTTP base URL; `/v1/metrics` is appended.
    pub endpoint: String,
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

/// `openclaw.*`: the diagnostics settings `generate-config` writes for OpenClaw.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenclawConfig {
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

/// A configuration that cannot be used; exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config '{path}'")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config '{path}' is larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The YAML is malformed, has an unknown key or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value has the right type but is out of range.
    #[error("{origin}: {key}: {message}")]
    Invalid {
        /// `file:line`, an environment variable, or a flag.
        origin: String,
        /// Dotted key, e.g. `collector.interval_seconds`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Where a setting came from, for error messages.
struct Origins<'a> {
    file: Option<(&'a Path, &'a str)>,
    env: Vec<(&'static str, &'static str)>,
    flags: Vec<(&'static str, &'static str)>,
}

impl Origins<'_> {
    fn of(&self, key: &str) -> String {
        if let Some((_, flag)) = self.flags.iter().find(|(k, _)| *k == key) {
            return format!("flag {flag}");
        }
        if let Some((_, var)) = self.env.iter().find(|(k, _)| *k == key) {
            return format!("environment {var}");
        }
        match self.file {
            Some((path, text)) => format!("{}:{}", path.display(), line_of_key(text, key)),
            None => "default".to_owned(),
        }
    }
}

/// Environment overrides: (variable, dotted key).
/// `TRACE_CLAW_OTEL_ENDPOINT` comes before `TRACE_CLAW_MODE`: the endpoint switches to online
/// mode, and an explicit mode still has the last word.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
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
];

impl Config {
    /// Loads defaults, then `path` (or `./trace_claw.yaml` when it exists), then the
    /// `TRACE_CLAW_*` variables read through `env`, then `flags`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: Option<&CollectArgs>,
    ) -> Result<Self, ConfigError> {
        let default_path = Path::new(DEFAULT_CONFIG_FILE);
        let path = path.or_else(|| default_path.is_file().then_some(default_path));
        let text = match path {
            Some(p) => Some(read_config(p)?),
            None => None,
        };
        let mut config = match (&text, path) {
            (Some(text), Some(p)) => Self::from_yaml(p, text)?,
            _ => Self::default(),
        };
        let mut origins = Origins {
            file: path.zip(text.as_deref()),
            env: Vec::new(),
            flags: Vec::new(),
        };
        for (var, key) in ENV_OVERRIDES {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                config
                    .set(key, &value)
                    .map_err(|message| ConfigError::Invalid {
                        origin: format!("environment {var}"),
                        key: (*key).to_owned(),
                        message,
                    })?;
                origins.env.push((key, var));
            }
        }
        if let Some(attrs) = env("OTEL_RESOURCE_ATTRIBUTES").filter(|v| !v.trim().is_empty()) {
            let parsed =
                parse_resource_attributes(&attrs).map_err(|message| ConfigError::Invalid {
                    origin: "environment OTEL_RESOURCE_ATTRIBUTES".to_owned(),
                    key: "otel.resource_attributes".to_owned(),
                    message,
                })?;
            config.otel.resource_attributes.extend(parsed);
        }
        if let Some(flags) = flags {
            config.apply_flags(flags, &mut origins.flags);
        }
        config.validate(&origins)?;
        Ok(config)
    }

    /// Parses one YAML document; an empty file means all defaults.
    pub fn from_yaml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        if let Some(line) = too_deep(text) {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                line,
                message: format!("nested deeper than {MAX_FLOW_DEPTH} levels"),
            });
        }
        serde_norway::from_str(text).map_err(|e| {
            let message = strip_location(&e.to_string());
            let mut line = e.location().map_or(0, |l| l.line());
            // serde reports a duplicate field at the start of its mapping: point at the repeat.
            if let Some(key) = message
                .split_once("duplicate field `")
                .and_then(|(_, rest)| rest.split('`').next())
            {
                line = line_of_repeat(text, line, key).unwrap_or(line);
            }
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                message,
            }
        })
    }

    /// Time between samples.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.collector.interval_seconds)
    }

    /// Whether samples are pushed over OTLP.
    pub fn exports_otlp(&self) -> bool {
        self.mode == Mode::Online
    }

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
            _ => return Err(format!("no such key '{key}'")),
        }
        Ok(())
    }

    fn apply_flags(&mut self, f: &CollectArgs, origins: &mut Vec<(&'static str, &'static str)>) {
        if let Some(name) = &f.process {
            self.collector.process_name.clone_from(name);
            self.collector.process_filter_enabled = true;
            origins.push(("collector.process_name", "--process"));
        }
        if let Some(interval) = f.interval {
            self.collector.interval_seconds = interval;
            origins.push(("collector.interval_seconds", "--interval"));
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
            origins.push(("otel.endpoint", "--otlp-endpoint"));
        }
        if f.receive {
            self.receiver.enabled = true;
        }
        if let Some(listen) = &f.receive_listen {
            self.receiver.listen.clone_from(listen);
            self.receiver.enabled = true;
            origins.push(("receiver.listen", "--receive-listen"));
        }
    }

    fn validate(&self, origins: &Origins<'_>) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| ConfigError::Invalid {
            origin: origins.of(key),
            key: key.to_owned(),
            message,
        };
        let interval = self.collector.interval_seconds;
        // Below 1 ms the timer period rounds towards zero, which the ticker cannot run.
        if !interval.is_finite() || !(0.001..=86_400.0).contains(&interval) {
            return Err(fail(
                "collector.interval_seconds",
                format!("must be a number of seconds in [0.001, 86400], got {interval}"),
            ));
        }
        if self.collector.process_filter_enabled && self.collector.process_name.trim().is_empty() {
            return Err(fail(
                "collector.process_name",
                "must not be empty".to_owned(),
            ));
        }
        for (key, url) in [
            ("otel.endpoint", &self.otel.endpoint),
            ("openclaw.otel_endpoint", &self.openclaw.otel_endpoint),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(
                    key,
                    format!("must be an http:// or https:// URL, got '{url}'"),
                ));
            }
        }
        if let Some(url) = &self.receiver.forward_to {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(
                    "receiver.forward_to",
                    format!("must be an http:// or https:// URL, got '{url}'"),
                ));
            }
        }
        if self
            .receiver
            .listen
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(fail(
                "receiver.listen",
                format!("must be IP:PORT, got '{}'", self.receiver.listen),
            ));
        }
        if !(0.0..=1.0).contains(&self.openclaw.sample_rate) {
            return Err(fail(
                "openclaw.sample_rate",
                format!("must be between 0 and 1, got {}", self.openclaw.sample_rate),
            ));
        }
        if self.openclaw.flush_interval_ms < 1000 {
            return Err(fail(
                "openclaw.flush_interval_ms",
                format!(
                    "OpenClaw's minimum is 1000, got {}",
                    self.openclaw.flush_interval_ms
                ),
            ));
        }
        if !self.otel.timeout_seconds.is_finite() || self.otel.timeout_seconds <= 0.0 {
            return Err(fail("otel.timeout_seconds", "must be positive".to_owned()));
        }
        if !self.receiver.request_timeout_seconds.is_finite()
            || self.receiver.request_timeout_seconds <= 0.0
        {
            return Err(fail(
                "receiver.request_timeout_seconds",
                "must be positive".to_owned(),
            ));
        }
        if self.otel.queue_batches == 0 {
            return Err(fail("otel.queue_batches", "must be at least 1".to_owned()));
        }
        if self.receiver.max_body_bytes == 0 {
            return Err(fail(
                "receiver.max_body_bytes",
                "must be at least 1".to_owned(),
            ));
        }
        if !self.local.enabled && self.mode == Mode::Local {
            return Err(fail(
                "local.enabled",
                "cannot be false in local mode: samples would go nowhere".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Reads a config file of at most [`MAX_CONFIG_BYTES`] as UTF-8 text.
fn read_config(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
            limit: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The 1-based line where `[` / `{` nesting first exceeds [`MAX_FLOW_DEPTH`], if it does.
/// Brackets inside quotes count too: a config never has 64 unclosed ones.
fn too_deep(text: &str) -> Option<usize> {
    let (mut depth, mut line) = (0usize, 1usize);
    for b in text.bytes() {
        match b {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parses the OpenTelemetry `OTEL_RESOURCE_ATTRIBUTES` format: `key=value` pairs separated by
/// commas, values percent-encoded.
fn parse_resource_attributes(text: &str) -> Result<Vec<(String, String)>, String> {
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

/// serde_norway appends " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// 1-based line of the second `key:` in the block mapping that starts at 1-based line
/// `start`, if there is one.
fn line_of_repeat(text: &str, start: usize, key: &str) -> Option<usize> {
    let mut indent = None;
    let mut seen = false;
    for (i, line) in text.lines().enumerate().skip(start.saturating_sub(1)) {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let here = line.len() - body.len();
        let level = *indent.get_or_insert(here);
        if here < level {
            return None; // the mapping ended
        }
        let name = body
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if here == level && name == key {
            if seen {
                return Some(i + 1);
            }
            seen = true;
        }
    }
    None
}

/// 1-based line of a dotted key (`collector.interval_seconds`) in block-style YAML, 0 if absent.
fn line_of_key(text: &str, dotted: &str) -> usize {
    let parts: Vec<&str> = dotted.split('.').collect();
    let mut depth = 0;
    let mut indents: Vec<usize> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&d| indent <= d) {
            indents.pop();
        }
        if indents.len() != depth {
            continue;
        }
        let key = body
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if key == parts[depth] {
            if depth + 1 == parts.len() {
                return i + 1;
            }
            indents.push(indent);
            depth += 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_text(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).expect("write");
        Config::load(Some(&path), env, None)
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = load_text("mode: local\ncollector:\n  intervall: 3\n", no_env)
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("c.yaml:3:"), "{msg}");
        assert!(msg.contains("intervall"), "{msg}");
    }

    #[test]
    fn duplicate_key_names_the_repeat() {
        let text = "mode: local\ncollector:\n  interval_seconds: 2\n  # again\n  cpu: true\n  interval_seconds: 3\n";
        let err = Config::from_yaml(Path::new("c.yaml"), text).expect_err("duplicate");
        let msg = err.to_string();
        assert!(msg.starts_with("c.yaml:6: "), "{msg}");
        assert!(msg.contains("duplicate field `interval_seconds`"), "{msg}");
    }

    #[test]
    fn wrong_type_names_line() {
        let msg = load_text(
            "collector:\n  cpu: true\n  interval_seconds: fast\n",
            no_env,
        )
        .expect_err("wrong type")
        .to_string();
        assert!(msg.contains("c.yaml:3:"), "{msg}");
    }

    #[test]
    fn negative_interval_names_key_and_line() {
        let msg = load_text(
            "# top\ncollector:\n  cpu: true\n  interval_seconds: -1\n",
            no_env,
        )
        .expect_err("negative")
        .to_string();
        assert!(msg.contains("c.yaml:4"), "{msg}");
        assert!(msg.contains("collector.interval_seconds"), "{msg}");
    }

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
    fn bad_env_value_names_the_variable() {
        let env = |k: &str| (k == "TRACE_CLAW_COLLECTOR_INTERVAL").then(|| "soon".to_owned());
        let msg = load_text("mode: local\n", env)
            .expect_err("bad env")
            .to_string();
        assert!(msg.contains("TRACE_CLAW_COLLECTOR_INTERVAL"), "{msg}");
    }

    #[test]
    fn rejects_an_interval_too_small_for_the_ticker() {
        for tiny in ["1e-12", "0.0009", "5e-324"] {
            let msg = load_text(&format!("collector:\n  interval_seconds: {tiny}\n"), no_env)
                .expect_err("too small")
                .to_string();
            assert!(msg.contains("c.yaml:2"), "{msg}");
        }
        let c = load_text("collector:\n  interval_seconds: 0.001\n", no_env).expect("1 ms");
        assert!(!c.interval().is_zero());
    }

    #[test]
    fn refuses_deep_nesting_before_the_yaml_parser_sees_it() {
        let deep = format!("mode: local\nx: {}", "{a: ".repeat(100_000));
        let msg = load_text(&deep, no_env).expect_err("too deep").to_string();
        assert!(msg.contains("c.yaml:2: nested deeper than 64"), "{msg}");
        let ok = format!("x: {}1{}\n", "[".repeat(64), "]".repeat(64));
        assert!(too_deep(&ok).is_none());
    }

    #[test]
    fn refuses_a_file_over_the_size_limit_without_reading_it_all() {
        let mut big = "mode: local\n".to_owned();
        big.push_str(&"#".repeat(MAX_CONFIG_BYTES as usize));
        let msg = load_text(&big, no_env).expect_err("too big").to_string();
        assert!(
            msg.contains("c.yaml' is larger than 1048576 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, b"mode: local\n# \xff\n").expect("write");
        let err = Config::load(Some(&path), no_env, None).expect_err("not utf-8");
        let msg = crate::error::error_chain(&err);
        assert!(msg.contains("c.yaml") && msg.contains("index 14"), "{msg}");
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

    #[test]
    fn finds_nested_key_lines() {
        let text = "mode: local\notel:\n  endpoint: x\ncollector:\n  # c\n  enabled: true\n  interval_seconds: 1\n";
        assert_eq!(line_of_key(text, "collector.interval_seconds"), 7);
        assert_eq!(line_of_key(text, "otel.endpoint"), 3);
        assert_eq!(line_of_key(text, "collector.process_name"), 0);
    }
}
