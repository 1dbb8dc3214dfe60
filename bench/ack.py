"""Ack latency through the real `crmbot serve`, side by side with a bolt app that only acks.

    python -m bench.ack [--contacts 100000] [--concurrency 1,10,50] [--requests 400]

Both servers are separate processes started with the same settings (waitress, the same
thread count); requests are signed like Slack's and sent from this process over keep-alive
connections, alternating between the two apps round by round so noise hits both alike.

Fast acks are worth nothing if the answer is slow, so for crmbot the bench also measures
reply latency: from sending a request to its answer reaching the fake Slack (the
`response_url` POST for commands, `chat.postEphemeral` for the log submission; each request
has its own response_url or note). The next run starts only when every answer has arrived.
The fake Slack runs in a process of its own: checking the answers' blocks takes CPU, which
must not slow the load generator's threads (that would count against crmbot's acks).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.managers import BaseManager
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
WARM_UP = 30  # requests of each scenario sent to both servers before it is measured

Request = Callable[[int], tuple[bytes, str]]
# A scenario builds its requests from the response_urls of this run (one per request), and
# says how to recognise request i's answer among the fake Slack's calls (None: the ack is
# the answer, as for block_suggestion).
Scenario = tuple[
    Callable[[list[str]], Request], Callable[[list[str], int], Callable[[Any], bool]] | None
]


def command(text: str, response_urls: list[str]) -> Request:
    def build(i: int) -> tuple[bytes, str]:
        fields = {
            "team_id": WS,
            "channel_id": "CBENCH",
            "user_id": USER,
            "command": "/crm",
            "text": text.replace("{i}", str(i)),
            "response_url": response_urls[i],
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


def answered_at(response_urls: list[str], i: int) -> Callable[[Any], bool]:
    path = urllib.parse.urlsplit(response_urls[i]).path
    return lambda call: call.method == "response_url" and call.path == path


def log_submissions(_urls: list[str]) -> Request:
    def build(i: int) -> tuple[bytes, str]:
        return interactive(log_submission(f"bench call {i}."))(i)

    return build


def logged(_urls: list[str], i: int) -> Callable[[Any], bool]:
    marker = f"bench call {i}."
    return lambda call: call.method == "chat.postEphemeral" and marker in json.dumps(call.args)


def log_submission(notes: str = "bench call") -> dict[str, Any]:
    values = {
        "record": {"record_picker": {"type": "external_select", "selected_option": None}},
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "call"}}},
        "date": {"date": {"type": "datepicker", "selected_date": "2026-11-20"}},
        "time": {"time": {"type": "timepicker", "selected_time": "10:00"}},
        "outcome": {"outcome": {"type": "plain_text_input", "value": "ok"}},
        "duration": {"duration": {"type": "plain_text_input", "value": "15"}},
        "notes": {"notes": {"type": "plain_text_input", "value": notes}},
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` (the thread holding the GIL) until sent SIGINT."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    command = [spy, "record", "-p", str(pid), "--gil", "-f", "raw", "-r", "1000", "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    return process


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def run_load(
    port: int, build: Request, requests: int, concurrency: int, sent: dict[int, float] | None = None
) -> tuple[list[float], float]:
    """Send `requests` signed requests with `concurrency` workers; latencies in ms, and req/s.

    `sent` gets each request's send time (time.time(), the fake Slack's clock)."""
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
            if sent is not None:
                sent[i] = time.time()
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


class RemoteFake(FakeSlack):
    """The fake Slack as served to this process by a manager (methods only, no Self)."""

    def begin(self, nice: int) -> str:
        os.nice(nice)
        self.start()
        return self.url

    def calls_from(self, start: int) -> list[Any]:
        return self.calls[start:]

    def call_count(self) -> int:
        return len(self.calls)


class FakeProcess(BaseManager):
    pass


FakeProcess.register(
    "Fake",
    RemoteFake,
    exposed=(
        "begin",
        "calls_from",
        "call_count",
        "add_token",
        "add_user",
        "add_channel",
        "response_url",
        "stop",
    ),
)


def reply_latencies(
    fake: Any,
    sent: dict[int, float],
    matcher: Callable[[int], Callable[[Any], bool]],
    since: int,
    timeout: float = 120.0,
) -> list[float]:
    """Wait until every request's answer reached the fake Slack; ms from send to answer."""
    pending = dict(sent)
    answered: dict[int, float] = {}
    checks = {i: matcher(i) for i in pending}
    deadline = time.monotonic() + timeout
    seen = since
    while pending and time.monotonic() < deadline:
        calls = fake.calls_from(seen)
        for call in calls:
            for i in list(pending):
                if checks[i](call):
                    answered[i] = (call.at - pending.pop(i)) * 1000
                    break
        seen += len(calls)
        if pending:
            time.sleep(0.05)
    if pending:
        raise SystemExit(f"{len(pending)} of {len(sent)} answers never arrived")
    return list(answered.values())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="20k contacts, 150 requests")
    parser.add_argument("--nice", type=int, default=10, help="CRMBOT_WORKER_NICE for crmbot serve")
    parser.add_argument(
        "--fake-nice",
        type=int,
        default=0,
        help="nice for the fake Slack's process (it stands in for Slack's own servers)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="folder: record each crmbot run with py-spy (raw stacks, web process only)",
    )
    parser.add_argument("--only", default="", help="comma-separated scenario names (default all)")
    parser.add_argument(
        "--workers", type=int, default=2, help="CRMBOT_WORKERS for crmbot serve (0: in-process)"
    )
    args = parser.parse_args()
    if args.quick:
        args.contacts, args.requests = 20_000, 150
    source, _ = datagen.ensure("sqlite", args.contacts)
    workdir = Path(tempfile.mkdtemp(prefix="crmbot-ack-"))
    db_file = workdir / "ack.db"
    shutil.copy(source.removeprefix("sqlite:///"), db_file)

    manager = FakeProcess()
    manager.start()
    fake: Any = manager.Fake(response_url_max_uses=10**9)  # type: ignore[attr-defined]
    fake_url = fake.begin(args.fake_nice)
    fake.add_token(TOKEN, WS, bot_user_id="UBOT")
    fake.add_user(WS, USER, "benchrep", real_name="Bench Rep", tz="Europe/Berlin")
    fake.add_channel(WS, "CBENCH", "bench")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db_file}",
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake_url,
        "CRMBOT_WEB_SCHEDULER": "false",
        "CRMBOT_THREADS": "16",
        "CRMBOT_WORKERS": str(args.workers),
        "CRMBOT_WORKER_NICE": str(args.nice),
    }
    crmbot, crm_port = start(
        ["-m", "crmbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        env,
        "crmbot listening on port ",
    )
    bare, bare_port = start(["-m", "bench.bare_app"], env, "bare listening on port ")

    def urls(n: int) -> list[str]:
        return [fake.response_url(WS, channel_id="CBENCH", user_id=USER) for _ in range(n)]

    def cmd(text: str) -> Callable[[list[str]], Request]:
        return lambda response_urls: command(text, response_urls)

    scenarios: dict[str, Scenario] = {
        "find selective": (cmd("find zoe.muller"), answered_at),
        "find common": (cmd("find maria"), answered_at),
        "show": (cmd("show C-{i}"), answered_at),
        "lead": (cmd("lead Bench Lead {i} at Benchco"), answered_at),
        "tasks": (cmd("tasks"), answered_at),
        "log view_submission": (log_submissions, logged),
        "block_suggestion": (lambda _urls: interactive(suggestion("mar")), None),
    }
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    try:
        # Warm both (imports, pools, users.info cache).
        for port in (crm_port, bare_port):
            run_load(port, command("help", urls(20)), 20, 2)
        time.sleep(1)
        chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(scenarios)
        for name in chosen:
            build, answer = scenarios[name]
            # Warm both servers up on this request first (SQLAlchemy's statement cache, first
            # imports, ...): a cold first request costs several times a warm one, and with 150
            # requests a run's p99 is its second-slowest request.
            for port in (crm_port, bare_port):
                run_load(port, build(urls(WARM_UP)), WARM_UP, 2)
            time.sleep(0.5)  # the warm-up's answers arrive before the run's are counted
            for level in levels:
                results = {}
                replies: list[float] = []
                cpu: dict[str, float] = {}
                for label, port in (("crmbot", crm_port), ("bare", bare_port)):
                    response_urls = urls(args.requests)
                    sent: dict[int, float] = {}
                    since = fake.call_count()
                    pid = crmbot.pid if label == "crmbot" else bare.pid
                    cpu_before = cpu_seconds(pid)
                    spy = None
                    if args.profile and label == "crmbot":
                        spy = profile(pid, Path(args.profile) / f"{name}-c{level}.txt")
                    latencies, rps = run_load(
                        port, build(response_urls), args.requests, level, sent
                    )
                    results[label] = (latencies, rps)
                    if label == "crmbot" and answer is not None:
                        replies = reply_latencies(
                            fake, sent, lambda i, u=response_urls, a=answer: a(u, i), since
                        )
                    cpu[label] = (cpu_seconds(pid) - cpu_before) * 1000 / args.requests
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)
                        spy.wait(30)
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
                row["crmbot_reply"] = (
                    {q: round(pct(replies, q), 2) for q in (50, 95, 99)}
                    | {"max": round(max(replies), 2)}
                    if replies
                    else None
                )
                # CPU ms per request in the serving process during the run (crmbot: the web
                # process only; its workers' share is not counted here)
                row["cpu_ms_per_request"] = {k: round(v, 2) for k, v in cpu.items()}
                row["ratio_p99"] = round(row["crmbot"][99] / max(row["bare"][99], 0.001), 2)
                row["target_met"] = row["crmbot"][99] <= 1.5 * row["bare"][99] + 10
                print(json.dumps(row), flush=True)
                rows.append(row)
        rss = rss_mb(crmbot.pid)
        worker_rss = [rss_mb(pid) for pid in children(crmbot.pid)]
    finally:
        crmbot.terminate()
        bare.terminate()
        fake.stop()
        manager.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(args, rows, rss, worker_rss)


def write_results(
    args: argparse.Namespace, rows: list[dict[str, Any]], rss: float, worker_rss: list[float]
) -> None:
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
        f"- command: `python -m bench.ack --contacts {args.contacts} --concurrency {args.concurrency} --requests {args.requests} --workers {args.workers} --nice {args.nice}"
        + (f" --fake-nice {args.fake_nice}" if args.fake_nice else "")
        + (f' --only "{args.only}"' if args.only else "")
        + "`",
        f"- machine: {os.cpu_count()} cores, {mem.split()[1]} kB RAM, Python {platform.python_version()}",
        "- both apps: waitress, CRMBOT_THREADS=16, separate processes, same fake Slack; alternating runs",
        f"- warm-up: {WARM_UP} requests of each scenario to both apps (concurrency 2) before it is measured",
        f"- crmbot: CRMBOT_WORKERS={args.workers}, CRMBOT_WORKER_NICE={args.nice} (post-ack work of `/crm` in worker processes; 0: in the web process)",
        "- reply: crmbot's answer reaching the fake Slack, ms after the request was sent (block_suggestion: the ack is the answer)",
        "- CPU: ms of CPU per request used by the serving process during the run (crmbot: the web process, whose interpreter lock every ack needs; its workers are not counted)",
        f"- load average (1 min) when the runs ended: {os.getloadavg()[0]:.2f}",
        f"- target (concurrency 10): crmbot p99 <= 1.5 x bare p99 + 10 ms: **{'met' if met else 'missed'}**",
        f"- RSS of the crmbot serve process after the runs: {rss:.0f} MB"
        + (
            f"; its {len(worker_rss)} workers: {', '.join(f'{r:.0f}' for r in worker_rss)} MB"
            if worker_rss
            else ""
        ),
        "",
        "| scenario | conc. | crmbot p50 | p95 | p99 | max | req/s | bare p50 | p95 | p99 | max | req/s | p99 ratio | target | reply p50 | reply p99 | reply max | CPU crmbot | CPU bare |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c, b = r["crmbot"], r["bare"]
        crm_cells = f"{c[50]} | {c[95]} | {c[99]} | {c['max']} | {c['rps']}"
        bare_cells = f"{b[50]} | {b[95]} | {b[99]} | {b['max']} | {b['rps']}"
        verdict = "ok" if r["target_met"] else "MISSED"
        lines.append(
            f"| {r['scenario']} | {r['concurrency']} | {crm_cells} | {bare_cells} "
            f"| {r['ratio_p99']} | {verdict} | {reply_cells(r['crmbot_reply'])} "
            f"| {r['cpu_ms_per_request']['crmbot']} | {r['cpu_ms_per_request']['bare']} |"
        )
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


def reply_cells(reply: dict[Any, float] | None) -> str:
    return f"{reply[50]} | {reply[99]} | {reply['max']}" if reply else "- | - | -"


if __name__ == "__main__":
    main()
