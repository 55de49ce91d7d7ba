//! Integration tests: the built binaries, driven as a user would.

mod analyze;
mod cli;
mod collect;
mod deploy;
mod openclaw_replay;
mod otlp_export;
mod peers;
mod polling_cost;
mod readme;
mod receive;
mod reliability;
mod util;
