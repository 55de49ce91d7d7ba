//! Command-line types (clap derive) shared by `trace-claw-agent` and `trace-claw`.
//!
//! Only parsing lives here; [`crate::config`] merges these flags over the config file and
//! environment, and [`crate::app`] dispatches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::EbpfMode;

/// Trace OpenClaw AI-assistant workflows with the CPU, memory, disk and network each step costs.
///
/// Without a subcommand, runs `collect` with the flags given.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    /// Config file (YAML); default ./trace_claw.yaml when it exists, else built-in defaults.
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// More log output on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Flags of `collect` when no subcommand is given.
    #[command(flatten)]
    pub collect: CollectArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Collect system and per-process resource samples (the default command).
    Collect(CollectArgs),
    /// Analyze a trace directory: summaries, action timeline, full timeline.
    Analyze(AnalyzeArgs),
    /// Append an LLM, tool or custom action event to events-YYYY-MM-DD.jsonl.
    LogEvent(LogEventArgs),
    /// Print OpenClaw's diagnostics config pointing at trace-claw (or write it with -o).
    GenerateConfig(GenerateConfigArgs),
    /// A live terminal view of the tracked processes, their exec/exit events and actions.
    Top(TopArgs),
    /// Print version, git commit and whether eBPF support was built in.
    Version,
}

/// Flags of `top`.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Trace processes whose name contains NAME, and everything they spawn.
    #[arg(short, long, value_name = "NAME")]
    pub process: Option<String>,

    /// Seconds between refreshes.
    #[arg(short, long, value_name = "SECONDS", default_value_t = 1.0)]
    pub interval: f64,

    /// Use the kernel programs: auto, require or off.
    #[arg(long, value_enum, value_name = "MODE")]
    pub ebpf: Option<EbpfMode>,

    /// Also write the JSONL files here (the trace directory whose actions are shown; default
    /// ./trace_data, where log-event writes).
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Whether and where to follow OpenClaw's file log.
    #[command(flatten)]
    pub openclaw: OpenclawFlags,

    /// Finished actions kept on screen.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub actions: usize,

    /// Attach to the running agent serving this socket; fail if none does. Without it, `top`
    /// attaches when `socket.path` (default /run/trace-claw/agent.sock) exists and collects
    /// itself otherwise.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["process", "ebpf", "output_dir"])]
    pub connect: Option<PathBuf>,
}

/// Flags of `collect`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct CollectArgs {
    /// Trace processes whose comm, argv[0] or exe name contains NAME (case-insensitive), and
    /// everything they spawn.
    #[arg(short, long, value_name = "NAME")]
    pub process: Option<String>,

    /// Seconds between samples.
    #[arg(short, long, value_name = "SECONDS")]
    pub interval: Option<f64>,

    /// Directory for the JSONL files.
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Stop after this many samples (ticks).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Use the kernel programs: auto, require or off (env TRACE_CLAW_EBPF).
    #[arg(long, value_enum, value_name = "MODE")]
    pub ebpf: Option<EbpfMode>,

    /// Also export samples over OTLP/HTTP to this endpoint (implies mode online).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// Run the embedded OTLP/HTTP receiver for OpenClaw's telemetry.
    #[arg(long)]
    pub receive: bool,

    /// Address of the receiver (default 127.0.0.1:4318).
    #[arg(long, value_name = "ADDR")]
    pub receive_listen: Option<String>,

    /// Serve the latest samples for Prometheus on http://ADDR/metrics, e.g. 127.0.0.1:9464
    /// (env TRACE_CLAW_PROMETHEUS_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub prometheus_listen: Option<String>,

    /// Serve ticks to `top` on this Unix socket (default /run/trace-claw/agent.sock; env
    /// TRACE_CLAW_SOCKET).
    #[arg(long, value_name = "PATH", conflicts_with = "no_socket")]
    pub socket: Option<PathBuf>,

    /// Do not serve the socket `top` attaches to.
    #[arg(long)]
    pub no_socket: bool,

    /// Whether and where to follow OpenClaw's file log.
    #[command(flatten)]
    pub openclaw: OpenclawFlags,

    /// Track only the processes of pods in this Kubernetes namespace (every process of them,
    /// unless --process narrows it; needs the pod watch; env TRACE_CLAW_K8S_NAMESPACE).
    #[arg(long, value_name = "NAMESPACE")]
    pub k8s_namespace: Option<String>,

    /// Track only the processes of pods whose labels meet SELECTOR, as `kubectl -l` takes it,
    /// e.g. 'app=gateway,env in (prod,staging)' (env TRACE_CLAW_K8S_POD_SELECTOR).
    #[arg(long, value_name = "SELECTOR")]
    pub k8s_pod_selector: Option<String>,
}

/// The live OpenClaw feed's flags, shared by `collect` and `top`.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct OpenclawFlags {
    /// Follow OpenClaw's file log and write its LLM and tool calls to the trace directory as
    /// they end (default: when an OpenClaw gateway is among the tracked processes).
    #[arg(long, conflicts_with = "no_openclaw")]
    pub openclaw: bool,

    /// Do not follow OpenClaw's file log, even when a gateway is tracked.
    #[arg(long)]
    pub no_openclaw: bool,

    /// OpenClaw's log directory (default /tmp/openclaw; env TRACE_CLAW_OPENCLAW_LOG_DIR).
    #[arg(long, value_name = "DIR")]
    pub openclaw_log_dir: Option<PathBuf>,

    /// OpenClaw's state directory, whose SQLite stores are followed too (default
    /// $OPENCLAW_STATE_DIR, else ~/.openclaw; env TRACE_CLAW_OPENCLAW_STATE_DIR).
    #[arg(long, value_name = "DIR")]
    pub openclaw_state_dir: Option<PathBuf>,
}

/// Output format of `analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeFormat {
    /// Aligned terminal tables (default).
    Table,
    /// Plain lines, for piping.
    Text,
    /// One JSON document (documented, stable schema).
    Json,
    /// A self-contained HTML report with an SVG timeline.
    Html,
}

/// Flags of `analyze`.
#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Directory holding trace-claw JSONL files and copied OpenClaw logs/transcripts.
    #[arg(short, long, value_name = "DIR", default_value = "./trace_data")]
    pub trace_dir: PathBuf,

    /// OpenClaw's log directory, read in place (e.g. /tmp/openclaw).
    #[arg(long, value_name = "DIR")]
    pub openclaw_logs: Option<PathBuf>,

    /// OpenClaw's state directory, read in place and read-only: JSONL transcripts under
    /// agents/*/sessions/, the SQLite stores agents/*/agent/*.sqlite and state/openclaw.sqlite
    /// (default: ~/.openclaw when it exists).
    #[arg(long, value_name = "DIR", env = "OPENCLAW_STATE_DIR")]
    pub openclaw_state: Option<PathBuf>,

    /// Do not read OpenClaw's state directory: neither --openclaw-state, $OPENCLAW_STATE_DIR
    /// nor the default ~/.openclaw.
    #[arg(long)]
    pub no_openclaw_state: bool,

    /// Only what happened at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only what happened before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// At most this many rows per timeline.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Only this session.
    #[arg(long, value_name = "ID")]
    pub session: Option<String>,

    /// Plain lines instead of tables (same as --format text).
    #[arg(long)]
    pub no_table: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Table)]
    pub format: AnalyzeFormat,

    /// Write the report here instead of stdout (html default: <trace-dir>/report.html).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Flags of `log-event`.
#[derive(Debug, Clone, Args)]
pub struct LogEventArgs {
    /// Event type: llm, tool, or any other name.
    #[arg(value_name = "TYPE")]
    pub event_type: String,

    /// Model of an LLM call.
    #[arg(long)]
    pub model: Option<String>,

    /// Provider of an LLM call.
    #[arg(long)]
    pub provider: Option<String>,

    /// Input tokens (excluding cache).
    #[arg(long, default_value_t = 0)]
    pub tokens_input: u64,

    /// Output tokens.
    #[arg(long, default_value_t = 0)]
    pub tokens_output: u64,

    /// Tokens read from the prompt cache.
    #[arg(long, default_value_t = 0)]
    pub tokens_cache_read: u64,

    /// Tokens written to the prompt cache.
    #[arg(long, default_value_t = 0)]
    pub tokens_cache_write: u64,

    /// Duration in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub duration_ms: f64,

    /// Cost in US dollars.
    #[arg(long, default_value_t = 0.0)]
    pub cost_usd: f64,

    /// Tool name of a tool call.
    #[arg(long)]
    pub tool_name: Option<String>,

    /// Session the action belongs to.
    #[arg(long)]
    pub session_id: Option<String>,

    /// ok or error.
    #[arg(long, default_value = "ok")]
    pub status: String,

    /// Error message (implies status error).
    #[arg(long)]
    pub error: Option<String>,

    /// Process that ran the action; its cost is charged to the tracked tree holding it
    /// (default: the process that runs log-event, i.e. its parent).
    #[arg(long)]
    pub pid: Option<u32>,

    /// Start time (RFC 3339); default now minus the duration.
    #[arg(long, value_name = "TIME")]
    pub timestamp: Option<String>,

    /// Directory for events-YYYY-MM-DD.jsonl (default: output_dir from the config).
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

/// Flags of `generate-config`.
#[derive(Debug, Clone, Args)]
pub struct GenerateConfigArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// OTLP endpoint OpenClaw should export to (default: the receiver, else openclaw.otel_endpoint).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}
