"""After the post: what the buttons on a digest need (redraw it, acknowledge, snooze)."""

from __future__ import annotations

from datetime import time

from crmbot.domain import FollowUpStatus, FollowUpView, RecordKind, RecordNotFound, Role
from crmbot.service import present
from crmbot.service.reminder_types import Acknowledged, DeliveryKind, Digest, next_weekday_at
from crmbot.service.reminders import Names, SweepService, entries_of, item_order
from crmbot.store import reminder_queries as rq
from crmbot.store.models import FollowUp, Notification
from crmbot.store.queries import ref_of


class ReminderService(SweepService):
    """The reminder sweep (SweepService) and the buttons on what it posted."""

    def posted_digest(self, ws: str, channel_id: str, message_ts: str) -> Digest | None:
        """The digest message at (channel, ts) as it stands now, or None if it isn't one."""
        now = self._now()
        with self._db.read() as session:
            rows = rq.posted_digests(session, ws, channel_id, message_ts)
            entries = list(dict.fromkeys(e for row in rows for e in entries_of(row.detail)))
            if not entries:
                return None
            follow_ups = rq.follow_ups_by_id(session, {fid for fid, _, _ in entries})
            acks = rq.escalations_by_id(session, (esc for _, _, esc in entries if esc))
            names = Names(session, list(follow_ups.values()))
            items = []
            for fid, kind, esc in entries:
                fu = follow_ups.get(fid)
                if fu is None or fu.workspace_id != ws:
                    continue
                ack = acks.get(esc) if esc is not None else None
                items.append(
                    names.item(
                        fu,
                        kind,
                        escalation_id=esc,
                        status=FollowUpStatus(fu.status),
                        acknowledged_by=ack.acknowledged_by if ack is not None else None,
                    )
                )
            space = names.spaces.get(ws)
            return Digest(
                delivery_ids=tuple(row.id for row in rows),
                workspace_id=ws,
                enterprise_id=space.enterprise_id if space else None,
                channel_id=channel_id,
                dm_user=None,
                items=tuple(sorted(items, key=item_order)),
                reminder_channel=space.reminder_channel if space else None,
                admins=(),
                now=now,
            )

    def acknowledge_escalation(self, ws: str, delivery_id: int, *, by: str) -> Acknowledged:
        """A manager saw the escalation; the first acknowledgement is the one kept."""
        now = self._now()
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.MANAGER, "acknowledge escalations")
            row = session.get(Notification, delivery_id)
            if row is None or row.workspace_id != ws or row.kind != DeliveryKind.ESCALATION:
                raise RecordNotFound("that escalation")
            if row.acknowledged_by is None:
                row.acknowledged_by, row.acknowledged_at = by, now
            follow_up = session.get(FollowUp, row.follow_up_id)
            ref = ref_of(RecordKind.FOLLOW_UP, follow_up.number) if follow_up else "?"
            return Acknowledged(ref, row.acknowledged_by, row.channel_id, row.message_ts)

    def follow_up(self, ws: str, ref: str) -> FollowUpView:
        """One follow-up by its T- reference."""
        with self._db.read() as session:
            row = self._follow_up(session, ws, ref)
            return present.follow_up_views(session, [row], self._now())[0]

    def snooze_until_next(
        self, ws: str, ref: str, *, by: str, weekday: int = 0, at: time = time(9)
    ) -> FollowUpView:
        """Snooze to the next `weekday` (Monday) at `at` in the follow-up owner's time zone."""
        with self._db.read() as session:
            owner = self._follow_up(session, ws, ref).owner_id
            rep = self._rep(session, ws, owner)
            tz = rep.tz if rep is not None else "UTC"
        until = next_weekday_at(self._now(), tz, weekday, at)
        return self.snooze_follow_up(ws, ref, by=by, until=until)
