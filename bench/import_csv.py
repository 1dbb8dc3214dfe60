"""How fast is `crmbot import contacts`? `python -m bench.import_csv [--rows N] [--keep]
[--engine sqlite|postgresql]`.

Writes (or reuses) a contacts CSV of N rows (default 100,000) from bench.datagen's
deterministic people and companies — name, email, phone, title, company, source, with
HubSpot-style headers — then imports it into a fresh migrated database in-process (SQLite: a
new file; PostgreSQL: a new schema `crmbot_bench_import`, dropped afterwards), the way
`crmbot import contacts FILE` does (validation, accounts found or made, search documents, one
audit event per batch, 10,000-row transactions), and reports rows per second, wall and CPU
(CPU is this process only: on PostgreSQL the server's work is not in it). A second run of the
same file over the filled database measures the all-duplicates path. Appends the figures to
RESULTS.md. Target: 10,000 rows/s (SQLite).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, func, select, text

from bench import datagen
from crmbot.csvmap import Kind
from crmbot.importer import import_csv
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade
from crmbot.store.models import Account, Contact, SearchDoc

TARGET = 10_000
RESULTS = Path(__file__).parent / "RESULTS.md"
HEADER = ("First Name", "Last Name", "Email", "Phone Number", "Job Title", "Company Name", "Source")


def write_csv(rows: int, path: Path) -> None:
    """N contacts as a HubSpot-shaped export (first and last name in separate columns)."""
    generator = datagen.Generator(rows)
    names: dict[int, str] = {}
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for batch in generator.batches():
            names.update((a["id"], a["name"]) for a in batch["account"])
            for c in batch["contact"]:
                first, _, last = c["name"].partition(" ")
                company = names.get(c["account_id"], "") if c["account_id"] else ""
                writer.writerow(
                    [
                        first,
                        last,
                        c["email"],
                        c["phone"] or "",
                        c["title"] or "",
                        company,
                        c["source"],
                    ]
                )


PG_SCHEMA = "crmbot_bench_import"


def timed_import(url: str, path: Path) -> tuple[float, float, str, int]:
    db = Database(url)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        summary = import_csv(db, "TBENCH", Kind.CONTACTS, path)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"cpu {cpu:.2f}s, wall {seconds:.2f}s", file=sys.stderr)
        return seconds, cpu, summary.line(), summary.accounts_created
    finally:
        db.dispose()


def pg_schema(create: bool) -> str:
    """A fresh bench schema (dropped first); its URL."""
    admin = create_engine(datagen.PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        if create:
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    sep = "&" if "?" in datagen.PG_URL else "?"
    return f"{datagen.PG_URL}{sep}options={quote(f'-csearch_path={PG_SCHEMA},public')}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    datagen.DATA.mkdir(exist_ok=True)
    path = datagen.DATA / f"contacts-{args.rows}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_csv(args.rows, path)
        print(f"wrote {path} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    folder = Path(tempfile.mkdtemp(prefix="crmbot-import-"))
    sqlite = args.engine == "sqlite"
    url = f"sqlite:///{folder / 'import.db'}" if sqlite else pg_schema(create=True)
    upgrade(url)
    load = os.getloadavg()
    first, first_cpu, line, accounts = timed_import(url, path)
    again, again_cpu, line_again, _ = timed_import(url, path)
    db = Database(url)
    with db.read() as session:
        stored = {
            "contacts": session.scalar(select(func.count()).select_from(Contact)),
            "accounts": session.scalar(select(func.count()).select_from(Account)),
            "search_docs": session.scalar(select(func.count()).select_from(SearchDoc)),
        }
        size = (
            os.path.getsize(folder / "import.db")
            if sqlite
            else session.scalar(
                text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace"
                    " n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r'"
                ),
                {"s": PG_SCHEMA},
            )
        )
        version = session.connection().dialect.server_version_info
    db.dispose()
    size_mb = int(size or 0) / 1e6
    engine = (
        f"SQLite {sqlite3.sqlite_version}"
        if sqlite
        else "PostgreSQL " + ".".join(str(v) for v in version or ())
    )
    result = {
        "rows": args.rows,
        "engine": engine,
        "first_import_s": round(first, 2),
        "first_import_cpu_s": round(first_cpu, 2),
        "rows_per_s": round(args.rows / first),
        "rows_per_cpu_s": round(args.rows / first_cpu),
        "summary": line,
        "accounts_made": accounts,
        "reimport_s": round(again, 2),
        "reimport_cpu_s": round(again_cpu, 2),
        "reimport_rows_per_s": round(args.rows / again),
        "reimport_summary": line_again,
        **stored,
        "db_mb": round(size_mb, 1),
    }
    print(json.dumps(result))
    verdict = "meets" if result["rows_per_s"] >= TARGET else "MISSES"
    target = (
        f"Target {TARGET:,} rows/s: {verdict} it."
        if sqlite
        else f"(The {TARGET:,} rows/s target is SQLite's.)"
    )
    cores = os.cpu_count()
    section = (
        f"\n## bench.import_csv, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({engine}, {platform.python_implementation()} {platform.python_version()})\n\n"
        f"{args.rows:,}-row contacts CSV (HubSpot-shaped headers, bench.datagen people), fresh "
        f"database, `import_csv` in-process; {cores} cores, load average "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} before the run:\n\n"
        "| run | seconds | rows/s | CPU s (this process) | rows per CPU s | summary |\n"
        "|---|---|---|---|---|---|\n"
        f"| first import | {first:.2f} | {result['rows_per_s']:,} | {first_cpu:.2f} | "
        f"{result['rows_per_cpu_s']:,} | {line}; {accounts:,} accounts made |\n"
        f"| same file again | {again:.2f} | {result['reimport_rows_per_s']:,} | {again_cpu:.2f} | "
        f"{round(args.rows / again_cpu):,} | {line_again} |\n\n"
        f"Stored: {stored['contacts']:,} contacts, {stored['accounts']:,} accounts, "
        f"{stored['search_docs']:,} search documents; database {size_mb:.0f} MB. "
        f"{target}\n"
    )
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n")
    with RESULTS.open("a") as out:
        out.write(section)
    if not args.keep and not sqlite:
        pg_schema(create=False)
    if not args.keep:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
