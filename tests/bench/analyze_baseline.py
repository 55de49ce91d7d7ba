#!/usr/bin/env python3
"""Baseline for `cargo xtask bench analyze`: the aggregation `trace-claw-agent analyze` does,
written plainly: one thread, every file read line by line with `json.loads`.

Actions come from `events-*.jsonl` (LLM and tool calls) and OpenClaw's file log (`embedded run`
lines: a run's session, model-call and tool-call start/end pairs). A log action that overlaps an
event-log action of the same type and session (within 0.5 s) is the same call and is dropped.
Resource samples give each action its CPU cost (the tree's `process.cpu.time_seconds`
interpolated at its start and end) and the run its CPU and RSS averages and peaks. Prints the
per-session totals (calls, errors, tokens, cost, duration p50/p95, CPU seconds) as JSON.
"""

import bisect
import json
import os
import re
import sys
from datetime import datetime

TOLERANCE_NS = 500_000_000
KV = re.compile(r"(\w+)=(\S+)")


def ns(iso):
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def json_lines(path):
    """Every line of the file that parses as JSON."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def read_events(path, actions):
    for e in json_lines(path):
        kind = e.get("event_type")
        if kind not in ("llm", "tool"):
            continue
        start = ns(e["timestamp"])
        actions.append({
            "kind": kind,
            "start": start,
            "end": start + int(e.get("duration_ms", 0) * 1e6),
            "session": e.get("session_id") or "default",
            "tokens": (e.get("tokens_input") or 0) + (e.get("tokens_output") or 0),
            "cost": e.get("cost_usd") or 0.0,
            "error": bool(e.get("error")),
        })


def read_openclaw_log(path, actions, run_sessions):
    open_calls = {}
    for r in json_lines(path):
        msg = r.get("message") or r.get("1") or ""
        if not msg.startswith("embedded run "):
            continue
        kv = dict(KV.findall(msg))
        run = kv.get("runId")
        t = ns(r["time"])
        if msg.startswith("embedded run start:"):
            run_sessions[run] = kv.get("sessionId")
        elif msg.startswith("embedded run agent start:"):
            open_calls[("llm", run)] = t
        elif msg.startswith("embedded run tool start:"):
            open_calls[("tool", run, kv.get("toolCallId"))] = t
        elif msg.startswith(("embedded run agent end:", "embedded run tool end:")):
            key = ("llm", run) if " agent " in msg else ("tool", run, kv.get("toolCallId"))
            start = open_calls.pop(key, None)
            if start is not None:
                actions.append({"kind": key[0], "start": start, "end": t, "run": run,
                                "tokens": 0, "cost": 0.0,
                                "error": kv.get("isError") == "true"})


def read_resources(path, cpu_time, stats):
    for s in json_lines(path):
        name, labels, v = s["name"], s.get("labels", {}), s["value"]
        key = None
        if name == "system.cpu.usage_percent" and labels.get("cpu", "total") == "total":
            key = "system_cpu_percent"
        elif labels.get("pid") == "total":
            if name == "process.cpu.time_seconds":
                cpu_time.append((ns(s["timestamp"]), v))
            elif name == "process.memory.rss_bytes":
                key = "tree_rss_bytes"
            elif name == "process.cpu.usage_percent":
                key = "tree_cpu_percent"
        if key:
            st = stats.setdefault(key, [0, 0.0, float("-inf")])
            st[0] += 1
            st[1] += v
            st[2] = max(st[2], v)


def interpolate(times, values, t):
    i = bisect.bisect_right(times, t)
    if i == 0 or i == len(times):
        return None
    t0, t1 = times[i - 1], times[i]
    return values[i - 1] + (values[i] - values[i - 1]) * (t - t0) / (t1 - t0)


def merge(events, logged, run_sessions):
    by_key = {}
    for a in events:
        by_key.setdefault((a["kind"], a["session"]), []).append(a)
    for lst in by_key.values():
        lst.sort(key=lambda a: a["start"])
    starts = {k: [a["start"] for a in v] for k, v in by_key.items()}
    kept = list(events)
    for a in logged:
        a["session"] = run_sessions.get(a.pop("run")) or "default"
        key = (a["kind"], a["session"])
        lst = by_key.get(key, [])
        hi = bisect.bisect_right(starts.get(key, []), a["end"] + TOLERANCE_NS)
        if any(lst[i]["end"] + TOLERANCE_NS >= a["start"] for i in range(max(0, hi - 3), hi)):
            continue
        kept.append(a)
    kept.sort(key=lambda a: a["start"])
    return kept


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    trace_dir = sys.argv[1]
    events, logged, run_sessions, cpu_time, stats = [], [], {}, [], {}
    for name in sorted(os.listdir(trace_dir)):
        path = os.path.join(trace_dir, name)
        if name.startswith("events-"):
            read_events(path, events)
        elif name.startswith("openclaw-") and name.endswith(".log"):
            read_openclaw_log(path, logged, run_sessions)
        elif name.startswith("resources-"):
            read_resources(path, cpu_time, stats)
    actions = merge(events, logged, run_sessions)
    cpu_time.sort()
    times = [t for t, _ in cpu_time]
    values = [v for _, v in cpu_time]
    sessions = {}
    for a in actions:
        s = sessions.setdefault(a["session"], {"llm": 0, "tool": 0, "errors": 0, "tokens": 0,
                                                "cost": 0.0, "durations": [], "cpu_s": 0.0})
        s[a["kind"]] += 1
        s["errors"] += a["error"]
        s["tokens"] += a["tokens"]
        s["cost"] += a["cost"]
        s["durations"].append((a["end"] - a["start"]) / 1e6)
        t0, t1 = interpolate(times, values, a["start"]), interpolate(times, values, a["end"])
        if t0 is not None and t1 is not None:
            s["cpu_s"] += t1 - t0
    for s in sessions.values():
        d = sorted(s.pop("durations"))
        s["p50_ms"], s["p95_ms"] = percentile(d, 0.5), percentile(d, 0.95)
    json.dump({"sessions": sessions, "actions": len(actions),
               "resources": {k: {"count": c, "avg": t / c, "max": m}
                             for k, (c, t, m) in stats.items()}}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
