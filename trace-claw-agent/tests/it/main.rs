//! Integration tests: the built binaries, driven as a user would.

mod cli;
mod collect;
mod otlp_export;
mod peers;
mod readme;
mod receive;
mod util;
