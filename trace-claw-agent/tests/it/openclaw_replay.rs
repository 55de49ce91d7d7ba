//! The bounded end-to-end run that CI does on every change (the live one is
//! `cargo xtask e2e-openclaw`): OpenClaw's captured OTLP requests are replayed, as OpenClaw sends
//! them, into a running `collect --receive`, then `analyze` reads that capture together with the
//! captured file log and transcripts, in place. Every number is checked against the capture as
//! counted by hand (tests/fixtures/openclaw/README.md).

use serde_json::Value;

use crate::peers::{self, request, Framing};
use crate::receive::openclaw_requests;
use crate::util::{agent, fixture, read_jsonl, run, text};

fn session<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session_id"] == id)
        .unwrap_or_else(|| panic!("session {id} missing"))
}

#[test]
fn replayed_openclaw_run_is_analyzed_with_hand_counted_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("trace_data");
    let (mut child, addr) = peers::agent_with_receiver(&trace, &["--process", "tc-replay-none"]);
    let requests = openclaw_requests();
    for (signal, pb, _) in &requests {
        let body = std::fs::read(pb).expect("captured body");
        let r = request(
            addr,
            "POST",
            &format!("/v1/{signal}"),
            &[("Content-Type", "application/x-protobuf")],
            &body,
            Framing::Chunked(16 * 1024),
        );
        assert_eq!(r.status, 200, "{}: {}", pb.display(), r.text());
    }
    // SAFETY: kill(2) of our own child, asking for the SIGINT shutdown path.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().expect("agent exits").success());
    assert_eq!(read_jsonl(&trace, "openclaw-otlp-").len(), requests.len());

    let o = run(agent()
        .args(["analyze", "--format", "json", "--trace-dir"])
        .arg(&trace)
        .arg("--openclaw-logs")
        .arg(fixture("openclaw/logs"))
        .arg("--openclaw-state")
        .arg(fixture("openclaw/state")));
    assert!(o.status.success(), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("json report");

    let captures: Vec<&Value> = report["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .filter(|i| i["kind"] == "otlp_capture")
        .collect();
    assert_eq!(captures.len(), 1, "the receiver's capture was read");
    assert_eq!(captures[0]["records"].as_u64(), Some(requests.len() as u64));
    assert_eq!(captures[0]["bad_lines"].as_u64(), Some(0));

    // Counted by hand from the transcripts: (llm calls, tool calls, errors, input, output,
    // cache read, cost).
    let expected = [
        (
            "8388168c-cf83-42e7-9f30-c88ae8bd3685",
            4,
            1,
            0,
            26496,
            62,
            26493,
            0.0883659,
        ),
        ("capture-error-session", 8, 0, 8, 0, 0, 0, 0.0),
        ("capture-second-session", 1, 0, 0, 6340, 24, 6340, 0.021282),
    ];
    assert_eq!(
        report["sessions"].as_array().map(Vec::len),
        Some(expected.len()),
        "no extra sessions: every span and log copy merged into a transcript call"
    );
    for (id, llm, tool, errors, input, output, cache_read, cost) in expected {
        let s = session(&report, id);
        assert_eq!(s["llm_calls"].as_u64(), Some(llm), "{id} llm calls");
        assert_eq!(s["tool_calls"].as_u64(), Some(tool), "{id} tool calls");
        assert_eq!(s["errors"].as_u64(), Some(errors), "{id} errors");
        assert_eq!(
            s["tokens"]["input"].as_u64(),
            Some(input),
            "{id} input tokens"
        );
        assert_eq!(
            s["tokens"]["output"].as_u64(),
            Some(output),
            "{id} output tokens"
        );
        assert_eq!(
            s["tokens"]["cache_read"].as_u64(),
            Some(cache_read),
            "{id} cache read"
        );
        let got = s["cost_usd"].as_f64().expect("cost");
        assert!((got - cost).abs() < 1e-9, "{id} cost {got} vs {cost}");
    }
    let overall = &report["overall"];
    assert_eq!(overall["llm_calls"].as_u64(), Some(13));
    assert_eq!(overall["tool_calls"].as_u64(), Some(1));
    // The replayed spans carry no session ids: they must still be recognised as copies of the
    // transcript's calls (6 model.call + 1 tool.execution spans in the capture).
    let span_copies: u64 = report["duplicates"]
        .as_array()
        .expect("duplicates")
        .iter()
        .filter(|d| d["dropped"] == "otlp_span" && d["kept"] == "transcript")
        .filter_map(|d| d["count"].as_u64())
        .sum();
    assert_eq!(span_copies, 7, "{}", report["duplicates"]);
}
