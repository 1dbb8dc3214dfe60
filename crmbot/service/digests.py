"""Reminder settings (per workspace, per rep) and the reps' morning digests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from crmbot.domain import InvalidInput, Money, RecordKind, Role
from crmbot.service.activity import ActivityService
from crmbot.service.reminder_types import (
    DEFAULT_DIGEST_DAYS,
    DEFAULT_ESCALATE_AFTER_DAYS,
    FINISHED,
    MORNING_CATCH_UP,
    DealLine,
    DeliveryKind,
    DeliveryStatus,
    DigestPreferences,
    MorningDigest,
    Person,
    ReminderSettings,
    TaskLine,
    clock_time,
    parse_clock,
    retry_delay,
    wall_time,
    zone,
)
from crmbot.store import digest_queries as dq
from crmbot.store import reminder_queries as rq
from crmbot.store.models import FollowUp, Workspace
from crmbot.store.queries import ref_of

MORNING_TASKS = 8  # follow-ups listed per section; the rest are counted
MORNING_DEALS = 5
MAX_ESCALATE_AFTER_DAYS = 365


def new_token() -> str:
    """A claim token: unique per sweep, per process."""
    return uuid.uuid4().hex


def require_channel(channel: str, field: str) -> str:
    """A Slack channel id (C…, G…); DMs can't be reminder channels."""
    channel = channel.strip().lstrip("#")
    if not channel or len(channel) > 32 or channel[0] not in "CG" or not channel.isalnum():
        raise InvalidInput(field, f'"{channel}" is not a Slack channel id.', example="C0123ABCD")
    return channel


def morning_key(ws: str, user_id: str, day: date) -> str:
    return f"m:{ws}:{user_id}:{day.isoformat()}"


def _days(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    days = tuple(sorted({int(d) for d in value if isinstance(d, int) and 0 <= d <= 6}))
    return days or None


def settings_view(ws: Workspace) -> ReminderSettings:
    """The workspace row's reminder settings, defaults filled in."""
    extra = ws.settings or {}
    escalate = extra.get("escalate_after_days")
    return ReminderSettings(
        workspace_id=ws.id,
        reminder_channel=ws.reminder_channel,
        manager_channel=ws.manager_channel,
        digest_time=parse_clock(ws.digest_time) if ws.digest_time else "09:00",
        digest_days=_days(extra.get("digest_days")) or DEFAULT_DIGEST_DAYS,
        escalate_after_days=escalate if isinstance(escalate, int) else DEFAULT_ESCALATE_AFTER_DAYS,
        morning_digest=bool(extra.get("morning_digest", True)),
    )


def preferences_view(user_id: str, prefs: dict[str, Any] | None) -> DigestPreferences:
    prefs = prefs or {}
    enabled = prefs.get("digest")
    at = prefs.get("digest_time")
    return DigestPreferences(
        user_id=user_id,
        enabled=enabled if isinstance(enabled, bool) else None,
        digest_time=at if isinstance(at, str) else None,
        digest_days=_days(prefs.get("digest_days")),
    )


def morning_due(candidate: Any, now: datetime) -> date | None:
    """The rep's local day when their digest is due now (on time or catching up), else None."""
    extra = candidate.settings or {}
    prefs = preferences_view(candidate.user_id, candidate.preferences)
    wanted = prefs.enabled if prefs.enabled is not None else extra.get("morning_digest", True)
    if not wanted:
        return None
    days = prefs.digest_days or _days(extra.get("digest_days")) or DEFAULT_DIGEST_DAYS
    at = clock_time(prefs.digest_time or candidate.digest_time)
    # Today and yesterday (local): a digest time late in the evening can be caught up after
    # midnight, and a zone ahead of UTC starts its day before ours.
    today = now.astimezone(zone(candidate.tz)).date()
    for day in (today, today - timedelta(days=1)):
        if day.weekday() not in days:
            continue
        send_at = wall_time(day, at, candidate.tz)
        if send_at <= now < send_at + MORNING_CATCH_UP:
            return day
    return None


class MorningDigestService(ActivityService):
    """Reminder settings and the morning digest; the sweep itself is in reminders.py."""

    # --- settings -------------------------------------------------------------

    def reminder_settings(self, ws: str) -> ReminderSettings:
        """The workspace's reminder settings (made with the defaults when new)."""
        with self._db.write() as session:
            self._ensure_workspace(session, ws)
            row = session.get(Workspace, ws)
            assert row is not None
            return settings_view(row)

    def configure_reminders(
        self,
        ws: str,
        *,
        by: str | None = None,
        reminder_channel: str | None = None,
        manager_channel: str | None = None,
        digest_time: str | None = None,
        digest_days: Sequence[int] | None = None,
        escalate_after_days: int | None = None,
        morning_digest: bool | None = None,
    ) -> ReminderSettings:
        """Change a workspace's reminder settings (None: unchanged; "" clears a channel).

        `by` is the Slack user asking, who must be an admin; the CLI (the operator) passes None.
        """
        with self._db.write() as session:
            self._ensure_workspace(session, ws)
            if by is not None:
                self._require_role(session, ws, by, Role.ADMIN, "change reminder settings")
            row = session.get(Workspace, ws)
            assert row is not None
            if reminder_channel is not None:
                row.reminder_channel = (
                    require_channel(reminder_channel, "reminder_channel")
                    if reminder_channel
                    else None
                )
            if manager_channel is not None:
                row.manager_channel = (
                    require_channel(manager_channel, "manager_channel") if manager_channel else None
                )
            if digest_time is not None:
                row.digest_time = parse_clock(digest_time)
            extra = dict(row.settings or {})
            if digest_days is not None:
                days = _days(list(digest_days))
                if not days:
                    raise InvalidInput("digest_days", "Name at least one day.", example="mon-fri")
                extra["digest_days"] = list(days)
            if escalate_after_days is not None:
                if not 1 <= escalate_after_days <= MAX_ESCALATE_AFTER_DAYS:
                    raise InvalidInput(
                        "escalate_after_days",
                        f"Escalate after 1 to {MAX_ESCALATE_AFTER_DAYS} days.",
                        example="3",
                    )
                extra["escalate_after_days"] = escalate_after_days
            if morning_digest is not None:
                extra["morning_digest"] = morning_digest
            row.settings = extra
            return settings_view(row)

    def digest_preferences(self, ws: str, user_id: str) -> DigestPreferences:
        """A rep's own morning-digest choices."""
        with self._db.read() as session:
            rep = self._rep(session, ws, user_id)
            return preferences_view(user_id, rep.preferences if rep else None)

    def set_digest_preferences(
        self,
        ws: str,
        user_id: str,
        *,
        enabled: bool | None = None,
        digest_time: str | None = None,
        digest_days: Sequence[int] | None = None,
    ) -> DigestPreferences:
        """A rep turns their morning digest on or off, or moves it (None: unchanged)."""
        with self._db.write() as session:
            rep = self.ensure_rep(session, ws, user_id)
            prefs = dict(rep.preferences or {})
            if enabled is not None:
                prefs["digest"] = enabled
            if digest_time is not None:
                prefs["digest_time"] = parse_clock(digest_time)
            if digest_days is not None:
                days = _days(list(digest_days))
                if not days:
                    raise InvalidInput("digest_days", "Name at least one day.", example="mon-fri")
                prefs["digest_days"] = list(days)
            rep.preferences = prefs
            return preferences_view(user_id, prefs)

    # --- morning digests ------------------------------------------------------

    def claim_morning_digests(self, *, lease: timedelta) -> tuple[MorningDigest, ...]:
        """Claim the digests due now (one per rep and local day) and gather what they say.

        Digests with nothing to say are marked skipped and not returned.
        """
        now = self._now()
        token, until = new_token(), now + lease
        claimed: list[tuple[Any, date, int, int]] = []
        with self._db.write() as session:
            due = [(c, day) for c in dq.digest_candidates(session) if (day := morning_due(c, now))]
            if not due:
                return ()
            keys = {morning_key(c.workspace_id, c.user_id, day): (c, day) for c, day in due}
            known = rq.deliveries_by_key(session, keys)
            for key, (candidate, day) in keys.items():
                seen = known.get(key)
                if seen is not None and seen.status in FINISHED:
                    continue
                got = rq.claim_key(
                    session,
                    values={
                        "workspace_id": candidate.workspace_id,
                        "kind": DeliveryKind.MORNING.value,
                        "dedupe_key": key,
                        "user_id": candidate.user_id,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "created_at": now,
                    },
                    token=token,
                    until=until,
                    now=now,
                )
                if got is not None:
                    claimed.append((candidate, day, got.id, got.attempts))
        if not claimed:
            return ()
        with self._db.read() as session:
            digests = [self._morning(session, *c, now=now) for c in claimed]
        empty = [d.delivery_id for d in digests if d.empty]
        if empty:
            with self._db.write() as session:
                rq.finish_deliveries(session, empty, status=DeliveryStatus.SKIPPED.value, now=now)
        return tuple(d for d in digests if not d.empty)

    def _morning(
        self, session: Session, c: Any, day: date, delivery_id: int, attempts: int, *, now: datetime
    ) -> MorningDigest:
        ws, user = c.workspace_id, c.user_id
        end_of_day = wall_time(day + timedelta(days=1), time(0), c.tz)
        overdue_count, overdue = dq.owned_follow_ups(
            session, ws, user, after=None, until=now, limit=MORNING_TASKS
        )
        today_count, today = dq.owned_follow_ups(
            session, ws, user, after=now, until=end_of_day, limit=MORNING_TASKS
        )
        names = rq.about(session, [*overdue, *today])
        prefs = preferences_view(user, c.preferences)
        loose_count, loose = dq.deals_without_next_step(session, ws, user, limit=MORNING_DEALS)
        stale_count, stale = dq.stale_deals(session, ws, user, now=now, limit=MORNING_DEALS)
        return MorningDigest(
            delivery_id=delivery_id,
            workspace_id=ws,
            enterprise_id=c.enterprise_id,
            rep=Person(user, c.name, c.active, c.tz, c.refreshed_at),
            local_day=day,
            digest_time=prefs.digest_time or parse_clock(c.digest_time or "09:00"),
            now=now,
            overdue=tuple(_task(f, names) for f in overdue),
            overdue_count=overdue_count,
            due_today=tuple(_task(f, names) for f in today),
            due_today_count=today_count,
            no_next_step=tuple(_deal(d, s, now) for d, s in loose),
            no_next_step_count=loose_count,
            stale=tuple(_deal(d, s, now) for d, s in stale),
            stale_count=stale_count,
            attempts=attempts,
        )

    def record_morning(self, digest: MorningDigest, *, channel_id: str, message_ts: str) -> None:
        """The morning digest was posted (its DM channel and ts are kept for its buttons)."""
        refs = [t.ref for t in (*digest.overdue, *digest.due_today)]
        with self._db.write() as session:
            rq.finish_deliveries(
                session,
                [digest.delivery_id],
                status=DeliveryStatus.SENT.value,
                now=self._now(),
                channel_id=channel_id,
                message_ts=message_ts,
                detail={"refs": refs},
            )

    def release_morning(
        self, digest: MorningDigest, *, error: str, retry_after: float | None = None
    ) -> datetime:
        """Posting failed for now: a later sweep retries (with backoff) the same day."""
        retry_at = self._now() + retry_delay(digest.attempts, retry_after)
        with self._db.write() as session:
            rq.fail_deliveries(session, [digest.delivery_id], error=error, retry_at=retry_at)
        return retry_at

    def drop_morning(self, digest: MorningDigest, *, error: str) -> None:
        """The rep can't be reached (deactivated): don't try again today."""
        with self._db.write() as session:
            rq.finish_deliveries(
                session,
                [digest.delivery_id],
                status=DeliveryStatus.UNDELIVERABLE.value,
                now=self._now(),
                error=error,
            )


def _task(row: FollowUp, names: dict[int, tuple[str, str]]) -> TaskLine:
    about = names.get(row.id)
    return TaskLine(
        ref=ref_of(RecordKind.FOLLOW_UP, row.number),
        title=row.title,
        about_ref=about[0] if about else None,
        about_name=about[1] if about else None,
        due_at=row.due_at,
    )


def _deal(deal: Any, stage: Any, now: datetime) -> DealLine:
    return DealLine(
        ref=ref_of(RecordKind.DEAL, deal.number),
        name=deal.name,
        stage=stage.name,
        amount=Money(deal.amount, deal.currency) if deal.amount is not None else None,
        idle_days=max(0, (now - deal.updated_at).days),
    )
