//! Types shared by every part of trace-claw.
//!
//! - [`abi`]: `#[repr(C)]` map keys, values and ring-buffer events shared with the kernel
//!   programs (always available, `no_std`).
//! - [`names`]: the one definition of every metric name, with unit and kind.
//! - [`tracepoint`]: the tracepoint field offsets and kernel flag values the programs rely on
//!   (always available, `no_std`).
//! - [`sample`], [`event`], [`cost`], [`time`] (feature `user`): the serde types written to JSONL by the
//!   agent and read back by the analyzer.
#![cfg_attr(not(feature = "user"), no_std)]

pub mod abi;
pub mod names;
pub mod tracepoint;

#[cfg(feature = "user")]
pub mod cost;
#[cfg(feature = "user")]
pub mod event;
#[cfg(feature = "user")]
pub mod sample;
#[cfg(feature = "user")]
pub mod time;
