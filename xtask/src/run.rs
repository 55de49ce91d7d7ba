//! `cargo xtask run -- ARGS`: set up the eBPF toolchain, build the agent in release mode and run
//! it with ARGS (e.g. `--process node`). Needs root for eBPF; falls back to polling otherwise.

use std::process::Command;

use clap::Args;

use crate::proc_util::{build_agent, run_checked, Profile};
use crate::setup::SetupArgs;

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Skip `cargo xtask setup`.
    #[arg(long)]
    pub no_setup: bool,
    /// Arguments for trace-claw-agent.
    #[arg(last = true)]
    pub agent_args: Vec<String>,
}

/// Builds and runs the agent.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    SetupArgs::BUILD.run_unless(args.no_setup)?;
    let agent = build_agent(Profile::Release)?;
    run_checked(Command::new(agent).args(&args.agent_args))
}
