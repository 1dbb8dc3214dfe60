"""Searching SQLite from many threads of one process: one at a time, or all at once?

    python -m bench.search_threads [--contacts 20000] [--searches 1000] [--term mar]

Times `CrmService.find` (what type-ahead and `/crm find` run) from 1, 2, 4 and 10 threads of
one process on the bench data set, with `Database.search`'s per-process lock (what crmbot
ships for SQLite) and without it, and a plain loop for reference. SQLite runs inside the
process in short steps, releasing the interpreter lock around each one; threads searching at
once hand that lock back and forth between the steps, which costs CPU and throughput.
Prints one JSON line per case and appends a section to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import datagen
from bench.machine import machine
from crmbot.service import CrmService
from crmbot.store.db import Database

RESULTS = Path(__file__).parent / "RESULTS.md"
WS = datagen.WORKSPACES[0]
USER = datagen.rep_id(WS, 1)


def measure(crm: CrmService, term: str, searches: int, threads: int) -> dict[str, float]:
    """CPU ms per search (the whole process) and searches per second."""

    def one(_: int) -> None:
        crm.find(WS, term, by=USER)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(50)))  # warm: connections, caches, statements
        cpu, wall = time.process_time(), time.perf_counter()
        list(pool.map(one, range(searches)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms": round(cpu * 1000 / searches, 3), "per_s": round(searches / wall)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--term", default="mar")
    args = parser.parse_args()
    source, _ = datagen.ensure("sqlite", args.contacts)
    workdir = Path(tempfile.mkdtemp(prefix="crmbot-search-threads-"))
    copy = workdir / "search.db"
    shutil.copy(source.removeprefix("sqlite:///"), copy)
    db = Database(f"sqlite:///{copy}", pool_size=16)
    crm = CrmService(db)
    rows: list[dict[str, Any]] = []
    try:
        crm.find(WS, args.term, by=USER)
        cpu = time.process_time()
        for _ in range(args.searches):
            crm.find(WS, args.term, by=USER)
        loop_ms = (time.process_time() - cpu) * 1000 / args.searches
        rows.append({"case": "plain loop", "threads": 1, "cpu_ms": round(loop_ms, 3)})
        shipped = db._searcher
        for locked in (True, False):
            db._searcher = shipped if locked else nullcontext()
            for threads in (1, 2, 4, 10):
                case = "one at a time (shipped)" if locked else "all at once"
                rows.append(
                    {"case": case, "threads": threads}
                    | measure(crm, args.term, args.searches, threads)
                )
        db._searcher = shipped
    finally:
        db.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    for row in rows:
        print(json.dumps(row), flush=True)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · SQLite searches from many threads · "
        f"{args.contacts:,} contacts",
        "",
        f"- command: `python -m bench.search_threads --contacts {args.contacts} "
        f"--searches {args.searches} --term {args.term}`",
        f"- machine: {machine()}",
        "- `CrmService.find` as type-ahead runs it; CPU is the whole process's, per search",
        "",
        "| case | threads | CPU ms per search | searches/s |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['threads']} | {row['cpu_ms']} | {row.get('per_s', '-')} |"
        )
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
