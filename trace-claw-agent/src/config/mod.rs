//! Configuration: built-in defaults < YAML file < `TRACE_CLAW_*` environment < CLI flags.
//!
//! Every section is a serde struct with `deny_unknown_fields`, so a typo is an error naming the
//! key and its line instead of a silently ignored setting.
//!
//! - `schema`: the sections, their keys and defaults;
//! - `load`: reading and parsing the file, then layering and validating;
//! - `merge`: the environment and flag layers, and where each key was set;
//! - `validate`: range checks;
//! - `yaml_pos`: the line of a key or of a parse error in the YAML text.

mod load;
mod merge;
mod schema;
mod validate;
mod yaml_pos;

use std::path::PathBuf;

pub use load::{DEFAULT_CONFIG_FILE, MAX_CONFIG_BYTES, MAX_FLOW_DEPTH};
pub use merge::ENV_OVERRIDES;
pub use schema::{
    CollectorConfig, Compression, Config, EbpfMode, KubernetesConfig, LocalConfig, Mode,
    OpenclawConfig, OtelConfig, OtelTlsConfig, PrometheusConfig, ReceiverConfig, SocketConfig,
    DEFAULT_SOCKET_PATH, OTLP_GRPC, OTLP_HTTP_PROTOBUF,
};

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

/// Inputs shared by the tests of every config module.
#[cfg(test)]
mod testing {
    use super::{Config, ConfigError};

    /// An empty environment.
    pub(super) fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Loads `text` as the config file `c.yaml`, with `env` and no flags.
    pub(super) fn load_text(
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).expect("write");
        Config::load(Some(&path), env, None)
    }
}
