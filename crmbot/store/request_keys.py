"""Claimed request keys: one upsert decides who runs a request.

`INSERT … ON CONFLICT (workspace_id, key) DO UPDATE … WHERE expires_at <= now RETURNING id`
returns a row when the key was free (inserted) or its old claim had expired (taken over), and
nothing when someone holds it. Two processes claiming the same key at once meet at the unique
index: PostgreSQL makes the second wait for the first's commit and then finds the claim live,
SQLite runs one writer at a time. Either way exactly one of them gets a row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crmbot.store.models import RequestKey


class KeyState(StrEnum):
    FREE = "free"
    PENDING = "pending"  # claimed, no answer given yet
    DONE = "done"


def claim(
    session: Session, ws: str, key: str, *, token: str, now: datetime, expires_at: datetime
) -> bool:
    """Claim `key` for the caller (`token`); False when someone holds it and it hasn't expired."""
    dialect = session.get_bind().dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
        # No WAL flush for a claim: the request's own (synchronous) commit flushes it anyway,
        # and a claim lost with a crashed server only lets that one retry through again.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise NotImplementedError(f"request keys need PostgreSQL or SQLite, not {dialect}")
    fresh = {"token": token, "created_at": now, "expires_at": expires_at, "done_at": None}
    statement = (
        insert(RequestKey)
        .values(workspace_id=ws, key=key, **fresh)
        .on_conflict_do_update(
            index_elements=[RequestKey.workspace_id, RequestKey.key],
            set_=fresh,
            where=RequestKey.expires_at <= now,  # an expired claim the clock hasn't pruned
        )
        .returning(RequestKey.id)
    )
    return session.execute(statement).first() is not None


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
