//! What the agent wrote during a run, read back from its JSONL files: which children it saw
//! start and exit, and the last value of a metric.

use std::collections::HashSet;
use std::path::Path;

/// Pids with an exec event, and pids with an exit event carrying totals, in `dir`.
pub fn captured(dir: &Path) -> anyhow::Result<(HashSet<u32>, HashSet<u32>)> {
    let (mut execs, mut exits) = (HashSet::new(), HashSet::new());
    for_each_record(dir, "process-events-", |e| {
        let pid = e["pid"].as_u64().unwrap_or(0) as u32;
        match e["kind"].as_str() {
            Some("exec") => {
                execs.insert(pid);
            }
            Some("exit") if e["totals"].is_object() => {
                exits.insert(pid);
            }
            _ => {}
        }
    })?;
    Ok((execs, exits))
}

/// The last value of `metric` in the resources files of `dir`.
pub fn last_value(dir: &Path, metric: &str) -> anyhow::Result<f64> {
    let mut last = 0.0;
    for_each_record(dir, "resources-", |s| {
        if s["name"].as_str() == Some(metric) {
            last = s["value"].as_f64().unwrap_or(0.0);
        }
    })?;
    Ok(last)
}

/// Calls `f` with every JSONL record of the files in `dir` whose name starts with `prefix`.
fn for_each_record(
    dir: &Path,
    prefix: &str,
    mut f: impl FnMut(&serde_json::Value),
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            f(&serde_json::from_str(line)?);
        }
    }
    Ok(())
}
