"""What claiming a request key costs on the ack path (retries and double submits).

    python -m bench.request_keys [--engine sqlite|postgresql|both] [--claims N] [--keys K]
                                 [--threads T] [--quick]

Fills `request_key` with K live keys (a busy day), then times N `CrmService.claim_request`
calls through the real service: new keys one after another (a request's only extra work
before its ack), the same key again (a duplicate), and new keys from T threads at once.
Appends the figures to bench/RESULTS.md unless --quick.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, insert, text

from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade
from crmbot.store.models import RequestKey

RESULTS = Path(__file__).parent / "RESULTS.md"
PG_URL = os.environ.get("CRMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "crmbot_bench_request_keys"
TTL = timedelta(hours=24)


def database(engine: str, tmp: Path) -> str:
    if engine == "sqlite":
        url = f"sqlite:///{tmp / 'keys.db'}"
    else:
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
        admin.dispose()
        url = f"{PG_URL}?options={quote(f'-csearch_path={PG_SCHEMA},public')}"
    upgrade(url)
    return url


def fill(db: Database, keys: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "workspace_id": f"T{i % 50:04d}",
            "key": f"command:{uuid.uuid4().hex}",
            "token": uuid.uuid4().hex,
            "created_at": now,
            "expires_at": now + TTL,
        }
        for i in range(keys)
    ]
    with db.write() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(RequestKey), rows[start : start + 5000])


def timings(calls: int, call: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def threaded(crm: CrmService, calls: int, threads: int) -> list[float]:
    out: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        mine = timings(calls // threads, lambda i: crm.claim_request("T0001", _new(), ttl=TTL))
        with lock:
            out.extend(mine)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return out


def _new() -> str:
    return f"command:{uuid.uuid4().hex}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {len(values)} | {statistics.median(values):.2f} | {pct(values, 95):.2f} "
        f"| {pct(values, 99):.2f} | {max(values):.2f} |"
    )


def measure(engine: str, claims: int, keys: int, threads: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        url = database(engine, Path(tmp))
        db = Database(url)
        crm = CrmService(db)
        fill(db, keys)
        crm.claim_request("T0001", "command:warm", ttl=TTL)
        new = timings(claims, lambda i: crm.claim_request("T0001", _new(), ttl=TTL))
        again = timings(claims, lambda i: crm.claim_request("T0001", "command:warm", ttl=TTL))
        together = threaded(crm, claims, threads)
        db.dispose()
    if engine == "postgresql":
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
        admin.dispose()
    load = os.getloadavg()[0]
    return "\n".join(
        [
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · request key claims · {engine}",
            "",
            f"- command: `python -m bench.request_keys --engine {engine} --claims {claims} "
            f"--keys {keys} --threads {threads}`",
            f"- {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load:.1f}; {keys:,} live keys in the table",
            "- one `claim_request` = one write transaction with one "
            "`INSERT … ON CONFLICT DO NOTHING RETURNING` (plus an `UPDATE` for a duplicate)",
            "",
            "| claims | n | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|",
            row("new key, one at a time", new),
            row("duplicate (same key)", again),
            row(f"new keys, {threads} threads at once", together),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="200 claims, 10k keys, no RESULTS")
    args = parser.parse_args()
    if args.quick:
        args.claims, args.keys = 200, 10_000
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    for engine in engines:
        report = measure(engine, args.claims, args.keys, args.threads)
        print(report)
        if not args.quick:
            with RESULTS.open("a", encoding="utf-8") as out:
                out.write("\n" + report)


if __name__ == "__main__":
    main()
