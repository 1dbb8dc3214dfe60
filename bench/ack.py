"""Ack latency through the real `crmbot serve`, side by side with a bolt app that only acks.

    python -m bench.ack [--contacts 100000] [--concurrency 1,10,50] [--requests 400]

Both servers are separate processes started with the same settings (waitress, the same
thread count); requests are signed like Slack's and sent from this process over keep-alive
connections, alternating between the two apps round by round so noise hits both alike.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import datagen
from tests.fakeslack import FakeSlack
from tests.slackapp import sign

SECRET = "bench-secret"
TOKEN = "xoxb-bench"
WS = datagen.WORKSPACES[0]
USER = datagen.rep_id(WS, 1)
RESULTS = Path(__file__).parent / "RESULTS.md"

Request = Callable[[int], tuple[bytes, str]]


def command(text: str, response_url: str) -> Request:
    def build(i: int) -> tuple[bytes, str]:
        fields = {
            "team_id": WS,
            "channel_id": "CBENCH",
            "user_id": USER,
            "command": "/crm",
            "text": text.replace("{i}", str(i)),
            "response_url": response_url,
            "trigger_id": f"t{i}.{secrets.token_hex(6)}",  # unique: not a retried delivery
            "api_app_id": "A1",
        }
        return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"

    return build


def interactive(payload: dict[str, Any]) -> Request:
    def build(i: int) -> tuple[bytes, str]:
        data = payload
        if "view" in payload:  # a new view each time, not a double submit (request_keys)
            data = {**payload, "view": {**payload["view"], "hash": secrets.token_hex(6)}}
        body = urllib.parse.urlencode({"payload": json.dumps(data)}).encode()
        return body, "application/x-www-form-urlencoded"

    return build


def log_submission() -> dict[str, Any]:
    values = {
        "record": {"record_picker": {"type": "external_select", "selected_option": None}},
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "call"}}},
        "date": {"date": {"type": "datepicker", "selected_date": "2026-11-20"}},
        "time": {"time": {"type": "timepicker", "selected_time": "10:00"}},
        "outcome": {"outcome": {"type": "plain_text_input", "value": "ok"}},
        "duration": {"duration": {"type": "plain_text_input", "value": "15"}},
        "notes": {"notes": {"type": "plain_text_input", "value": "bench call"}},
        "follow_up": {"follow_up": {"type": "plain_text_input", "value": None}},
    }
    return {
        "type": "view_submission",
        "team": {"id": WS},
        "user": {"id": USER, "team_id": WS},
        "api_app_id": "A1",
        "view": {
            "id": "VBENCH",
            "type": "modal",
            "callback_id": "log_interaction",
            "private_metadata": json.dumps({"channel": "CBENCH"}),
            "state": {"values": values},
        },
    }


def suggestion(value: str) -> dict[str, Any]:
    return {
        "type": "block_suggestion",
        "team": {"id": WS},
        "user": {"id": USER, "team_id": WS},
        "api_app_id": "A1",
        "action_id": "record_picker",
        "block_id": "record",
        "value": value,
        "view": {"id": "V1", "type": "modal", "callback_id": "log_interaction"},
    }


def start(args: list[str], env: dict[str, str], marker: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(marker):
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
            return process, int(line.rsplit(" ", 1)[1])
    raise SystemExit(f"{args} did not start")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_load(
    port: int, build: Request, requests: int, concurrency: int
) -> tuple[list[float], float]:
    """Send `requests` signed requests with `concurrency` workers; latencies in ms, and req/s."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body, content_type = build(i)
            ts = int(time.time())
            headers = {
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": sign(body, ts, SECRET),
            }
            started = time.perf_counter()
            conn.request("POST", "/slack/events", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from port {port}")
            with lock:
                latencies.append(elapsed)
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, requests / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="20k contacts, 150 requests")
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.requests = 20_000, 150
    source, _ = datagen.ensure("sqlite", args.contacts)
    workdir = Path(tempfile.mkdtemp(prefix="crmbot-ack-"))
    db_file = workdir / "ack.db"
    shutil.copy(source.removeprefix("sqlite:///"), db_file)

    fake = FakeSlack(response_url_max_uses=10**9).start()
    fake.add_token(TOKEN, WS, bot_user_id="UBOT")
    fake.add_user(WS, USER, "benchrep", real_name="Bench Rep", tz="Europe/Berlin")
    fake.add_channel(WS, "CBENCH", "bench")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_file}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "CRMBOT_WEB_SCHEDULER": "false",
        "CRMBOT_THREADS": "16",
    }
    crmbot, crm_port = start(
        ["-m", "crmbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        env,
        "crmbot listening on port ",
    )
    bare, bare_port = start(["-m", "bench.bare_app"], env, "bare listening on port ")
    response_url = fake.response_url(WS, channel_id="CBENCH", user_id=USER)
    scenarios: dict[str, Request] = {
        "find selective": command("find zoe.muller", response_url),
        "find common": command("find maria", response_url),
        "show": command("show C-{i}", response_url),
        "lead": command("lead Bench Lead {i} at Benchco", response_url),
        "tasks": command("tasks", response_url),
        "log view_submission": interactive(log_submission()),
        "block_suggestion": interactive(suggestion("mar")),
    }
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    try:
        # Warm both (imports, pools, users.info cache).
        for port in (crm_port, bare_port):
            run_load(port, command("help", response_url), 20, 2)
        for name, build in scenarios.items():
            for level in levels:
                results = {}
                for label, port in (("crmbot", crm_port), ("bare", bare_port)):
                    latencies, rps = run_load(port, build, args.requests, level)
                    results[label] = (latencies, rps)
                crm_lat, crm_rps = results["crmbot"]
                bare_lat, bare_rps = results["bare"]
                row = {
                    "scenario": name,
                    "concurrency": level,
                    "crmbot": {q: round(pct(crm_lat, q), 2) for q in (50, 95, 99)}
                    | {"max": round(max(crm_lat), 2), "rps": round(crm_rps)},
                    "bare": {q: round(pct(bare_lat, q), 2) for q in (50, 95, 99)}
                    | {"max": round(max(bare_lat), 2), "rps": round(bare_rps)},
                }
                row["ratio_p99"] = round(row["crmbot"][99] / max(row["bare"][99], 0.001), 2)
                row["target_met"] = row["crmbot"][99] <= 1.5 * row["bare"][99] + 10
                print(json.dumps(row), flush=True)
                rows.append(row)
        rss = rss_mb(crmbot.pid)
    finally:
        crmbot.terminate()
        bare.terminate()
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(args, rows, rss)


def write_results(args: argparse.Namespace, rows: list[dict[str, Any]], rss: float) -> None:
    mem = next(
        line
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    at_ten = [r for r in rows if r["concurrency"] == 10]
    met = all(r["target_met"] for r in at_ten)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · ack latency vs a bare bolt app · {args.contacts:,} contacts (SQLite)",
        "",
        f"- command: `python -m bench.ack --contacts {args.contacts} --concurrency {args.concurrency} --requests {args.requests}`",
        f"- machine: {os.cpu_count()} cores, {mem.split()[1]} kB RAM, Python {platform.python_version()}",
        "- both apps: waitress, CRMBOT_THREADS=16, separate processes, same fake Slack; alternating runs",
        f"- target (concurrency 10): crmbot p99 <= 1.5 x bare p99 + 10 ms: **{'met' if met else 'missed'}**",
        f"- RSS of the crmbot serve process after the runs: {rss:.0f} MB",
        "",
        "| scenario | conc. | crmbot p50 | p95 | p99 | max | req/s | bare p50 | p95 | p99 | max | req/s | p99 ratio | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        c, b = r["crmbot"], r["bare"]
        crm_cells = f"{c[50]} | {c[95]} | {c[99]} | {c['max']} | {c['rps']}"
        bare_cells = f"{b[50]} | {b[95]} | {b[99]} | {b['max']} | {b['rps']}"
        verdict = "ok" if r["target_met"] else "MISSED"
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {crm_cells} | {bare_cells} "
            f"| {r['ratio_p99']} | {verdict} |"
        )
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
