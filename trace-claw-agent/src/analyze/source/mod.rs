//! Reading: finding the input files, leaving unread the daily files outside the window
//! ([`daily`]), telling what each holds ([`classify`]), and reading each
//! format into [`parsed::Parsed`] (actions, notes, metric points) or, for resource samples,
//! into fixed-size aggregates ([`resources`]). [`passes`] runs the readers in parallel.

pub mod action;
pub mod classify;
pub mod daily;
pub mod lines;
pub mod openclaw_log;
pub mod otlp;
pub mod parsed;
pub mod passes;
pub mod records;
pub mod resources;
pub mod sqlite_store;
pub mod transcript;
