"""PostgreSQL substring tier, side by side: `python -m bench.find_ab [--contacts N] [--queries Q]`.

Times `CrmService.find` with the shipped statement shapes (crmbot/store/pg_search.py) and
with the single `body LIKE … ORDER BY id DESC LIMIT n` statement used before migration 0010,
query by query in random order within each pair, on the same data and indexes, so both see
the same load on a shared machine. Prints one JSON line and appends a section to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench import datagen, find
from bench.machine import machine
from crmbot.domain import RecordKind
from crmbot.service import CrmService
from crmbot.store import queries
from crmbot.store.db import Database
from crmbot.store.models import SearchDoc

_DOC = SearchDoc.__table__.c
SHIPPED = queries._substring_ids


def one_statement(
    session: Session, ws: str, words: Sequence[str], kinds: Sequence[RecordKind], limit: int
) -> list[Any]:
    """The substring tier before 0010 on PostgreSQL: one LIKE statement, the planner's pick."""
    if session.get_bind().dialect.name == "sqlite":
        return SHIPPED(session, ws, words, kinds, limit)
    likes = [_DOC.body.like("%" + queries._like_escape(w) + "%", escape="\\") for w in words]
    stmt = select(SearchDoc.__table__).where(*likes, *queries._live_rows(ws, kinds))
    return list(session.execute(stmt.order_by(_DOC.id.desc()).limit(limit)).all())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.find_ab", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100, help="queries per class")
    args = parser.parse_args(argv)
    command = " ".join(["python -m bench.find_ab", *(argv if argv is not None else sys.argv[1:])])
    where = machine()
    url, _ = datagen.ensure("postgresql", args.contacts, log=lambda s: print(s, file=sys.stderr))
    db = Database(url)
    crm = CrmService(db)
    work = find.workload(db, args.queries, random.Random(datagen.SEED))
    variants = {"shipped": SHIPPED, "one statement": one_statement}
    times: dict[str, dict[str, list[float]]] = {v: {c: [] for c in find.CLASSES} for v in variants}
    rng = random.Random(1)
    try:
        for _, ws, term in work[:50]:  # warm up
            crm.find(ws, term)
        for name, ws, term in work:
            for variant in rng.sample(list(variants), len(variants)):
                queries._substring_ids = variants[variant]
                started = time.perf_counter()
                crm.find(ws, term)
                times[variant][name].append((time.perf_counter() - started) * 1000)
    finally:
        queries._substring_ids = SHIPPED
        db.dispose()
    result: dict[str, Any] = {"bench": "find_ab", "contacts": args.contacts}
    for variant, classes in times.items():
        every = [t for ts in classes.values() for t in ts]
        result[variant] = {c: find.summary(ts) for c, ts in classes.items()}
        result[variant]["all"] = find.summary(every)
    print(json.dumps(result), flush=True)
    lines = [
        f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · find on PostgreSQL, shipped shapes vs "
        f"one LIKE statement · {args.contacts:,} contacts\n",
        f"- command: `{command}`",
        f"- machine: {where} (before the run); {machine().split('; ')[-1]} after",
        "- same data, same indexes (migration 0010), the two variants interleaved query by "
        "query, so both see the same load",
        "",
        "| class | shipped p50 | p95 | p99 | one statement p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in (*find.CLASSES, "all"):
        a, b = result["shipped"][c], result["one statement"][c]
        lines.append(
            f"| {c} | {a['p50']} | {a['p95']} | {a['p99']} | {b['p50']} | {b['p95']} | {b['p99']} |"
        )
    with find.RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
