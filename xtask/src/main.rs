//! `cargo xtask`: setup, test, run and bench helpers.

mod e2e;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// trace-claw development helpers.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

/// The tasks.
#[derive(Debug, Subcommand)]
enum Task {
    /// Trace a live OpenClaw gateway offline (fake model) and check every turn.
    E2eOpenclaw(e2e::E2eArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::E2eOpenclaw(args) => e2e::run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
