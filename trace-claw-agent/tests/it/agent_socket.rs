//! The socket a running `collect` serves to `top` (docs/agent-socket.md), against real agents:
//! owner-only, a live one never taken over, a stale one replaced, a slow client never holding
//! the agent up, and another protocol version refused by name.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{
    agent, collect_nothing, fresh_socket_path, run, sigterm, text, wait_until_served, Reaped,
};

/// Starts `collect` of nothing serving `socket`, and waits until it answers there.
fn serving(socket: &Path, out: &Path) -> Reaped {
    let child = Reaped(
        collect_nothing("0.2", out)
            .arg("--socket")
            .arg(socket)
            .stderr(Stdio::piped())
            .spawn()
            .expect("collect starts"),
    );
    wait_until_served(socket);
    child
}

/// The hello an agent answers with, as JSON.
fn hello(socket: &Path) -> serde_json::Value {
    let stream = UnixStream::connect(socket).expect("connects");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("hello");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("hello {line:?}: {e}"))
}

#[test]
fn the_socket_is_owner_only_a_live_one_is_kept_and_a_stale_one_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory that does not exist yet: the agent creates it.
    let socket = dir.path().join("run").join("agent.sock");
    let mut first = serving(&socket, &dir.path().join("a"));
    let meta = std::fs::symlink_metadata(&socket).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o600, "mode {:o}", meta.mode());
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        meta.uid(),
        unsafe { libc::geteuid() },
        "owned by the agent's user"
    );
    assert_eq!(hello(&socket)["version"], 1);
    let ino = meta.ino();

    // A second agent on the same path leaves the live one alone and says so.
    let o = run(collect_nothing("0.1", &dir.path().join("b"))
        .args(["--count", "3", "--socket"])
        .arg(&socket));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already serves"), "{}", text(&o));
    let meta = std::fs::symlink_metadata(&socket).expect("still there");
    assert_eq!(meta.ino(), ino, "the same socket");
    assert_eq!(
        hello(&socket)["version"],
        1,
        "the first agent still answers"
    );

    // Killed without a chance to clean up, the first agent leaves a stale socket that the
    // next agent replaces.
    first.0.kill().expect("kill");
    first.0.wait().expect("reaped");
    assert!(socket.exists(), "SIGKILL leaves the socket file");
    assert!(UnixStream::connect(&socket).is_err(), "nobody answers");
    let mut third = serving(&socket, &dir.path().join("c"));
    assert_eq!(hello(&socket)["version"], 1);
    let (status, stderr) = sigterm(&mut third);
    assert!(status.success(), "{stderr}");
    assert!(!socket.exists(), "an orderly stop removes the socket");
}

#[test]
fn a_client_that_never_reads_does_not_hold_the_agent_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = fresh_socket_path();
    // 400 ticks of 10 ms: far more than the socket's buffers and the client's queue hold.
    let mut collector = Reaped(
        collect_nothing("0.01", dir.path())
            .args(["--count", "400", "--socket"])
            .arg(&socket)
            .stderr(Stdio::piped())
            .spawn()
            .expect("collect starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let stuck = loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break s;
        }
        assert!(Instant::now() < deadline, "the agent serves its socket");
        std::thread::sleep(Duration::from_millis(20));
    };
    // A well-behaved client alongside it keeps receiving.
    let reader = BufReader::new(UnixStream::connect(&socket).expect("second client"));
    let lines = reader.lines().take(20).count();
    assert_eq!(lines, 20, "hello and ticks reach the reading client");
    let mut stderr = String::new();
    if let Some(mut pipe) = collector.0.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    let status = collector.0.wait().expect("agent ends by itself");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("ticks dropped"), "{stderr}");
    drop(stuck);
}

#[test]
fn top_refuses_an_agent_of_another_protocol_version_naming_both() {
    let socket = fresh_socket_path();
    let listener = UnixListener::bind(&socket).expect("bind");
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("top connects");
        let hello = r#"{"version":99,"source":"ebpf","output_dir":"/x","interval_seconds":1.0}"#;
        s.write_all(format!("{hello}\n").as_bytes()).expect("hello");
    });
    let o = run(agent().arg("top").arg("--connect").arg(&socket));
    server.join().expect("server");
    let _ = std::fs::remove_file(&socket); // the test's own socket
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("protocol version 99") && err.contains("speaks version 1"),
        "{err}"
    );
    assert!(err.contains(&socket.display().to_string()), "{err}");
}
