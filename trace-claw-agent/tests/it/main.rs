//! Integration tests: the built binaries, driven as a user would.
mod deploy;
