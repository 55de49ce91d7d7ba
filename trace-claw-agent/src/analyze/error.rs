//! Why an analysis could not run or finish.

use std::path::PathBuf;

/// Why an analysis could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// A file could not be read.
    #[error("cannot read '{path}'")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The report could not be written.
    #[error("cannot write the report to '{path}'")]
    Write {
        /// Where.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A flag has an invalid value.
    #[error("invalid {flag} '{value}': {reason}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl AnalyzeError {
    /// Whether the error is the user's invocation (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage { .. })
    }
}
