//! `cargo xtask`: setup, test, run and benchmark helpers for trace-claw.
//!
//! Each subcommand lives in its own module with its own clap `Args` (a folder of the same name
//! holds its parts). What several subcommands share: `proc_util` (run commands, build the
//! agent), `child` (children stopped on drop), `procfs` (RSS and CPU of a running process) and
//! `tools` (what xtask installs: apt packages, `.deb`s unpacked into `.tools/`, the venv).

mod bench;
mod child;
mod dist;
mod e2e;
mod fresh_check;
mod fuzz;
mod peers;
mod proc_util;
mod procfs;
mod run;
mod setup;
mod soak;
mod test;
#[path = "../../trace-claw-ebpf/toolchain.rs"]
mod toolchain;
mod tools;
mod validate_deploy;
mod vm_test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Developer tasks for trace-claw.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what building and running the agent needs; --tests adds what the tests need (idempotent).
    Setup(setup::SetupArgs),
    /// The whole suite as CI runs it: setup --tests, fmt, clippy, every test, macOS check, deploy, package, soak, fuzz.
    Test(test::TestArgs),
    /// Build the agent (release) and run it with the given arguments.
    Run(run::RunArgs),
    /// The README's set-up commands from an empty toolchain home, timed.
    FreshCheck(fresh_check::FreshCheckArgs),
    /// Release tarball and .deb in target/dist; --check installs and exercises the .deb.
    Dist(dist::DistArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// Trace a live OpenClaw gateway offline (fake model) and check every turn.
    E2eOpenclaw(e2e::E2eArgs),
    /// Fuzz every parser for N seconds each; report executions and findings.
    Fuzz(fuzz::FuzzArgs),
    /// The agent under a churning workload for N minutes: RSS, fds, drops, whole lines.
    Soak(soak::SoakArgs),
    /// Validate compose, Prometheus, Grafana, Kubernetes and Dockerfile offline.
    ValidateDeploy(validate_deploy::ValidateDeployArgs),
    /// Boot Debian kernels (5.10, 6.1, 6.12) in qemu and check the eBPF agent inside each.
    VmTest(vm_test::VmTestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => setup::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Run(args) => run::run(&args),
        Command::FreshCheck(args) => fresh_check::run(&args),
        Command::Dist(args) => dist::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::E2eOpenclaw(args) => e2e::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Soak(args) => soak::run(&args),
        Command::ValidateDeploy(args) => validate_deploy::run(&args),
        Command::VmTest(args) => vm_test::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
