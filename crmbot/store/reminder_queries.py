"""The reminder sweep's SQL: claim due follow-ups with a lease, keep the notification log.

Claiming is one statement per engine: PostgreSQL locks the due rows with
`FOR UPDATE SKIP LOCKED` (concurrent sweeps take disjoint sets without waiting), SQLite runs
the same conditional `UPDATE … RETURNING` inside `BEGIN IMMEDIATE` (one writer at a time).
Everything here is bulk: a sweep over ten thousand due follow-ups is a handful of statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    delete,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmbot.domain import RecordKind
from crmbot.store.models import (
    Account,
    Contact,
    Deal,
    FollowUp,
    Lead,
    Notification,
    Rep,
    Workspace,
)
from crmbot.store.queries import ref_of

CHUNK = 5000  # ids per IN (...): well under SQLite's 32,766 bound parameters
# Literals, not bound parameters, so that SQLite uses the partial indexes on these states.
_OPEN: ColumnElement[str] = literal_column("'open'")
_PENDING_SQL: ColumnElement[str] = literal_column("'pending'")
_DIGEST = "digest"
_PENDING = "pending"

T = TypeVar("T")


def chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Split into lists of at most `size`."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- claiming follow-ups -------------------------------------------------------

CLAIMED_COLUMNS = (
    FollowUp.id,
    FollowUp.workspace_id,
    FollowUp.number,
    FollowUp.title,
    FollowUp.due_at,
    FollowUp.owner_id,
    FollowUp.channel_id,
    FollowUp.lead_id,
    FollowUp.contact_id,
    FollowUp.account_id,
    FollowUp.deal_id,
)


def claim_due_follow_ups(
    session: Session,
    *,
    now: datetime,
    next_at: datetime,
    until: datetime,
    token: str,
    limit: int,
) -> Sequence[Any]:
    """Take this round of up to `limit` open follow-ups whose reminder is due.

    One statement moves each to its next round (`remind_at = next_at`), so no other sweep can
    take the same round, ever; `claim_token`/`claimed_until` note which sweep took it. The
    delivery itself is leased through its digest row (see `insert_digests`).
    """
    due = FollowUp.__table__.alias("due")
    pick = (
        select(due.c.id)
        .where(due.c.status == _OPEN, due.c.remind_at <= now)
        .order_by(due.c.remind_at)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no FOR UPDATE (nor needs it)
    )
    # The outer conditions repeat the inner ones: on SQLite they are what makes the claim
    # conditional, on PostgreSQL they re-check rows after the lock. (A Core statement on the
    # table: the ORM's bulk-update bookkeeping costs more than the update at 10k rows.)
    table = cast(Table, FollowUp.__table__)
    statement = (
        update(table)
        .where(table.c.id.in_(pick), table.c.status == _OPEN, table.c.remind_at <= now)
        .values(remind_at=next_at, last_reminded_at=now, claimed_until=until, claim_token=token)
        .returning(*(table.c[column.key] for column in CLAIMED_COLUMNS))
    )
    return session.connection().execute(statement).all()


def follow_ups_by_id(session: Session, ids: Iterable[int]) -> dict[int, Any]:
    """Follow-ups (the claimed columns, status, last_reminded_at) by id."""
    found: dict[int, Any] = {}
    for batch in chunks(set(ids)):
        rows = session.execute(
            select(*CLAIMED_COLUMNS, FollowUp.status, FollowUp.last_reminded_at).where(
                FollowUp.id.in_(batch)
            )
        )
        found.update((r.id, r) for r in rows)
    return found


def claim_stale_digests(
    session: Session, *, now: datetime, until: datetime, token: str, limit: int
) -> Sequence[Any]:
    """Lease pending digests whose lease ran out (a sweep died) or whose retry is due."""
    pending = Notification.__table__.alias("pending")
    free = or_(pending.c.claimed_until.is_(None), pending.c.claimed_until < now)
    pick = (
        select(pending.c.id)
        .where(pending.c.status == _PENDING_SQL, free, pending.c.kind == _DIGEST)
        .order_by(pending.c.claimed_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return session.execute(
        update(Notification)
        .where(
            Notification.id.in_(pick),
            Notification.status == _PENDING_SQL,
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
        )
        .values(claim_token=token, claimed_until=until)
        .returning(
            Notification.id,
            Notification.workspace_id,
            Notification.user_id,
            Notification.attempts,
            Notification.detail,
            Notification.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()


def insert_digests(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Write pending digest rows (leased to this sweep); dedupe key -> id."""
    return insert_deliveries(session, rows)


def insert_escalations(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Log escalations not logged before (one per follow-up and due time); key -> new id."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    out: dict[str, int] = {}
    for batch in chunks(rows, 1000):
        result = session.execute(
            make(Notification)
            .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
            .returning(Notification.dedupe_key, Notification.id),
            batch,
        )
        out.update((r.dedupe_key, r.id) for r in result)
    return out


def escalations_by_id(session: Session, ids: Iterable[int]) -> dict[int, Any]:
    """Escalation rows (id, acknowledged_by) by id."""
    found: dict[int, Any] = {}
    for batch in chunks({i for i in ids if i is not None}):
        rows = session.execute(
            select(Notification.id, Notification.acknowledged_by).where(Notification.id.in_(batch))
        )
        found.update((r.id, r) for r in rows)
    return found


# --- what a digest needs to say ---------------------------------------------------


def workspaces(session: Session, ids: Iterable[str]) -> dict[str, Workspace]:
    """Workspace rows by id."""
    found: dict[str, Workspace] = {}
    for batch in chunks(set(ids)):
        found.update(
            (w.id, w) for w in session.scalars(select(Workspace).where(Workspace.id.in_(batch)))
        )
    return found


def people(
    session: Session, ws_ids: Iterable[str], user_ids: Iterable[str]
) -> dict[tuple[str, str], Any]:
    """(workspace, user) -> name, active, tz, refreshed_at of the reps among `user_ids`."""
    wanted_ws = list(set(ws_ids))
    found: dict[tuple[str, str], Any] = {}
    for batch in chunks(set(user_ids)):
        rows = session.execute(
            select(
                Rep.workspace_id, Rep.user_id, Rep.name, Rep.active, Rep.tz, Rep.refreshed_at
            ).where(Rep.workspace_id.in_(wanted_ws), Rep.user_id.in_(batch))
        )
        found.update(((r.workspace_id, r.user_id), r) for r in rows)
    return found


def admins(session: Session, ws_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each workspace's active admins."""
    out: dict[str, list[str]] = {}
    for batch in chunks(set(ws_ids)):
        rows = session.execute(
            select(Rep.workspace_id, Rep.user_id)
            .where(Rep.workspace_id.in_(batch), Rep.role == "admin", Rep.active.is_(True))
            .order_by(Rep.id)
        )
        for row in rows:
            out.setdefault(row.workspace_id, []).append(row.user_id)
    return {ws: tuple(users) for ws, users in out.items()}


_ABOUT: tuple[tuple[RecordKind, type[Deal | Contact | Account | Lead], str], ...] = (
    (RecordKind.DEAL, Deal, "deal_id"),
    (RecordKind.CONTACT, Contact, "contact_id"),
    (RecordKind.ACCOUNT, Account, "account_id"),
    (RecordKind.LEAD, Lead, "lead_id"),
)


def about(session: Session, rows: Sequence[Any]) -> dict[int, tuple[str, str]]:
    """Follow-up id -> (ref, name) of the record it is about, most specific first."""
    linked = [
        (r.id, r.deal_id, r.contact_id, r.account_id, r.lead_id)
        for r in rows
        if r.deal_id is not None
        or r.contact_id is not None
        or r.account_id is not None
        or r.lead_id is not None
    ]
    names: list[dict[int, tuple[str, str]]] = []
    for position, (kind, model, _) in enumerate(_ABOUT, start=1):
        table: dict[int, tuple[str, str]] = {}
        for batch in chunks({link[position] for link in linked if link[position] is not None}):
            found = session.execute(
                select(model.id, model.number, model.name).where(model.id.in_(batch))
            )
            table.update((f.id, (ref_of(kind, f.number), f.name)) for f in found)
        names.append(table)
    out: dict[int, tuple[str, str]] = {}
    for link in linked:
        for position, table in enumerate(names, start=1):
            key = link[position]
            if key is not None and key in table:
                out[link[0]] = table[key]
                break
    return out


# --- the notification log ----------------------------------------------------------


def deliveries_by_key(session: Session, keys: Iterable[str]) -> dict[str, Any]:
    """Existing log rows (id, status, attempts) by dedupe key."""
    found: dict[str, Any] = {}
    for batch in chunks(set(keys)):
        rows = session.execute(
            select(
                Notification.dedupe_key, Notification.id, Notification.status, Notification.attempts
            ).where(Notification.dedupe_key.in_(batch))
        )
        found.update((r.dedupe_key, r) for r in rows)
    return found


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Write pending log rows; dedupe key -> new id. A duplicate key fails the transaction."""
    out: dict[str, int] = {}
    for batch in chunks(rows, 1000):
        result = session.execute(
            insert(Notification).returning(Notification.dedupe_key, Notification.id), batch
        )
        out.update((r.dedupe_key, r.id) for r in result)
    return out


def claim_key(
    session: Session,
    *,
    values: dict[str, Any],
    token: str,
    until: datetime,
    now: datetime,
) -> Any | None:
    """Take the log row with this dedupe key: new, or pending with its lease run out.

    Returns (id, attempts), or None when someone else holds it or it is finished.
    """
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    row = {**values, "claim_token": token, "claimed_until": until}
    inserted = session.execute(
        make(Notification)
        .values(**row)
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id, Notification.attempts)
    ).first()
    if inserted is not None:
        return inserted
    return session.execute(
        update(Notification)
        .where(
            Notification.dedupe_key == values["dedupe_key"],
            Notification.status == _PENDING,
            or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
        )
        .values(claim_token=token, claimed_until=until)
        .returning(Notification.id, Notification.attempts)
        .execution_options(synchronize_session=False)
    ).first()


def finish_deliveries(
    session: Session,
    ids: Iterable[int],
    *,
    status: str,
    now: datetime,
    channel_id: str | None = None,
    message_ts: str | None = None,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Mark pending log rows finished (sent, skipped or undeliverable)."""
    values: dict[str, Any] = {
        "status": status,
        "sent_at": now,
        "claim_token": None,
        "claimed_until": None,
        "error": error[:200] if error else None,
    }
    if channel_id is not None:
        values.update(channel_id=channel_id, message_ts=message_ts)
    if detail is not None:
        values["detail"] = detail
    for batch in chunks(ids):
        session.execute(
            update(Notification)
            .where(Notification.id.in_(batch), Notification.status == _PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def fail_deliveries(
    session: Session,
    ids: Iterable[int],
    *,
    error: str,
    retry_at: datetime | None,
    counted: bool = True,
    token: str | None = None,
) -> None:
    """Give pending log rows back: free from `retry_at` (None: at once), a failure counted.

    With `token`, only rows still leased to that sweep (not taken over after its lease ran out).
    """
    values: dict[str, Any] = {"claimed_until": retry_at, "claim_token": None}
    if counted:
        values.update(attempts=Notification.attempts + 1, error=error[:200])
    for batch in chunks(ids):
        where = [Notification.id.in_(batch), Notification.status == _PENDING]
        if token is not None:
            where.append(Notification.claim_token == token)
        session.execute(
            update(Notification)
            .where(*where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def set_detail(session: Session, delivery_id: int, detail: dict[str, Any]) -> None:
    """Rewrite what a log row carries."""
    session.execute(
        update(Notification)
        .where(Notification.id == delivery_id)
        .values(detail=detail)
        .execution_options(synchronize_session=False)
    )


def posted_digests(session: Session, ws: str, channel_id: str, message_ts: str) -> Sequence[Any]:
    """The digest rows of one message (several when a retry was merged into it)."""
    return session.execute(
        select(Notification.id, Notification.detail, Notification.attempts)
        .where(
            Notification.workspace_id == ws,
            Notification.channel_id == channel_id,
            Notification.message_ts == message_ts,
            Notification.kind == _DIGEST,
        )
        .order_by(Notification.id)
    ).all()


def prune(session: Session, *, before: datetime, limit: int) -> int:
    """Forget log rows older than `before` (at most `limit` per call)."""
    old = select(Notification.id).where(Notification.created_at < before).limit(limit)
    ids = list(session.scalars(old))
    if ids:
        session.execute(
            delete(Notification)
            .where(Notification.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    return len(ids)
