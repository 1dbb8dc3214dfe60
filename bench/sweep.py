"""What does one reminder sweep cost at scale? `python -m bench.sweep [--quick] [--engine E]`.

Data: 1M open follow-ups (`--quick`: 100k) in one workspace, 1 % of them overdue (10k at 1M)
by an hour to ten days, the overdue ones spread over 50 channels and 40 owners, a quarter of
all follow-ups about a lead. Generated once, deterministically, straight into the migrated
schema (executemany on SQLite, COPY on PostgreSQL) and reused; each run resets the overdue
rows (remind_at = due_at, no lease) and empties the notification log, then runs one real
`Sweeper.sweep()` against the fake Slack (tests/fakeslack.py, over HTTP) and times every
service call the sweep makes: that is its database work. A second sweep right after shows the
cost of a sweep with nothing due (what every process pays every interval).
Prints one JSON line per engine and appends the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from crmbot.config import Settings
from crmbot.handlers.delivery import Pacer
from crmbot.scheduler import Sweeper
from crmbot.service import CrmService
from crmbot.store.db import Database, normalize_url
from crmbot.store.migrate import upgrade
from tests.fakeslack import FakeSlack

HERE = Path(__file__).parent
DATA = HERE / "data"
RESULTS = HERE / "RESULTS.md"
PG_URL = os.environ.get("CRMBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "crmbot_bench_sweep"
WS = "TSWEEP"
TOKEN = "xoxb-bench-sweep"
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # a Monday, before anyone's morning digest
CHANNELS = 50
OWNERS = 40
OVERDUE_EVERY = 100  # 1 % of follow-ups are overdue
BATCH = 100_000
TARGET_MS = 1000.0

Row = dict[str, Any]


def channel_id(n: int) -> str:
    return f"CSWEEP{n:03d}"


def owner_id(n: int) -> str:
    return f"USWEEP{n:03d}"


def follow_ups(count: int) -> Iterator[list[Row]]:
    """The follow-up rows, in batches; ids and numbers 1..count."""
    created = NOW - timedelta(days=30)
    batch: list[Row] = []
    for n in range(1, count + 1):
        if n % OVERDUE_EVERY == 0:  # overdue by 1 h .. 10 days, in one of the 50 channels
            due = NOW - timedelta(hours=1 + (n * 7919) % 240)
            channel = channel_id((n // OVERDUE_EVERY) % CHANNELS)
        else:  # due in the next 90 days, anywhere
            due = NOW + timedelta(minutes=60 + (n * 104729) % (90 * 24 * 60))
            channel = channel_id(n % CHANNELS) if n % 3 else None
        batch.append(
            {
                "id": n,
                "workspace_id": WS,
                "number": n,
                "title": f"Follow up on proposal {n}",
                "due_at": due,
                "remind_at": due,
                "owner_id": owner_id(n % OWNERS),
                "lead_id": (n // 4) % max(1, count // 50) + 1 if n % 4 == 0 else None,
                "channel_id": channel,
                "status": "open",
                "created_by": owner_id(n % OWNERS),
                "created_at": created,
                "remind_attempts": 0,
            }
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def leads(count: int) -> list[Row]:
    stamp = NOW - timedelta(days=60)
    return [
        {
            "id": n,
            "workspace_id": WS,
            "number": n,
            "name": f"Prospect {n}",
            "owner_id": owner_id(n % OWNERS),
            "status": "working",
            "score": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        for n in range(1, max(1, count // 50) + 1)
    ]


def counters(count: int) -> list[Row]:
    return [
        {"workspace_id": WS, "kind": "lead", "value": max(1, count // 50)},
        {"workspace_id": WS, "kind": "follow_up", "value": count},
    ]


# --- generation ----------------------------------------------------------------------


def sqlite_path(count: int) -> Path:
    return DATA / f"sweep-{count}.db"


def pg_url() -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={PG_SCHEMA},public')}"


def url_for(engine: str, count: int) -> str:
    return f"sqlite:///{sqlite_path(count)}" if engine == "sqlite" else pg_url()


def is_complete(url: str, count: int) -> bool:
    if url.startswith("sqlite") and not sqlite_path(count).exists():
        return False
    try:
        with create_engine(normalize_url(url)).connect() as conn:
            value = conn.execute(
                text(
                    "SELECT value FROM ref_counter WHERE workspace_id = :ws AND kind = 'follow_up'"
                ),
                {"ws": WS},
            ).scalar()
    except Exception:  # no schema, no table: not generated yet
        return False
    return value == count


def _setup(url: str) -> None:
    upgrade(url)
    db = Database(url)
    crm = CrmService(db, lambda: NOW)
    crm.ensure_workspace(WS, name="Sweep bench")
    for n in range(OWNERS):
        crm.upsert_rep(WS, owner_id(n), name=f"Owner {n}", tz="UTC")
    db.dispose()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def generate_sqlite(count: int, log: Callable[[str], None]) -> None:
    final = sqlite_path(count)
    partial = final.with_name(final.name + ".partial")
    DATA.mkdir(exist_ok=True)
    for stale in (*DATA.glob(final.name + "*"), *DATA.glob(partial.name + "*")):
        stale.unlink()
    _setup(f"sqlite:///{partial}")
    conn = sqlite3.connect(partial, isolation_level=None)
    for pragma in ("synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")

    def put(table: str, rows: list[Row]) -> None:
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        conn.executemany(sql, ([_sqlite_value(r[c]) for c in columns] for r in rows))

    conn.execute("BEGIN")
    put("lead", leads(count))
    for batch in follow_ups(count):
        put("follow_up", batch)
        log(f"  {batch[-1]['id']:,} follow-ups")
    put("ref_counter", counters(count))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(final)


def generate_pg(count: int, log: Callable[[str], None]) -> None:
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    _setup(pg_url())
    engine = create_engine(normalize_url(pg_url()))
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

        def put(table: str, rows: list[Row]) -> None:
            columns = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])

        put("lead", leads(count))
        for batch in follow_ups(count):
            put("follow_up", batch)
            log(f"  {batch[-1]['id']:,} follow-ups")
        for table in ("lead", "follow_up"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        put("ref_counter", counters(count))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE lead, follow_up"))
    engine.dispose()


def ensure(engine: str, count: int, log: Callable[[str], None]) -> tuple[str, float | None]:
    url = url_for(engine, count)
    if is_complete(url, count):
        upgrade(url)
        return url, None
    log(f"generating {count:,} follow-ups on {engine} ...")
    started = time.perf_counter()
    (generate_sqlite if engine == "sqlite" else generate_pg)(count, log)
    return url, time.perf_counter() - started


def reset(url: str, *, spread: bool = True) -> int:
    """Undo the previous run: overdue rows due again, no leases, an empty log.

    PostgreSQL writes each updated row anew, so a sweep leaves the rows it reminded side by
    side; `spread` puts them back one per page, as generated: the worst case, and the case
    of follow-ups falling due for the first time. Without it the rows stay as yesterday's
    sweep left them: the case of follow-ups reminded again, day after day. (SQLite updates
    rows in place: always spread.)
    """
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM notification"))
        done = conn.execute(
            text(
                "UPDATE follow_up SET remind_at = due_at, last_reminded_at = NULL, "
                "claimed_until = NULL, claim_token = NULL, remind_attempts = 0 "
                "WHERE status = 'open' AND due_at <= :now"
            ),
            {"now": NOW if engine.dialect.name != "sqlite" else _sqlite_value(NOW)},
        ).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))
        else:
            if spread:
                conn.execute(text("CLUSTER follow_up USING pk_follow_up"))
            conn.execute(text("VACUUM ANALYZE follow_up, notification"))
    engine.dispose()
    return int(done)


# --- measuring -------------------------------------------------------------------------

TIMED = (
    "claim_reminders",
    "record_sent",
    "release",
    "hand_back",
    "record_undeliverable",
    "claim_notice",
    "finish_notice",
    "claim_morning_digests",
    "record_morning",
    "release_morning",
    "drop_morning",
    "prune_notifications",
)


class TimedCrm(CrmService):
    """The service, with the wall time of each call the sweep makes added up per method."""

    spent: dict[str, list[float]]

    def __getattribute__(self, name: str) -> Any:
        found = super().__getattribute__(name)
        if name not in TIMED:
            return found
        spent = super().__getattribute__("spent")

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return found(*args, **kwargs)
            finally:
                spent.setdefault(name, []).append((time.perf_counter() - started) * 1000)

        return timed


@contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_token(TOKEN, WS, bot_user_id="UBOT")
        for n in range(CHANNELS):
            fake.add_channel(WS, channel_id(n), f"sweep-{n}")
        for n in range(OWNERS):
            fake.add_user(WS, owner_id(n), f"owner{n}", tz="UTC")
        yield fake


def one_sweep(db: Database, fake: FakeSlack) -> dict[str, Any]:
    crm = TimedCrm(db, lambda: NOW)
    crm.spent = {}
    settings = Settings(slack_bot_token=TOKEN, slack_api_url=fake.url, reminder_lease=300)
    fake.clear_calls()
    started = time.perf_counter()
    report = Sweeper(crm, settings, pacer=Pacer()).sweep()
    wall = (time.perf_counter() - started) * 1000
    db_ms = sum(sum(v) for v in crm.spent.values())
    return {
        "wall_ms": round(wall, 1),
        "db_ms": round(db_ms, 1),
        "db_calls": {k: {"n": len(v), "ms": round(sum(v), 1)} for k, v in crm.spent.items()},
        "posts": len(fake.calls_to("chat.postMessage")),
        "slack_calls": len(fake.calls),
        "reminded": report.items,
        "messages": report.messages,
        "max_blocks": max(
            (len(c.args.get("blocks", [])) for c in fake.calls_to("chat.postMessage")), default=0
        ),
    }


def engine_version(db: Database) -> str:
    if db.dialect == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with db.engine.connect() as conn:
        return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar_one().split()[0]


def machine() -> str:
    info = dict(
        (part.strip() for part in line.split(":", 1))
        for path in ("/proc/cpuinfo", "/proc/meminfo")
        for line in Path(path).read_text().splitlines()
        if ":" in line
    )
    memory = int(info["MemTotal"].split()[0]) / 2**20
    cpu = info.get("model name", platform.processor()).strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.1f} GiB RAM, Python {platform.python_version()}"
    )


def run(engine: str, count: int, *, spread: bool = True) -> dict[str, Any]:
    url, generated = ensure(engine, count, log=lambda line: print(line, file=sys.stderr))
    overdue = reset(url, spread=spread)
    db = Database(url)
    try:
        with fake_slack() as fake:
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            first = one_sweep(db, fake)
            idle = one_sweep(db, fake)
        version = engine_version(db)
    finally:
        db.dispose()
    return {
        "engine": engine,
        "version": version,
        "follow_ups": count,
        "overdue": overdue,
        "layout": "spread" if spread or engine == "sqlite" else "steady",
        "channels": CHANNELS,
        "generated_s": None if generated is None else round(generated, 1),
        "load": load,
        "sweep": first,
        "idle_sweep": idle,
        "target_met": first["db_ms"] <= TARGET_MS and first["posts"] == CHANNELS,
    }


def markdown(result: dict[str, Any], command: str, when: datetime) -> str:
    s, idle = result["sweep"], result["idle_sweep"]
    made = (
        "reused an existing data set"
        if result["generated_s"] is None
        else f"generated in {result['generated_s']:.0f} s"
    )
    met = "**met**" if result["target_met"] else "**missed**"
    lines = [
        f"## {when:%Y-%m-%d %H:%M} UTC · reminder sweep · {result['version']} · "
        f"{result['follow_ups']:,} open follow-ups",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}; load average {result['load']} when the sweep ran (the VM "
        "is shared with other work)",
        f"- data: {result['follow_ups']:,} open follow-ups, {result['overdue']:,} overdue in "
        f"{result['channels']} channels, {OWNERS} owners; {made}; overdue rows "
        + (
            "one per page (first reminders; the worst case)"
            if result["layout"] == "spread"
            else "side by side, as the previous day's sweep left them (daily re-reminders)"
        ),
        f"- target (database work <= {TARGET_MS:.0f} ms, {result['channels']} posts): {met}",
        f"- sweep: {s['reminded']:,} reminders in {s['messages']} messages; "
        f"**{s['db_ms']:.0f} ms database work**, {s['wall_ms']:.0f} ms wall (the rest is "
        f"building and posting the messages to the fake Slack over HTTP); "
        f"{s['posts']} chat.postMessage calls ({s['slack_calls']} Slack calls in all); "
        f"largest message {s['max_blocks']} blocks",
        f"- the next sweep, nothing due: {idle['db_ms']:.1f} ms database work, "
        f"{idle['posts']} posts",
        "",
        "| service call | calls | ms |",
        "|---|---:|---:|",
    ]
    for name, figures in s["db_calls"].items():
        lines.append(f"| {name} | {figures['n']} | {figures['ms']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__)
    parser.add_argument("--follow-ups", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 follow-ups")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--no-record", action="store_true", help="don't append to RESULTS.md")
    parser.add_argument(
        "--steady",
        action="store_true",
        help="PostgreSQL: overdue rows as a previous sweep left them, not one per page",
    )
    args = parser.parse_args(argv)
    count = 100_000 if args.quick else args.follow_ups
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    command = " ".join(["python -m bench.sweep", *(argv if argv is not None else sys.argv[1:])])
    for engine in engines:
        result = run(engine, count, spread=not args.steady)
        print(json.dumps({"bench": "sweep", **result}), flush=True)
        if not args.no_record:
            if not RESULTS.exists():
                RESULTS.write_text("# Benchmark results\n")
            with RESULTS.open("a") as out:
                out.write("\n" + markdown(result, command, datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
