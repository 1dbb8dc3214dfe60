"""Who gets a new lead: territory rules first, then a fair round-robin among available reps.

The round-robin keeps, per pool, the rep who got the last lead; the next lead goes to the
first available rep after them in user-id order. The pointer row is locked while it moves
(`SELECT … FOR UPDATE` on PostgreSQL; SQLite write transactions start with BEGIN IMMEDIATE),
so concurrent intakes never hand out the same turn twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crmbot.domain import FollowUpStatus, InvalidInput, RecordKind, RepView, Role
from crmbot.parsing import clean_text, fold
from crmbot.service import present
from crmbot.service.base import require_user
from crmbot.service.duplicates import DuplicateService
from crmbot.service.records import Assigned
from crmbot.service.workspace import rep_view
from crmbot.store import queries
from crmbot.store.models import (
    AssignmentPointer,
    FollowUp,
    Lead,
    LeadAssignment,
    Rep,
    TerritoryRule,
)

TEAM_POOL = ""  # the pool of every available rep
TERRITORY_FIELDS = ("country", "region", "industry")  # checked in this order
ROUND_ROBIN = "round-robin"
MAX_RULE_REPS = 50


@dataclass(frozen=True)
class TerritoryRuleView:
    field: str
    value: str
    reps: tuple[str, ...]


@dataclass(frozen=True)
class AssignmentEntry:
    lead_ref: str
    owner_id: str | None
    rule: str
    at: datetime


@dataclass(frozen=True)
class Choice:
    """The owner picked for a lead and the rule that picked them."""

    owner_id: str | None
    rule: str


def territory_field(field: str) -> str:
    """A territory field name, checked."""
    name = field.strip().lower()
    if name not in TERRITORY_FIELDS:
        raise InvalidInput(
            "field", f'"{field}" is not a territory field.', example=", ".join(TERRITORY_FIELDS)
        )
    return name


def territory_key(value: str) -> str:
    """What a territory value is matched by: folded, so "DE", "de" and " De " agree."""
    return fold(clean_text(value, field="value", max_len=100, required=True))


class AssignmentService(DuplicateService):
    # --- territory rules (admins) ---------------------------------------------

    def set_territory_rule(
        self, ws: str, field: str, value: str, reps: Sequence[str], *, by: str
    ) -> TerritoryRuleView:
        """Admins: leads whose `field` equals `value` go to these reps (round-robin among them)."""
        name = territory_field(field)
        label = clean_text(value, field="value", max_len=100, required=True)
        users = list(dict.fromkeys(require_user(r, "reps") for r in reps))
        if not users:
            raise InvalidInput("reps", "Name at least one rep for the rule.", example="@maria")
        if len(users) > MAX_RULE_REPS:
            raise InvalidInput("reps", f"A rule takes at most {MAX_RULE_REPS} reps.")
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "set territory rules")
            for user in users:
                self.ensure_rep_row(session, ws, user)
            rule = session.scalars(
                select(TerritoryRule).where(
                    TerritoryRule.workspace_id == ws,
                    TerritoryRule.field == name,
                    TerritoryRule.value == fold(label),
                )
            ).one_or_none()
            if rule is None:
                rule = TerritoryRule(
                    workspace_id=ws,
                    field=name,
                    value=fold(label),
                    created_by=by,
                    created_at=self._now(),
                )
                session.add(rule)
            rule.label, rule.reps = label, users
            return TerritoryRuleView(name, label, tuple(users))

    def delete_territory_rule(self, ws: str, field: str, value: str, *, by: str) -> bool:
        """Admins: drop a territory rule; False when there was none."""
        name, key = territory_field(field), territory_key(value)
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "change territory rules")
            rule = session.scalars(
                select(TerritoryRule).where(
                    TerritoryRule.workspace_id == ws,
                    TerritoryRule.field == name,
                    TerritoryRule.value == key,
                )
            ).one_or_none()
            if rule is None:
                return False
            session.delete(rule)
            session.execute(
                delete(AssignmentPointer).where(
                    AssignmentPointer.workspace_id == ws,
                    AssignmentPointer.pool == f"rule:{rule.id}",
                )
            )
            return True

    def territory_rules(self, ws: str) -> tuple[TerritoryRuleView, ...]:
        """Every territory rule, in the order they are tried."""
        with self._db.read() as session:
            rules = session.scalars(select(TerritoryRule).where(TerritoryRule.workspace_id == ws))
            order = {f: i for i, f in enumerate(TERRITORY_FIELDS)}
            return tuple(
                TerritoryRuleView(r.field, r.label, tuple(r.reps))
                for r in sorted(rules, key=lambda r: (order[r.field], r.value))
            )

    # --- availability ---------------------------------------------------------

    def set_away(self, ws: str, user_id: str, until: datetime | None, *, by: str) -> RepView:
        """Mark a rep away until a time (None: back now); reps do it for themselves,
        managers and admins for anyone. Away reps get no round-robin leads."""
        user_id = require_user(user_id)
        if until is not None and until.tzinfo is None:
            raise InvalidInput("until", "The time needs a time zone.")
        with self._db.write() as session:
            if user_id != by:
                self._require_role(session, ws, by, Role.MANAGER, "mark other reps away")
            rep = self.ensure_rep(session, ws, user_id)
            rep.away_until = until if until is None or until > self._now() else None
            return rep_view(rep)

    def available_reps(self, ws: str) -> tuple[str, ...]:
        """The reps the round-robin hands leads to now, in turn order."""
        with self._db.read() as session:
            return tuple(self._available(session, ws))

    def _available(
        self, session: Session, ws: str, among: Sequence[str] | None = None
    ) -> list[str]:
        stmt = select(Rep.user_id).where(
            Rep.workspace_id == ws,
            Rep.active.is_(True),
            or_(Rep.away_until.is_(None), Rep.away_until <= self._now()),
        )
        if among is not None:
            stmt = stmt.where(Rep.user_id.in_(list(among)))
        return sorted(session.scalars(stmt))

    # --- choosing an owner ----------------------------------------------------

    def _lock_pool(self, session: Session, ws: str, pool: str) -> AssignmentPointer:
        """The pool's pointer row, created if new and locked for this transaction."""
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(AssignmentPointer)
            .values(workspace_id=ws, pool=pool, last_user_id=None, updated_at=None)
            .on_conflict_do_nothing()
        )
        pointer = session.scalars(
            select(AssignmentPointer)
            .where(AssignmentPointer.workspace_id == ws, AssignmentPointer.pool == pool)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        return pointer

    def _next_turn(self, session: Session, ws: str, pool: str, reps: Sequence[str]) -> str:
        """The rep after the pool's last one (wrapping around), and move the pointer there."""
        pointer = self._lock_pool(session, ws, pool)
        last = pointer.last_user_id or ""
        chosen = next((r for r in reps if r > last), reps[0])
        pointer.last_user_id, pointer.updated_at = chosen, self._now()
        return chosen

    def _choose_owner(self, session: Session, ws: str, facts: dict[str, str]) -> Choice:
        """Territory rules first (country, then region, then industry), else round-robin.

        The caller holds the team pool's lock already (intakes take it first, always in the
        same order, so two intakes can't deadlock on pools)."""
        rules = {
            (r.field, r.value): r
            for r in session.scalars(select(TerritoryRule).where(TerritoryRule.workspace_id == ws))
        }
        skipped = ""
        for field in TERRITORY_FIELDS:
            value = facts.get(field)
            rule = rules.get((field, fold(value))) if value else None
            if rule is None:
                continue
            reps = self._available(session, ws, rule.reps)
            if reps:
                owner = self._next_turn(session, ws, f"rule:{rule.id}", reps)
                return Choice(owner, f"territory: {field} = {rule.label}")
            skipped = f" (territory {field} = {rule.label} has nobody available)"
        reps = self._available(session, ws)
        if not reps:
            return Choice(None, "unassigned: no available reps" + skipped)
        return Choice(self._next_turn(session, ws, TEAM_POOL, reps), ROUND_ROBIN + skipped)

    def _log_assignment(
        self, session: Session, ws: str, lead: Lead, owner: str | None, rule: str
    ) -> None:
        session.flush()
        session.add(
            LeadAssignment(
                workspace_id=ws, lead_id=lead.id, owner_id=owner, rule=rule[:200], at=self._now()
            )
        )

    def assignment_log(self, ws: str, *, limit: int = 50) -> tuple[AssignmentEntry, ...]:
        """The latest lead assignments with the rule that made each, newest first."""
        with self._db.read() as session:
            rows = session.execute(
                select(LeadAssignment, Lead.number)
                .join(Lead, Lead.id == LeadAssignment.lead_id)
                .where(LeadAssignment.workspace_id == ws)
                .order_by(LeadAssignment.at.desc(), LeadAssignment.id.desc())
                .limit(limit)
            ).all()
            return tuple(
                AssignmentEntry(
                    queries.ref_of(RecordKind.LEAD, number), row.owner_id, row.rule, row.at
                )
                for row, number in rows
            )

    # --- claiming -------------------------------------------------------------

    def claim_lead(self, ws: str, ref: str, *, by: str) -> Assigned:
        """Take a lead (and its open follow-ups) as your own: the intake channel's Claim."""
        with self._db.write() as session:
            self.ensure_rep_row(session, ws, by)
            lead = queries.resolve(session, ws, ref, kinds=(RecordKind.LEAD,))
            assert isinstance(lead, Lead)
            previous = lead.owner_id
            if previous != by:
                before = queries.snapshot(lead)
                lead.owner_id, lead.updated_at = by, self._now()
                queries.touch_search_owner(session, ws, RecordKind.LEAD, lead.id, by)
                self._audit(session, ws, by, "assign", lead, before)
                for task in session.scalars(
                    select(FollowUp).where(
                        FollowUp.workspace_id == ws,
                        FollowUp.lead_id == lead.id,
                        FollowUp.status == FollowUpStatus.OPEN.value,
                    )
                ):
                    if task.owner_id == previous:
                        task_before = queries.snapshot(task)
                        task.owner_id = by
                        self._audit(session, ws, by, "assign", task, task_before)
                self._log_assignment(session, ws, lead, by, "claimed")
            view = present.lead_view(lead, session)
            return Assigned(view, view.ref, lead.name, previous, by)
