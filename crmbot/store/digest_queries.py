"""The morning digest's SQL: who is due one, and what it says (see service/digests.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmbot.store.models import Deal, FollowUp, Rep, Stage, Workspace


def digest_candidates(session: Session) -> Sequence[Any]:
    """Active reps with what decides their digest: their zone and preferences, the workspace's."""
    return session.execute(
        select(
            Rep.workspace_id,
            Rep.user_id,
            Rep.name,
            Rep.tz,
            Rep.active,
            Rep.refreshed_at,
            Rep.preferences,
            Workspace.enterprise_id,
            Workspace.digest_time,
            Workspace.settings,
        )
        .join(Workspace, Workspace.id == Rep.workspace_id)
        .where(Rep.active.is_(True))
        .order_by(Rep.workspace_id, Rep.user_id)
    ).all()


def owned_follow_ups(
    session: Session, ws: str, owner: str, *, after: datetime | None, until: datetime, limit: int
) -> tuple[int, list[FollowUp]]:
    """(count, first `limit`) of a rep's open follow-ups due in (after, until]."""
    where = [
        FollowUp.workspace_id == ws,
        FollowUp.owner_id == owner,
        FollowUp.status == "open",
        FollowUp.due_at <= until,
    ]
    if after is not None:
        where.append(FollowUp.due_at > after)
    count = session.scalar(select(func.count()).select_from(FollowUp).where(*where)) or 0
    rows = list(
        session.scalars(select(FollowUp).where(*where).order_by(FollowUp.due_at).limit(limit))
    )
    return int(count), rows


def _open_deals(ws: str, owner: str) -> list[Any]:
    return [
        Deal.workspace_id == ws,
        Deal.owner_id == owner,
        Deal.status == "open",
        Deal.deleted_at.is_(None),
    ]


def deals_without_next_step(
    session: Session, ws: str, owner: str, *, limit: int
) -> tuple[int, list[tuple[Deal, Stage]]]:
    """A rep's open deals with no open follow-up: nobody has planned the next step."""
    planned = (
        select(FollowUp.id).where(FollowUp.deal_id == Deal.id, FollowUp.status == "open").exists()
    )
    where = [*_open_deals(ws, owner), ~planned]
    count = session.scalar(select(func.count()).select_from(Deal).where(*where)) or 0
    rows = session.execute(
        select(Deal, Stage)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(*where)
        .order_by(Deal.updated_at)
        .limit(limit)
    ).all()
    return int(count), [(r[0], r[1]) for r in rows]


def stale_deals(
    session: Session, ws: str, owner: str, *, now: datetime, limit: int
) -> tuple[int, list[tuple[Deal, Stage]]]:
    """A rep's open deals untouched for longer than their stage's rotting days."""
    rows = session.execute(
        select(Deal, Stage)
        .join(Stage, Stage.id == Deal.stage_id)
        .where(*_open_deals(ws, owner), Stage.rotting_days > 0)
        .order_by(Deal.updated_at)
    ).all()
    stale = [(d, s) for d, s in rows if (now - d.updated_at).days >= s.rotting_days]
    return len(stale), stale[:limit]
