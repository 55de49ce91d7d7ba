//! `cargo xtask`: setup, test, run and bench helpers.
fn main() {}
