//! Reliability: bad input gets a clear error and nothing collected is lost (issue 8).
//!
//! - [`bad_input`]: hostile config files and a hostile trace directory for the analyzer.
//! - [`faults`]: signals mid-write, a full output disk, target churn and PID reuse, an OTLP
//!   endpoint answering 500, a receiver under a slowloris.
//! - [`ebpf_fallback`]: eBPF load failures (no tracefs, no bpffs, non-root) fall back at once.
//! - [`soak`]: the CI-sized soak (`cargo xtask soak` runs the long one).
//!
//! Tests that need root (mount namespaces, PID namespaces, dropped capabilities) print
//! `skipping: <reason>` without it, and panic instead when `CI=true`.

mod bad_input;
mod ebpf_fallback;
mod faults;
mod soak;
pub mod support;
