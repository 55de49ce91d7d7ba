//! The soak's verdict: the footprint readings and the agent's JSONL files, printed and judged
//! against the pass criteria of the `soak` module.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use trace_claw_common::names;

/// One reading of the agent's footprint.
#[derive(Debug, Clone)]
pub struct Reading {
    /// Time since the agent started.
    pub at: Duration,
    /// Resident set size.
    pub rss_kib: u64,
    /// Open file descriptors, besides the /proc handles.
    pub fds: usize,
    /// Its /proc handles of tracked processes (two per process; not in `fds`).
    pub proc_handles: usize,
    /// Entries of each of the agent's BPF hash maps: (map id, name, entries, max entries).
    pub maps: Vec<(u32, String, usize, usize)>,
}

/// Totals read back from the agent's JSONL files.
#[derive(Debug, Default)]
struct Written {
    lines: usize,
    ticks: usize,
    exec: usize,
    exit: usize,
    ebpf_dropped: f64,
    export_failed: f64,
    sources: BTreeSet<String>,
    captured: usize,
}

fn read_written(dir: &Path) -> anyhow::Result<Written> {
    let mut w = Written::default();
    let mut stamps = BTreeSet::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let body = std::fs::read(&path)?;
        if !body.is_empty() && !body.ends_with(b"\n") {
            bail!("{name} ends in a partial line");
        }
        for (i, line) in body.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(line);
            w.lines += 1;
            let field = |key: &str| json_field(&text, key);
            let stamped = field("timestamp")
                .or_else(|| field("received_at"))
                .is_some();
            if !text.starts_with('{') || !text.ends_with('}') || !stamped {
                bail!("{name}:{}: not a whole record", i + 1);
            }
            if name.starts_with("resources-") {
                stamps.insert(field("timestamp").unwrap_or_default());
                let value = || {
                    field("value")
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                let name = field("name");
                if name.as_deref() == Some(names::EBPF_EVENTS_DROPPED.name) {
                    w.ebpf_dropped = w.ebpf_dropped.max(value());
                } else if name.as_deref() == Some(names::EXPORT_FAILED_BATCHES.name) {
                    w.export_failed = w.export_failed.max(value());
                }
                if let Some(s) = field("source") {
                    w.sources.insert(s);
                }
            } else if name.starts_with("openclaw-otlp-") {
                w.captured += 1;
            } else if name.starts_with("process-events-") {
                match field("kind").as_deref() {
                    Some("exec") => w.exec += 1,
                    Some("exit") => w.exit += 1,
                    _ => {}
                }
            }
        }
    }
    w.ticks = stamps.len();
    Ok(w)
}

/// The scalar value of `"key":` in a flat JSON line (strings unquoted), without a JSON parser:
/// xtask stays dependency-light and the lines are the agent's own fixed format.
pub fn json_field(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    if let Some(s) = rest.strip_prefix('"') {
        return s.find('"').map(|e| s[..e].to_owned());
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// Prints the report; fails naming every criterion the run missed.
pub fn report(
    readings: &[Reading],
    warmup: Duration,
    out: &Path,
    log: &str,
    (sent_ok, refused): (u64, u64),
) -> anyhow::Result<()> {
    let first = readings
        .iter()
        .find(|r| r.at >= warmup)
        .or(readings.last())
        .context("no readings")?
        .clone();
    let last = readings.last().context("no readings")?;
    let peak = readings.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    let written = read_written(out)?;
    let growth_kib = last.rss_kib as i64 - first.rss_kib as i64;
    let allowed_kib = (first.rss_kib / 10 + 4096) as i64;
    println!("soak report");
    println!(
        "  rss: start {} KiB (t={:.0}s), end {} KiB (t={:.0}s), peak {} KiB, growth {:+} KiB (allowed {} KiB)",
        first.rss_kib,
        first.at.as_secs_f64(),
        last.rss_kib,
        last.at.as_secs_f64(),
        peak,
        growth_kib,
        allowed_kib
    );
    println!(
        "  fds (besides /proc handles): start {}, end {}; /proc handles: start {}, end {}",
        first.fds, last.fds, first.proc_handles, last.proc_handles
    );
    let mut failures = Vec::new();
    for (id, name, start, max) in &first.maps {
        let series = readings
            .iter()
            .filter_map(|r| r.maps.iter().find(|m| m.0 == *id).map(|m| m.2));
        let peak = series.clone().max().unwrap_or(0);
        let end = last.maps.iter().find(|m| m.0 == *id).map_or(0, |m| m.2);
        println!("  bpf map {name}: start {start}, end {end}, peak {peak} of {max}");
        if peak >= *max {
            failures.push(format!("bpf map {name} filled up ({max} entries)"));
        }
        if end > start * 2 + 64 {
            failures.push(format!("bpf map {name} grew {start} -> {end} entries"));
        }
    }
    println!(
        "  written: {} lines, {} ticks, {} exec and {} exit events, sources {:?}",
        written.lines, written.ticks, written.exec, written.exit, written.sources
    );
    println!(
        "  receiver: {sent_ok} requests answered 200, {refused} not; {} capture lines",
        written.captured
    );
    let warned_drops = log.contains("dropped") || log.contains("drop");
    println!(
        "  drops: ebpf events_dropped {}, export failed_batches {} (warned: {})",
        written.ebpf_dropped, written.export_failed, warned_drops
    );
    if growth_kib > allowed_kib {
        failures.push(format!("RSS grew {growth_kib} KiB"));
    }
    if last.fds > first.fds + 2 {
        failures.push(format!("fds grew {} -> {}", first.fds, last.fds));
    }
    if (written.ebpf_dropped > 0.0 || written.export_failed > 0.0) && !warned_drops {
        failures.push("drops counted but never warned about".to_owned());
    }
    if written.captured as u64 != sent_ok {
        failures.push(format!(
            "{sent_ok} requests accepted but {} captured",
            written.captured
        ));
    }
    if written.ticks == 0 {
        failures.push("nothing written".to_owned());
    }
    if failures.is_empty() {
        println!("  verdict: PASS");
        Ok(())
    } else {
        bail!("soak failed: {}", failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_json_fields() {
        let line = r#"{"timestamp":"2026-11-24T10:00:00Z","name":"x.y","value":12.5,"labels":{"source":"procfs"}}"#;
        assert_eq!(json_field(line, "name").as_deref(), Some("x.y"));
        assert_eq!(json_field(line, "value").as_deref(), Some("12.5"));
        assert_eq!(json_field(line, "source").as_deref(), Some("procfs"));
        assert_eq!(json_field(line, "missing"), None);
    }
}
