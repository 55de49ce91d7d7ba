//! `analyze` against the real OpenClaw 2026.4.29 capture (counted by hand, see
//! tests/fixtures/openclaw/README.md) and synthetic resource samples with known rates.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/openclaw")
}

fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trace-claw-agent"))
        .arg("analyze")
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run trace-claw-agent")
}

fn capture_args(extra: &[&str]) -> Vec<String> {
    let f = fixtures();
    let mut v: Vec<String> = vec![
        "--trace-dir".into(),
        f.join("trace").display().to_string(),
        "--openclaw-logs".into(),
        f.join("logs").display().to_string(),
        "--openclaw-state".into(),
        f.join("state").display().to_string(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn json_of(args: &[String]) -> Value {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["--format", "json"]);
    let out = analyze(&a);
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn approx(v: &Value, expected: f64, tolerance: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(
        (got - expected).abs() <= tolerance,
        "expected {expected} ± {tolerance}, got {got}"
    );
}

fn session<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == id)
        .unwrap_or_else(|| panic!("no session {id} in {}", report["sessions"]))
}

const MAIN: &str = "8388168c-cf83-42e7-9f30-c88ae8bd3685";

#[test]
fn counts_the_real_capture_like_a_person_would() {
    let r = json_of(&capture_args(&[]));
    assert_eq!(r["schema_version"], 1);
    let ids: Vec<&str> = r["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["session_id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [MAIN, "capture-error-session", "capture-second-session"],
        "no 'default' session: every span and log line merged into a transcript call"
    );

    let m = session(&r, MAIN);
    assert_eq!(m["session_key"], "agent:main:main");
    assert_eq!(m["llm_calls"], 4);
    assert_eq!(m["tool_calls"], 1);
    assert_eq!(m["errors"], 0);
    assert_eq!(m["tokens"]["input"], 26496);
    assert_eq!(m["tokens"]["output"], 62);
    assert_eq!(m["tokens"]["cache_read"], 26493);
    assert_eq!(m["tokens"]["cache_write"], 0);
    assert_eq!(m["tokens"]["total"], 53051);
    approx(&m["cost_usd"], 0.0883659, 1e-9);
    approx(&m["llm_latency_ms"]["max"], 690.0, 1e-9);
    approx(&m["tool_latency_ms"]["max"], 33.0, 1e-9);

    let e = session(&r, "capture-error-session");
    assert_eq!(e["llm_calls"], 8);
    assert_eq!(e["llm_errors"], 8);
    assert_eq!(e["errors"], 8);
    approx(&e["error_rate"], 1.0, 0.0);
    assert_eq!(e["tokens"]["total"], 0);
    approx(&e["llm_latency_ms"]["max"], 1477.0, 1e-9);

    let s = session(&r, "capture-second-session");
    assert_eq!(s["llm_calls"], 1);
    assert_eq!(s["tokens"]["input"], 6340);
    assert_eq!(s["tokens"]["total"], 12704);
    approx(&s["cost_usd"], 0.021282, 1e-9);

    let all = &r["overall"];
    assert_eq!(all["sessions"], 3);
    assert_eq!(all["llm_calls"], 13);
    assert_eq!(all["tool_calls"], 1);
    assert_eq!(all["errors"], 8);
    approx(&all["error_rate"], 8.0 / 14.0, 1e-12);
    assert_eq!(all["tokens"]["total"], 65755);
    approx(&all["cost_usd"], 0.0883659 + 0.021282, 1e-9);
    assert_eq!(all["sources"]["transcript"], 14);
}

#[test]
fn says_which_copies_were_merged_into_the_transcript() {
    let r = json_of(&capture_args(&[]));
    let dups = r["duplicates"].as_array().expect("duplicates");
    let count = |dropped: &str| {
        dups.iter()
            .find(|d| d["dropped"] == dropped && d["kept"] == "transcript")
            .map_or(0, |d| d["count"].as_u64().expect("count"))
    };
    // 6 model.call + 1 tool.execution spans; 12 agent start/end pairs (the tool turn's two
    // model calls share one agent loop) + 1 tool pair in the file log; 1 agent pair in OTLP logs.
    assert_eq!(count("otlp_span"), 7);
    assert_eq!(count("openclaw_log"), 13);
    assert_eq!(count("otlp_log"), 1);
    let first = &r["action_timeline"]["rows"][0];
    assert_eq!(first["source"], "transcript");
    assert_eq!(
        first["also_seen_in"],
        serde_json::json!(["otlp_span", "openclaw_log", "otlp_log"])
    );
    assert_eq!(first["time"], "2026-11-24T15:44:31.165000Z");
    let backup = r["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.contains(".bak-")))
        .expect("backup listed");
    assert_eq!(backup["kind"], "backup");
    assert_eq!(backup["records"], 0);
}

#[test]
fn gives_each_action_its_exact_resource_cost_and_snapshot() {
    let r = json_of(&capture_args(&[]));
    let rows = r["action_timeline"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 14);
    // First call: 15:44:31.165 for 512 ms; counters grow 0.02 cpu-s, 200/1000/100/500 B per s.
    let a = &rows[0];
    approx(&a["resource_cost"]["cpu_seconds"], 0.02 * 0.512, 1e-9);
    approx(&a["resource_cost"]["read_bytes"], 200.0 * 0.512, 1e-6);
    approx(&a["resource_cost"]["write_bytes"], 1000.0 * 0.512, 1e-6);
    approx(&a["resource_cost"]["net_sent_bytes"], 100.0 * 0.512, 1e-6);
    approx(&a["resource_cost"]["net_recv_bytes"], 500.0 * 0.512, 1e-6);
    assert!(
        a["resource_cost"]["block_read_bytes"].is_null()
            || a["resource_cost"]["block_read_bytes"] == 0.0
    );
    // nearest sample: 15:44:30 (tick 6)
    approx(&a["snapshot"]["cpu_percent"], 16.0, 0.0);
    approx(&a["snapshot"]["memory_percent"], 41.0, 0.0);
    approx(&a["snapshot"]["process_cpu_percent"], 5.0, 0.0);
    approx(&a["snapshot"]["process_rss_bytes"], 100_006_000.0, 0.0);
    // The exec tool call: 33 ms ending 15:46:02.790; nearest sample 15:46:05 (tick 25).
    let t = rows
        .iter()
        .find(|r| r["action"] == "tool")
        .expect("tool row");
    assert_eq!(t["name"], "exec");
    approx(&t["duration_ms"], 33.0, 0.0);
    approx(&t["resource_cost"]["cpu_seconds"], 0.02 * 0.033, 1e-9);
    approx(&t["snapshot"]["cpu_percent"], 15.0, 0.0);
    approx(&t["snapshot"]["process_rss_bytes"], 100_025_000.0, 0.0);
    // All 14 actions last 13 775 ms together.
    let all = &r["overall"];
    approx(&all["action_cost"]["cpu_seconds"], 0.02 * 13.775, 1e-9);
    approx(&all["action_cost"]["write_bytes"], 13775.0, 1e-6);
    // Peaks and averages over the 97 samples; the cpu="0" series (always 99) is not system CPU.
    let res = &all["resources"];
    approx(&res["max_system_cpu_percent"], 19.0, 0.0);
    approx(&res["avg_system_cpu_percent"], 1396.0 / 97.0, 1e-9);
    approx(&res["max_process_rss_bytes"], 100_096_000.0, 0.0);
    approx(&res["avg_process_cpu_percent"], 360.0 / 97.0, 1e-9);
    // The second session (737 ms at 15:51:25) sees the samples within 5 s: ticks 89 and 90.
    let s = &session(&r, "capture-second-session")["resources"];
    approx(&s["avg_system_cpu_percent"], 14.5, 1e-9);
    approx(&s["avg_process_rss_bytes"], 100_089_500.0, 1e-6);
    assert_eq!(r["resource_samples"], 97 * 11);
    assert_eq!(r["process_events"]["exec"], 1);
    assert_eq!(r["process_events"]["exit"], 1);
}

#[test]
fn reports_openclaw_cumulative_metrics_once() {
    let r = json_of(&capture_args(&[]));
    let metrics = r["openclaw_metrics"].as_array().expect("metrics");
    let find = |name: &str, series_has: &str| {
        metrics
            .iter()
            .find(|m| {
                m["name"] == name && m["series"].as_str().is_some_and(|s| s.contains(series_has))
            })
            .unwrap_or_else(|| panic!("no {name} {series_has}"))
    };
    // Two metric requests repeat the same cumulative totals: counted once, not twice.
    approx(
        &find("openclaw.tokens", "openclaw.token=input")["total"],
        6791.0,
        0.0,
    );
    approx(
        &find("openclaw.tokens", "openclaw.token=total")["total"],
        13596.0,
        0.0,
    );
    approx(
        &find("openclaw.cost.usd", "heartbeat")["total"],
        0.022635,
        1e-9,
    );
}

#[test]
fn windows_by_session_time_and_limit() {
    let r = json_of(&capture_args(&["--session", "capture-second-session"]));
    assert_eq!(r["sessions"].as_array().expect("sessions").len(), 1);
    assert_eq!(r["overall"]["llm_calls"], 1);

    let r = json_of(&capture_args(&[
        "--since",
        "2026-11-24T15:47:00Z",
        "--until",
        "2026-11-24T15:50:00Z",
    ]));
    assert_eq!(r["overall"]["llm_calls"], 8);
    assert_eq!(r["overall"]["errors"], 8);
    // 36 ticks (15:47:00 .. 15:49:55) of 11 samples
    assert_eq!(r["resource_samples"], 36 * 11);

    let r = json_of(&capture_args(&["--limit", "3"]));
    assert_eq!(
        r["action_timeline"]["rows"].as_array().expect("rows").len(),
        3
    );
    assert_eq!(r["action_timeline"]["omitted"], 11);
    assert_eq!(r["timeline"]["rows"].as_array().expect("rows").len(), 3);
}

#[test]
fn plain_text_and_tables_without_a_tty_have_no_colour() {
    let args = capture_args(&["--no-table"]);
    let out = analyze(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.contains("summary session=all key=- llm_calls=13 tool_calls=1"),
        "{text}"
    );
    assert!(text.contains("source=transcript also_seen_in=otlp_span,openclaw_log,otlp_log"));

    let args = capture_args(&[]);
    let out = analyze(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).expect("utf-8");
    assert!(table.contains("Action timeline"));
    assert!(
        !table.contains('\u{1b}'),
        "no ANSI escapes when stdout is a pipe"
    );
}

#[test]
fn bad_lines_are_counted_and_named_but_not_fatal() {
    let dir = fixtures().join("bad_lines");
    let out = analyze(&[
        "--trace-dir",
        &dir.display().to_string(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    let f = &r["inputs"][0];
    assert_eq!(f["kind"], "events");
    assert_eq!(f["records"], 2);
    assert_eq!(f["bad_lines"], 2);
    let bad: Vec<&str> = f["first_bad"]
        .as_array()
        .expect("first_bad")
        .iter()
        .map(|b| b.as_str().expect("str"))
        .collect();
    assert_eq!(bad.len(), 2);
    let note = f["incomplete_last_line"].as_str().expect("note");
    assert!(
        note.ends_with(
            "events-2026-11-24.jsonl:6: incomplete last line, the file may still be being written"
        ),
        "{note}"
    );
    for (b, line) in bad.iter().zip([2, 4]) {
        assert!(
            b.contains(&format!("events-2026-11-24.jsonl:{line}: ")),
            "{b}"
        );
    }
    assert_eq!(r["overall"]["errors"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 bad line(s)"), "{stderr}");
}

#[test]
fn classifies_renamed_files_by_content() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = fixtures().join("state/agents/main/sessions");
    std::fs::copy(
        src.join("capture-second-session.jsonl"),
        dir.path().join("copied-transcript.txt"),
    )
    .expect("copy");
    std::fs::copy(
        fixtures().join("logs/openclaw-2026-11-24.log"),
        dir.path().join("gateway.jsonl"),
    )
    .expect("copy");
    let r = json_of(&["--trace-dir".into(), dir.path().display().to_string()]);
    let kinds: Vec<&str> = r["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["transcript", "openclaw_log"]);
    // the renamed transcript is named for its header id, not its file name
    let s = session(&r, "capture-second-session");
    assert_eq!(s["llm_calls"], 1);
}

#[test]
fn exit_codes_follow_the_policy() {
    let empty = tempfile::tempdir().expect("temp dir");
    let out = analyze(&["--trace-dir", &empty.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "nothing to analyze");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to analyze"));

    let out = analyze(&[
        "--trace-dir",
        &empty.path().display().to_string(),
        "--since",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --since 'yesterday'"));
}

#[test]
fn large_files_are_read_in_chunks_with_correct_line_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("resources-2026-11-24.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    // ~20 MB: three 8 MiB chunks; one bad line deep inside the second chunk.
    let lines = 130_000u64;
    let bad_at = 70_001u64;
    for i in 1..=lines {
        if i == bad_at {
            writeln!(f, "{{\"broken\":").expect("write");
            continue;
        }
        let secs = i;
        writeln!(
            f,
            r#"{{"timestamp":"2026-11-24T{:02}:{:02}:{:02}.000000Z","name":"process.cpu.time_seconds","value":{},"unit":"s","labels":{{"pid":"total","process_name":"openclaw-padding-padding-padding-padding-padding-padding","source":"procfs"}}}}"#,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            i
        )
        .expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    assert!(std::fs::metadata(&path).expect("meta").len() > 16 * 1024 * 1024);
    let r = json_of(&["--trace-dir".into(), dir.path().display().to_string()]);
    let input = &r["inputs"][0];
    assert_eq!(input["lines"], lines);
    assert_eq!(input["records"], lines - 1);
    assert_eq!(input["bad_lines"], 1);
    let bad = input["first_bad"][0].as_str().expect("bad line");
    assert!(bad.contains(&format!(":{bad_at}: ")), "{bad}");
    assert_eq!(r["resource_samples"], lines - 1);
}

/// The `<svg class="timeline" ...>` elements of a page, with their attributes and bodies.
fn timelines(page: &str) -> Vec<(String, &str)> {
    page.split("<svg class=\"timeline\"")
        .skip(1)
        .map(|rest| {
            let end = rest.find("</svg>").expect("closed svg");
            let body = &rest[..end];
            let attrs = body[..body.find('>').expect("tag end")].to_owned();
            (attrs, body)
        })
        .collect()
}

fn attr<'a>(attrs: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let start = attrs
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {attrs}"))
        + key.len();
    &attrs[start..start + attrs[start..].find('"').expect("closing quote")]
}

fn ns(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("time")
        .timestamp_nanos_opt()
        .expect("in range")
}

#[test]
fn html_report_of_the_real_capture_draws_one_bar_per_action() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("report.html");
    let mut args = capture_args(&["--format", "html", "--output"]);
    args.push(out.display().to_string());
    let run = analyze(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page = std::fs::read_to_string(&out).expect("report written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    for forbidden in ["<script", "src=", "href=", "@import", "url("] {
        assert!(
            !page.contains(forbidden),
            "page must be self-contained: found {forbidden}"
        );
    }
    let json = json_of(&capture_args(&[]));
    let svgs = timelines(&page);
    assert_eq!(svgs.len(), 3, "one timeline per session");
    let mut total = 0;
    for (attrs, body) in &svgs {
        let id = attr(attrs, "data-session");
        let s = session(&json, id);
        let actions = s["llm_calls"].as_u64().expect("n") + s["tool_calls"].as_u64().expect("n");
        let bars = body.matches("<rect class=\"bar ").count() as u64;
        assert_eq!(bars, actions, "bars of {id}");
        assert_eq!(attr(attrs, "data-bars"), actions.to_string());
        assert_eq!(
            body.matches("class=\"bar llm error\"").count() as u64,
            s["llm_errors"].as_u64().expect("n")
        );
        let t0: i64 = attr(attrs, "data-t0").parse().expect("t0");
        let t1: i64 = attr(attrs, "data-t1").parse().expect("t1");
        assert!(
            t0 <= ns(s["start"].as_str().expect("start")),
            "{id}: axis starts before the first action"
        );
        assert!(
            t1 >= ns(s["end"].as_str().expect("end")),
            "{id}: axis ends after the last action"
        );
        let span = ns(s["end"].as_str().expect("end")) - ns(s["start"].as_str().expect("start"));
        assert!(
            t1 - t0 <= span + span / 25 + 10_000_000_000,
            "{id}: axis fits the session"
        );
        assert_eq!(body.matches("<g class=\"panel\"").count(), 5);
        assert!(
            body.contains("<polyline class=\"series\""),
            "{id}: resource series drawn"
        );
        total += bars;
    }
    assert_eq!(total, 14);
    let main = svgs
        .iter()
        .find(|(a, _)| attr(a, "data-session") == MAIN)
        .expect("main");
    assert_eq!(main.1.matches("<line class=\"tick exec\"").count(), 1);
    assert_eq!(main.1.matches("<line class=\"tick exit\"").count(), 1);
    // the tool bar's tooltip carries its cost
    assert!(main.1.contains("tool exec"), "tool tooltip");
    assert!(page.contains("cpu 0.0007 s"), "resource cost in a tooltip");
}

#[test]
fn html_report_defaults_to_the_trace_dir_and_caps_bars_of_a_large_session() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = 1_795_132_800i64; // 2026-11-20T00:00:00Z
    let time = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let mut ev = std::io::BufWriter::new(
        std::fs::File::create(dir.path().join("events-2026-11-20.jsonl")).expect("create"),
    );
    // big: 3000 LLM calls (one per 2 s); tools: 10 tool calls; small: 5 calls, one failed.
    for i in 0..3000 {
        writeln!(ev, r#"{{"timestamp":"{}","event_type":"llm","session_id":"big","model":"m{}","duration_ms":900.0}}"#, time(start + 2 * i), i % 3).expect("w");
    }
    for i in 0..10 {
        writeln!(ev, r#"{{"timestamp":"{}","event_type":"tool","session_id":"tools","tool_name":"t{}","duration_ms":500.0}}"#, time(start + 7000 + 10 * i), i % 2).expect("w");
    }
    for i in 0..5 {
        let err = if i == 4 {
            r#","status":"error","error":"boom""#
        } else {
            ""
        };
        writeln!(ev, r#"{{"timestamp":"{}","event_type":"llm","session_id":"small","model":"m","duration_ms":1500.0{err}}}"#, time(start + 8000 + 5 * i)).expect("w");
    }
    ev.flush().expect("flush");
    let mut rs = std::io::BufWriter::new(
        std::fs::File::create(dir.path().join("resources-2026-11-20.jsonl")).expect("create"),
    );
    for t in 0..8100 {
        for (name, v) in [
            ("process.cpu.usage_percent", 10.0 + (t % 7) as f64),
            ("process.memory.rss_bytes", 1e8),
            ("process.io.read_bytes", 1000.0 * t as f64),
            ("process.network.bytes_sent", 10.0 * t as f64),
        ] {
            writeln!(rs, r#"{{"timestamp":"{}","name":"{name}","value":{v},"unit":"","labels":{{"pid":"total"}}}}"#, time(start + t)).expect("w");
        }
    }
    rs.flush().expect("flush");
    drop((ev, rs));
    let run = analyze(&[
        "--trace-dir",
        &dir.path().display().to_string(),
        "--format",
        "html",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("report.html")).expect("default output");
    let svgs = timelines(&page);
    let bars: Vec<(&str, usize)> = svgs
        .iter()
        .map(|(a, b)| {
            (
                attr(a, "data-session"),
                b.matches("<rect class=\"bar ").count(),
            )
        })
        .collect();
    assert_eq!(bars, [("big", 2000), ("tools", 10), ("small", 5)]);
    assert!(page.contains("showing the first 2000 of 3000 actions"));
    let small = svgs[2].1;
    assert_eq!(small.matches("class=\"bar llm error\"").count(), 1);
    // tool bars are coloured per tool: two tools, two colours
    let tools = svgs[1].1;
    let mut fills: Vec<&str> = tools
        .split("<rect class=\"bar tool\"")
        .skip(1)
        .map(|r| attr(r, "fill"))
        .collect();
    fills.sort_unstable();
    fills.dedup();
    assert_eq!(fills.len(), 2);
    // the read rate is 1000 B/s everywhere: the disk panel's max says so
    let disk = tools
        .split("<g class=\"panel\"")
        .find(|p| p.contains("data-title=\"disk bytes/s\""))
        .expect("disk panel");
    let max: f64 = attr(disk, "data-max").parse().expect("max");
    assert!((max - 1000.0).abs() < 1e-6, "{max}");
}

/// Headless Chromium (Debian package `chromium`), when installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "chromium is required under CI (apt-get install chromium)"
        );
        eprintln!("skipping: chromium not installed");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("report.html");
    let mut args = capture_args(&["--format", "html", "--output"]);
    args.push(page.display().to_string());
    assert!(
        analyze(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .status
            .success()
    );
    // Kept for a person to look at: target/tmp/analyze-report.png.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze-report.png");
    // A stale screenshot from an earlier run may or may not exist.
    let _stale = std::fs::remove_file(&shot);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromium");
    // A guard against a hung browser, not a timing assertion.
    for _ in 0..1200 {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if child.try_wait().expect("wait").is_none() {
        // The panic below reports the hang; a failed kill changes nothing.
        let _killed = child.kill();
        panic!("chromium did not finish");
    }
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (1200, 1600));
    // A blank page compresses to a few KiB; the report's text and charts do not.
    assert!(
        png.len() > 40_000,
        "screenshot looks empty: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
