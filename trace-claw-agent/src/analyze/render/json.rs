//! `--format json`: the [`Report`] itself, pretty-printed (schema in `docs/analyze-json.md`).

use std::io::{self, Write};

use crate::analyze::summary::report::Report;

/// Writes the JSON document.
pub fn write_json(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    out.write_all(b"\n")
}
