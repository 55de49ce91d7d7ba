#!/usr/bin/env python3
"""Baseline for `cargo xtask bench overhead`: a straightforward psutil collector doing the work
trace-claw's polling path does (system CPU/memory/network, every process whose name or argv[0]
contains the target, CPU %, RSS, VMS, memory %, I/O, threads), one JSONL line per sample."""

import argparse
import json
import os
import time
from datetime import datetime, timezone

import psutil


def sample(name, value, unit, labels, ts):
    return json.dumps({"timestamp": ts, "name": name, "value": value, "unit": unit, "labels": labels})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--process", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--output-dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.output_dir, exist_ok=True)
    needle = a.process.lower()
    total_mem = psutil.virtual_memory().total
    procs = {}
    psutil.cpu_percent(percpu=True)
    last_net = psutil.net_io_counters(pernic=True)
    last_t = time.monotonic()
    end = time.monotonic() + a.duration
    out = open(os.path.join(a.output_dir, "resources.jsonl"), "a")
    while True:
        time.sleep(max(0.0, min(a.interval, end - time.monotonic())))
        if time.monotonic() >= end:
            break
        ts = datetime.now(timezone.utc).isoformat()
        lines = []
        src = {"source": "psutil"}
        for i, pct in enumerate(psutil.cpu_percent(percpu=True)):
            lines.append(sample("system.cpu.usage_percent", pct, "%", {"cpu": str(i), **src}, ts))
        for n, v in zip(("1m", "5m", "15m"), os.getloadavg()):
            lines.append(sample(f"system.cpu.load_avg_{n}", v, "1", src, ts))
        vm = psutil.virtual_memory()
        lines.append(sample("system.memory.usage_percent", vm.percent, "%", src, ts))
        lines.append(sample("system.memory.used_bytes", vm.used, "By", src, ts))
        now = time.monotonic()
        net = psutil.net_io_counters(pernic=True)
        for nic, c in net.items():
            prev = last_net.get(nic, c)
            dt = max(now - last_t, 1e-3)
            lab = {"interface": nic, **src}
            lines.append(sample("system.network.bytes_sent_total", c.bytes_sent, "By", lab, ts))
            lines.append(sample("system.network.bytes_sent_rate", (c.bytes_sent - prev.bytes_sent) / dt, "By/s", lab, ts))
        last_net, last_t = net, now
        seen = set()
        for p in psutil.process_iter(["pid", "name", "cmdline"]):
            argv0 = (p.info["cmdline"] or [""])[0]
            if needle not in (p.info["name"] or "").lower() and needle not in os.path.basename(argv0).lower():
                continue
            proc = procs.setdefault(p.pid, p)
            seen.add(p.pid)
            try:
                with proc.oneshot():
                    mem = proc.memory_info()
                    io = proc.io_counters()
                    lab = {"pid": str(p.pid), "process_name": p.info["name"], **src}
                    lines.append(sample("process.cpu.usage_percent", proc.cpu_percent(), "%", lab, ts))
                    lines.append(sample("process.memory.rss_bytes", mem.rss, "By", lab, ts))
                    lines.append(sample("process.memory.vms_bytes", mem.vms, "By", lab, ts))
                    lines.append(sample("process.memory.usage_percent", mem.rss / total_mem * 100, "%", lab, ts))
                    lines.append(sample("process.io.read_bytes", io.read_bytes, "By", lab, ts))
                    lines.append(sample("process.io.write_bytes", io.write_bytes, "By", lab, ts))
                    lines.append(sample("process.threads", proc.num_threads(), "1", lab, ts))
            except psutil.Error:
                continue
        for pid in list(procs):
            if pid not in seen:
                del procs[pid]
        out.write("\n".join(lines) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
