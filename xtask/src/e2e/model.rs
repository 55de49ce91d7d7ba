//! The scripted fake model, `tests/e2e/fake_model.py`: starting it and reading its port.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::procs::{self, Service};

/// The shell command the scripted tool call runs: a busy loop, so the shell has CPU time of its
/// own to find in process-events, then a marker line.
pub const TOOL_COMMAND: &str =
    "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo e2e-tool-ran";

/// Starts the fake model on a free 127.0.0.1 port, recording requests to `record`.
pub fn start(workspace: &Path, record: &Path, logs: &Path) -> Result<Service> {
    let mut cmd = Command::new("python3");
    cmd.arg(workspace.join("tests/e2e/fake_model.py"))
        .arg("--record")
        .arg(record)
        .args(["--tool-command", TOOL_COMMAND]);
    Service::start("fake-model", cmd, logs)
}

/// The port the fake model printed on its first stdout line.
pub fn port(model: &Service) -> Result<u16> {
    let port = procs::poll(Duration::from_secs(15), || {
        let text = fs::read_to_string(&model.stdout).ok()?;
        text.lines().next()?.rsplit(':').next()?.trim().parse().ok()
    });
    port.with_context(|| {
        format!(
            "the fake model printed no port; stderr:\n{}",
            model.stderr_tail(20)
        )
    })
}

/// Whether the fake model's record shows a request of turn `name` (tagged `[e2e:NAME]`).
pub fn served_turn(record: &Path, name: &str) -> bool {
    super::checks::json_lines(record)
        .iter()
        .any(|l| l["turn"].as_str() == Some(name))
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    use serde_json::Value;

    use super::*;
    use crate::e2e::checks::json_lines;

    /// One HTTP/1.1 POST over a real socket; returns (status line, body).
    fn post(port: u16, body: &str) -> (String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the fake model");
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    }

    #[test]
    fn fake_model_serves_the_script_and_records_the_usage_it_returned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = dir.path().join("record.jsonl");
        let mut model = start(&crate::proc_util::workspace_root(), &record, dir.path())
            .expect("start the fake model");
        let port = port(&model).expect("its port");

        let (status, body) = post(
            port,
            r#"{"messages":[{"role":"user","content":"hi [e2e:plain]"}]}"#,
        );
        assert!(status.contains("200"), "{status}");
        let reply: Value = serde_json::from_str(&body).expect("JSON body");
        assert_eq!(reply["usage"]["prompt_tokens"], 3101);
        assert_eq!(
            reply["usage"]["prompt_tokens_details"]["cached_tokens"],
            1001
        );
        assert_eq!(reply["usage"]["completion_tokens"], 41);

        let tool_req = r#"{"stream":true,"tools":[{"type":"function","function":{"name":"exec"}}],
            "messages":[{"role":"user","content":"E2E-TOOL [e2e:tool]"}]}"#;
        let (status, sse) = post(port, tool_req);
        assert!(status.contains("200"), "{status}");
        assert!(sse.contains(r#""name": "exec""#), "{sse}");
        assert!(sse.contains(r#""prompt_tokens": 3202"#), "{sse}");
        assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");

        let (status, _) = post(
            port,
            r#"{"messages":[{"role":"user","content":"E2E-FAIL"}]}"#,
        );
        assert!(status.contains("500"), "{status}");

        // OpenClaw 2026.9 appends an internal-context user message after the tool result: the
        // tagged message still decides, and the tool result after it ends the tool loop.
        let follow_up = r#"{"tools":[{"type":"function","function":{"name":"exec"}}],"messages":[
            {"role":"user","content":[{"type":"text","text":"E2E-TOOL [e2e:tool]"}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",
              "function":{"name":"exec","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"e2e-tool-ran"},
            {"role":"user","content":"internal context, no tag"}]}"#;
        let (status, body) = post(port, follow_up);
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("The command ran"), "{body}");

        model
            .stop(libc::SIGTERM, Duration::from_secs(5))
            .expect("stop");
        let lines = json_lines(&record);
        let kinds: Vec<&str> = lines
            .iter()
            .map(|l| l["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["plain", "tool_call", "error", "after_tool"]);
        assert_eq!(lines[0]["turn"], "plain");
        assert_eq!(lines[1]["expected"]["tokens_input"], 2200);
        assert_eq!(lines[1]["expected"]["tokens_cache_read"], 1002);
        assert_eq!(lines[2]["status"], 500);
        assert!(served_turn(&record, "tool"));
        assert!(
            !served_turn(&record, "fail"),
            "the 500 request carried no tag"
        );
    }
}
