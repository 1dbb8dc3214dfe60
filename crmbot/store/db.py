"""Engine and sessions: made once per process; SQLite in WAL mode with foreign keys on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session, sessionmaker

_WRITE = "crmbot_write"


@dataclass(eq=False)
class FirstStep:
    """A statement to run first in the next write transaction of this thread (see
    `Database.first_step`); `done` once the transaction it ran in has committed."""

    run: Callable[[Connection], None]
    done: bool = False
    running: bool = False


_first_step: ContextVar[FirstStep | None] = ContextVar("crmbot_first_step", default=None)


def is_sqlite(url: str) -> bool:
    """True when the URL names an SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` and `postgres://` URLs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> Engine:
    """Create the engine for a database URL with crmbot's connection settings: `pool_size`
    connections kept open, up to `max_overflow` (default: as many again) more at peaks."""
    url = normalize_url(url)
    overflow = pool_size if max_overflow is None else max_overflow
    if not is_sqlite(url):
        return create_engine(url, pool_size=pool_size, max_overflow=overflow, pool_pre_ping=True)
    # The driver's own transaction handling is switched off so that SQLAlchemy's
    # `begin` event decides: writes take the lock up front (BEGIN IMMEDIATE), which
    # keeps concurrent writers from failing with SQLITE_BUSY on lock upgrade.
    engine = create_engine(
        url,
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=overflow,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL is kept in the file: set it only when it isn't yet. (Setting it again was seen
        # once to fail with "database is locked" while another engine wrote; not reproduced
        # since, see tests/test_store.py, but a read of the mode never needs that lock.)
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine and one sessionmaker; hands out read and write transactions."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size, max_overflow=max_overflow)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queue this process's writers on a lock, which
        # wakes the next one at once, instead of SQLite's busy handler, which sleeps in steps
        # of up to 100 ms. Other processes still meet the busy handler (busy_timeout).
        self._writer: AbstractContextManager[object] = (
            threading.RLock() if is_sqlite(self.url) else nullcontext()
        )
        # SQLite searches run inside this process, in short steps between which its threads
        # hand the interpreter lock back and forth: ten threads searching at once did 797
        # searches/s at 1.45 ms of CPU each, one at a time 1,557/s at 0.65 ms. PostgreSQL
        # searches in its own processes while ours wait on the network. (Re-entrant: a search
        # inside a search must not wait for itself.)
        self._searcher: AbstractContextManager[object] = (
            threading.RLock() if is_sqlite(self.url) else nullcontext()
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commit on success, roll back on error."""
        first = _first_step.get()
        if first is not None and (first.done or first.running):
            first = None
        with self._writer, self.sessions() as session, session.begin():
            conn = session.connection(execution_options={_WRITE: True})
            if first is None:
                yield session
            else:
                first.running = True
                try:
                    first.run(conn)  # may raise: the transaction rolls back
                    yield session
                finally:
                    first.running = False
        if first is not None:
            first.done = True

    @contextmanager
    def first_step(self, step: FirstStep) -> Iterator[FirstStep]:
        """Within this block, the first write transaction of this thread that commits runs
        `step` first, in the same transaction: both are saved or neither (a request key
        claimed by the save it guards, service/request_keys.py). A transaction that rolls
        back leaves the step for the next one."""
        token = _first_step.set(step)
        try:
            yield step
        finally:
            _first_step.reset(token)

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """One write transaction on a bare connection: no ORM session, for small hot writes."""
        with self._writer, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only transaction."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def search(self) -> Iterator[Session]:
        """A read transaction for a search: on SQLite, one at a time in this process."""
        with self._searcher, self.read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
