//! What both terminal outputs (tables and plain lines) say after their rows: how many rows
//! were left out, the duplicates merged, the files read and the lines skipped.

use std::io::{self, Write};

use super::format::kind_name;
use crate::analyze::summary::report::Report;

/// A note that `n` more `what` were left out of a table or listing.
pub fn omitted(out: &mut dyn Write, n: u64, what: &str) -> io::Result<()> {
    if n > 0 {
        writeln!(
            out,
            "… {n} more {what} not shown (use --limit, --since, --until or --session)"
        )?;
    }
    Ok(())
}

/// Duplicates merged, files read and skipped lines: the end of both outputs.
pub fn write_footer(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    for d in &r.duplicates {
        writeln!(
            out,
            "merged: {} {} cop{} of calls also seen in {} (kept {})",
            d.count,
            d.dropped,
            if d.count == 1 { "y" } else { "ies" },
            d.kept,
            d.kept
        )?;
    }
    for f in &r.inputs {
        writeln!(
            out,
            "input: {} ({}) lines={} records={} bad={}",
            f.path,
            kind_name(f.kind),
            f.lines,
            f.records,
            f.bad_lines
        )?;
    }
    for note in r
        .inputs
        .iter()
        .filter_map(|f| f.incomplete_last_line.as_ref())
    {
        writeln!(out, "note: {note}")?;
    }
    let bad: u64 = r.inputs.iter().map(|f| f.bad_lines).sum();
    if bad > 0 {
        writeln!(out, "skipped {bad} bad line(s):")?;
        for f in r.inputs.iter().filter(|f| f.bad_lines > 0) {
            for b in &f.first_bad {
                writeln!(out, "  {b}")?;
            }
            if f.bad_lines > f.first_bad.len() as u64 {
                writeln!(
                    out,
                    "  {}: {} more",
                    f.path,
                    f.bad_lines - f.first_bad.len() as u64
                )?;
            }
        }
    }
    Ok(())
}
