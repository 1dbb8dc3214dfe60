"""How long do `/crm pipeline` and `/crm report` take at 100k deals?

    python -m bench.reports [--deals N] [--engine sqlite|postgresql] [--runs R] [--quick]

Generates (once, then reuses) a workspace with N deals and the history around them: stage
moves, interactions, leads with their audit events, follow-ups, 50 reps, three currencies.
Then times the service calls behind the two commands in-process (what runs after Slack's ack)
and the chart drawing that follows the text, and appends the figures to bench/RESULTS.md.
Slack's 3 s limit applies to the ack, which goes out before any of this; the target here is
that the text reply follows well within it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, func, insert, select, text

from crmbot import charts
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade
from crmbot.store.models import (
    Deal,
    Event,
    FollowUp,
    Interaction,
    Lead,
    RefCounter,
    Stage,
    StageHistory,
)

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
WS = "TREPORTS"
REPS = 50
TARGET_S = 3.0  # the text reply should land within Slack's 3 s, like the ack itself
RESULTS = Path(__file__).parent / "RESULTS.md"
DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("CRMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "crmbot_bench_reports"
CHUNK = 10_000
LOST_REASONS = ("price", "competitor", "no budget", "timing", "no decision", "features")
SOURCES = ("referral", "website", "webinar", "linkedin", "trade show", "cold call", None)
KINDS = ("call", "email", "meeting", "note", "message")

Row = dict[str, Any]


def rep(i: int) -> str:
    return f"UREP{i:03d}"


def url_for(engine: str, deals: int) -> str:
    if engine == "sqlite":
        return f"sqlite:///{DATA / f'reports-{deals}.db'}"
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={PG_SCHEMA},public')}"


def _chunks(rows: list[Row]) -> Iterator[list[Row]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _ago(rng: random.Random, days: float) -> datetime:
    return NOW - timedelta(seconds=rng.uniform(0, days * 86400))


def generate(url: str, deals: int, log: Callable[[str], None] = print) -> None:
    """One workspace: `deals` deals with stage history, interactions, leads, events, tasks."""
    started = time.perf_counter()
    rng = random.Random(20261123)
    upgrade(url)
    db = Database(url)
    crm = CrmService(db, lambda: NOW - timedelta(days=800))
    crm.ensure_workspace(WS, name="Bench reports")
    for i in range(REPS):
        crm.upsert_rep(WS, rep(i), name=f"Rep {i:02d}")
    with db.read() as session:
        stages = list(session.scalars(select(Stage).where(Stage.workspace_id == WS)))
    open_stages = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    deal_rows: list[Row] = []
    history: list[tuple[int, list[tuple[int | None, int, datetime]]]] = []
    for n in range(1, deals + 1):
        created = _ago(rng, 720)
        roll = rng.random()
        status = "open" if roll < 0.6 else "won" if roll < 0.85 else "lost"
        path = open_stages[: rng.randint(1, len(open_stages))]
        times = sorted(created + (NOW - created) * rng.random() for _ in path[1:])
        moves: list[tuple[int | None, int, datetime]] = [(None, path[0].id, created)]
        for stage, at in zip(path[1:], times, strict=True):
            moves.append((moves[-1][1], stage.id, at))
        closed_at = None
        stage_id = path[-1].id
        if status != "open":
            closed_at = moves[-1][2] + (NOW - moves[-1][2]) * rng.random()
            stage_id = won.id if status == "won" else lost.id
            moves.append((moves[-1][1], stage_id, closed_at))
        currency = rng.choices(("USD", "EUR", "GBP"), (80, 15, 5))[0]
        amount = (
            None if rng.random() < 0.05 else Decimal(int(rng.lognormvariate(9.5, 1.2) * 100)) / 100
        )
        deal_rows.append(
            {
                "workspace_id": WS,
                "number": n,
                "name": f"Deal {n}",
                "owner_id": rep(rng.randrange(REPS)),
                "created_at": created,
                "updated_at": closed_at or moves[-1][2],
                "deleted_at": None,
                "amount": amount,
                "currency": currency,
                "stage_id": stage_id,
                "probability": rng.choice((None,) * 9 + (rng.randint(5, 95),)),
                "close_date": None
                if rng.random() < 0.1
                else NOW.date() + timedelta(days=rng.randint(-60, 200)),
                "status": status,
                "lost_reason": rng.choice(LOST_REASONS) if status == "lost" else None,
                "closed_at": closed_at,
            }
        )
        history.append((n, moves))
    with db.engine.begin() as conn:
        for chunk in _chunks(deal_rows):
            conn.execute(insert(Deal), chunk)
        ids = dict(conn.execute(select(Deal.number, Deal.id).where(Deal.workspace_id == WS)).all())
        rows = [
            {
                "workspace_id": WS,
                "deal_id": ids[n],
                "from_stage_id": src,
                "to_stage_id": dst,
                "at": at,
                "by": rep(0),
            }
            for n, moves in history
            for src, dst, at in moves
        ]
        for chunk in _chunks(rows):
            conn.execute(insert(StageHistory), chunk)
        log(f"  {len(deal_rows):,} deals, {len(rows):,} stage moves")
        leads = _leads(rng, deals // 2)
        for chunk in _chunks(leads):
            conn.execute(insert(Lead), chunk)
        lead_ids = [i for (i,) in conn.execute(select(Lead.id).where(Lead.workspace_id == WS))]
        events = _lead_events(rng, conn, leads)
        for chunk in _chunks(events):
            conn.execute(insert(Event), chunk)
        touches = _interactions(rng, list(ids.values()), lead_ids, deals * 3)
        for chunk in _chunks(touches):
            conn.execute(insert(Interaction), chunk)
        tasks = _follow_ups(rng, deals // 5)
        for chunk in _chunks(tasks):
            conn.execute(insert(FollowUp), chunk)
        for kind, top in (("deal", deals), ("lead", len(leads)), ("follow_up", len(tasks))):
            conn.execute(insert(RefCounter).values(workspace_id=WS, kind=kind, value=top))
        log(
            f"  {len(leads):,} leads, {len(events):,} lead events, {len(touches):,} interactions,"
            f" {len(tasks):,} follow-ups"
        )
    # Steady state, as autovacuum would leave it: statistics and the visibility map fresh.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE"))
    db.dispose()
    log(f"  generated in {time.perf_counter() - started:.0f} s")


def _leads(rng: random.Random, count: int) -> list[Row]:
    rows = []
    for n in range(1, count + 1):
        created = _ago(rng, 720)
        rows.append(
            {
                "workspace_id": WS,
                "number": n,
                "name": f"Lead {n}",
                "owner_id": rep(rng.randrange(REPS)),
                "created_at": created,
                "updated_at": created,
                "deleted_at": None,
                "company": f"Company {rng.randrange(count)}",
                "email": f"lead{n}@example.com" if rng.random() < 0.8 else None,
                "phone": "+1 415 555 0100" if rng.random() < 0.5 else None,
                "source": rng.choice(SOURCES),
                "status": rng.choices(
                    ("new", "working", "qualified", "disqualified", "converted"),
                    (30, 25, 15, 15, 15),
                )[0],
                "score": rng.randint(0, 100),
                "extra": None,
            }
        )
    return rows


def _lead_events(rng: random.Random, conn: Any, leads: list[Row]) -> list[Row]:
    numbers = dict(conn.execute(select(Lead.number, Lead.id).where(Lead.workspace_id == WS)).all())
    rows = []
    for lead in leads:
        if lead["status"] not in ("qualified", "converted"):
            continue
        at = lead["created_at"] + (NOW - lead["created_at"]) * rng.random()
        action = "convert" if lead["status"] == "converted" else "update"
        rows.append(
            {
                "workspace_id": WS,
                "at": at,
                "actor": lead["owner_id"],
                "action": action,
                "kind": "lead",
                "record_id": numbers[lead["number"]],
                "ref": f"L-{lead['number']}",
                "before": {"status": "working"},
                "after": {"status": "qualified" if action == "update" else "converted"},
            }
        )
    return rows


def _interactions(
    rng: random.Random, deal_ids: list[int], lead_ids: list[int], count: int
) -> list[Row]:
    rows = []
    for _ in range(count):
        on_deal = rng.random() < 0.65
        at = _ago(rng, 400)
        rows.append(
            {
                "workspace_id": WS,
                "kind": rng.choice(KINDS),
                "occurred_at": at,
                "logged_by": rep(rng.randrange(REPS)),
                "summary": "",
                "outcome": None,
                "duration_minutes": None,
                "lead_id": None if on_deal else rng.choice(lead_ids),
                "contact_id": None,
                "account_id": None,
                "deal_id": rng.choice(deal_ids) if on_deal else None,
                "permalink": None,
                "private": False,
                "created_at": at,
            }
        )
    return rows


def _follow_ups(rng: random.Random, count: int) -> list[Row]:
    rows = []
    for n in range(1, count + 1):
        due = NOW + timedelta(days=rng.uniform(-30, 30))
        rows.append(
            {
                "workspace_id": WS,
                "number": n,
                "title": f"Task {n}",
                "due_at": due,
                "remind_at": due,
                "owner_id": rep(rng.randrange(REPS)),
                "status": rng.choices(("open", "done", "cancelled"), (30, 60, 10))[0],
                "created_by": rep(0),
                "created_at": due - timedelta(days=3),
                "remind_attempts": 0,
            }
        )
    return rows


def ensure(engine: str, deals: int) -> str:
    url = url_for(engine, deals)
    if engine == "sqlite":
        DATA.mkdir(exist_ok=True)
        path = DATA / f"reports-{deals}.db"
        if path.exists():
            db = Database(url)
            with db.read() as session:
                have = session.scalar(
                    select(func.count()).select_from(Deal).where(Deal.workspace_id == WS)
                )
            db.dispose()
            if have == deals:
                upgrade(url)
                return url
            path.unlink()
    else:
        admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with admin.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
        admin.dispose()
    print(f"generating {deals:,} deals on {engine} …", flush=True)
    generate(url, deals)
    return url


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def measure(url: str, runs: int) -> list[dict[str, Any]]:
    db = Database(url)
    crm = CrmService(db, lambda: NOW)
    busiest = rep(0)
    cases: list[tuple[str, Callable[[], Any], Callable[[Any], Any] | None]] = [
        ("pipeline (team)", lambda: crm.pipeline_report(WS, team=True), charts.for_pipeline),
        ("pipeline @rep", lambda: crm.pipeline_report(WS, owner_id=busiest), None),
        ("report week", lambda: crm.activity_report(WS, "week"), charts.for_report),
        ("report month", lambda: crm.activity_report(WS, "month"), None),
        ("report quarter", lambda: crm.activity_report(WS, "quarter"), charts.for_report),
        ("report quarter @rep", lambda: crm.activity_report(WS, "quarter", owner_id=busiest), None),
    ]
    results = []
    for name, call, draw in cases:
        call()  # warm the caches once, as a running server has them
        times = []
        result = None
        for _ in range(runs):
            seconds, result = timed(call)
            times.append(seconds)
        row: dict[str, Any] = {
            "case": name,
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
        }
        if draw is not None:
            row["charts_s"] = round(timed(lambda result=result, draw=draw: draw(result))[0], 3)
        results.append(row)
        print(json.dumps(row), flush=True)
    db.dispose()
    return results


def machine() -> str:
    from bench.machine import machine as cores_memory_load

    return cores_memory_load()


def markdown(engine: str, deals: int, rows: list[dict[str, Any]], runs: int) -> str:
    worst = max(r["max_s"] for r in rows)
    verdict = "within" if worst <= TARGET_S else "OVER"
    lines = [
        f"## /crm pipeline and /crm report at {deals:,} deals — {engine} "
        f"({datetime.now(UTC):%Y-%m-%d})",
        "",
        f"`python -m bench.reports --deals {deals} --engine {engine} --runs {runs}` on "
        f"{machine()}, load average {os.getloadavg()[0]:.1f} while measuring. Service time "
        f"after the ack (median and worst of {runs} warm runs); charts are drawn after the text "
        f"is sent. Worst case {worst:.3f} s: {verdict} the {TARGET_S:.0f} s target (the ack "
        "itself goes out before any of this).",
        "",
        "| case | median s | worst s | charts s |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['median_s']:.3f} | {r['max_s']:.3f} | "
            f"{format(r['charts_s'], '.3f') if 'charts_s' in r else '—'} |"
        )
    return "\n".join(lines) + "\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10k deals, 3 runs")
    args = parser.parse_args()
    deals, runs = (10_000, 3) if args.quick else (args.deals, args.runs)
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    for engine in engines:
        rows = measure(ensure(engine, deals), runs)
        line = {"bench": "reports", "engine": engine, "deals": deals, "runs": runs, "cases": rows}
        print(json.dumps(line, default=str), flush=True)
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(markdown(engine, deals, rows, runs))


if __name__ == "__main__":
    main()
