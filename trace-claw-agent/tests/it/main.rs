//! Integration tests: the built binaries, driven as a user would.

mod cli;
mod collect;
mod readme;
mod reliability;
mod util;
