#!/usr/bin/env python3
"""Scripted OpenAI-compatible chat model for `cargo xtask e2e-openclaw` (stdlib only, 127.0.0.1).

Usage: fake_model.py --record FILE [--port 0] [--tool-command CMD]

Prints `fake-model listening on 127.0.0.1:PORT` as its first stdout line, then serves
`POST /v1/chat/completions` (SSE when the request says `"stream": true`, else one JSON body) and
`GET /v1/models`. What it answers depends on the newest user message (see `turn` below):

  contains E2E-FAIL   -> HTTP 500 with an OpenAI-style error body, every time (retries fail too)
  contains E2E-TOOL   -> a tool call `exec {"command": CMD}` until a tool result follows that
                         message in the conversation, then a plain answer
  anything else       -> a plain answer

Token usage is made up but known: request number n (1-based, in arrival order) reports
prompt_tokens = 3000 + 101 n, of which cached_tokens = 1000 + n, and completion_tokens = 40 + n,
so every successful response carries counts no other response has. One JSON line per request is
appended to the record file after the response was sent: what was answered, the usage reported and
the counts OpenClaw should derive from it (input = prompt - cached, output, cache_read = cached).
A `[e2e:NAME]` tag in the user message is copied to the record as `turn`; the scripted user
message is the newest one carrying such a tag.
"""

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TURN_TAG = re.compile(r"\[e2e:([A-Za-z0-9_-]+)\]")
MODEL = "e2e-model"


class Script:
    """Shared state: request counter and record file."""

    def __init__(self, record_path, tool_command):
        self.lock = threading.Lock()
        self.seq = 0
        self.record_path = record_path
        self.tool_command = tool_command

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock, open(self.record_path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


def message_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def usage_for(seq):
    prompt = 3000 + 101 * seq
    cached = 1000 + seq
    completion = 40 + seq
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script = None  # set in main

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-model: " + (fmt % args) + "\n")

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "e2e"}]})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        raw = self.body()
        start = time.time()
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": "only /v1/chat/completions is served"}})
            return
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        messages = req.get("messages") or []
        user_texts = [message_text(m.get("content")) for m in messages if m.get("role") == "user"]
        # The scripted turn is the newest user message carrying a tag: newer OpenClaw releases
        # append other user-role messages (internal context) after the user's own.
        tagged = next((i for i in range(len(messages) - 1, -1, -1)
                       if messages[i].get("role") == "user"
                       and TURN_TAG.search(message_text(messages[i].get("content")))), None)
        if tagged is None:
            tagged = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        last_user = message_text(messages[tagged].get("content")) if tagged is not None else ""
        # Whether a tool result came back after that message (the follow-up request).
        tool_answered = tagged is not None and any(m.get("role") == "tool" for m in messages[tagged + 1:])
        last_role = messages[-1].get("role") if messages else None
        tools = [t.get("function", {}).get("name") for t in req.get("tools") or []]
        stream = bool(req.get("stream"))
        tag = TURN_TAG.search(last_user)
        seq = self.script.next_seq()
        entry = {"seq": seq, "start": start, "stream": stream, "model": req.get("model"),
                 "turn": tag.group(1) if tag else None, "last_role": last_role,
                 "request_bytes": len(raw), "tools_offered": len(tools),
                 "roles": [m.get("role") for m in messages],
                 "last_user_tail": (user_texts[-1] if user_texts else "")[-160:]}

        if "E2E-FAIL" in last_user:
            self.send_json(500, {"error": {"message": "scripted upstream failure (E2E-FAIL)",
                                           "type": "server_error", "code": "internal_error"}})
            entry.update(kind="error", status=500, end=time.time())
            self.script.record(entry)
            return

        tool_call = None
        if "E2E-TOOL" in last_user and not tool_answered:
            if "exec" in tools:
                tool_call = {"id": "call_" + uuid.uuid4().hex[:12], "name": "exec",
                             "arguments": json.dumps({"command": self.script.tool_command})}
            else:
                entry["note"] = "exec tool not offered; answered plainly"
        if tool_call:
            kind, text, finish = "tool_call", "", "tool_calls"
        elif tool_answered:
            kind, text, finish = "after_tool", "The command ran; its output is in the tool result.", "stop"
        else:
            kind, text, finish = "plain", "Scripted answer from the e2e fake model.", "stop"
        usage = usage_for(seq)
        if stream:
            self.stream_reply(req, text, tool_call, finish, usage)
        else:
            message = {"role": "assistant", "content": text or None}
            if tool_call:
                message["tool_calls"] = [{"id": tool_call["id"], "type": "function",
                                          "function": {"name": "exec", "arguments": tool_call["arguments"]}}]
            self.send_json(200, {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "object": "chat.completion",
                                 "created": int(start), "model": req.get("model") or MODEL,
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                 "usage": usage})
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        entry.update(kind=kind, status=200, end=time.time(), usage=usage,
                     expected={"tokens_input": usage["prompt_tokens"] - cached,
                               "tokens_output": usage["completion_tokens"],
                               "tokens_cache_read": cached})
        self.script.record(entry)

    def stream_reply(self, req, text, tool_call, finish, usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": req.get("model") or MODEL}

        def chunk(delta=None, finish_reason=None, **extra):
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            self.wfile.write(b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n")
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        if tool_call:
            chunk({"tool_calls": [{"index": 0, "id": tool_call["id"], "type": "function",
                                   "function": {"name": "exec", "arguments": ""}}]})
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": tool_call["arguments"]}}]})
        else:
            words = text.split(" ")
            for i in range(0, len(words), 3):
                chunk({"content": " ".join(words[i:i + 3]) + (" " if i + 3 < len(words) else "")})
        chunk({}, finish)
        chunk(None, usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="append one JSON line per request here")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--tool-command", default="echo e2e-tool-ran",
                        help="shell command the scripted exec tool call asks OpenClaw to run")
    args = parser.parse_args()
    Handler.script = Script(args.record, args.tool_command)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fake-model listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
