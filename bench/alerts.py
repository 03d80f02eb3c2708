"""Alerts over many nights, counted by a webhook receiver as a person's phone would count them.

    uv run python -m bench.alerts               # a demo project of 60 days, then 8 nights of one new day each
    uv run python -m bench.alerts --nights 20 --json

A local HTTP receiver takes what the `webhook` channel and Apprise (`json://`) send; the project runs as a
user runs it, `reverie demo` then `reverie generate --days 1` and `reverie run` each night, and a last run on
the same data. Reported per channel: messages, alerts, distinct insights, alerts of an insight already sent
(must be 0), updates; and whether both channels carried the same ids.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench import report

REVERIE = str(Path(sys.executable).parent / "reverie")
MEMORY_ID = re.compile(r"`(mem-[0-9a-f]{12})`")


class Receiver:
    """Every POST to 127.0.0.1, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                received.append((self.path, json.loads(self.rfile.read(int(self.headers["content-length"])))))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]


def reverie(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([REVERIE, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise SystemExit(f"reverie {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def counted(ids: list[str], updates: int, messages: int) -> dict:
    return {"messages": messages, "alerts": len(ids), "distinct": len(set(ids)),
            "repeated": len(ids) - len(set(ids)), "updates": updates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60, help="days of demo data before the first night")
    parser.add_argument("--nights", type=int, default=8)
    report.output_options(parser)
    args = parser.parse_args()
    receiver = Receiver()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reverie-bench-alerts-") as folder:
        project = Path(folder)
        env = {**os.environ, "REVERIE_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/webhook",
               "REVERIE_APPRISE_URLS": f"json://127.0.0.1:{receiver.port}/apprise"}
        reverie("init", ".", cwd=project, env=env)
        config = project / "reverie.toml"
        config.write_text(config.read_text().replace(
            '# channels = ["brief_file", "prefect_artifact"]',
            'channels = ["brief_file", "prefect_artifact", "webhook", "apprise"]', 1))
        reverie("demo", "--days", str(args.days), cwd=project, env=env)
        statuses = []
        for _ in range(args.nights):
            reverie("generate", "--days", "1", cwd=project, env=env)
            statuses.append(json.loads(reverie("run", "--json", cwd=project, env=env).stdout)["status"])
        statuses.append(json.loads(reverie("run", "--json", cwd=project, env=env).stdout)["status"])
    webhook = [m for path, m in receiver.received if path == "/webhook"]
    apprise = [m for path, m in receiver.received if path == "/apprise"]
    webhook_ids = [item["id"] for m in webhook for item in m["items"]]
    apprise_ids = [i for m in apprise for i in MEMORY_ID.findall(m["message"])]
    result = {
        "machine": report.machine(), "days": args.days, "nights": args.nights, "cycles": args.nights + 2,
        "statuses": statuses, "seconds": round(time.monotonic() - started, 1),
        "channels": {
            "webhook": counted(webhook_ids, sum(item["update"] for m in webhook for item in m["items"]), len(webhook)),
            "apprise": counted(apprise_ids, sum(m["message"].count("update · ") for m in apprise), len(apprise))},
        "same_ids": webhook_ids == apprise_ids,
    }
    report.keep(args, "alerts", result)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['cycles']} cycles ({args.days} days, then {args.nights} nights and the same data again) "
          f"in {result['seconds']} s; statuses {sorted(set(statuses))}; same ids on both channels: {result['same_ids']}")
    report.print_table(*table(result))


def table(result: dict) -> tuple[tuple, list[tuple]]:
    return (("channel", "messages", "alerts", "distinct", "repeated", "updates"),
            [(name, *c.values()) for name, c in result["channels"].items()])


if __name__ == "__main__":
    main()
