//! Reliability: bad input gets a clear error and nothing collected is lost (issue 8).
//!
//! - [`bad_input`]: hostile files where the agent reads input (config now; the analyzer's trace
//!   directory as it lands).
//! - [`faults`]: signals mid-write, a full output disk, target churn and PID reuse.
//!
//! Tests that need root (mount namespaces, PID namespaces, dropped capabilities) print
//! `skipping: <reason>` without it, and panic instead when `CI=true`.

mod bad_input;
mod faults;
mod support;
