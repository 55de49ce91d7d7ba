//! The `dense` profile: a busy gateway (see `generate.rs`'s module doc). Every action is in
//! `events-*.jsonl`; every LLM call is also in OpenClaw's file log, so the analyzer's
//! cross-source merge has work to do.

use std::fmt::Write as _;
use std::path::Path;

use trace_claw_common::names::{self, labels};

use super::{civil, label_json, sample, Daily, Resources, PROCFS, SYSINFO};

/// Seconds per generated session.
const SESSION_S: i64 = 300;
/// Seconds between actions (LLM and tool calls by turns).
const ACTION_S: i64 = 5;

/// One OpenClaw file-log line (tslog, 2026.4.29) of the `agent/embedded` subsystem, logged at
/// `secs` + `ms`.
fn openclaw_line(line: &mut String, secs: i64, ms: i64, message: &str) {
    let (_, iso) = civil(secs);
    let second = &iso[..19];
    line.clear();
    put!(
        line,
        r#"{{"0":"{{\"subsystem\":\"agent/embedded\"}}","1":"{message}","_meta":{{"runtime":"node","runtimeVersion":"26.10.0","hostname":"unknown","name":"{{\"subsystem\":\"agent/embedded\"}}","parentNames":["openclaw"],"date":"{second}.{ms:03}Z","logLevelId":2,"logLevelName":"DEBUG","path":{{"fullFilePath":"file:///usr/lib/node_modules/openclaw/dist/subsystem-DwIxKdWw.js:150:14","fileName":"subsystem-DwIxKdWw.js","fileNameWithLine":"subsystem-DwIxKdWw.js:150","fileColumn":"14","fileLine":"150","filePath":"node_modules/openclaw/dist/subsystem-DwIxKdWw.js","filePathWithLine":"node_modules/openclaw/dist/subsystem-DwIxKdWw.js:150","method":"logToFile"}}}},"time":"{second}.{ms:03}+00:00","hostname":"gateway","message":"{message}","traceId":"42faca267669d70c82e689ac175d45ae","spanId":"3bcd690895d59fc3","traceFlags":"01"}}"#
    );
}

/// Writes about `target` bytes into `dir`; returns the number of distinct actions.
pub(super) fn trace_dir(dir: &Path, target: u64) -> anyhow::Result<u64> {
    let mut res = Resources::new(dir);
    let mut events = Daily::new(dir, "events", "jsonl");
    let mut log = Daily::new(dir, "openclaw", "log");
    let start = 1_795_132_800i64; // 2026-11-20T00:00:00Z
    let (mut written, mut actions) = (0u64, 0u64);
    let mut line = String::with_capacity(2048);
    let (mut cpu_time, mut io_read) = (0.0f64, 0u64);
    let mut tick = 0i64;
    let cpu_labels = label_json(&[(labels::CPU, labels::CPU_TOTAL), SYSINFO]);
    let total_labels = label_json(&[(labels::PID, labels::PID_TOTAL), PROCFS]);
    while written < target {
        let t = start + tick;
        let (date, ts) = civil(t);
        let k = tick / SESSION_S;
        let session = format!(
            "{k:08x}-7cf6-4040-8978-{:012x}",
            k * 2_654_435_761 % (1 << 48)
        );
        let run = format!("{k:08x}-0e72-4bd0-9f30-{:012x}", k * 40_503 % (1 << 48));
        cpu_time += 0.05 + 0.001 * (tick * 7919 % 100) as f64;
        io_read += (tick * 104_729 % 50_000) as u64;
        for (metric, value, labels) in [
            (
                names::SYSTEM_CPU_USAGE,
                20.0 + (tick % 37) as f64,
                &cpu_labels,
            ),
            (names::PROCESS_CPU_TIME, cpu_time, &total_labels),
            (
                names::PROCESS_MEMORY_RSS,
                (8e8 as i64 + tick % 4_000_000) as f64,
                &total_labels,
            ),
            (names::PROCESS_IO_READ, io_read as f64, &total_labels),
        ] {
            sample(&mut line, &ts, &metric, value, labels);
            written += res.write(&date, &line)?;
        }
        if tick % SESSION_S == 0 {
            let message = format!("embedded run start: runId={run} sessionId={session} provider=fakellm model=fake-model-1 thinking=off messageChannel=webchat");
            openclaw_line(&mut line, t, 100, &message);
            written += log.write(&date, &line)?;
        }
        let at = format!("{}.200000Z", &ts[..19]);
        if tick % (2 * ACTION_S) == 2 {
            let ms = 800 + tick * 37 % 3000;
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{at}","event_type":"llm","session_id":"{session}","model":"fake-model-1","provider":"fakellm","tokens_input":{},"tokens_output":{},"tokens_cache_read":1000,"duration_ms":{ms},"cost_usd":0.01}}"#,
                500 + tick % 700,
                50 + tick % 90
            );
            written += events.write(&date, &line)?;
            openclaw_line(
                &mut line,
                t,
                203,
                &format!("embedded run agent start: runId={run}"),
            );
            written += log.write(&date, &line)?;
            let end = 205 + ms;
            openclaw_line(
                &mut line,
                t + end / 1000,
                end % 1000,
                &format!("embedded run agent end: runId={run} isError=false"),
            );
            written += log.write(&date, &line)?;
            actions += 1;
        }
        if tick % (2 * ACTION_S) == 2 + ACTION_S {
            line.clear();
            put!(
                line,
                r#"{{"timestamp":"{at}","event_type":"tool","session_id":"{session}","tool_name":"exec","duration_ms":{}}}"#,
                30 + tick % 400
            );
            written += events.write(&date, &line)?;
            actions += 1;
        }
        tick += 1;
    }
    res.daily.finish()?;
    events.finish()?;
    log.finish()?;
    eprintln!(
        "generated {written} bytes, {actions} actions, {} sessions, {tick} ticks in {}",
        (tick + SESSION_S - 1) / SESSION_S,
        dir.display()
    );
    Ok(actions)
}
