//! Hostile input files: each gets a clear error naming the file (and line where there is one),
//! exit code 2 for a config, never a panic, a hang or unbounded memory.
//!
//! Small cases are fixtures under `tests/fixtures/bad/`; huge ones (50 MB, 100,000-deep
//! nesting) are generated into a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::support::require_root;
use crate::util::{agent, fixture, text};

/// Peak RSS ceiling for any bad input (the 50 MB line itself is read once, as a String).
const MAX_RSS_KIB: i64 = 512 * 1024;

/// Output and peak RSS (KiB) of a finished command, read with wait4.
fn run_measured(cmd: &mut Command) -> (Output, i64) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let pid = i32::try_from(child.id()).expect("pid");
    // Read pipes on threads so a chatty child cannot block on a full pipe.
    let mut child = child;
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out_pipe, &mut v).expect("stdout");
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err_pipe, &mut v).expect("stderr");
        v
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unreaped child; status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let stdout = out_t.join().expect("stdout thread");
    let stderr = err_t.join().expect("stderr thread");
    // Rebuild an ExitStatus from the raw wait status.
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    // The Child was reaped by wait4 above; forgetting it avoids a second wait.
    std::mem::forget(child);
    (
        Output {
            status,
            stdout,
            stderr,
        },
        usage.ru_maxrss,
    )
}

/// Runs `generate-config` (the cheapest command that loads a config) with `-c path`.
fn load_config(path: &Path) -> (Output, i64) {
    run_measured(agent().arg("-c").arg(path).arg("generate-config"))
}

/// Asserts a clean config rejection: exit 2, the file named (with `:line` when given), no panic.
fn assert_rejected(path: &Path, line: Option<usize>, needle: &str) {
    let (o, rss) = load_config(path);
    let err = String::from_utf8_lossy(&o.stderr);
    let shown = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert_eq!(o.status.code(), Some(2), "{shown}: {}", text(&o));
    assert!(!err.contains("panicked"), "{shown}: {err}");
    match line {
        Some(l) => assert!(err.contains(&format!("{shown}:{l}")), "{shown}: {err}"),
        None => assert!(err.contains(shown), "{shown}: {err}"),
    }
    assert!(
        err.contains(needle),
        "{shown}: expected '{needle}' in: {err}"
    );
    assert!(rss < MAX_RSS_KIB, "{shown}: peak RSS {rss} KiB");
}

fn bad(name: &str) -> PathBuf {
    fixture(&format!("bad/config/{name}"))
}

#[test]
fn config_files_with_bad_values_name_file_line_and_key() {
    for (file, line, needle) in [
        (
            "truncated_last_line.yaml",
            None,
            "truncated_last_line.yaml:",
        ),
        ("nan_interval.yaml", Some(2), "collector.interval_seconds"),
        ("infinite_timeout.yaml", Some(2), "otel.timeout_seconds"),
        (
            "negative_timeout.yaml",
            Some(2),
            "receiver.request_timeout_seconds",
        ),
        ("beyond_u64.yaml", Some(2), "max_body_bytes"),
        // The repeat, not the first key of its mapping (where serde_norway places it).
        (
            "duplicate_key.yaml",
            Some(4),
            "duplicate field `interval_seconds`",
        ),
        ("string_for_number.yaml", Some(2), "interval_seconds"),
        ("nul_bytes.yaml", None, "nul_bytes.yaml"),
    ] {
        assert_rejected(&bad(file), line, needle);
    }
}

#[test]
fn config_files_that_are_not_text_are_read_errors() {
    assert_rejected(&bad("invalid_utf8.yaml"), None, "cannot read config");
    assert_rejected(&bad("gzip.yaml"), None, "cannot read config");
}

#[test]
fn empty_config_file_means_defaults() {
    let (o, _) = load_config(&bad("empty.yaml"));
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn huge_and_deep_configs_fail_fast_with_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long_value = dir.path().join("fifty_mb_value.yaml");
    let mut body = b"collector:\n  process_name: \"".to_vec();
    body.resize(body.len() + 50 * 1024 * 1024, b'a');
    body.extend_from_slice(b"\"\n");
    std::fs::write(&long_value, &body).expect("write");
    assert_rejected(&long_value, None, "is larger than 1048576 bytes");
    let one_line = dir.path().join("fifty_mb_line.yaml");
    std::fs::write(&one_line, vec![b'x'; 50 * 1024 * 1024]).expect("write");
    assert_rejected(&one_line, None, "is larger than 1048576 bytes");

    // 100,000 levels of `{a: ` once kept the YAML parser busy for minutes.
    for (name, open) in [("deep_seq.yaml", "["), ("deep_map.yaml", "{a: ")] {
        let deep = dir.path().join(name);
        std::fs::write(&deep, format!("mode: local\nx: {}", open.repeat(100_000))).expect("write");
        assert_rejected(&deep, Some(2), "nested deeper than 64 levels");
    }

    let laughs = dir.path().join("alias_bomb.yaml");
    let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 {
            "a".to_owned()
        } else {
            format!("l{}", i - 1)
        };
        y.push_str(&format!(
            "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    std::fs::write(&laughs, y).expect("write");
    assert_rejected(&laughs, None, "alias_bomb.yaml");
}

#[test]
fn config_path_that_cannot_be_read_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let looped = dir.path().join("loop.yaml");
    std::os::unix::fs::symlink(&looped, &looped).expect("symlink");
    assert_rejected(&looped, None, "cannot read config");
    assert_rejected(dir.path(), None, "cannot read config");
}

#[test]
fn unreadable_config_is_a_clear_error_even_for_root() {
    if !require_root("unreadable_config_is_a_clear_error_even_for_root") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret.yaml");
    std::fs::write(&path, "mode: local\n").expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    // Root reads anything unless CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are gone.
    let (o, _) = run_measured(
        Command::new("setpriv")
            .args([
                "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-all",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_trace-claw-agent"))
            .arg("-c")
            .arg(&path)
            .arg("generate-config")
            .env("RUST_LOG", "info"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains("secret.yaml") && err.contains("Permission denied"),
        "{err}"
    );
}

/// `tests/fixtures/bad/trace/events-2026-11-24.jsonl`, line by line: G an LLM call with one
/// input token that must be analyzed, B a line that must be reported as `file:line`, E either
/// (a questionable value: accepted or reported), - blank, I the last line, cut off without its
/// newline (the file may still be being written): a note naming it, neither record nor bad.
const EVENTS_TRUTH: &str = "GGBBGBBBBBEEGGEBB-GI";

/// Runs `analyze --format json` over `dir`, returning the report, stderr and peak RSS (KiB).
fn analyze_json(cmd: &mut Command, dir: &Path) -> (serde_json::Value, String, i64) {
    let (o, rss) = run_measured(
        cmd.arg("analyze")
            .arg("--trace-dir")
            .arg(dir)
            .args(["--format", "json"]),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("report is not JSON: {e}\n{}", text(&o)));
    (report, err, rss)
}

fn input<'a>(report: &'a serde_json::Value, file: &str) -> &'a serde_json::Value {
    report["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with(file)))
        .unwrap_or_else(|| panic!("{file} not among the inputs: {}", report["inputs"]))
}

/// Copies the committed bad trace fixtures into a fresh directory and adds the generated
/// ones: a 50 MB line, a line nested 100,000 deep, a file-symlink loop and a directory loop.
fn hostile_trace_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(fixture("bad/trace"))
        .expect("fixtures")
        .flatten()
    {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
    }
    let d = dir.path();
    // A valid first line makes each file classify as events; line 2 is the hostile one.
    let first = b"{\"timestamp\":\"2026-11-20T09:00:00Z\",\"event_type\":\"llm\"}\n";
    let mut big = first.to_vec();
    big.resize(big.len() + 50 * 1024 * 1024, b'x');
    big.push(b'\n');
    std::fs::write(d.join("events-2026-11-21.jsonl"), &big).expect("50 MB line");
    let mut deep = first.to_vec();
    deep.extend_from_slice(
        br#"{"timestamp":"2026-11-20T10:00:00Z","event_type":"llm","attributes":"#,
    );
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend_from_slice(b"}\n");
    std::fs::write(d.join("events-2026-11-20.jsonl"), &deep).expect("deep line");
    std::os::unix::fs::symlink("loop.jsonl", d.join("loop.jsonl")).expect("file loop");
    std::os::unix::fs::symlink(".", d.join("sub")).expect("dir loop");
    dir
}

#[test]
fn analyzer_reads_every_good_line_and_names_every_bad_one() {
    let dir = hostile_trace_dir();
    let (report, err, rss) = analyze_json(&mut agent(), dir.path());
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB");

    let events = input(&report, "events-2026-11-24.jsonl");
    let count = |c: char| EVENTS_TRUTH.chars().filter(|&t| t == c).count() as u64;
    let (good, bad, either) = (count('G'), count('B'), count('E'));
    let records = events["records"].as_u64().expect("records");
    let bad_lines = events["bad_lines"].as_u64().expect("bad_lines");
    assert_eq!(events["lines"], EVENTS_TRUTH.len() as u64);
    assert_eq!(records + bad_lines, good + bad + either, "{events}");
    assert!((good..=good + either).contains(&records), "{events}");
    assert!((bad..=bad + either).contains(&bad_lines), "{events}");
    let note = events["incomplete_last_line"].as_str().expect("note");
    assert!(
        note.ends_with(&format!(
            "events-2026-11-24.jsonl:{}: incomplete last line, the file may still be being written",
            EVENTS_TRUTH.len()
        )),
        "{note}"
    );
    // The first reported bad lines are exactly the first B lines, as path:line.
    let shown: Vec<&str> = events["first_bad"]
        .as_array()
        .expect("first_bad")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let first_b: Vec<usize> = EVENTS_TRUTH
        .char_indices()
        .filter(|(_, t)| *t == 'B')
        .map(|(i, _)| i + 1)
        .take(shown.len())
        .collect();
    assert!(!shown.is_empty());
    for (s, line) in shown.iter().zip(&first_b) {
        assert!(
            s.contains(&format!("events-2026-11-24.jsonl:{line}: ")),
            "{s} should name line {line}"
        );
    }
    // Every G line's token is counted once: E lines carry none.
    let overall = &report["overall"];
    assert_eq!(overall["tokens"]["input"], good, "{overall}");
    // Plus the valid first line of each of the two generated files.
    assert_eq!(overall["llm_calls"], records + 2, "{overall}");

    let huge = input(&report, "events-2026-11-21.jsonl");
    assert_eq!(
        (huge["lines"].as_u64(), huge["bad_lines"].as_u64()),
        (Some(2), Some(1)),
        "{huge}"
    );
    assert!(
        huge["first_bad"][0]
            .as_str()
            .is_some_and(|s| s.contains("events-2026-11-21.jsonl:2: ")),
        "{huge}"
    );
    let deep = input(&report, "events-2026-11-20.jsonl");
    assert_eq!(
        (deep["lines"].as_u64(), deep["bad_lines"].as_u64()),
        (Some(2), Some(1)),
        "{deep}"
    );
    // Empty and gzip files are listed, not fatal; the symlink loops end nowhere.
    input(&report, "events-2026-11-23.jsonl");
    input(&report, "resources-2026-11-22.jsonl");
    assert!(
        err.contains("bad line"),
        "the skipped lines are summarised: {err}"
    );
}

#[test]
fn analyzer_reports_an_unreadable_file_and_analyzes_the_rest() {
    if !require_root("analyzer_reports_an_unreadable_file_and_analyzes_the_rest") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        fixture("bad/trace/events-2026-11-24.jsonl"),
        dir.path().join("events-2026-11-24.jsonl"),
    )
    .expect("copy");
    let secret = dir.path().join("events-2026-11-19.jsonl");
    std::fs::write(
        &secret,
        "{\"timestamp\":\"2026-11-19T10:00:00Z\",\"event_type\":\"llm\",\"tokens_input\":1000}\n",
    )
    .expect("write");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--bounding-set=-dac_override,-dac_read_search",
        "--inh-caps=-all",
        "--",
    ])
    .arg(env!("CARGO_BIN_EXE_trace-claw-agent"))
    .env("RUST_LOG", "info");
    let (report, err, _) = analyze_json(&mut cmd, dir.path());
    assert!(
        err.contains("events-2026-11-19.jsonl") && err.contains("Permission denied"),
        "the unreadable file is named with the cause: {err}"
    );
    let good = EVENTS_TRUTH.chars().filter(|&t| t == 'G').count() as u64;
    assert_eq!(
        report["overall"]["tokens"]["input"], good,
        "the readable file was analyzed"
    );
}

#[test]
fn analyzer_reports_a_negative_duration_as_a_bad_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("events-2026-11-24.jsonl"),
        "{\"timestamp\":\"2026-11-24T10:00:00Z\",\"event_type\":\"llm\",\"duration_ms\":-250}\n\
         {\"timestamp\":\"2026-11-24T10:01:00Z\",\"event_type\":\"llm\",\"duration_ms\":100}\n",
    )
    .expect("write");
    let (report, _, _) = analyze_json(&mut agent(), dir.path());
    let events = input(&report, "events-2026-11-24.jsonl");
    assert_eq!(events["bad_lines"], 1, "{events}");
    let first = &events["first_bad"][0];
    assert!(
        first.as_str().is_some_and(|s| s.contains(":1: ")),
        "{first}"
    );
}

#[test]
fn analyzer_memory_stays_bounded_on_a_50_mb_otlp_capture_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut body =
        br#"{"signal":"traces","received_at":"2026-11-24T10:00:00Z","resourceSpans":[]}"#.to_vec();
    body.extend_from_slice(b"\n{\"resourceSpans\":[");
    for _ in 0..25 * 1024 * 1024 - 1 {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]}\n");
    std::fs::write(dir.path().join("openclaw-otlp-2026-11-24.jsonl"), &body).expect("write");
    let (_, _, rss) = analyze_json(&mut agent(), dir.path());
    assert!(rss < MAX_RSS_KIB, "peak RSS {rss} KiB for a 50 MB line");
}

#[test]
fn receiver_capture_of_an_empty_request_reads_back_without_bad_lines() {
    use std::io::{Read, Write};
    use trace_claw_agent::config::ReceiverConfig;
    use trace_claw_agent::receive::Receiver;

    let dir = tempfile::tempdir().expect("tempdir");
    let config = ReceiverConfig {
        enabled: true,
        listen: "127.0.0.1:0".to_owned(),
        ..ReceiverConfig::default()
    };
    let receiver = Receiver::spawn(&config, dir.path()).expect("receiver starts");
    let mut s = std::net::TcpStream::connect(receiver.local_addr()).expect("connect");
    s.write_all(
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    receiver.shutdown();
    let (report, _, _) = analyze_json(&mut agent(), dir.path());
    let capture = report["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["kind"] == "otlp_capture")
        .unwrap_or_else(|| panic!("capture not read: {}", report["inputs"]));
    assert_eq!(capture["bad_lines"], 0, "{capture}");
}

#[test]
fn transcript_line_is_never_both_a_record_and_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sessions = dir.path().join("state/agents/main/sessions");
    std::fs::create_dir_all(&sessions).expect("dirs");
    std::fs::write(
        sessions.join("s1.jsonl"),
        "{\"type\":\"message\",\"timestamp\":\"not a time\",\"message\":{\"role\":\"assistant\",\"timestamp\":\"later\"}}\n",
    )
    .expect("write");
    let trace = dir.path().join("trace");
    std::fs::create_dir_all(&trace).expect("trace");
    // One good record elsewhere: a run with nothing usable exits 1 without a report.
    std::fs::write(
        trace.join("events-2026-11-24.jsonl"),
        "{\"timestamp\":\"2026-11-24T10:00:00Z\",\"event_type\":\"llm\"}\n",
    )
    .expect("write");
    let (o, _) = run_measured(
        agent()
            .arg("analyze")
            .arg("--trace-dir")
            .arg(&trace)
            .arg("--openclaw-state")
            .arg(dir.path().join("state"))
            .args(["--format", "json"]),
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let t = input(&report, "s1.jsonl");
    let (records, bad) = (t["records"].as_u64(), t["bad_lines"].as_u64());
    assert_eq!((records, bad), (Some(0), Some(1)), "{t}");
}
