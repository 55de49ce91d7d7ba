//! `analyze --format json` byte for byte against golden files made by the analyzer before its
//! streaming rework (issue 17): the real OpenClaw capture and a small action-dense trace made by
//! `cargo xtask bench analyze --profile dense --generate`, each whole and windowed.
//!
//! Refresh with `TRACE_CLAW_BLESS=1 cargo test` and review the diff.

use std::path::PathBuf;

use crate::util::{agent, fixture, repo_root, run_ok};

fn golden(case: &str) -> PathBuf {
    repo_root().join(format!("tests/golden/analyze/{case}.json"))
}

/// The JSON report of `args`, with the fixtures' absolute location replaced by `<fixtures>`.
fn report(args: &[String]) -> String {
    let out = run_ok(agent().arg("analyze").args(args).args(["--format", "json"]));
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .replace(&fixture("").display().to_string(), "<fixtures>/")
}

fn capture(extra: &[&str]) -> Vec<String> {
    let f = fixture("openclaw");
    let mut v = Vec::new();
    for (flag, dir) in [
        ("--trace-dir", "trace"),
        ("--openclaw-logs", "logs"),
        ("--openclaw-state", "state"),
    ] {
        v.push(flag.to_owned());
        v.push(f.join(dir).display().to_string());
    }
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn trace_dir(dir: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["--trace-dir".to_owned(), fixture(dir).display().to_string()];
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

fn check(case: &str, args: &[String]) {
    let got = report(args);
    let path = golden(case);
    if std::env::var_os("TRACE_CLAW_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("mkdir");
        std::fs::write(&path, &got).expect("bless");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with TRACE_CLAW_BLESS=1)", path.display()));
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(0);
        panic!(
            "{case}: the report differs from {} from line {}\nexpected: {}\ngot:      {}",
            path.display(),
            line + 1,
            want.lines().nth(line).unwrap_or("<end>"),
            got.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

#[test]
fn the_real_capture_reports_what_it_always_did() {
    check("capture", &capture(&[]));
    check("capture_limit_3", &capture(&["--limit", "3"]));
    check(
        "capture_one_session",
        &capture(&["--session", "8388168c-cf83-42e7-9f30-c88ae8bd3685"]),
    );
    check(
        "capture_window",
        &capture(&[
            "--since",
            "2026-11-24T15:47:00Z",
            "--until",
            "2026-11-24T15:50:00Z",
        ]),
    );
}

#[test]
fn bad_lines_report_what_they_always_did() {
    check("bad_lines", &trace_dir("openclaw/bad_lines", &[]));
}

#[test]
fn an_action_dense_trace_reports_what_it_always_did() {
    check("dense", &trace_dir("analyze/dense_gateway", &[]));
    check(
        "dense_limit_10",
        &trace_dir("analyze/dense_gateway", &["--limit", "10"]),
    );
    check(
        "dense_window",
        &trace_dir(
            "analyze/dense_gateway",
            &[
                "--since",
                "2026-11-20T00:07:30Z",
                "--until",
                "2026-11-20T00:12:00Z",
            ],
        ),
    );
    check(
        "dense_one_session",
        &trace_dir(
            "analyze/dense_gateway",
            &["--session", "00000002-7cf6-4040-8978-00013c6ef362"],
        ),
    );
}
