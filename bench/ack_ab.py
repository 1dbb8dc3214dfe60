"""Two builds or settings of `crmbot serve` side by side in one run, round by round.

    python -m bench.ack_ab --b-python /tmp/old/.venv/bin/python [--rounds 12]
    python -m bench.ack_ab --b-env CRMBOT_WORKERS=4 [--scenario suggest]

On a shared VM the same build's CPU per request drifts by ±30 % from one minute to the next,
so two `bench.ack` runs a minute apart can't tell a 10 % change. Here A (this checkout, or
`--a-env`) and B (another checkout's interpreter, `--b-python`, and/or `--b-env`) serve at
the same time, each on its own copy of the data, and take turns (ABBA…) in short rounds:
drift hits both alike. Prints, for each, the median of the rounds' web-process CPU per
request, the p50/p99 over all rounds, and the median of the rounds' p99. Nothing is written
to RESULTS.md: this is for deciding, `bench.ack` is for the record.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import ack, datagen

SCENARIOS = {
    "log": lambda urls: ack.log_submissions(urls),
    "suggest": lambda _urls: ack.interactive(ack.suggestion("mar")),
    "find": lambda urls: ack.command("find zoe.muller", urls),
    "lead": lambda urls: ack.command("lead Bench Lead {i} at Benchco", urls),
}


def serve(python: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Start `crmbot serve` with `python` (its checkout is found from its venv)."""
    checkout = Path(python).resolve().parent.parent.parent
    command = [python, "-m", "crmbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command, env=env, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("crmbot listening on port "):
            threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
            return process, int(line.rsplit(" ", 1)[1])
    raise SystemExit(f"{python} did not start")


def drain(lines: Any) -> None:
    for _ in lines:
        pass


def settings(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in text.split(",") if kv)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a-env", default="", help="K=V,K=V for A")
    parser.add_argument("--b-env", default="", help="K=V,K=V for B")
    parser.add_argument("--b-python", default=sys.executable, help="B's interpreter (a venv)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=300, help="per round and side")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="log")
    args = parser.parse_args()
    source, _ = datagen.ensure("sqlite", 20_000)
    workdir = Path(tempfile.mkdtemp(prefix="crmbot-ab-"))
    manager = ack.FakeProcess()
    manager.start()
    fake: Any = manager.Fake(response_url_max_uses=10**9)  # type: ignore[attr-defined]
    fake_url = fake.begin(0)
    fake.add_token(ack.TOKEN, ack.WS, bot_user_id="UBOT")
    fake.add_user(ack.WS, ack.USER, "benchrep", real_name="Bench Rep", tz="Europe/Berlin")
    fake.add_channel(ack.WS, "CBENCH", "bench")
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for side, python, extra in (
            ("A", sys.executable, args.a_env),
            ("B", args.b_python, args.b_env),
        ):
            db_file = workdir / f"{side}.db"
            shutil.copy(source.removeprefix("sqlite:///"), db_file)
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{db_file}",
                "SLACK_BOT_TOKEN": ack.TOKEN,
                "SLACK_SIGNING_SECRET": ack.SECRET,
                "SLACK_API_URL": fake_url,
                "CRMBOT_WEB_SCHEDULER": "false",
                "CRMBOT_THREADS": "16",
                "CRMBOT_WORKERS": "2",
                "CRMBOT_WORKER_NICE": "10",
                **settings(extra),
            }
            servers[side] = serve(python, env)

        def urls(n: int) -> list[str]:
            return [
                fake.response_url(ack.WS, channel_id="CBENCH", user_id=ack.USER) for _ in range(n)
            ]

        build = SCENARIOS[args.scenario]
        for _, port in servers.values():  # warm up
            ack.run_load(port, ack.command("help", urls(20)), 20, 2)
            ack.run_load(port, build(urls(100)), 100, 2)
        time.sleep(1)
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        latencies: dict[str, list[float]] = {"A": [], "B": []}
        p99s: dict[str, list[float]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            for side in "AB" if round_ % 2 == 0 else "BA":
                process, port = servers[side]
                before = ack.cpu_seconds(process.pid)
                got, _ = ack.run_load(
                    port, build(urls(args.requests)), args.requests, args.concurrency
                )
                cpu[side].append((ack.cpu_seconds(process.pid) - before) * 1000 / args.requests)
                latencies[side] += got
                p99s[side].append(ack.pct(got, 99))
                time.sleep(0.3)  # let the workers' posts drain
        for side in "AB":
            print(
                f"{side}: CPU/request median {statistics.median(cpu[side]):.2f} ms "
                f"(rounds {' '.join(f'{c:.2f}' for c in cpu[side])}); "
                f"p50 {ack.pct(latencies[side], 50):.1f} p99 {ack.pct(latencies[side], 99):.1f} ms; "
                f"median round p99 {statistics.median(p99s[side]):.1f} ms",
                flush=True,
            )
    finally:
        for process, _ in servers.values():
            process.terminate()
        fake.stop()
        manager.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
