//! Dispatch of the parsed command line, shared by both binaries, and the exit-code policy:
//! 0 success, 1 runtime failure (or nothing analyzable), 2 usage or config error,
//! 3 eBPF required but unavailable.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use trace_claw_common::event::{ActionEvent, STATUS_ERROR};
use trace_claw_common::time::Timestamp;

use crate::cli::{Cli, Command, GenerateConfigArgs, LogEventArgs, TopArgs};
use crate::collect::{self, RunLimits};
use crate::config::{Config, ConfigError};
use crate::event_log::{started_ago, EventLogger};
use crate::{analyze, openclaw_config};

/// Exit code of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when `--ebpf require` cannot load the kernel programs.
pub const EXIT_EBPF_UNAVAILABLE: u8 = 3;

/// Parses `std::env::args`, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let usage = e
                .downcast_ref::<analyze::AnalyzeError>()
                .is_some_and(analyze::AnalyzeError::is_usage);
            let code = if usage || e.downcast_ref::<ConfigError>().is_some() {
                EXIT_USAGE
            } else if matches!(
                e.downcast_ref::<collect::CollectError>(),
                Some(collect::CollectError::EbpfUnavailable(_))
            ) {
                EXIT_EBPF_UNAVAILABLE
            } else {
                1
            };
            log::error!("{e:#}");
            ExitCode::from(code)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let env = env_logger::Env::default().default_filter_or(default);
    env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .init();
}

fn load_config(cli: &Cli, flags: Option<&crate::cli::CollectArgs>) -> anyhow::Result<Config> {
    Ok(Config::load(
        cli.config.as_deref(),
        |k| std::env::var(k).ok(),
        flags,
    )?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.command.is_some() && cli.collect != crate::cli::CollectArgs::default() {
        return Err(ConfigError::Invalid {
            origin: "command line".to_owned(),
            key: "collect flags".to_owned(),
            message: "give collect flags after the subcommand, or use no subcommand".to_owned(),
        }
        .into());
    }
    match &cli.command {
        None => collect(&cli, &cli.collect),
        Some(Command::Collect(args)) => collect(&cli, args),
        Some(Command::Analyze(args)) => Ok(analyze::run(args)?),
        Some(Command::LogEvent(args)) => {
            let config = load_config(&cli, None)?;
            log_event(&config, args)
        }
        Some(Command::GenerateConfig(args)) => {
            let config = load_config(&cli, None)?;
            generate_config(&config, args)
        }
        Some(Command::Top(args)) => top(&cli, args),
        Some(Command::Version) => {
            println!("{}", version_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn collect(cli: &Cli, args: &crate::cli::CollectArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(cli, Some(args))?;
    let limits = RunLimits {
        duration: seconds(args.duration, "--duration")?,
        count: args.count,
    };
    collect::run(&config, limits)?;
    Ok(ExitCode::SUCCESS)
}

fn top(cli: &Cli, args: &TopArgs) -> anyhow::Result<ExitCode> {
    let flags = crate::cli::CollectArgs {
        process: args.process.clone(),
        interval: Some(args.interval),
        output_dir: args.output_dir.clone(),
        ebpf: args.ebpf,
        openclaw: args.openclaw.clone(),
        ..Default::default()
    };
    let config = load_config(cli, Some(&flags))?;
    crate::top::run(
        &config,
        crate::top::TopOptions {
            write_files: args.output_dir.is_some(),
            actions: args.actions.max(1),
            connect: args.connect.clone(),
        },
    )
}

fn seconds(value: Option<f64>, flag: &'static str) -> anyhow::Result<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(ConfigError::Invalid {
            origin: format!("flag {flag}"),
            key: flag.trim_start_matches('-').to_owned(),
            message: format!("must be a positive number of seconds, got {s}"),
        }
        .into()),
    }
}

fn log_event(config: &Config, args: &LogEventArgs) -> anyhow::Result<ExitCode> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        origin: format!("flag --{key}"),
        key: key.to_owned(),
        message,
    };
    if !args.duration_ms.is_finite() || args.duration_ms < 0.0 {
        return Err(invalid(
            "duration-ms",
            format!("must be a non-negative number, got {}", args.duration_ms),
        )
        .into());
    }
    if !args.cost_usd.is_finite() || args.cost_usd < 0.0 {
        return Err(invalid(
            "cost-usd",
            format!("must be a non-negative number, got {}", args.cost_usd),
        )
        .into());
    }
    let timestamp = match &args.timestamp {
        Some(t) => Timestamp::parse_rfc3339(t)
            .ok_or_else(|| invalid("timestamp", format!("expected an RFC 3339 time, got '{t}'")))?,
        None => started_ago(args.duration_ms),
    };
    let mut e = ActionEvent::new(args.event_type.clone(), timestamp);
    e.session_id.clone_from(&args.session_id);
    e.model.clone_from(&args.model);
    e.provider.clone_from(&args.provider);
    e.tokens_input = args.tokens_input;
    e.tokens_output = args.tokens_output;
    e.tokens_cache_read = args.tokens_cache_read;
    e.tokens_cache_write = args.tokens_cache_write;
    e.duration_ms = args.duration_ms;
    e.cost_usd = args.cost_usd;
    e.tool_name.clone_from(&args.tool_name);
    e.status.clone_from(&args.status);
    e.error.clone_from(&args.error);
    e.pid = Some(args.pid.unwrap_or_else(std::os::unix::process::parent_id));
    if e.error.is_some() {
        e.status = STATUS_ERROR.to_owned();
    }
    let dir = args.output_dir.as_deref().unwrap_or(&config.output_dir);
    let mut logger = EventLogger::new(dir)?;
    logger.log(&e)?;
    Ok(ExitCode::SUCCESS)
}

fn generate_config(config: &Config, args: &GenerateConfigArgs) -> anyhow::Result<ExitCode> {
    let endpoint = openclaw_config::endpoint(config, args.endpoint.as_deref());
    let mut text =
        serde_json::to_string_pretty(&openclaw_config::diagnostics_json(config, &endpoint))?;
    text.push('\n');
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            eprintln!(
                "wrote {}; merge it into ~/.openclaw/openclaw.json",
                path.display()
            );
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `version` output: version, git commit, and whether the eBPF programs are built in.
pub fn version_text() -> String {
    format!(
        "trace-claw {}\ncommit: {}\nebpf: {}",
        env!("CARGO_PKG_VERSION"),
        env!("TRACE_CLAW_GIT_COMMIT"),
        if crate::EBPF_BUILT_IN {
            "built in"
        } else {
            "not built in (polling only)"
        }
    )
}
