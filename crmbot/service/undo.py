"""The audit trail as people read it, and `/crm undo`: revert your own last change.

Undo reads the actor's newest event in the workspace. It skips undo events and the events
they reverted, so a second undo goes one change further back. Only changes whose `before`
values restore the record exactly are reversible; a created record is soft-deleted (a
follow-up cancelled). It refuses when anyone else changed the record since.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Numeric, select
from sqlalchemy.orm import Session

from crmbot.domain import Conflict, CrmError, FollowUpStatus, RecordKind, RecordNotFound
from crmbot.parsing import parse_ref
from crmbot.reporting import FieldChange, HistoryEntry, RecordHistory, Undone
from crmbot.service import privacy
from crmbot.service.activity import ActivityService
from crmbot.service.base import require_user
from crmbot.store import queries
from crmbot.store.import_events import events_for_record
from crmbot.store.models import Base, Deal, Event, Rep, Stage, StageHistory, UtcDateTime

UNDO_WINDOW = timedelta(minutes=15)
UNDO_SCAN = 50  # the actor's events looked at, newest first
UNDOES = "_undoes"  # key in an undo event's `after`: the id of the event it reverted
REVERSIBLE = frozenset(
    {"update", "assign", "move", "won", "lost", "snooze", "done", "cancelled", "delete", "restore"}
)
# Reminder bookkeeping moves on its own (the sweep); it never blocks an undo.
# The lead score is derived (rescored on every write), so it neither blocks nor is restored.
BOOKKEEPING = frozenset(
    {"last_reminded_at", "claimed_until", "claim_token", "remind_attempts", "remind_at", "score"}
)
LABELS = {
    "stage_id": "stage",
    "owner_id": "owner",
    "account_id": "account",
    "contact_id": "contact",
    "lead_id": "lead",
    "deal_id": "deal",
    "close_date": "close date",
    "closed_at": "closed",
    "lost_reason": "lost reason",
    "deleted_at": "deleted",
    "due_at": "due",
    "completed_at": "completed",
    "converted_contact_id": "became contact",
    "converted_account_id": "became account",
    "converted_deal_id": "became deal",
}
HIDDEN = BOOKKEEPING | {"extra", "channel_id", "created_by"}
VERBS = {
    "create": "creation",
    "update": "update",
    "assign": "reassignment",
    "move": "move",
    "won": "win",
    "lost": "loss",
    "snooze": "snooze",
    "done": "completion",
    "cancelled": "cancellation",
    "delete": "deletion",
    "restore": "restore",
    "convert": "conversion",
}


class NothingToUndo(CrmError):
    pass


class UndoService(ActivityService):
    def record_history(
        self, ws: str, ref: str, *, limit: int = 40, by: str | None = None
    ) -> RecordHistory:
        """A record's audit trail, newest first, with stage names, references and dates;
        values of fields restricted from `by` read "hidden" (None: the operator sees all)."""
        with self._db.read() as session:
            who = privacy.viewer(session, ws, by)
            parsed = parse_ref(ref)
            if parsed is not None:
                record = queries.by_ref(session, ws, parsed, with_deleted=True)
            else:
                record = queries.resolve(session, ws, ref)
            kind = queries.kind_of(record)
            events = events_for_record(session, ws, kind, record.id, limit)
            names = _Names(session, ws)
            hidden = who.hidden_fields(kind, getattr(record, "owner_id", None))
            by_id = {e.id: e.action for e in events}
            entries = []
            for event in events:
                undoes = (event.after or {}).get(UNDOES)
                entries.append(
                    HistoryEntry(
                        at=event.at,
                        actor=event.actor,
                        action=event.action,
                        changes=names.changes(
                            privacy.redact_values(event.before, hidden),
                            privacy.redact_values(event.after, hidden),
                        ),
                        undoes=by_id.get(undoes, "change") if undoes is not None else None,
                    )
                )
            name = record.title if kind is RecordKind.FOLLOW_UP else record.name
            return RecordHistory(queries.ref_of(kind, record.number), name, tuple(entries))

    def undo(self, ws: str, *, by: str) -> Undone:
        """Revert the caller's own newest change in this workspace, if under 15 minutes old."""
        by = require_user(by)
        now = self._now()
        with self._db.write() as session:
            target = self._undo_target(session, ws, by, now)
            kind = RecordKind(target.kind)
            model = queries.MODEL[kind]
            record: Any = session.scalars(
                select(model)
                .where(model.id == target.record_id, model.workspace_id == ws)
                .with_for_update()
            ).one_or_none()
            if record is None:
                raise RecordNotFound(target.ref)
            self._check_untouched(session, ws, target, record)
            before = queries.snapshot(record)
            if target.action == "create":
                if kind is RecordKind.FOLLOW_UP:
                    record.status = FollowUpStatus.CANCELLED.value
                    record.completed_at = now
                else:
                    record.deleted_at = now
            else:
                for key, value in (target.before or {}).items():
                    if key != "score":
                        setattr(record, key, _from_json(model, key, value))
            if isinstance(record, Deal) and target.action in ("move", "won", "lost"):
                self._forget_move(session, record, target)
            if kind is not RecordKind.FOLLOW_UP:
                record.updated_at = now
                self._index(session, record)
            old, new = queries.diff(before, queries.snapshot(record))
            queries.add_event(
                session,
                ws=ws,
                at=now,
                actor=by,
                action="undo",
                record=record,
                before=old,
                after={**new, UNDOES: target.id},
            )
            name = record.title if kind is RecordKind.FOLLOW_UP else record.name
            return Undone(
                ref=target.ref,
                name=name,
                kind=kind,
                action=target.action,
                at=target.at,
                changes=_Names(session, ws).changes(old, new),
            )

    def _undo_target(self, session: Session, ws: str, by: str, now: datetime) -> Event:
        recent = session.scalars(
            select(Event)
            .where(Event.workspace_id == ws, Event.actor == by, Event.at >= now - UNDO_WINDOW)
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(UNDO_SCAN)
        )
        undone: set[int] = set()
        for event in recent:
            if event.action == "undo":
                undone.add(int((event.after or {}).get(UNDOES, 0)))
                continue
            if event.id in undone:
                continue
            if event.action == "create" or event.action in REVERSIBLE:
                return event
            raise NothingToUndo(
                f"Your last change was the {VERBS.get(event.action, event.action)} of "
                f"{event.ref}, and undo can't take that apart. Change it back by hand."
            )
        older = session.scalars(
            select(Event)
            .where(Event.workspace_id == ws, Event.actor == by, Event.at < now - UNDO_WINDOW)
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(1)
        ).first()
        if older is not None and older.action != "undo":
            minutes = int((now - older.at).total_seconds() // 60)
            raise NothingToUndo(
                f"Nothing to undo from the last 15 minutes. Your last change, the "
                f"{VERBS.get(older.action, older.action)} of {older.ref}, was {minutes} minutes "
                "ago; `/crm history` shows it."
            )
        raise NothingToUndo("You have no recent change to undo.")

    def _check_untouched(self, session: Session, ws: str, target: Event, record: Any) -> None:
        """Refuse when the record moved on since the change: newer events by anyone else,
        or fields that no longer hold what the change wrote."""
        later = session.scalars(
            select(Event)
            .where(
                Event.workspace_id == ws,
                Event.kind == target.kind,
                Event.record_id == target.record_id,
                Event.id > target.id,
            )
            .order_by(Event.id)
        ).all()
        undone = {int((e.after or {}).get(UNDOES, 0)) for e in later if e.action == "undo"}
        for event in later:
            if event.actor == target.actor and (event.action == "undo" or event.id in undone):
                continue
            who = session.scalar(
                select(Rep.name).where(Rep.workspace_id == ws, Rep.user_id == event.actor)
            )
            raise Conflict(
                f"{who or 'Someone else'} changed {target.ref} after you "
                f"({VERBS.get(event.action, event.action)}), so I won't undo over that. "
                f"`/crm history {target.ref}` shows what happened."
            )
        if target.action == "create":
            if getattr(record, "deleted_at", None) is not None:
                raise Conflict(f"{target.ref} is already deleted.")
            return
        if getattr(record, "deleted_at", None) is not None and target.action != "delete":
            raise Conflict(f"{target.ref} was deleted since; restore it first.")
        for key, value in (target.after or {}).items():
            if key in BOOKKEEPING:
                continue
            if queries.jsonable(getattr(record, key)) != value:
                label = LABELS.get(key, key)
                raise Conflict(f"{target.ref}'s {label} changed since, so I won't undo over that.")

    @staticmethod
    def _forget_move(session: Session, deal: Deal, target: Event) -> None:
        """Drop the stage-history row the undone move wrote, so stage timings stay true."""
        moved_to = (target.after or {}).get("stage_id")
        row = session.scalars(
            select(StageHistory)
            .where(StageHistory.deal_id == deal.id, StageHistory.to_stage_id == moved_to)
            .order_by(StageHistory.at.desc(), StageHistory.id.desc())
            .limit(1)
        ).first()
        if row is not None and row.by == target.actor:
            session.delete(row)


def _from_json(model: type[Any], key: str, value: Any) -> Any:
    """A snapshot value turned back into what the column holds."""
    if value is None:
        return None
    column_type = model.__table__.columns[key].type
    if isinstance(column_type, UtcDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if isinstance(column_type, Numeric):
        return Decimal(str(value))
    return value


class _Names:
    """Turns raw snapshot values into what people read: stage names, references, dates."""

    def __init__(self, session: Session, ws: str) -> None:
        self._session = session
        self._ws = ws
        self._stages: dict[int, str] | None = None

    def changes(
        self, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> tuple[FieldChange, ...]:
        if before is None or not after:  # a creation: nothing changed from something
            return ()
        return tuple(
            FieldChange(
                field=LABELS.get(key, key),
                before=self.value(key, before.get(key)),
                after=self.value(key, value),
                is_user=key == "owner_id",
            )
            for key, value in after.items()
            if key not in HIDDEN and not key.startswith("_")
        )

    def value(self, key: str, value: Any) -> str | None:
        if value is None:
            return "no" if key == "deleted_at" else None
        if key == "deleted_at":
            return "yes"
        if key == "stage_id":
            return self._stage(int(value))
        if key.endswith("_id") and key != "owner_id":
            return self._ref(key, int(value))
        if key.endswith("_at") and isinstance(value, str):
            try:
                return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
            except ValueError:
                return value
        return str(value)

    def _stage(self, stage_id: int) -> str:
        if self._stages is None:
            rows = self._session.execute(
                select(Stage.id, Stage.name).where(Stage.workspace_id == self._ws)
            )
            self._stages = {row.id: row.name for row in rows}
        return self._stages.get(stage_id, f"stage {stage_id}")

    def _ref(self, key: str, record_id: int) -> str:
        word = key.removeprefix("converted_").removesuffix("_id")
        try:
            kind = RecordKind(word)
        except ValueError:
            return str(record_id)
        model: type[Base] = queries.MODEL[kind]
        number = self._session.scalar(
            select(model.number).where(model.id == record_id)  # type: ignore[attr-defined]
        )
        return queries.ref_of(kind, number) if number is not None else f"{word} {record_id}"
