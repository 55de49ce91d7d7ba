//! eBPF load failure paths: with no tracefs, no bpffs, or without root, `--ebpf auto` must fall
//! back to polling at once with exactly one warning naming the cause, and `--ebpf require` must
//! exit 3 naming it. Also holds for a build without the eBPF programs.
//! Without bpffs the programs still load (nothing is pinned), so that case accepts either a load
//! or a clean fallback.

use std::path::Path;
use std::process::{Command, Output};

use super::support::require_root;
use crate::util::text;

/// Where the agent runs.
#[derive(Debug, Clone, Copy)]
enum Env {
    /// As the test runs (root in CI).
    Plain,
    /// uid/gid 65534 with no capabilities.
    NonRoot,
    /// A private mount namespace with empty tmpfs over tracefs and debugfs.
    NoTracefs,
    /// A private mount namespace with an empty tmpfs over /sys/fs/bpf.
    NoBpffs,
}

fn run_agent(env: Env, mode: &str, out: &Path) -> Output {
    let agent = env!("CARGO_BIN_EXE_trace-claw-agent");
    let args = [
        "collect",
        "--ebpf",
        mode,
        "--count",
        "2",
        "--interval",
        "0.2",
        "--process",
        "tc-nothing-matches",
    ];
    let mut cmd = match env {
        Env::Plain => Command::new(agent),
        Env::NonRoot => {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
                agent,
            ]);
            c
        }
        Env::NoTracefs | Env::NoBpffs => {
            let hide = match env {
                Env::NoTracefs => {
                    "mount -t tmpfs none /sys/kernel/tracing; mount -t tmpfs none /sys/kernel/debug"
                }
                _ => "mount -t tmpfs none /sys/fs/bpf",
            };
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(format!("{hide}; exec \"$0\" \"$@\""))
                .arg(agent);
            c
        }
    };
    cmd.args(args)
        .arg("--output-dir")
        .arg(out)
        .env("RUST_LOG", "info")
        .output()
        .expect("agent runs")
}

/// `dir/out`, which uid 65534 can reach and write.
fn writable_by_anyone(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    out
}

/// Milliseconds between two `[2026-11-25T13:30:55.377Z ...` log lines.
fn log_ms(line: &str) -> i64 {
    let stamp = line
        .trim_start_matches('[')
        .split_whitespace()
        .next()
        .expect("stamp");
    chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|e| panic!("bad log stamp '{stamp}': {e}"))
}

#[test]
fn ebpf_load_failures_fall_back_within_a_second_with_one_warning() {
    if !require_root("ebpf_load_failures_fall_back_within_a_second_with_one_warning") {
        return;
    }
    for env in [Env::Plain, Env::NonRoot, Env::NoTracefs, Env::NoBpffs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = writable_by_anyone(dir.path());
        let o = run_agent(env, "auto", &out);
        assert!(o.status.success(), "{env:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains(" WARN ")).collect();
        let samples = crate::util::read_jsonl(&out, "resources-");
        let ebpf_loaded = samples.iter().any(|s| s["labels"]["source"] == "ebpf");
        if ebpf_loaded {
            // Only possible where nothing was taken away (or bpffs is not needed to load).
            assert!(matches!(env, Env::Plain | Env::NoBpffs), "{env:?}: {err}");
            continue;
        }
        assert_eq!(warnings.len(), 1, "{env:?}: exactly one warning:\n{err}");
        assert!(
            warnings[0].to_lowercase().contains("ebpf"),
            "{env:?}: the warning names eBPF and the cause: {}",
            warnings[0]
        );
        let first = err.lines().next().expect("a log line");
        let started = err
            .lines()
            .find(|l| l.contains("collecting every"))
            .unwrap_or_else(|| panic!("{env:?}: no start-up line:\n{err}"));
        assert!(
            log_ms(started) - log_ms(first) <= 1000,
            "{env:?}: fallback took over 1 s:\n{err}"
        );
        assert!(
            samples
                .iter()
                .filter(|s| s["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("process.")))
                .all(|s| s["labels"]["source"] == "procfs"),
            "{env:?}: polled samples say source=procfs"
        );
    }
}

#[test]
fn ebpf_require_exits_3_naming_the_cause() {
    if !require_root("ebpf_require_exits_3_naming_the_cause") {
        return;
    }
    for env in [Env::NonRoot, Env::NoTracefs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = writable_by_anyone(dir.path());
        let o = run_agent(env, "require", &out);
        assert_eq!(o.status.code(), Some(3), "{env:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(err.contains("ebpf"), "{env:?}: {err}");
        if matches!(env, Env::NonRoot) {
            // No capability at all: the message names each one the programs need.
            for cap in ["cap_bpf", "cap_perfmon", "cap_dac_read_search"] {
                assert!(err.contains(cap), "{env:?} names {cap}: {err}");
            }
        }
    }
}
