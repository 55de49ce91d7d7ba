//! trace-claw agent: collection (eBPF or polling), exporters, OTLP receiver and analyzer.
//!
//! The two binaries, `trace-claw-agent` and `trace-claw`, are the same CLI ([`app::main`]).

pub mod action_watch;
pub mod agent_socket;
pub mod analyze;
pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daily_jsonl;
pub mod error;
pub mod event_log;
pub mod export;
pub mod http_client;
pub mod http_server;
pub mod k8s;
pub mod openclaw_config;
pub mod openclaw_feed;
pub mod receive;
pub mod runtime;
pub mod tail;
pub mod target;
pub mod top;

/// Whether this build embeds the eBPF programs.
pub const EBPF_BUILT_IN: bool = cfg!(not(no_ebpf));
