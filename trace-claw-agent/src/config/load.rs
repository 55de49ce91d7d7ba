//! Reading the config file: size and nesting guards, YAML parsing with the line of every
//! error, then the environment and flag layers and validation.

use std::io::Read;
use std::path::Path;

use super::merge::Origins;
use super::schema::Config;
use super::{yaml_pos, ConfigError};
use crate::cli::CollectArgs;

/// File read when `-c` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "trace_claw.yaml";

/// Largest config file accepted, in bytes. Real configs are a few KiB; the limit keeps a wrong
/// `-c` path (a log, a disk image) from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Deepest `[` / `{` nesting accepted. A config needs none; the YAML parser's time grows with
/// the square of the depth (100,000 levels took minutes), so deeper input is refused first.
pub const MAX_FLOW_DEPTH: usize = 64;

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
        let mut origins = Origins::new(path.zip(text.as_deref()));
        config.apply_env(env, &mut origins)?;
        if let Some(flags) = flags {
            config.apply_flags(flags, &mut origins);
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
            let (line, message) = yaml_pos::locate_error(text, &e);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                message,
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{load_text, no_env};

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
}
