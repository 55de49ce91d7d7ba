#!/usr/bin/env python3
"""Export OpenClaw session transcripts kept in SQLite to JSONL files (stdlib only).

Usage: export_transcripts.py STATE_DIR OUT_DIR

OpenClaw 2026.4.x writes transcripts as `agents/<agent>/sessions/<session>.jsonl`. Later
releases (seen in 2026.9.6) keep the same event objects in SQLite instead:
`agents/<agent>/agent/openclaw-agent.sqlite`, table `transcript_events(session_id, seq,
event_json, event_zstd, ...)`. This writes each session's events, in `seq` order, one JSON object
per line, to `OUT_DIR/<agent>/<session>.jsonl`, the layout trace-claw's analyzer reads. Rows
stored only zstd-compressed (no `event_json`) cannot be decoded with the standard library; they
are counted and reported, not guessed at. Prints one JSON summary line.
"""

import json
import sqlite3
import sys
from pathlib import Path


def export(state_dir: Path, out_dir: Path) -> dict:
    summary = {"databases": 0, "sessions": 0, "events": 0, "compressed_skipped": 0}
    for db in sorted(state_dir.glob("agents/*/agent/*.sqlite")):
        agent = db.parent.parent.name
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
            if "transcript_events" not in tables:
                continue
            summary["databases"] += 1
            rows = con.execute(
                "select session_id, seq, event_json from transcript_events order by session_id, seq")
            files = {}
            try:
                for session_id, _seq, event_json in rows:
                    if not event_json:
                        summary["compressed_skipped"] += 1
                        continue
                    if session_id not in files:
                        path = out_dir / agent / f"{session_id}.jsonl"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        files[session_id] = path.open("w", encoding="utf-8")
                        summary["sessions"] += 1
                    files[session_id].write(json.dumps(json.loads(event_json), separators=(",", ":")) + "\n")
                    summary["events"] += 1
            finally:
                for f in files.values():
                    f.close()
        finally:
            con.close()
    return summary


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2])
    print(json.dumps(export(Path(sys.argv[1]), Path(sys.argv[2]))))


if __name__ == "__main__":
    main()
