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
        // serde_norway reports a duplicate at the line of its mapping (`collector:`).
        (
            "duplicate_key.yaml",
            Some(3),
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
