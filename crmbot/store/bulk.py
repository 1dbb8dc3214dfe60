"""Bulk writes for imports: many rows per statement, stored exactly as the ORM stores them.

Functions taking a Session, like queries.py; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmbot.domain import RecordKind
from crmbot.parsing import fold
from crmbot.store.models import RefCounter, SearchDoc


@lru_cache(maxsize=1 << 16)
def _fold_cached(text: str) -> str:
    return fold(text)


def fast_fold(text: str) -> str:
    """`parsing.fold`, quick for ASCII (where NFKC changes nothing and casefold is lower)."""
    return " ".join(text.lower().split()) if text.isascii() else _fold_cached(text)


def search_body(*parts: str | None) -> str:
    """`queries.search_body`, faster: ASCII parts are folded in one go (the cleaned parts
    have no edge or repeated spaces, so that is the same as folding each)."""
    joined = " | ".join(p for p in parts if p)
    if joined.isascii():
        return " ".join(joined.lower().split())
    return " | ".join(fast_fold(p) for p in parts if p)


def _converted(values: list[Any], process: Callable[[Any], Any] | None) -> list[Any]:
    """Values through a bind processor, each distinct one once (times and names repeat)."""
    if process is None:
        return values
    try:
        once = {value: process(value) for value in set(values)}
    except TypeError:  # unhashable (JSON dicts): one by one
        return [process(value) for value in values]
    return [once[value] for value in values]


def bulk_insert(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows through the driver's executemany, values converted by each column's
    own SQLAlchemy bind processor (so times, JSON and decimals are stored exactly as the ORM
    stores them), without SQLAlchemy's per-row statement machinery. Every row has the keys of
    the first; columns left out get NULL, not Python-side defaults."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = [c for c in table.columns if c.key in rows[0]]
    quote = dialect.identifier_preparer
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(quote.quote(c.name) for c in columns)
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({names})"
        f" VALUES ({', '.join([mark] * len(columns))})"
    )
    by_column = [
        _converted(
            [row[c.key] for row in rows], c.type.dialect_impl(dialect).bind_processor(dialect)
        )
        for c in columns
    ]
    connection.exec_driver_sql(sql, list(zip(*by_column, strict=True)))


# An index trigger this module knows how to replace with one INSERT … SELECT per batch.
_INDEX_TRIGGER = re.compile(
    r"CREATE TRIGGER (\w+) AFTER INSERT ON search_doc BEGIN "
    r"INSERT INTO (\w+)\(rowid, body\) VALUES \(new\.id, new\.body\); END"
)


def insert_search_docs(session: Session, docs: list[dict[str, Any]]) -> None:
    """Insert search documents; on SQLite, fill the FTS indexes in one statement each.

    The migrations' insert triggers index one row per statement, several times slower than
    one INSERT … SELECT. Inside this write transaction (which holds SQLite's write lock, so
    nobody else can add a document meanwhile) the triggers are dropped, the documents go in,
    each FTS table gets them in one go, and the triggers are put back exactly as they were.
    DDL is transactional in SQLite: a failure rolls all of it back, triggers included. An
    insert trigger of another shape leaves everything to the triggers."""
    if not docs:
        return
    ids = new_ids(session, SearchDoc, len(docs))
    for doc_id, doc in zip(ids, docs, strict=True):
        doc["id"] = doc_id
    connection = session.connection()
    triggers: list[str] = []
    if connection.dialect.name == "sqlite":
        triggers = list(
            connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'search_doc'"
                " AND sql LIKE '%AFTER INSERT ON search_doc%'"
            ).scalars()
        )
    matches = [_INDEX_TRIGGER.fullmatch(" ".join(sql.split())) for sql in triggers]
    if not triggers or not all(matches):
        bulk_insert(session, SearchDoc.__table__, docs)
        return
    for match in matches:
        assert match is not None
        connection.exec_driver_sql(f"DROP TRIGGER {match[1]}")
    bulk_insert(session, SearchDoc.__table__, docs)
    for match, sql in zip(matches, triggers, strict=True):
        assert match is not None
        connection.exec_driver_sql(
            f"INSERT INTO {match[2]}(rowid, body) SELECT id, body FROM search_doc "
            "WHERE id BETWEEN ? AND ?",
            (ids[0], ids[-1]),
        )
        connection.exec_driver_sql(sql)


def new_ids(session: Session, model: Any, count: int) -> list[int]:
    """Primary keys for `count` new rows, taken up front so inserts need no RETURNING.

    SQLite: above the current maximum (the write transaction holds the database lock);
    PostgreSQL: from the table's sequence."""
    if session.get_bind().dialect.name == "sqlite":
        top = int(session.scalar(select(func.max(model.id))) or 0)
        return list(range(top + 1, top + count + 1))
    sequence = session.scalar(
        text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": model.__tablename__}
    )
    return list(
        session.scalars(
            text("SELECT nextval(:sequence) FROM generate_series(1, :count)"),
            {"sequence": sequence, "count": count},
        )
    )


def reserve_numbers(session: Session, ws: str, kind: RecordKind, count: int) -> int:
    """Reserve `count` reference numbers at once; the highest one reserved."""
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    upsert = (
        insert_(RefCounter)
        .values(workspace_id=ws, kind=kind.value, value=count)
        .on_conflict_do_update(
            index_elements=[RefCounter.workspace_id, RefCounter.kind],
            set_={"value": RefCounter.value + count},
        )
        .returning(RefCounter.value)
    )
    return int(session.execute(upsert).scalar_one())


def raise_counter(session: Session, ws: str, kind: RecordKind, at_least: int) -> None:
    """Make the next reference number of `kind` at least `at_least` + 1."""
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    greatest = func.max if session.get_bind().dialect.name == "sqlite" else func.greatest
    session.execute(
        insert_(RefCounter)
        .values(workspace_id=ws, kind=kind.value, value=at_least)
        .on_conflict_do_update(
            index_elements=[RefCounter.workspace_id, RefCounter.kind],
            set_={"value": greatest(RefCounter.value, at_least)},
        )
    )
