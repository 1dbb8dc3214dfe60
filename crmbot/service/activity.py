"""Interactions, follow-ups and the read side: find, show, tasks, history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from crmbot.dates import parse_when
from crmbot.domain import (
    CardView,
    EventView,
    FollowUpCreated,
    FollowUpStatus,
    FollowUpView,
    InteractionKind,
    InteractionView,
    InvalidInput,
    RecordKind,
    Role,
    SearchHit,
    TaskList,
)
from crmbot.parsing import clean_text, parse_ref
from crmbot.service import present, privacy
from crmbot.service.base import optional_user
from crmbot.service.deals import DealService
from crmbot.service.private_search import visible_details
from crmbot.service.workspace import may_change
from crmbot.store import queries
from crmbot.store.import_events import events_for_record
from crmbot.store.models import Account, Contact, Deal, FollowUp, Interaction, Lead, Rep

SUMMARY_MAX = 3000
TITLE_MAX = 300
CARD_INTERACTIONS = 10
CARD_FOLLOW_UPS = 10
MAX_DURATION = 24 * 60
MAX_TASKS = 50


_INTERACTIONS = cast(Table, Interaction.__table__)
_NEW_INTERACTION = insert(_INTERACTIONS).returning(_INTERACTIONS.c.id)


def _links(session: Session, record: Any) -> dict[str, int | None]:
    """The related-record columns an interaction or follow-up on `record` gets."""
    links: dict[str, int | None] = {
        "lead_id": None,
        "contact_id": None,
        "account_id": None,
        "deal_id": None,
    }
    if isinstance(record, Lead):
        links["lead_id"] = record.id
    elif isinstance(record, Contact):
        links["contact_id"] = record.id
        links["account_id"] = record.account_id
    elif isinstance(record, Account):
        links["account_id"] = record.id
    elif isinstance(record, Deal):
        links["deal_id"] = record.id
        links["account_id"] = record.account_id
        links["contact_id"] = record.contact_id
        links["lead_id"] = record.lead_id
    return links


def _link_column(record: Any) -> Any:
    """The column that finds everything logged about `record`."""
    if isinstance(record, Lead):
        return "lead_id"
    if isinstance(record, Contact):
        return "contact_id"
    if isinstance(record, Account):
        return "account_id"
    return "deal_id"


class ActivityService(DealService):
    # --- interactions -------------------------------------------------------

    def log_interaction(
        self,
        ws: str,
        *,
        by: str,
        kind: InteractionKind | str,
        about: str | None,
        summary: str,
        occurred_at: datetime | None = None,
        outcome: str | None = None,
        duration_minutes: int | None = None,
        permalink: str | None = None,
        private: bool = False,
    ) -> InteractionView:
        """Record a call, email, meeting, note or Slack message about a record."""
        try:
            kind = InteractionKind(str(kind).strip().lower())
        except ValueError:
            names = ", ".join(k.value for k in InteractionKind)
            raise InvalidInput(
                "kind", f'"{kind}" is not a kind of interaction.', example=names
            ) from None
        text = clean_text(summary or "", field="notes", max_len=SUMMARY_MAX, multiline=True)
        result = clean_text(outcome or "", field="outcome", max_len=TEXT_OUTCOME) or None
        if duration_minutes is not None and not 0 <= duration_minutes <= MAX_DURATION:
            raise InvalidInput(
                "duration", "The duration is in minutes, at most a day.", example="30"
            )
        if permalink is not None and not permalink.startswith("https://"):
            raise InvalidInput("permalink", "A permalink is an https:// link.")
        now = self._now()
        when = occurred_at or now
        if when.tzinfo is None:
            raise InvalidInput("when", "The time needs a time zone.")
        if when > now + timedelta(days=1):
            raise InvalidInput(
                "when", "An interaction can't be logged in the future.", example="today"
            )
        with self._db.write() as session:
            self.ensure_rep_row(session, ws, by)
            record = queries.resolve(session, ws, about) if about else None
            if record is None and not text:
                raise InvalidInput(
                    "notes", "Say what happened, or pick a record.", example="call went well"
                )
            values: dict[str, Any] = {
                "workspace_id": ws,
                "kind": kind.value,
                "occurred_at": when,
                "logged_by": by,
                "summary": text,
                "outcome": result,
                "duration_minutes": duration_minutes,
                "permalink": permalink,
                "private": private,
                "created_at": now,
                **_links(session, record),
            }
            # One prebuilt INSERT, not the ORM's unit of work: an interaction is written once
            # and never changed in this transaction (a third of the Log submission's save).
            values["id"] = session.connection().execute(_NEW_INTERACTION, values).scalar_one()
            if isinstance(record, Lead) and record.status == "new":
                record.status = "working"
            if record is not None:
                record.updated_at = now
                # A lead's status and score follow its calls: its document is rebuilt. For the
                # others only the document's recency changes (a rebuild was ~40 % of the save).
                if isinstance(record, Lead) or not queries.touch_search_doc(session, record):
                    self._index(session, record)
            return present.interaction_views(session, [Interaction(**values)])[0]

    # --- follow-ups ---------------------------------------------------------

    def create_follow_up(
        self,
        ws: str,
        *,
        by: str,
        about: str | None,
        when: str | None = None,
        due_at: datetime | None = None,
        title: str = "",
        owner_id: str | None = None,
        channel_id: str | None = None,
        tz: str | None = None,
    ) -> FollowUpCreated:
        """Schedule a follow-up; `when` is natural language in the rep's time zone."""
        now = self._now()
        text = clean_text(title or "", field="text", max_len=TITLE_MAX)
        with self._db.write() as session:
            rep = self.ensure_rep(session, ws, by)
            owner = self.ensure_rep(session, ws, owner_id) if owner_id else rep
            if due_at is None:
                if not when:
                    raise InvalidInput("when", "When should I remind you?", example="tomorrow 9am")
                due_at = parse_when(when, tz or rep.tz, now).at
            elif due_at.tzinfo is None:
                raise InvalidInput("when", "The due time needs a time zone.")
            record = queries.resolve(session, ws, about) if about else None
            if owner.user_id != by:
                # Giving someone else work: the record's owner, or a manager or an admin.
                if record is not None:
                    self._require_can_change(session, ws, by, record, "give a follow-up on")
                else:
                    self._require_role(
                        session, ws, by, Role.MANAGER, "give follow-ups to someone else"
                    )
            if not text:
                text = f"Follow up with {record.name}" if record is not None else "Follow up"
            row = FollowUp(
                workspace_id=ws,
                number=queries.next_number(session, ws, RecordKind.FOLLOW_UP),
                title=text,
                due_at=due_at,
                remind_at=due_at,
                owner_id=owner.user_id,
                channel_id=channel_id,
                status=FollowUpStatus.OPEN.value,
                created_by=by,
                created_at=now,
                remind_attempts=0,
                **(_links(session, record) if record is not None else {}),
            )
            session.add(row)
            session.flush()
            queries.add_event(
                session,
                ws=ws,
                at=now,
                actor=by,
                action="create",
                record=row,
                before=None,
                after=queries.snapshot(row),
            )
            view = present.follow_up_views(session, [row], now)[0]
            return FollowUpCreated(follow_up=view, in_past=due_at <= now)

    def complete_follow_up(self, ws: str, ref: str, *, by: str) -> FollowUpView:
        """Mark a follow-up done."""
        return self._finish(ws, ref, by=by, status=FollowUpStatus.DONE)

    def cancel_follow_up(self, ws: str, ref: str, *, by: str) -> FollowUpView:
        """Cancel a follow-up."""
        return self._finish(ws, ref, by=by, status=FollowUpStatus.CANCELLED)

    def _finish(self, ws: str, ref: str, *, by: str, status: FollowUpStatus) -> FollowUpView:
        with self._db.write() as session:
            row = self._follow_up(session, ws, ref)
            self._require_can_change(
                session, ws, by, row, "complete" if status is FollowUpStatus.DONE else "cancel"
            )
            if row.status != FollowUpStatus.OPEN.value:
                raise InvalidInput("follow_up", f"{_ref(row)} is already {row.status}.")
            before = queries.snapshot(row)
            row.status = status.value
            row.completed_at = self._now()
            self._audit(session, ws, by, status.value, row, before)
            return present.follow_up_views(session, [row], self._now())[0]

    def snooze_follow_up(
        self,
        ws: str,
        ref: str,
        *,
        by: str,
        until: datetime | None = None,
        when: str | None = None,
        tz: str | None = None,
    ) -> FollowUpView:
        """Push a follow-up's reminder (and due time) to later."""
        now = self._now()
        with self._db.write() as session:
            row = self._follow_up(session, ws, ref)
            self._require_can_change(session, ws, by, row, "snooze")
            if row.status != FollowUpStatus.OPEN.value:
                raise InvalidInput("follow_up", f"{_ref(row)} is already {row.status}.")
            if until is None:
                if not when:
                    raise InvalidInput("when", "Snooze until when?", example="in 1 hour")
                until = parse_when(when, tz or self.ensure_rep(session, ws, by).tz, now).at
            if until <= now:
                raise InvalidInput(
                    "when", "Snooze to a time in the future.", example="tomorrow 9am"
                )
            before = queries.snapshot(row)
            row.due_at = until
            row.remind_at = until
            row.last_reminded_at = None
            self._audit(session, ws, by, "snooze", row, before)
            return present.follow_up_views(session, [row], now)[0]

    def _follow_up(self, session: Session, ws: str, ref: str) -> FollowUp:
        parsed = parse_ref(ref)
        if parsed is None or parsed.kind is not RecordKind.FOLLOW_UP:
            raise RecordNotFoundHint(ref)
        row = queries.by_ref(session, ws, parsed)
        assert isinstance(row, FollowUp)
        return row

    def tasks(
        self,
        ws: str,
        *,
        owner_id: str | None = None,
        overdue_only: bool = False,
        limit: int = MAX_TASKS,
    ) -> TaskList:
        """Open follow-ups, overdue first (everyone's when no owner is given)."""
        owner_id = optional_user(owner_id)
        now = self._now()
        with self._db.read() as session:
            base = select(FollowUp).where(
                FollowUp.workspace_id == ws, FollowUp.status == FollowUpStatus.OPEN.value
            )
            if owner_id:
                base = base.where(FollowUp.owner_id == owner_id)
            overdue = list(
                session.scalars(
                    base.where(FollowUp.due_at <= now).order_by(FollowUp.due_at).limit(limit)
                )
            )
            upcoming: list[FollowUp] = []
            if not overdue_only:
                upcoming = list(
                    session.scalars(
                        base.where(FollowUp.due_at > now).order_by(FollowUp.due_at).limit(limit)
                    )
                )
            views = present.follow_up_views(session, overdue + upcoming, now)
            return TaskList(
                owner_id=owner_id,
                overdue=tuple(views[: len(overdue)]),
                upcoming=tuple(views[len(overdue) :]),
            )

    # --- read side ----------------------------------------------------------

    def find(
        self, ws: str, query: str, *, limit: int = 20, by: str | None = None
    ) -> tuple[SearchHit, ...]:
        """Search leads, contacts, accounts and deals by name, company, email, phone, domain.

        As `by` may see them (service/privacy.py); None: the operator, everything."""
        term = clean_text(query or "", field="query", max_len=200)
        if not term:
            raise InvalidInput("query", "What should I look for?", example="/crm find acme")
        with self._db.search() as session:
            docs = queries.search(session, ws, term, limit=min(limit, 20))
            who = privacy.viewer(session, ws, by)
            details = visible_details(
                session,
                who,
                term,
                [(RecordKind(d.kind), d.record_id, d.owner_id, d.detail) for d in docs],
            )
            return tuple(
                SearchHit(
                    ref=d.ref,
                    kind=RecordKind(d.kind),
                    name=d.name,
                    detail=detail,
                    owner_id=d.owner_id,
                    updated_at=d.updated_at,
                )
                for d, detail in zip(docs, details, strict=True)
                if detail is not None
            )

    def show(self, ws: str, ref: str, *, by: str | None = None) -> CardView:
        """A record's card: fields, last interactions, open follow-ups.

        As `by` may see it (private notes and restricted fields redacted); None: everything."""
        now = self._now()
        with self._db.read() as session:
            who = privacy.viewer(session, ws, by)
            record = queries.resolve(session, ws, ref)
            column = _link_column(record)
            interactions = list(
                session.scalars(
                    select(Interaction)
                    .where(
                        Interaction.workspace_id == ws, getattr(Interaction, column) == record.id
                    )
                    .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
                    .limit(CARD_INTERACTIONS)
                )
            )
            follow_ups = list(
                session.scalars(
                    select(FollowUp)
                    .where(
                        FollowUp.workspace_id == ws,
                        getattr(FollowUp, column) == record.id,
                        FollowUp.status == FollowUpStatus.OPEN.value,
                    )
                    .order_by(FollowUp.due_at)
                    .limit(CARD_FOLLOW_UPS)
                )
            )
            return CardView(
                record=privacy.redact_record(present.record_view(session, record), who),
                interactions=tuple(present.interaction_views(session, interactions, who)),
                follow_ups=tuple(present.follow_up_views(session, follow_ups, now)),
            )

    def history(
        self, ws: str, ref: str, *, limit: int = 50, by: str | None = None
    ) -> tuple[EventView, ...]:
        """A record's audit trail, newest first (restricted values hidden from `by`)."""
        with self._db.read() as session:
            who = privacy.viewer(session, ws, by)
            parsed = parse_ref(ref)
            if parsed is not None:
                record = queries.by_ref(session, ws, parsed, with_deleted=True)
            else:
                record = queries.resolve(session, ws, ref)
            kind = queries.kind_of(record)
            events = events_for_record(session, ws, kind, record.id, limit)
            hidden = who.hidden_fields(kind, getattr(record, "owner_id", None))
            return tuple(
                EventView(
                    at=e.at,
                    actor=e.actor,
                    action=e.action,
                    ref=e.ref,
                    before=privacy.redact_values(e.before, hidden),
                    after=privacy.redact_values(e.after, hidden),
                )
                for e in events
            )

    def can_act_on(self, ws: str, user_id: str, owner_id: str | None) -> bool:
        """Whether a user may change a record owned by `owner_id` (owner, manager, admin).

        The same rule as `_require_can_change`, for surfaces deciding which buttons to show.
        """
        with self._db.read() as session:
            found = {
                r.user_id: r
                for r in session.scalars(
                    select(Rep).where(
                        Rep.workspace_id == ws, Rep.user_id.in_({user_id, owner_id or user_id})
                    )
                )
            }
            rep, owner = found.get(user_id), found.get(owner_id or "")
            role = Role(rep.role) if rep else Role.REP
            team = rep.team if rep else None
            return may_change(role, user_id, team, owner_id, owner.team if owner else None)


TEXT_OUTCOME = 200


def _ref(row: FollowUp) -> str:
    return queries.ref_of(RecordKind.FOLLOW_UP, row.number)


class RecordNotFoundHint(InvalidInput):
    """A follow-up was named by something that isn't a T- reference."""

    def __init__(self, text: str) -> None:
        super().__init__("follow_up", f'"{text}" is not a follow-up reference.', example="T-5")
