"""Claimed request keys: an insert that does nothing on conflict decides who runs a request.

Two processes inserting the same (workspace, key) at once both reach the unique constraint;
PostgreSQL makes the second wait for the first's commit and then do nothing, SQLite runs one
writer at a time. Either way exactly one insert reports a row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Insert, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from crmbot.store.models import RequestKey


class KeyState(StrEnum):
    FREE = "free"
    PENDING = "pending"  # claimed, no answer given yet
    DONE = "done"


def _insert_or_nothing(session: Session, values: dict[str, object]) -> Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(RequestKey).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(RequestKey).values(values).on_conflict_do_nothing()
    raise NotImplementedError(f"request keys need PostgreSQL or SQLite, not {dialect}")


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def claim(
    session: Session, ws: str, key: str, *, token: str, now: datetime, expires_at: datetime
) -> bool:
    """Claim `key` for the caller (`token`); False when someone holds it and it hasn't expired."""
    fresh = {
        "workspace_id": ws,
        "key": key,
        "token": token,
        "created_at": now,
        "expires_at": expires_at,
        "done_at": None,
    }
    inserted = session.execute(_insert_or_nothing(session, fresh).returning(RequestKey.id))
    if inserted.first() is not None:
        return True
    # An expired claim the clock hasn't pruned yet is taken over; the row lock (PostgreSQL)
    # or the single writer (SQLite) lets one of several takers match the condition.
    taken = session.execute(
        update(RequestKey)
        .where(
            RequestKey.workspace_id == ws,
            RequestKey.key == key,
            RequestKey.expires_at <= now,
        )
        .values(token=token, created_at=now, expires_at=expires_at, done_at=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(taken) == 1


def finish(session: Session, ws: str, key: str, *, token: str, now: datetime) -> None:
    """Mark the caller's claim answered."""
    session.execute(
        update(RequestKey)
        .where(RequestKey.workspace_id == ws, RequestKey.key == key, RequestKey.token == token)
        .values(done_at=now)
        .execution_options(synchronize_session=False)
    )


def release(session: Session, ws: str, key: str, *, token: str) -> None:
    """Give the caller's claim up, so the same request may run again."""
    session.execute(
        delete(RequestKey)
        .where(RequestKey.workspace_id == ws, RequestKey.key == key, RequestKey.token == token)
        .execution_options(synchronize_session=False)
    )


def state(session: Session, ws: str, key: str, *, now: datetime) -> KeyState:
    """Whether `key` is free (never claimed, released or expired), claimed, or answered."""
    row = session.execute(
        select(RequestKey.done_at, RequestKey.expires_at).where(
            RequestKey.workspace_id == ws, RequestKey.key == key
        )
    ).first()
    if row is None or row.expires_at <= now:
        return KeyState.FREE
    return KeyState.PENDING if row.done_at is None else KeyState.DONE


def prune(session: Session, *, now: datetime, limit: int) -> int:
    """Forget claims that expired before `now` (at most `limit` per call)."""
    ids = list(
        session.scalars(select(RequestKey.id).where(RequestKey.expires_at < now).limit(limit))
    )
    if ids:
        session.execute(
            delete(RequestKey)
            .where(RequestKey.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
