//! `cargo xtask test`: the whole suite, as CI runs it: setup, `cargo fmt --check`,
//! `cargo clippy --all-targets -D warnings`, `cargo test --workspace`,
//! `cargo check --target aarch64-apple-darwin -p trace-claw-agent`, the offline validation
//! of the deployment files (`cargo xtask validate-deploy`), the release package installed and
//! run under its unit's privileges (`cargo xtask dist --check`), the agent on Debian's 6.1 and
//! 6.12 kernels in qemu (`cargo xtask vm-test`), a one-minute soak of the agent
//! under a churning workload, and a 60 s smoke run of every fuzz target.

use std::process::Command;

use clap::Args;

use crate::dist::{self, DistArgs};
use crate::fuzz::{self, FuzzArgs};
use crate::proc_util::{in_ci, is_root, run_checked};
use crate::setup::SetupArgs;
use crate::soak::{self, SoakArgs};
use crate::validate_deploy::{self, ValidateDeployArgs};
use crate::vm_test::{self, VmTestArgs};

/// Flags of `test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Skip `cargo xtask setup` (when it already ran).
    #[arg(long)]
    pub no_setup: bool,
    /// Skip the soak and fuzz smoke runs (quicker local iterations; CI runs them).
    #[arg(long)]
    pub skip_long: bool,
    /// Extra arguments for `cargo test` (e.g. a test name filter).
    #[arg(last = true)]
    pub cargo_test_args: Vec<String>,
}

/// Runs the suite, stopping at the first failing step.
pub fn run(args: &TestArgs) -> anyhow::Result<()> {
    SetupArgs::TESTS.run_unless(args.no_setup)?;
    if !is_root() && !in_ci() {
        eprintln!("test: note: not root, so the eBPF tests will print 'skipping'; run `sudo -E cargo xtask test` to include them");
    }
    run_checked(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run_checked(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_checked(
        Command::new("cargo")
            .args(["test", "--workspace"])
            .args(&args.cargo_test_args),
    )?;
    run_checked(Command::new("cargo").args([
        "check",
        "--target",
        "aarch64-apple-darwin",
        "-p",
        "trace-claw-agent",
    ]))?;
    validate_deploy::run(&ValidateDeployArgs { no_install: false })?;
    // The release package, installed and run under the unit's privileges: needs root, so it
    // fails under CI without it and is left out (with a note) for a developer without it.
    if is_root() || in_ci() {
        dist::run(&DistArgs { check: true })?;
    } else {
        eprintln!("test: note: not root, so the .deb install check is left out; run `sudo -E cargo xtask test` to include it");
    }
    // The LTS kernels the support table promises, booted in qemu (about 10 s each under TCG
    // once the kernels are cached); installing qemu needs root, as above.
    if is_root() || in_ci() {
        vm_test::run(&VmTestArgs {
            kernels: vec!["6.1".to_owned(), "6.12".to_owned()],
            boot_timeout: 300,
        })?;
    } else {
        eprintln!("test: note: not root, so the kernel matrix (vm-test 6.1, 6.12) is left out");
    }
    if !args.skip_long {
        soak::run(&SoakArgs {
            minutes: 1.0,
            interval: 1.0,
            processes: 20,
            ebpf: if is_root() { "require" } else { "auto" }.to_owned(),
            debug: true,
        })?;
        fuzz::run(&FuzzArgs {
            seconds: 60,
            targets: Vec::new(),
            sanitizer: "none".to_owned(),
            rss_limit_mb: 2048,
            replay_only: false,
        })?;
    }
    eprintln!("test: all steps passed");
    Ok(())
}
