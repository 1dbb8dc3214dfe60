"""The intake's Slack posts, durably: an outbox in the notification log.

Each intake writes, in its own transaction, one pending row per message Slack should get —
the intake channel's notice and the owner's DM — leased for `POST_LEASE` to the process that
took the intake. That process posts them right after the commit and marks each sent (or
gives it back for a retry after a backoff that honours Slack's Retry-After). Whatever it
didn't finish — Slack down, a crash, a restart — the reminder sweep (the clock process, or
`crmbot remind --once`) claims once its lease or backoff ran out, and posts. Every change to
a row is conditional on the lease's token, so a post is made by one poster at a time and
never twice, except when a poster dies between Slack's answer and its own commit (the same
one-commit window as the reminders).

The message is drawn again at each attempt from the lead as it is then; what the form said
(the message, its facts, the assignment rule) travels in the row's `detail`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from crmbot.service import present
from crmbot.service.assignment import AssignmentService
from crmbot.service.digests import new_token
from crmbot.service.reminder_types import DeliveryStatus, retry_delay
from crmbot.store import intake_queries as iq
from crmbot.store.models import FollowUp, Lead

POST_LEASE = timedelta(minutes=5)  # the intake's own process posts within this
POST_LIMIT = 200  # intake posts a sweep picks up
MAX_ATTEMPTS = 15  # then given up (~10 h of backoff): the lead's follow-up still reminds
CHANNEL, OWNER = "channel", "owner"  # what a post is: the channel's notice, the owner's DM


@dataclass(frozen=True)
class IntakePost:
    """One message to post about an intake, leased to whoever holds it."""

    id: int
    token: str
    workspace_id: str
    target: str  # CHANNEL or OWNER
    to: str  # the channel id, or the owner's user id
    attempts: int
    outcome: Any  # the IntakeOutcome to draw the message from


class IntakePostService(AssignmentService):
    def _queue_posts(
        self,
        session: Session,
        ws: str,
        lead: Lead,
        task: FollowUp | None,
        *,
        channel_id: str | None,
        detail: Mapping[str, Any],
    ) -> tuple[tuple[int, str, str, str], ...]:
        """Pending rows for the notice and the DM, leased to this process: (id, token,
        target, to) each."""
        now = self._now()
        token = new_token()
        targets = [(CHANNEL, channel_id)] if channel_id else []
        if lead.owner_id:
            targets.append((OWNER, lead.owner_id))
        rows = [
            {
                "workspace_id": ws,
                "kind": iq.INTAKE_KIND,
                "dedupe_key": f"i:{ws}:{lead.id}:{token}:{target}",
                "channel_id": to if target == CHANNEL else None,
                "user_id": to if target == OWNER else None,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "claim_token": token,
                "claimed_until": now + POST_LEASE,
                "detail": {
                    **detail,
                    "target": target,
                    "lead_id": lead.id,
                    "follow_up_id": task.id if task is not None else None,
                },
                "created_at": now,
            }
            for target, to in targets
            if to
        ]
        ids = iq.queue_posts(session, rows)
        return tuple(
            (post_id, token, target, str(to))
            for post_id, (target, to) in zip(ids, [t for t in targets if t[1]], strict=True)
        )

    def claim_intake_posts(self, *, lease: timedelta, limit: int = POST_LIMIT) -> list[IntakePost]:
        """Lease the intake posts that are due (a failed or abandoned first try)."""
        from crmbot.service.intake import IntakeOutcome  # intake.py builds on this module

        now = self._now()
        token = new_token()
        posts = []
        with self._db.write() as session:
            rows = iq.claim_posts(session, now=now, until=now + lease, token=token, limit=limit)
            for row in rows:
                detail = dict(row.detail or {})
                lead = session.get(Lead, detail.get("lead_id"))
                target = detail.get("target", CHANNEL)
                to = row.channel_id if target == CHANNEL else row.user_id
                if lead is None or lead.deleted_at is not None or not to:
                    gone = "lead gone" if to else "nowhere to post"
                    skipped = DeliveryStatus.SKIPPED.value
                    iq.finish_post(session, row.id, token, status=skipped, now=now, error=gone)
                    continue
                if row.attempts >= MAX_ATTEMPTS:
                    given_up = iq.GAVE_UP
                    error = f"gave up after {row.attempts} attempts"
                    iq.finish_post(session, row.id, token, status=given_up, now=now, error=error)
                    continue
                task = session.get(FollowUp, detail.get("follow_up_id") or 0)
                follow_up = present.follow_up_views(session, [task], now)[0] if task else None
                outcome = IntakeOutcome(
                    int(detail.get("status", 201)),
                    dict(detail.get("answer") or {}),
                    lead=present.lead_view(lead, session),
                    follow_up=follow_up,
                    rule=str(detail.get("rule", "")),
                    message=str(detail.get("message", "")),
                    channel_id=row.channel_id,
                    facts=dict(detail.get("facts") or {}),
                )
                posts.append(
                    IntakePost(row.id, token, row.workspace_id, target, to, row.attempts, outcome)
                )
        return posts

    def intake_post_sent(self, post: IntakePost, *, channel_id: str, message_ts: str) -> bool:
        """The post is in Slack; False when its lease had gone to someone else."""
        with self._db.write() as session:
            return iq.finish_post(
                session,
                post.id,
                post.token,
                status=DeliveryStatus.SENT.value,
                now=self._now(),
                channel_id=channel_id,
                message_ts=message_ts,
            )

    def intake_post_failed(
        self, post: IntakePost, *, error: str, retry_after: float | None = None
    ) -> datetime:
        """Give the post back: a sweep retries it after a backoff (1, 2, 4 … minutes, at most
        an hour), never sooner than Slack's Retry-After. When it is due again."""
        retry_at = self._now() + retry_delay(post.attempts, retry_after)
        with self._db.write() as session:
            iq.retry_post(session, post.id, post.token, error=error, retry_at=retry_at)
        return retry_at

    def intake_post_handed_back(self, post: IntakePost) -> None:
        """Not tried (time ran out): free at once for the next sweep, no attempt counted."""
        with self._db.write() as session:
            iq.retry_post(
                session, post.id, post.token, error="", retry_at=self._now(), counted=False
            )

    def intake_post_dropped(self, post: IntakePost, *, error: str) -> None:
        """Slack won't ever take it (channel or person gone): stop trying."""
        with self._db.write() as session:
            iq.finish_post(
                session,
                post.id,
                post.token,
                status=iq.GAVE_UP,
                now=self._now(),
                error=error,
            )


def posts_of(
    outcome: Any, queued: tuple[tuple[int, str, str, str], ...], ws: str
) -> tuple[IntakePost, ...]:
    """The queued rows as IntakePosts of this outcome (for the intake's own process)."""
    return tuple(
        IntakePost(post_id, token, ws, target, to, 0, outcome)
        for post_id, token, target, to in queued
    )


__all__ = ["CHANNEL", "OWNER", "IntakePost", "IntakePostService", "posts_of"]
