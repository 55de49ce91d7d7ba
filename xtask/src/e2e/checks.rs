//! The assertions of a run, each printed as PASS/FAIL with the numbers behind it.
//!
//! Ground truth comes from outside the analyzer: the fake model's own record of the usage it
//! returned, OpenClaw's transcripts (the cost it computed), the agent's raw JSONL files. The
//! analyzer's JSON is searched by field name wherever it nests actions, so a check fails with the
//! field it could not find rather than with a schema mismatch.
//!
//! One piece at ~590 lines: every check reads the same inputs through the same JSON-search
//! helpers (`find_actions`, `field`, `nested`, `json_lines`), and each check is one function;
//! split up, the checks would each import those helpers from a third place.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;
use trace_claw_common::event::{ProcessEvent, ProcessEventKind};
use trace_claw_common::sample::MetricSample;

use super::action_cost;

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Short name.
    pub name: &'static str,
    /// Whether it held.
    pub pass: bool,
    /// Numbers and reasons.
    pub detail: String,
}

impl Verdict {
    /// A verdict with its numbers.
    pub(super) fn new(name: &'static str, pass: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            pass,
            detail: detail.into(),
        }
    }
}

/// Everything the checks read.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The fake model's record file.
    pub model_record: &'a Path,
    /// The trace dir (agent output + copied OpenClaw files under `openclaw/`).
    pub trace_dir: &'a Path,
    /// `analyze --format json` output, or why there is none.
    pub analysis: Result<Value, String>,
    /// PID of the gateway process this run started.
    pub gateway_pid: Option<u32>,
}

/// One request the fake model answered, as it recorded it.
#[derive(Debug, Clone)]
struct ModelCall {
    seq: u64,
    turn: Option<String>,
    kind: String,
    status: u64,
    start: f64,
    end: f64,
    /// (input, output, cache_read) OpenClaw should report.
    expected: Option<(u64, u64, u64)>,
}

/// Runs every check.
pub fn run(inputs: &Inputs<'_>) -> Vec<Verdict> {
    let calls = read_model_calls(inputs.model_record);
    let actions = match &inputs.analysis {
        Ok(v) => find_actions(v),
        Err(e) => Err(format!("no analyzer JSON: {e}")),
    };
    vec![
        llm_actions(&calls, &actions, inputs.trace_dir),
        tool_action(&calls, &actions, inputs.trace_dir),
        error_counted(&calls, &actions, &inputs.analysis),
        otlp_received(inputs.trace_dir),
        ebpf_samples(inputs.trace_dir, inputs.gateway_pid),
        action_cost::timeline_costs(&actions, inputs.trace_dir),
    ]
}

fn read_model_calls(path: &Path) -> Vec<ModelCall> {
    json_lines(path)
        .into_iter()
        .map(|v| ModelCall {
            seq: v["seq"].as_u64().unwrap_or(0),
            turn: v["turn"].as_str().map(str::to_owned),
            kind: v["kind"].as_str().unwrap_or("").to_owned(),
            status: v["status"].as_u64().unwrap_or(0),
            start: v["start"].as_f64().unwrap_or(0.0),
            end: v["end"].as_f64().unwrap_or(0.0),
            expected: v.get("expected").map(|e| {
                (
                    e["tokens_input"].as_u64().unwrap_or(0),
                    e["tokens_output"].as_u64().unwrap_or(0),
                    e["tokens_cache_read"].as_u64().unwrap_or(0),
                )
            }),
        })
        .collect()
}

/// The rows of `action_timeline.rows` (docs/analyze-json.md), or which field is missing.
fn find_actions(v: &Value) -> Result<Vec<Value>, String> {
    field(v, "action_timeline.rows")?
        .as_array()
        .cloned()
        .ok_or_else(|| "analyzer JSON field action_timeline.rows is not an array".to_owned())
}

/// The value at dotted `path` in `v`, or "analyzer JSON missing field PATH".
pub(super) fn field<'v>(v: &'v Value, path: &str) -> Result<&'v Value, String> {
    path.split('.')
        .try_fold(v, |cur, key| cur.get(key))
        .ok_or_else(|| format!("analyzer JSON missing field {path}"))
}

/// The analyzer's action rows, or why there are none.
pub(super) type Actions = Result<Vec<Value>, String>;

/// A failing verdict when there are no action rows to check.
pub(super) fn no_actions(name: &'static str, actions: &Actions) -> Option<Verdict> {
    match actions {
        Err(e) => Some(Verdict::new(name, false, e.clone())),
        Ok(a) if a.is_empty() => Some(Verdict::new(
            name,
            false,
            "analyzer JSON action_timeline.rows is empty",
        )),
        Ok(_) => None,
    }
}

/// Whether an action row failed (`status` is `ok`, else it names the error).
fn is_error(row: &Value) -> bool {
    row.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "ok")
}

/// (input, output, cache_read) -> cost OpenClaw wrote into the transcripts.
fn transcript_costs(trace_dir: &Path) -> BTreeMap<(u64, u64, u64), f64> {
    let mut costs = BTreeMap::new();
    for file in files_under(&trace_dir.join("openclaw/sessions"), |n| {
        n.ends_with(".jsonl") && !n.contains("trajectory")
    }) {
        for line in json_lines(&file) {
            let msg = &line["message"];
            if line["type"] != "message" || msg["role"] != "assistant" {
                continue;
            }
            let u = &msg["usage"];
            if let (Some(i), Some(o), Some(c)) = (
                u["input"].as_u64(),
                u["output"].as_u64(),
                u["cacheRead"].as_u64(),
            ) {
                costs.insert((i, o, c), u["cost"]["total"].as_f64().unwrap_or(0.0));
            }
        }
    }
    costs
}

fn u64_field(a: &Value, key: &str) -> Option<u64> {
    a.get(key).and_then(Value::as_u64)
}

/// Every successful model response is an LLM action with the fake server's token counts and
/// the cost OpenClaw computed; every scripted turn has at least one.
fn llm_actions(calls: &[ModelCall], actions: &Actions, trace_dir: &Path) -> Verdict {
    const NAME: &str = "every turn is an LLM action with the served tokens and OpenClaw's cost";
    let answered: Vec<&ModelCall> = calls.iter().filter(|c| c.expected.is_some()).collect();
    if answered.is_empty() {
        return Verdict::new(
            NAME,
            false,
            "the fake model answered no request successfully",
        );
    }
    if let Some(v) = no_actions(NAME, actions) {
        return v;
    }
    let Ok(actions) = actions else {
        return Verdict::new(NAME, false, "no analyzer JSON");
    };
    let llm: Vec<&Value> = actions.iter().filter(|a| a["action"] == "llm").collect();
    for field in [
        "tokens_input",
        "tokens_output",
        "tokens_cache_read",
        "cost_usd",
    ] {
        if !llm.is_empty() && llm.iter().all(|a| a.get(field).is_none()) {
            return Verdict::new(NAME, false, format!("analyzer JSON missing field {field}"));
        }
    }
    let costs = transcript_costs(trace_dir);
    let mut problems = Vec::new();
    let mut matched = 0;
    let mut cost_ok = 0;
    for call in &answered {
        let Some((i, o, c)) = call.expected else {
            continue;
        };
        let hit = llm.iter().find(|a| {
            u64_field(a, "tokens_input") == Some(i)
                && u64_field(a, "tokens_output") == Some(o)
                && u64_field(a, "tokens_cache_read") == Some(c)
        });
        let Some(hit) = hit else {
            problems.push(format!(
                "response #{} ({}, turn {}) in={i} out={o} cache_read={c}: no LLM action with these tokens",
                call.seq,
                call.kind,
                call.turn.as_deref().unwrap_or("-")
            ));
            continue;
        };
        matched += 1;
        let got = hit["cost_usd"].as_f64().unwrap_or(f64::NAN);
        match costs.get(&(i, o, c)) {
            Some(want) if (got - want).abs() <= 1e-9 => cost_ok += 1,
            Some(want) => problems.push(format!(
                "response #{}: cost_usd {got} but OpenClaw's transcript says {want}",
                call.seq
            )),
            None => problems.push(format!(
                "response #{}: no transcript message with usage in={i} out={o} cache_read={c}",
                call.seq
            )),
        }
    }
    let mut turns_without = Vec::new();
    for turn in super::openclaw::TURNS {
        let served = calls.iter().any(|c| c.turn.as_deref() == Some(turn.name));
        if !served {
            turns_without.push(format!("turn '{}' never reached the model", turn.name));
        }
    }
    problems.extend(turns_without);
    let detail =
        format!(
        "{matched}/{} successful model responses matched an LLM action by tokens, {cost_ok} with \
         OpenClaw's transcript cost; {} LLM actions in the analysis{}",
        answered.len(),
        llm.len(),
        if problems.is_empty() { String::new() } else { format!("; {}", summarize(&problems)) }
    );
    Verdict::new(NAME, problems.is_empty(), detail)
}

/// The tool call is an `exec` tool action, and its shell appears in process-events with exec,
/// exit and CPU time of its own.
fn tool_action(calls: &[ModelCall], actions: &Actions, trace_dir: &Path) -> Verdict {
    const NAME: &str = "the tool call is an action whose shell shows exec, exit and its own CPU";
    let mut problems = Vec::new();
    let mut parts = Vec::new();
    match actions {
        Ok(a) => {
            let tools: Vec<&Value> = a.iter().filter(|a| a["action"] == "tool").collect();
            let exec = tools.iter().filter(|a| a["name"] == "exec").count();
            parts.push(format!("{} tool actions, {exec} of them exec", tools.len()));
            if exec == 0 {
                problems
                    .push("no action_timeline row with action 'tool' and name 'exec'".to_owned());
            }
        }
        Err(e) => problems.push(e.clone()),
    }
    // The shell runs between the model's tool-call answer and the follow-up request carrying
    // the tool result.
    let asked = calls.iter().find(|c| c.kind == "tool_call");
    let followed = calls.iter().find(|c| c.kind == "after_tool");
    let window = match (asked, followed) {
        (Some(a), Some(f)) => Some((a.end - 1.0, f.start + 1.0)),
        (Some(_), None) => {
            problems.push("OpenClaw never sent the tool result back to the model".to_owned());
            None
        }
        _ => {
            problems.push("the fake model never answered with a tool call".to_owned());
            None
        }
    };
    let events = process_events(trace_dir);
    if events.is_empty() {
        problems.push("no process-events-*.jsonl lines in the trace dir".to_owned());
    } else if let Some((from, to)) = window {
        let ShellRuns {
            execs: shells,
            pids,
            exits,
        } = shell_runs(&events, from, to);
        let exited: Vec<String> = exits
            .iter()
            .map(|e| {
                let cpu = e.totals.map_or(0, |t| t.cpu_ns);
                format!(
                    "pid {} {} exit {:?} cpu_ns {cpu}",
                    e.pid, e.comm, e.exit_code
                )
            })
            .collect();
        let cpu: Vec<u64> = exits
            .iter()
            .filter_map(|e| e.totals.map(|t| t.cpu_ns))
            .collect();
        parts.push(format!(
            "{} process events; in the tool window: {} shell execs in {} processes, exits: [{}]",
            events.len(),
            shells.len(),
            pids.len(),
            exited.join(", ")
        ));
        if shells.is_empty() {
            problems.push("no shell exec in process-events during the tool call".to_owned());
        } else if exits.is_empty() {
            problems.push("the tool's shell has no exit event".to_owned());
        } else if !cpu.iter().any(|&c| c > 0) {
            problems.push("the tool shell's exit carries no CPU time (totals.cpu_ns)".to_owned());
        }
    }
    parts.extend(problems.iter().cloned());
    Verdict::new(NAME, problems.is_empty(), parts.join("; "))
}

/// Every `process-events-*.jsonl` record under `trace_dir`.
pub(super) fn process_events(trace_dir: &Path) -> Vec<ProcessEvent> {
    files_under(trace_dir, |n| {
        n.starts_with("process-events-") && n.ends_with(".jsonl")
    })
    .iter()
    .flat_map(|f| json_lines(f))
    .filter_map(|v| serde_json::from_value(v).ok())
    .collect()
}

/// The shells run in a time window: their exec events, their processes, and the exit event
/// of each process (with its exact CPU time).
pub(super) struct ShellRuns<'e> {
    /// Exec events of a shell inside the window.
    pub execs: Vec<&'e ProcessEvent>,
    /// The processes that exec'd them, each once.
    pub pids: Vec<u32>,
    /// The first exit of each of those processes after its shell exec.
    pub exits: Vec<&'e ProcessEvent>,
}

/// The shells exec'd between Unix seconds `from` and `to`.
pub(super) fn shell_runs(events: &[ProcessEvent], from: f64, to: f64) -> ShellRuns<'_> {
    let in_window = |e: &ProcessEvent| {
        let t = e.timestamp.unix_secs_f64();
        t >= from && t <= to
    };
    let execs: Vec<&ProcessEvent> = events
        .iter()
        .filter(|e| e.kind == ProcessEventKind::Exec && in_window(e))
        .filter(|e| is_shell(&e.comm) || e.filename.as_deref().is_some_and(is_shell_path))
        .collect();
    // One process may exec several shells (`sh -c` then `bash`): pair each pid once.
    let mut pids: Vec<u32> = execs.iter().map(|e| e.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let exits = pids
        .iter()
        .filter_map(|pid| {
            let first = execs.iter().find(|s| s.pid == *pid)?;
            events.iter().find(|e| {
                e.kind == ProcessEventKind::Exit && e.pid == *pid && e.timestamp >= first.timestamp
            })
        })
        .collect();
    ShellRuns { execs, pids, exits }
}

fn is_shell(comm: &str) -> bool {
    matches!(comm, "sh" | "bash" | "dash" | "zsh")
}

fn is_shell_path(path: &str) -> bool {
    is_shell(path.rsplit('/').next().unwrap_or(path))
}

/// The upstream HTTP 500s are counted as errors by the analyzer: failed LLM rows and the
/// overall `errors` / `llm_errors` counters.
fn error_counted(
    calls: &[ModelCall],
    actions: &Actions,
    analysis: &Result<Value, String>,
) -> Verdict {
    const NAME: &str = "the failed call is counted as an error";
    let failed = calls.iter().filter(|c| c.status >= 500).count();
    if failed == 0 {
        return Verdict::new(NAME, false, "the fake model never answered HTTP 500");
    }
    if let Some(v) = no_actions(NAME, actions) {
        return v;
    }
    let Ok(analysis) = analysis else {
        return Verdict::new(NAME, false, "no analyzer JSON");
    };
    let error_rows = actions
        .as_ref()
        .map(|a| {
            a.iter()
                .filter(|a| a["action"] == "llm" && is_error(a))
                .count()
        })
        .unwrap_or(0);
    let counter = |path: &str| field(analysis, path).map(|v| v.as_u64().unwrap_or(0));
    let (errors, llm_errors) = match (counter("overall.errors"), counter("overall.llm_errors")) {
        (Ok(e), Ok(l)) => (e, l),
        (Err(e), _) | (_, Err(e)) => return Verdict::new(NAME, false, e),
    };
    let detail = format!(
        "fake model answered {failed} requests with HTTP 500; analysis: {error_rows} failed LLM \
         rows, overall.errors {errors}, overall.llm_errors {llm_errors}"
    );
    Verdict::new(
        NAME,
        error_rows >= 1 && llm_errors >= 1 && errors >= llm_errors,
        detail,
    )
}

/// OpenClaw's spans and metrics reached the receiver.
fn otlp_received(trace_dir: &Path) -> Verdict {
    const NAME: &str = "OTLP spans and metrics from OpenClaw were received";
    let files = files_under(trace_dir, |n| {
        n.starts_with("openclaw-otlp-") && n.ends_with(".jsonl")
    });
    if files.is_empty() {
        return Verdict::new(NAME, false, "no openclaw-otlp-*.jsonl in the trace dir");
    }
    let mut by_signal: BTreeMap<String, u64> = BTreeMap::new();
    let mut spans = 0;
    let mut span_names: BTreeMap<String, u64> = BTreeMap::new();
    let mut metric_names = std::collections::BTreeSet::new();
    for line in files.iter().flat_map(|f| json_lines(f)) {
        let signal = line["signal"].as_str().unwrap_or("?").to_owned();
        *by_signal.entry(signal).or_default() += 1;
        for s in nested(&line, &["resourceSpans", "scopeSpans", "spans"]) {
            spans += 1;
            *span_names
                .entry(s["name"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        for m in nested(&line, &["resourceMetrics", "scopeMetrics", "metrics"]) {
            metric_names.insert(m["name"].as_str().unwrap_or("?").to_owned());
        }
    }
    let detail = format!(
        "requests by signal {by_signal:?}; {spans} spans {span_names:?}; {} metric names",
        metric_names.len()
    );
    Verdict::new(NAME, spans > 0 && !metric_names.is_empty(), detail)
}

/// Elements reached by following `path` through nested arrays of objects.
fn nested<'v>(v: &'v Value, path: &[&str]) -> Vec<&'v Value> {
    let mut level = vec![v];
    for key in path {
        level = level
            .into_iter()
            .flat_map(|x| x[*key].as_array().into_iter().flatten())
            .collect();
    }
    level
}

/// The gateway tree's per-process samples are measured by eBPF.
fn ebpf_samples(trace_dir: &Path, gateway_pid: Option<u32>) -> Verdict {
    const NAME: &str = "the gateway tree's samples are source: ebpf";
    let files = files_under(trace_dir, |n| {
        n.starts_with("resources-") && n.ends_with(".jsonl")
    });
    let gw = gateway_pid.map(|p| p.to_string());
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut gateway_samples = 0;
    for v in files.iter().flat_map(|f| json_lines(f)) {
        let Ok(s) = serde_json::from_value::<MetricSample>(v) else {
            continue;
        };
        let Some(pid) = s.label("pid") else {
            continue;
        };
        if gw.as_deref() == Some(pid) {
            gateway_samples += 1;
        }
        *by_source
            .entry(s.label("source").unwrap_or("none").to_owned())
            .or_default() += 1;
    }
    let detail = format!(
        "per-process samples by source {by_source:?}; {gateway_samples} of the gateway pid {}",
        gw.as_deref().unwrap_or("?")
    );
    let all_ebpf = by_source.keys().all(|k| k == "ebpf");
    Verdict::new(
        NAME,
        gateway_samples > 0 && all_ebpf && !by_source.is_empty(),
        detail,
    )
}

/// The first few of `items` joined with "; ", and how many more there were.
pub(super) fn summarize(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > SHOWN {
        out.push_str(&format!("; ... {} more", items.len() - SHOWN));
    }
    out
}

/// Regular files under `dir` (recursively) whose file name satisfies `want`, sorted.
pub fn files_under(dir: &Path, want: impl Fn(&str) -> bool + Copy) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, want));
        } else if e.file_name().to_str().is_some_and(want) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The JSON values of a JSON Lines file (bad lines skipped).
pub fn json_lines(path: &Path) -> Vec<Value> {
    let Ok(f) = fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_field_is_named() {
        let doc = json!({"action_timeline": {"omitted": 0}});
        assert_eq!(
            find_actions(&doc).expect_err("no rows"),
            "analyzer JSON missing field action_timeline.rows"
        );
    }
}
