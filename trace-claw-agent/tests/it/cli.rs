//! Every subcommand through the built binaries, including bad input and exit codes.

use crate::util::{agent, fixture, read_jsonl, repo_root, run, seed_cli, text};

#[test]
fn version_names_commit_and_ebpf_support() {
    for mut bin in [agent(), seed_cli()] {
        let o = run(bin.arg("version"));
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.starts_with(concat!("trace-claw ", env!("CARGO_PKG_VERSION"))),
            "{out}"
        );
        assert!(out.contains("commit: ") && out.contains("ebpf: "), "{out}");
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        "collect",
        "analyze",
        "log-event",
        "generate-config",
        "version",
    ] {
        let o = run(seed_cli().args([sub, "--help"]));
        assert!(o.status.success(), "{sub}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage:"),
            "{sub}"
        );
    }
}

#[test]
fn config_errors_name_file_line_and_key_with_exit_code_2() {
    for (file, line, key) in [
        ("configs/unknown_key.yaml", 4, "proces_name"),
        (
            "configs/negative_interval.yaml",
            4,
            "collector.interval_seconds",
        ),
        ("configs/wrong_type.yaml", 3, "memory"),
    ] {
        let path = fixture(file);
        let o = run(agent()
            .arg("-c")
            .arg(&path)
            .args(["collect", "--count", "1"]));
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(err.contains(&format!("{name}:{line}")), "{file}: {err}");
        assert!(err.contains(key), "{file}: {err}");
    }
}

#[test]
fn bad_environment_value_is_a_usage_error() {
    let o = run(agent()
        .env("TRACE_CLAW_COLLECTOR_INTERVAL", "-3")
        .args(["collect", "--count", "1"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("TRACE_CLAW_COLLECTOR_INTERVAL"),
        "{}",
        text(&o)
    );
}

#[test]
fn reference_config_runs_collect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(agent()
        .arg("-c")
        .arg(repo_root().join("configs/trace_claw.yaml"))
        .args([
            "collect",
            "--count",
            "1",
            "--interval",
            "0.2",
            "--ebpf",
            "off",
            "--output-dir",
        ])
        .arg(dir.path()));
    assert!(o.status.success(), "{}", text(&o));
    let samples = read_jsonl(dir.path(), "resources-");
    for name in [
        "system.cpu.usage_percent",
        "system.memory.total_bytes",
        "system.cpu.load_avg_1m",
        "process.count",
    ] {
        assert!(samples.iter().any(|s| s["name"] == name), "{name} missing");
    }
}

#[test]
fn log_event_appends_action_events_with_every_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let llm = [
        "log-event",
        "llm",
        "--model",
        "gpt-4",
        "--provider",
        "openai",
        "--tokens-input",
        "100",
        "--tokens-output",
        "50",
        "--tokens-cache-read",
        "7",
        "--tokens-cache-write",
        "3",
        "--duration-ms",
        "1200",
        "--cost-usd",
        "0.005",
        "--session-id",
        "s1",
        "--output-dir",
        d,
    ];
    assert!(run(seed_cli().args(llm)).status.success());
    let tool = [
        "log-event",
        "tool",
        "--tool-name",
        "web_search",
        "--duration-ms",
        "350",
        "--error",
        "timeout",
        "--output-dir",
        d,
    ];
    assert!(run(seed_cli().args(tool)).status.success());
    assert!(
        run(seed_cli().args(["log-event", "deploy", "--status", "ok", "--output-dir", d]))
            .status
            .success()
    );
    let events = read_jsonl(dir.path(), "events-");
    assert_eq!(events.len(), 3);
    let e = &events[0];
    assert_eq!(
        (
            e["event_type"].as_str(),
            e["model"].as_str(),
            e["provider"].as_str()
        ),
        (Some("llm"), Some("gpt-4"), Some("openai"))
    );
    assert_eq!(
        (e["tokens_input"].as_u64(), e["tokens_output"].as_u64()),
        (Some(100), Some(50))
    );
    assert_eq!(
        (
            e["tokens_cache_read"].as_u64(),
            e["tokens_cache_write"].as_u64()
        ),
        (Some(7), Some(3))
    );
    assert_eq!(
        (e["duration_ms"].as_f64(), e["cost_usd"].as_f64()),
        (Some(1200.0), Some(0.005))
    );
    assert_eq!(e["session_id"], "s1");
    assert_eq!(
        (events[1]["status"].as_str(), events[1]["error"].as_str()),
        (Some("error"), Some("timeout"))
    );
    assert_eq!(events[2]["event_type"], "deploy");
}

#[test]
fn log_event_rejects_negative_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(seed_cli()
        .args(["log-event", "llm", "--duration-ms=-5", "--output-dir"])
        .arg(dir.path()));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("duration-ms"),
        "{}",
        text(&o)
    );
    assert!(read_jsonl(dir.path(), "events-").is_empty());
}

#[test]
fn generate_config_writes_openclaw_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("openclaw.diagnostics.json");
    let o = run(seed_cli()
        .args([
            "generate-config",
            "--endpoint",
            "http://127.0.0.1:14318",
            "-o",
        ])
        .arg(&out));
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(
        v["diagnostics"]["otel"]["endpoint"],
        "http://127.0.0.1:14318"
    );
    assert_eq!(v["diagnostics"]["otel"]["protocol"], "http/protobuf");
    assert_eq!(v["plugins"]["entries"]["diagnostics-otel"]["enabled"], true);
}

#[test]
fn unknown_subcommand_flag_is_a_usage_error() {
    let o = run(agent().args(["collect", "--no-such-flag"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
