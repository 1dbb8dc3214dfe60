"""The reminder sweep's service side: claim due follow-ups, log each digest, finish or retry.

A sweep is three short steps and never holds a transaction while Slack is called:

1. `claim_reminders` takes this round of every due open follow-up in one statement (which
   moves it to its next round, a day later, so no other sweep can take the same round) and,
   in the same transaction, writes one pending row per digest message to the notification
   log, leased to this sweep (`claim_token`, `claimed_until`), unique by dedupe key, with
   the follow-ups it carries. Escalations get a log row each, once per follow-up and due time.
2. The scheduler posts each digest.
3. Right after each post, `record_sent` marks its row sent (with the message's channel and
   ts, for the buttons); `release` counts a failure and frees the row for a retry after a
   backoff; `hand_back` frees what a sweep didn't get to.

A sweep that dies between 1 and 3 loses nothing: its digest rows stay pending, their lease
runs out and a later sweep posts them (`claim_reminders` picks up pending digests first,
and drops follow-ups that were done, cancelled, snoozed or reminded again since). A sweep
that dies after Slack accepted a post but before step 3 committed has that one message
posted again after the lease: the window is one HTTP answer plus one small commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from crmbot.domain import FollowUpStatus, RecordKind
from crmbot.service.digests import MorningDigestService, new_token, settings_view
from crmbot.service.reminder_types import (
    REMIND_AGAIN_AFTER,
    DeliveryKind,
    DeliveryStatus,
    Digest,
    DigestItem,
    Person,
    ReminderClaim,
    ReminderSettings,
    retry_delay,
)
from crmbot.store import reminder_queries as rq
from crmbot.store.queries import ref_of

CLAIM_LIMIT = 20_000  # follow-ups per sweep; more wait for the next sweep
RETRY_LIMIT = 500  # pending digests picked up per sweep
KEEP_LOG = timedelta(days=90)
_KIND_ORDER = {DeliveryKind.REMINDER: 0, DeliveryKind.ESCALATION: 1}
_CODE = {DeliveryKind.REMINDER: "r", DeliveryKind.ESCALATION: "e"}
_KIND = {v: k for k, v in _CODE.items()}

Target = tuple[str, str | None, str | None]  # workspace, channel, DM user


def digest_key(token: str, target: Target) -> str:
    """One digest message per sweep and target."""
    ws, channel, user = target
    return f"d:{token}:{ws}:{channel or 'dm-' + (user or '')}"


def escalation_key(follow_up_id: int, due_at: datetime) -> str:
    """One escalation per follow-up and due time (a snoozed follow-up can escalate again)."""
    return f"e:{follow_up_id}:{int(due_at.timestamp())}"


def notice_key(ws: str, channel: str, error: str) -> str:
    """One notice to the admins per channel and problem."""
    return f"n:{ws}:{channel}:{error}"


def _person(found: Any, user_id: str) -> Person:
    if found is None:
        return Person(user_id, user_id, True, "UTC", None)
    return Person(user_id, found.name, found.active, found.tz, found.refreshed_at)


def _target(row: Any, settings: ReminderSettings) -> tuple[str | None, str | None]:
    """(channel, None) or (None, owner) for a reminder: where it was made, else the fallbacks."""
    origin = row.channel_id
    if origin and not origin.startswith("D"):
        return origin, None
    if settings.reminder_channel:
        return settings.reminder_channel, None
    return None, row.owner_id


def item_order(item: DigestItem) -> tuple[int, int]:
    """Reminders, then escalations; oldest follow-up first (ids grow with T- numbers)."""
    return _KIND_ORDER.get(item.kind, 9), item.follow_up_id


def _detail(target: Target, items: Iterable[DigestItem]) -> dict[str, Any]:
    """What a digest row keeps: where it goes and which follow-ups it carries."""
    _, channel, user = target
    return {
        "channel": channel,
        "user": user,
        "items": [[i.follow_up_id, _CODE[i.kind], i.escalation_id] for i in items],
    }


def entries_of(detail: Any) -> list[tuple[int, DeliveryKind, int | None]]:
    """(follow-up id, kind, escalation id) from a digest row's detail."""
    out = []
    for entry in (detail or {}).get("items") or []:
        if isinstance(entry, list) and len(entry) == 3 and entry[1] in _KIND:
            out.append((int(entry[0]), _KIND[entry[1]], entry[2]))
    return out


@dataclass(frozen=True)
class _Carried:
    """A pending digest taken over by this sweep: what it still has to say, and where."""

    delivery_id: int
    attempts: int
    target: Target
    kept: list[tuple[Any, DeliveryKind, int | None]]
    listed: int  # how many it carried when it was written
    dropped_escalations: list[int]  # escalations no longer worth posting


class Names:
    """Workspaces, owners, admins and related records for a set of follow-up rows, in bulk."""

    def __init__(self, session: Session, rows: Sequence[Any]) -> None:
        self.spaces = rq.workspaces(session, {r.workspace_id for r in rows})
        self.settings = {ws: settings_view(row) for ws, row in self.spaces.items()}
        self.owners = rq.people(session, self.spaces, {r.owner_id for r in rows})
        self.admins = rq.admins(session, self.spaces)
        self.about = rq.about(session, rows)
        self._people: dict[tuple[str, str], Person] = {}

    def person(self, ws: str, user_id: str) -> Person:
        key = (ws, user_id)
        if key not in self._people:
            self._people[key] = _person(self.owners.get(key), user_id)
        return self._people[key]

    def item(
        self,
        row: Any,
        kind: DeliveryKind,
        *,
        escalation_id: int | None = None,
        status: FollowUpStatus = FollowUpStatus.OPEN,
        acknowledged_by: str | None = None,
    ) -> DigestItem:
        about = self.about.get(row.id)
        return DigestItem(
            kind=kind,
            follow_up_id=row.id,
            ref=ref_of(RecordKind.FOLLOW_UP, row.number),
            title=row.title,
            about_ref=about[0] if about else None,
            about_name=about[1] if about else None,
            owner=self.person(row.workspace_id, row.owner_id),
            due_at=row.due_at,
            status=status,
            origin_channel=row.channel_id,
            escalation_id=escalation_id,
            acknowledged_by=acknowledged_by,
        )


class SweepService(MorningDigestService):
    """Claiming, logging and finishing reminder digests (the sweep's database side)."""

    # --- the sweep --------------------------------------------------------------

    def claim_reminders(self, *, lease: timedelta, limit: int = CLAIM_LIMIT) -> ReminderClaim:
        """Take every due reminder (up to `limit`) and group them into leased digests."""
        now = self._now()
        token, until = new_token(), now + lease
        with self._db.write() as session:
            rows = rq.claim_due_follow_ups(
                session,
                now=now,
                next_at=now + REMIND_AGAIN_AFTER,
                until=until,
                token=token,
                limit=limit,
            )
            stale = rq.claim_stale_digests(
                session, now=now, until=until, token=token, limit=RETRY_LIMIT
            )
            if not rows and not stale:
                return ReminderClaim(token, now, until, ())
            carried = self._carried(session, stale, fresh={r.id for r in rows}, now=now)
            names = Names(session, [*rows, *(fu for c in carried for fu, _, _ in c.kept)])
            groups: dict[Target, list[DigestItem]] = {}
            escalating: list[tuple[Any, Target, str]] = []
            for row in rows:
                ws = names.settings[row.workspace_id]
                channel, dm_user = _target(row, ws)
                target = (row.workspace_id, channel, dm_user)
                groups.setdefault(target, []).append(names.item(row, DeliveryKind.REMINDER))
                late = now - row.due_at
                if ws.manager_channel and late > timedelta(days=ws.escalate_after_days):
                    manager = (row.workspace_id, ws.manager_channel, None)
                    escalating.append((row, manager, escalation_key(row.id, row.due_at)))
            new_escalations = rq.insert_escalations(
                session,
                [
                    {
                        "workspace_id": row.workspace_id,
                        "kind": DeliveryKind.ESCALATION.value,
                        "dedupe_key": key,
                        "follow_up_id": row.id,
                        "user_id": row.owner_id,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "created_at": now,
                    }
                    for row, _, key in escalating
                ],
            )
            for row, target, key in escalating:
                if key in new_escalations:  # logged before: escalated once already
                    item = names.item(
                        row, DeliveryKind.ESCALATION, escalation_id=new_escalations[key]
                    )
                    groups.setdefault(target, []).append(item)
            fresh_ids = rq.insert_digests(
                session,
                [
                    {
                        "workspace_id": target[0],
                        "kind": DeliveryKind.DIGEST.value,
                        "dedupe_key": digest_key(token, target),
                        "user_id": target[2],
                        "channel_id": target[1],
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "claim_token": token,
                        "claimed_until": until,
                        "detail": _detail(target, items),
                        "created_at": now,
                    }
                    for target, items in groups.items()
                ],
            )
            ids: dict[Target, list[int]] = {t: [fresh_ids[digest_key(token, t)]] for t in groups}
            attempts: dict[Target, int] = {}
            emptied = []
            for old in carried:
                if not old.kept:
                    emptied.append(old.delivery_id)
                    continue
                have = {(i.follow_up_id, i.kind) for i in groups.get(old.target, [])}
                groups.setdefault(old.target, []).extend(
                    names.item(fu, kind, escalation_id=esc)
                    for fu, kind, esc in old.kept
                    if (fu.id, kind) not in have
                )
                ids.setdefault(old.target, []).append(old.delivery_id)
                attempts[old.target] = max(attempts.get(old.target, 0), old.attempts)
            dropped = [esc for old in carried for esc in old.dropped_escalations]
            if emptied or dropped:
                rq.finish_deliveries(
                    session, [*emptied, *dropped], status=DeliveryStatus.SKIPPED.value, now=now
                )
            for old in carried:  # keep what each row will actually show, for its buttons
                if old.kept and len(old.kept) != old.listed:
                    items = [names.item(fu, kind, escalation_id=esc) for fu, kind, esc in old.kept]
                    rq.set_detail(session, old.delivery_id, _detail(old.target, items))
            digests = tuple(
                Digest(
                    delivery_ids=tuple(ids[target]),
                    workspace_id=target[0],
                    enterprise_id=names.spaces[target[0]].enterprise_id,
                    channel_id=target[1],
                    dm_user=target[2],
                    items=tuple(sorted(items, key=item_order)),
                    reminder_channel=names.settings[target[0]].reminder_channel,
                    admins=names.admins.get(target[0], ()),
                    now=now,
                    attempts=attempts.get(target, 0),
                )
                for target, items in sorted(
                    groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or "")
                )
                if ids.get(target)
            )
            return ReminderClaim(token, now, until, digests)

    def _carried(
        self, session: Session, stale: Sequence[Any], *, fresh: set[int], now: datetime
    ) -> list[_Carried]:
        """Pending digests taken over, and which of their follow-ups still need saying.

        A follow-up is dropped when it was done, cancelled or moved to later since, or, for a
        reminder, when a newer round took it (this sweep's, or one in between): that round
        reminds it.
        """
        entries = {row.id: entries_of(row.detail) for row in stale}
        follow_ups = rq.follow_ups_by_id(
            session, {fid for items in entries.values() for fid, _, _ in items}
        )
        out = []
        for row in stale:
            detail = row.detail or {}
            kept, dropped = [], []
            for fid, kind, esc in entries[row.id]:
                fu = follow_ups.get(fid)
                gone = fu is None or fu.status != FollowUpStatus.OPEN.value or fu.due_at > now
                newer = fu is not None and (
                    fid in fresh
                    or (fu.last_reminded_at is not None and fu.last_reminded_at > row.created_at)
                )
                if gone or (kind is DeliveryKind.REMINDER and newer):
                    if esc is not None:
                        dropped.append(esc)
                    continue
                kept.append((fu, kind, esc))
            target = (row.workspace_id, detail.get("channel"), detail.get("user"))
            out.append(_Carried(row.id, row.attempts, target, kept, len(entries[row.id]), dropped))
        return out

    def record_sent(
        self, claim: ReminderClaim, digest: Digest, *, channel_id: str, message_ts: str
    ) -> None:
        """The digest is the message at (channel, ts): log it sent (its escalations too)."""
        escalations = [i.escalation_id for i in digest.items if i.escalation_id is not None]
        with self._db.write() as session:
            rq.finish_deliveries(
                session,
                [*digest.delivery_ids, *escalations],
                status=DeliveryStatus.SENT.value,
                now=self._now(),
                channel_id=channel_id,
                message_ts=message_ts,
            )

    def record_undeliverable(self, claim: ReminderClaim, digest: Digest, *, error: str) -> None:
        """Nowhere would take this digest (no channel, no DM): log it and let it go.

        Its follow-ups come back with their next round, a day later.
        """
        escalations = [i.escalation_id for i in digest.items if i.escalation_id is not None]
        with self._db.write() as session:
            rq.finish_deliveries(
                session,
                [*digest.delivery_ids, *escalations],
                status=DeliveryStatus.UNDELIVERABLE.value,
                now=self._now(),
                error=error,
            )

    def release(
        self,
        claim: ReminderClaim,
        digest: Digest,
        *,
        error: str,
        retry_after: float | None = None,
    ) -> datetime:
        """Posting failed for now: count the attempt; a sweep after the backoff retries."""
        retry_at = self._now() + retry_delay(digest.attempts, retry_after)
        with self._db.write() as session:
            rq.fail_deliveries(
                session, digest.delivery_ids, error=error, retry_at=retry_at, token=claim.token
            )
        return retry_at

    def hand_back(self, claim: ReminderClaim, digests: Sequence[Digest]) -> None:
        """Not attempted (the sweep ran short of lease): free for the next sweep at once."""
        ids = [i for d in digests for i in d.delivery_ids]
        with self._db.write() as session:
            rq.fail_deliveries(
                session, ids, error="", retry_at=None, counted=False, token=claim.token
            )

    def split(
        self,
        claim: ReminderClaim,
        digest: Digest,
        parts: Sequence[tuple[str | None, str | None, Sequence[DigestItem]]],
    ) -> tuple[Digest, ...]:
        """Hand a digest on as several, each (channel, DM user, items) its own leased row.

        Used when its channel refuses it and each owner gets their items by DM.
        """
        now = self._now()
        children: list[Digest] = []
        with self._db.write() as session:
            rows = []
            for channel, user, items in parts:
                target = (digest.workspace_id, channel, user)
                key = f"{digest_key(claim.token, target)}:from{digest.delivery_ids[0]}"
                rows.append(
                    {
                        "workspace_id": digest.workspace_id,
                        "kind": DeliveryKind.DIGEST.value,
                        "dedupe_key": key,
                        "user_id": user,
                        "channel_id": channel,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": digest.attempts,
                        "claim_token": claim.token,
                        "claimed_until": claim.lease_until,
                        "detail": _detail(target, items),
                        "created_at": now,
                    }
                )
                children.append(
                    replace(
                        digest,
                        delivery_ids=(),
                        channel_id=channel,
                        dm_user=user,
                        items=tuple(items),
                    )
                )
            made = rq.insert_digests(session, rows)
            rq.finish_deliveries(
                session, digest.delivery_ids, status=DeliveryStatus.SPLIT.value, now=now
            )
        return tuple(
            replace(child, delivery_ids=(made[str(row["dedupe_key"])],))
            for child, row in zip(children, rows, strict=True)
        )

    # --- admin notices -----------------------------------------------------------

    def claim_notice(self, ws: str, channel: str, error: str, *, lease: timedelta) -> int | None:
        """The log row for telling admins about a broken channel, if it is ours to send."""
        now = self._now()
        with self._db.write() as session:
            got = rq.claim_key(
                session,
                values={
                    "workspace_id": ws,
                    "kind": DeliveryKind.NOTICE.value,
                    "dedupe_key": notice_key(ws, channel, error),
                    "channel_id": channel,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "created_at": now,
                    "error": error[:200],
                },
                token=new_token(),
                until=now + timedelta(minutes=10),
                now=now,
            )
            return int(got.id) if got is not None else None

    def finish_notice(self, delivery_id: int, *, sent: bool, error: str = "") -> None:
        """The admins were told (or not yet: then a later failure tries again)."""
        now = self._now()
        with self._db.write() as session:
            if sent:
                rq.finish_deliveries(
                    session, [delivery_id], status=DeliveryStatus.SENT.value, now=now
                )
            else:
                rq.fail_deliveries(session, [delivery_id], error=error or "failed", retry_at=now)

    def prune_notifications(self, *, older_than: timedelta = KEEP_LOG, limit: int = 5000) -> int:
        """Forget log rows older than `older_than` (their messages can no longer be redrawn)."""
        with self._db.write() as session:
            return rq.prune(session, before=self._now() - older_than, limit=limit)
