//! `analyze`: reads a trace directory and prints summaries and timelines.

use crate::cli::AnalyzeArgs;

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The analyzer has not landed yet.
    #[error(
        "analyze is not implemented yet (tracked by the analyzer issue); no output was produced"
    )]
    NotImplemented,
}

/// Runs `analyze`.
pub fn run(_args: &AnalyzeArgs) -> Result<(), AnalyzeError> {
    Err(AnalyzeError::NotImplemented)
}
