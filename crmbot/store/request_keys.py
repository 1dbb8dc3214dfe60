"""Claimed request keys: one upsert decides who runs a request.

`INSERT … ON CONFLICT (workspace_id, key) DO UPDATE … WHERE expires_at <= now RETURNING id`
returns a row when the key was free (inserted) or its old claim had expired (taken over), and
nothing when someone holds it. Two processes claiming the same key at once meet at the unique
index: PostgreSQL makes the second wait for the first's commit and then finds the claim live,
SQLite runs one writer at a time. Either way exactly one of them gets a row.
"""

from __future__ import annotations

import functools
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crmbot.store.models import RequestKey


class KeyState(StrEnum):
    FREE = "free"
    PENDING = "pending"  # claimed, no answer given yet
    DONE = "done"


_table = cast(Table, RequestKey.__table__)
_WS, _KEY, _TOKEN, _WHEN = (
    _table.c.workspace_id.type,
    _table.c.key.type,
    _table.c.token.type,
    _table.c.expires_at.type,
)
# The caller's own claim: its workspace, key and token.
_MINE = (
    _table.c.workspace_id == bindparam("p_ws", type_=_WS),
    _table.c.key == bindparam("p_key", type_=_KEY),
    _table.c.token == bindparam("p_token", type_=_TOKEN),
)
_FINISH = update(_table).where(*_MINE).values(done_at=bindparam("p_now", type_=_WHEN))
_RELEASE = delete(_table).where(*_MINE)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """The claim upsert for `dialect`, built once: only its parameters change per request."""
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise NotImplementedError(f"request keys need PostgreSQL or SQLite, not {dialect}")
    fresh = {
        "token": bindparam("p_token", type_=_TOKEN),
        "created_at": bindparam("p_now", type_=_WHEN),
        "expires_at": bindparam("p_expires_at", type_=_WHEN),
        "done_at": bindparam("p_done", type_=_WHEN),
    }
    return (
        insert(_table)
        .values(
            workspace_id=bindparam("p_ws", type_=_WS), key=bindparam("p_key", type_=_KEY), **fresh
        )
        .on_conflict_do_update(
            index_elements=[_table.c.workspace_id, _table.c.key],
            set_=fresh,
            where=_table.c.expires_at <= bindparam("p_now", type_=_WHEN),  # expired, unpruned
        )
        .returning(_table.c.id)
    )


def claim(
    conn: Connection, ws: str, key: str, *, token: str, now: datetime, expires_at: datetime
) -> bool:
    """Claim `key` for the caller (`token`); False when someone holds it and it hasn't expired.

    On the ack path of every submission: one prebuilt statement on a bare connection."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # No WAL flush for a claim: the request's own (synchronous) commit flushes it anyway,
        # and a claim lost with a crashed server only lets that one retry through again.
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    return _claim(conn, ws, key, token=token, now=now, expires_at=expires_at, done=None)


def claim_done(
    conn: Connection, ws: str, key: str, *, token: str, now: datetime, expires_at: datetime
) -> bool:
    """Claim `key` inside the transaction that saves the request's work, answered at once:
    it commits (and a duplicate finds it) with the work, or rolls back with it. A duplicate
    running the same statement meanwhile waits for this transaction's end at the unique
    index (PostgreSQL) or the write lock (SQLite)."""
    return _claim(conn, ws, key, token=token, now=now, expires_at=expires_at, done=now)


def _claim(
    conn: Connection,
    ws: str,
    key: str,
    *,
    token: str,
    now: datetime,
    expires_at: datetime,
    done: datetime | None,
) -> bool:
    params = {
        "p_ws": ws,
        "p_key": key,
        "p_token": token,
        "p_now": now,
        "p_expires_at": expires_at,
        "p_done": done,
    }
    return conn.execute(_claim_statement(conn.dialect.name), params).first() is not None


def finish(conn: Connection, ws: str, key: str, *, token: str, now: datetime) -> None:
    """Mark the caller's claim answered."""
    conn.execute(_FINISH, {"p_ws": ws, "p_key": key, "p_token": token, "p_now": now})


def release(conn: Connection, ws: str, key: str, *, token: str) -> None:
    """Give the caller's claim up, so the same request may run again."""
    conn.execute(_RELEASE, {"p_ws": ws, "p_key": key, "p_token": token})


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
