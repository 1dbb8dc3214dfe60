"""Fixtures: a migrated database on SQLite and on PostgreSQL, a fixed clock, a service."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.migrate import upgrade
from crmbot.store.models import Base

pytest_plugins = ["tests.slackapp"]

PG_URL = os.environ.get("CRMBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests: derandomized with no example database by default, so CI is repeatable;
# HYPOTHESIS_PROFILE=long draws fresh random examples (and tests/hostile.py budgets grow 20x).
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("long", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class Clock:
    """A settable clock for tests: aware UTC, moves only when told."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    problem = _pg_reachable()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable ({problem}); set CRMBOT_TEST_POSTGRES_URL")
    schema = f"crmbot_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema},public')}"
    upgrade(url)
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _truncate_pg(db: Database) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: each test gets its own (SQLite file / truncated PG schema)."""
    if request.param == "sqlite":
        path = tmp_path / "crmbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_schema_url"))
        _truncate_pg(database)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
def crm(db: Database, clock: Clock) -> CrmService:
    service = CrmService(db, clock)
    service.ensure_workspace("T1", name="Acme Sales")
    service.upsert_rep("T1", "UADMIN", name="Ada Admin", tz="Europe/Berlin")
    service.upsert_rep("T1", "UBOB", name="Bob Rep", tz="America/Los_Angeles")
    return service
