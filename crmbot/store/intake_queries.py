"""The intake's Slack posts in the notification log (kind `intake`), and old idempotency keys.

Functions taking a Session, like queries.py; the caller owns the transaction. Every change to
a post's row is conditional on the claim token that leases it, so a post whose lease ran out
and was taken over by a sweep can't be finished (or retried) by its first poster as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, tuple_, update
from sqlalchemy.orm import Session

from crmbot.store.models import IntakeRequest, Notification

INTAKE_KIND = "intake"  # notification.kind of the intake channel's notice and the owner's DM
_PENDING = "pending"
GAVE_UP = "failed"  # not retried: Slack refuses it for good, or too many attempts
# (The column took 12 characters before migration 0014.)


def queue_posts(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Write pending post rows (leased to the poster of this process); their ids."""
    ids = []
    for row in rows:
        post = Notification(**row)
        session.add(post)
        session.flush()
        ids.append(post.id)
    return ids


def claim_posts(
    session: Session, *, now: datetime, until: datetime, token: str, limit: int
) -> Sequence[Any]:
    """Lease pending intake posts whose lease ran out or whose retry is due, oldest first."""
    free = or_(Notification.claimed_until.is_(None), Notification.claimed_until < now)
    pick = (
        select(Notification.id)
        .where(Notification.status == _PENDING, Notification.kind == INTAKE_KIND, free)
        .order_by(Notification.claimed_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(pick))
    if not ids:
        return []
    return session.execute(
        update(Notification)
        .where(Notification.id.in_(ids), Notification.status == _PENDING, free)
        .values(claim_token=token, claimed_until=until)
        .returning(
            Notification.id,
            Notification.workspace_id,
            Notification.channel_id,
            Notification.user_id,
            Notification.attempts,
            Notification.detail,
        )
        .execution_options(synchronize_session=False)
    ).all()


def finish_post(
    session: Session,
    post_id: int,
    token: str,
    *,
    status: str,
    now: datetime,
    channel_id: str | None = None,
    message_ts: str | None = None,
    error: str | None = None,
) -> bool:
    """Mark a leased post sent (or given up); False when the lease is no longer ours."""
    values: dict[str, Any] = {
        "status": status,
        "sent_at": now,
        "claim_token": None,
        "claimed_until": None,
        "error": error[:200] if error else None,
    }
    if channel_id is not None:
        values.update(channel_id=channel_id, message_ts=message_ts)
    return _update_leased(session, post_id, token, values)


def retry_post(
    session: Session,
    post_id: int,
    token: str,
    *,
    error: str,
    retry_at: datetime,
    counted: bool = True,
) -> bool:
    """Give a leased post back for a retry from `retry_at`, the failure counted (unless
    `counted` is False: it was not tried)."""
    values: dict[str, Any] = {"claim_token": None, "claimed_until": retry_at}
    if counted:
        values.update(attempts=Notification.attempts + 1, error=error[:200])
    return _update_leased(session, post_id, token, values)


def _update_leased(session: Session, post_id: int, token: str, values: dict[str, Any]) -> bool:
    """Update a pending post only while `token` still holds its lease."""
    done = session.execute(
        update(Notification)
        .where(
            Notification.id == post_id,
            Notification.status == _PENDING,
            Notification.claim_token == token,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(done, "rowcount", 0))


def expire_idempotency_keys(session: Session, *, before: datetime, limit: int) -> int:
    """Forget intake Idempotency-Keys made before `before`, at most `limit` per call."""
    old = list(
        session.execute(
            select(IntakeRequest.workspace_id, IntakeRequest.key)
            .where(IntakeRequest.created_at < before)
            .order_by(IntakeRequest.created_at)
            .limit(limit)
        )
    )
    if old:
        session.execute(
            delete(IntakeRequest)
            .where(
                tuple_(IntakeRequest.workspace_id, IntakeRequest.key).in_(
                    [(row.workspace_id, row.key) for row in old]
                )
            )
            .execution_options(synchronize_session=False)
        )
    return len(old)
