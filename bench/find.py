"""How fast is `/crm find` at scale? `python -m bench.find [--contacts N] [--engine E] [--quick]`.

Generates (or reuses) a data set with bench.datagen, then times `CrmService.find` in-process
for several classes of query, and for contrast a naive `LIKE '%term%'` scan of the contact
table. Prints one JSON line per engine and scenario and appends the figures to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from bench import datagen
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import Contact

TARGET_MS = 20.0
RESULTS = Path(__file__).parent / "RESULTS.md"
BIG, SMALL = datagen.WORKSPACES
COMMON = ("maria", "son", "globex", "john", "gmail", "smith", "müller", "maria garcia", "sales")
TWO_CHARS = ("li", "an", "ma", "jo", "de", "wu", "王伟")
NO_MATCH = ("zzqx", "qwertyuiop", "mariaa garciaa", "globexx", "johnsonn", "+99 999", "xylograph")
CLASSES = ("selective", "common", "2-char", "no match", "common, small workspace")
LIKE_TERMS_PER_CLASS = 5
LIKE_RUNS = 3

Query = tuple[str, str, str]  # class, workspace, term


def _cycle(items: list[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(n)]


def selective_terms(db: Database, count: int, rng: random.Random) -> list[str]:
    """Full emails, rare family names, phone fragments and references (a quarter each)."""
    with db.read() as session:
        top = session.scalar(select(Contact.id).order_by(Contact.id.desc()).limit(1)) or 0
        rows = session.execute(
            select(Contact.email, Contact.phone, Contact.number).where(
                Contact.id.in_(rng.sample(range(1, top + 1), min(top, count))),
                Contact.workspace_id == BIG,
                Contact.deleted_at.is_(None),
            )
        ).all()
    quarter = count // 4
    return [
        *_cycle([r.email for r in rows], quarter),
        *_cycle([name for name, _ in datagen.load_cultures()[1]], quarter),
        *_cycle([r.phone[-8:] for r in rows if r.phone], quarter),
        *_cycle([f"C-{r.number}" for r in rows], count - 3 * quarter),
    ]


def workload(db: Database, per_class: int, rng: random.Random) -> list[Query]:
    """per_class queries of each class, shuffled together."""
    classes = {
        "selective": (BIG, selective_terms(db, per_class, rng)),
        "common": (BIG, list(COMMON)),
        "2-char": (BIG, list(TWO_CHARS)),
        "no match": (BIG, list(NO_MATCH)),
        "common, small workspace": (SMALL, list(COMMON)),
    }
    queries = []
    for name, (ws, terms) in classes.items():
        queries += [(name, ws, term) for term in _cycle(terms, per_class)]
    rng.shuffle(queries)
    return queries


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(times: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
    return {
        "n": len(times),
        "p50": round(cuts[49], 2),
        "p95": round(cuts[94], 2),
        "p99": round(cuts[98], 2),
        "max": round(max(times), 2),
    }


def measure_find(crm: CrmService, queries: list[Query]) -> dict[str, list[float]]:
    for _, ws, term in queries[:: max(1, len(queries) // 200)]:  # warm up
        crm.find(ws, term)
    times: dict[str, list[float]] = {name: [] for name in CLASSES}
    for name, ws, term in queries:
        times[name].append(timed(lambda ws=ws, term=term: crm.find(ws, term)))
    return times


def measure_like(db: Database, queries: list[Query]) -> dict[str, list[float]]:
    """The naive scan find would be without its index: LIKE over the contact table."""
    op = "LIKE" if db.dialect == "sqlite" else "ILIKE"
    scan = text(
        f"SELECT id FROM contact WHERE workspace_id = :ws AND deleted_at IS NULL "
        f"AND (name {op} :p OR email {op} :p OR phone {op} :p) ORDER BY id DESC LIMIT 20"
    )
    terms: dict[str, list[tuple[str, str]]] = {name: [] for name in CLASSES}
    for name, ws, term in queries:
        chosen = terms[name]
        if (ws, term) not in chosen and len(chosen) < LIKE_TERMS_PER_CLASS:
            chosen.append((ws, term))
    times: dict[str, list[float]] = {}
    with db.engine.connect() as conn:
        for name, chosen in terms.items():
            for ws, term in chosen:
                runs = [
                    timed(lambda ws=ws, term=term: conn.execute(scan, {"ws": ws, "p": f"%{term}%"}))
                    for _ in range(LIKE_RUNS)
                ]
                times.setdefault(name, []).append(statistics.median(runs))
    return times


def machine() -> str:
    """Cores, CPU model and memory, from /proc."""
    info = {
        key.strip(): value.strip()
        for path in ("/proc/cpuinfo", "/proc/meminfo")
        for key, _, value in (line.partition(":") for line in Path(path).read_text().splitlines())
    }
    memory = int(info["MemTotal"].split()[0]) / 2**20
    cpu = info.get("model name") or platform.processor()
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.1f} GiB RAM, Python {platform.python_version()}"
    )


def engine_version(db: Database) -> str:
    if db.dialect == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with db.engine.connect() as conn:
        return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one().split()[0]


def run(engine: str, contacts: int, per_class: int, full: bool = False) -> dict[str, Any]:
    """Make or reuse the data set, then measure."""
    url, generated = datagen.ensure(
        engine, contacts, log=lambda line: print(line, file=sys.stderr), full=full
    )
    return measure(url, engine, contacts, per_class, generated)


def measure(
    url: str, engine: str, contacts: int, per_class: int, generated: float | None, like: bool = True
) -> dict[str, Any]:
    """find latency per class (and the LIKE scan) on a database holding `contacts` contacts."""
    load = os.getloadavg()[0]  # other work on the machine shows in the figures
    db = Database(url)
    try:
        queries = workload(db, per_class, random.Random(datagen.SEED))
        find = measure_find(CrmService(db), queries)
        scans = measure_like(db, queries) if like else {}
        version = engine_version(db)
    finally:
        db.dispose()
    classes = {name: summary(times) for name, times in find.items()}
    return {
        "engine": engine,
        "version": version,
        "load": load,
        "contacts": contacts,
        "generated_s": None if generated is None else round(generated, 1),
        "size_mb": round(datagen.size_bytes(url) / 1e6),
        "find": classes,
        "find_overall": summary([t for times in find.values() for t in times]),
        "target_met": all(c["p95"] <= TARGET_MS for c in classes.values()),
        "like_scan": {name: summary(times) for name, times in scans.items()},
    }


def markdown(result: dict[str, Any], command: str, when: datetime, note: str = "") -> str:
    generated = result["generated_s"]
    made = "reused an existing data set" if generated is None else f"generated in {generated:.0f} s"
    met = "**met**" if result["target_met"] else "**missed**"
    title = f"{result['version']} · {result['contacts']:,} contacts{note}"
    lines = [
        f"## {when:%Y-%m-%d %H:%M} UTC · {title}",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}; load average {result['load']:.2f} before the run",
        f"- data: {result['contacts']:,} contacts and {result['contacts'] // 5:,} accounts in two "
        f"workspaces (95 % / 5 %); {made}; {result['size_mb']:,} MB on disk",
        f"- target p95 <= {TARGET_MS:.0f} ms for every class: {met} "
        f"(overall p95 {result['find_overall']['p95']} ms)",
        "",
        "| class | find n | p50 ms | p95 ms | p99 ms | max ms | LIKE scan p50 ms | LIKE max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in result["find"].items():
        like = result["like_scan"].get(name, {})
        lines.append(
            f"| {name} | {s['n']} | {s['p50']} | {s['p95']} | {s['p99']} | {s['max']} "
            f"| {like.get('p50', '')} | {like.get('max', '')} |"
        )
    o = result["find_overall"]
    lines.append(f"| **all** | {o['n']} | {o['p50']} | {o['p95']} | {o['p99']} | {o['max']} | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.find", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 contacts")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--queries", type=int, default=200, help="queries per class")
    parser.add_argument("--no-record", action="store_true", help="don't append to RESULTS.md")
    parser.add_argument(
        "--full", action="store_true", help="search the full data set (leads and deals too)"
    )
    args = parser.parse_args(argv)
    contacts = 100_000 if args.quick else args.contacts
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    command = " ".join(["python -m bench.find", *(argv if argv is not None else sys.argv[1:])])
    failed = 0
    for engine in engines:
        try:
            result = run(engine, contacts, args.queries, args.full)
        except OperationalError as exc:  # PostgreSQL not running: say so, go on
            print(f"{engine}: skipped, database unreachable: {exc.orig}", file=sys.stderr)
            failed = 1
            continue
        meta = {k: v for k, v in result.items() if k not in ("find", "find_overall", "like_scan")}
        scenarios = {
            "find": {"classes": result["find"], "overall": result["find_overall"]},
            "like_scan": {"classes": result["like_scan"]},
        }
        for scenario, figures in scenarios.items():
            line = {"bench": "find", "scenario": scenario, **meta, **figures}
            print(json.dumps(line, ensure_ascii=False), flush=True)
        if not args.no_record:
            note = " (full data set)" if args.full else ""
            record(markdown(result, command, datetime.now(UTC), note))
    return failed


def record(section: str) -> None:
    """Append a section to RESULTS.md."""
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by `python -m bench.find`.\n")
    with RESULTS.open("a") as out:
        out.write("\n" + section)


if __name__ == "__main__":
    raise SystemExit(main())
