"""Web-form intake: validate, dedupe by email, assign, first follow-up — in one transaction.

`intake_lead` is what `POST /intake/lead` calls. The form is checked completely before the
transaction starts, so a bad body writes nothing; inside it, the team's round-robin pointer is
locked first, which also serialises intakes per workspace: two submissions with the same
email or the same Idempotency-Key can't both create a lead. Telling Slack happens after it,
in the caller, from the returned `IntakeOutcome`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmbot.domain import (
    CrmError,
    FollowUpStatus,
    FollowUpView,
    InteractionKind,
    InvalidInput,
    LeadStatus,
    LeadView,
    RecordKind,
    Role,
)
from crmbot.parsing import clean_text
from crmbot.service import present
from crmbot.service.assignment import TEAM_POOL, Choice
from crmbot.service.duplicates import records_with_email
from crmbot.service.intake_form import (
    IdempotencyKeyReused,
    IntakeForm,
    check_idempotency_key,
    read_intake,
)
from crmbot.service.intake_posts import IntakePost, IntakePostService, posts_of
from crmbot.store import queries
from crmbot.store.intake_queries import expire_idempotency_keys
from crmbot.store.models import (
    FollowUp,
    IntakeRequest,
    IntakeToken,
    Interaction,
    Lead,
    Rep,
    Workspace,
)
from crmbot.workhours import MAX_MINUTES, WorkingHours, add_working_minutes

INTAKE_ACTOR = "web-form"  # the actor of events and interactions the intake writes
DEFAULT_SLA_MINUTES = 60
# How long an Idempotency-Key replays its first answer. Form relays retry for minutes, some
# queues for days (a weekend); a week covers them and keeps the table small.
KEY_TTL = timedelta(days=7)
KEY_EXPIRY_BATCH = 1000  # keys deleted per transaction by the sweep
TOKEN_PREFIX = "crmi_"


class IntakeTokenInvalid(CrmError):
    """No workspace has this intake token."""


@dataclass(frozen=True)
class IntakeOutcome:
    """What the intake did: the HTTP answer, and what Slack should be told (unless replayed)."""

    status: int  # 201: a new lead; 200: an existing lead (same email) was updated
    answer: dict[str, Any]
    replayed: bool = False
    lead: LeadView | None = None
    follow_up: FollowUpView | None = None
    rule: str = ""
    message: str = ""
    channel_id: str | None = None
    facts: dict[str, str] = field(default_factory=dict)
    posts: tuple[IntakePost, ...] = ()  # the Slack posts queued for it (service/intake_posts)

    @property
    def created(self) -> bool:
        return self.status == 201


@dataclass(frozen=True)
class IntakeSettings:
    channel_id: str | None
    sla_minutes: int
    token_hint: str | None
    token_created_at: datetime | None
    token_created_by: str | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class IntakeService(IntakePostService):
    # --- the intake itself ----------------------------------------------------

    def intake_lead(
        self, ws: str, fields: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> IntakeOutcome:
        """Create (or update, by email) a lead from a web form, assign it and set its first
        follow-up; with an Idempotency-Key, a repeat gets the first answer again."""
        form = read_intake(fields)
        key = check_idempotency_key(idempotency_key)
        with self._db.write() as session:
            self._ensure_workspace(session, ws)
            self._lock_pool(session, ws, TEAM_POOL)
            if key is not None:
                done = session.get(IntakeRequest, (ws, key))
                if done is not None and done.created_at < self._now() - KEY_TTL:
                    session.delete(done)  # expired (not swept yet): the key is new again
                    session.flush()
                    done = None
                if done is not None:
                    if done.fingerprint != form.fingerprint:
                        raise IdempotencyKeyReused()
                    return IntakeOutcome(done.status, dict(done.answer), replayed=True)
            workspace = session.get(Workspace, ws)
            assert workspace is not None
            existing = (
                records_with_email(session, ws, form.email, (RecordKind.LEAD,))
                if form.email
                else []
            )
            choice: Choice | None
            if existing:
                lead = existing[0]
                assert isinstance(lead, Lead)
                choice = self._update_from_form(session, ws, lead, form)
            else:
                lead, choice = self._lead_from_form(session, ws, form)
            if choice is not None:
                self._log_assignment(session, ws, lead, choice.owner_id, choice.rule)
            task = self._first_follow_up(session, workspace, lead)
            self._log_form(session, ws, lead, form)
            lead_view = present.lead_view(lead, session)
            follow_up = present.follow_up_views(session, [task], self._now())[0] if task else None
            status = 200 if existing else 201
            answer = {
                "lead": lead_view.ref,
                "owner": lead.owner_id,
                "follow_up": follow_up.ref if follow_up else None,
            }
            if key is not None:
                session.add(
                    IntakeRequest(
                        workspace_id=ws,
                        key=key,
                        fingerprint=form.fingerprint,
                        status=status,
                        answer=answer,
                        created_at=self._now(),
                    )
                )
            outcome = IntakeOutcome(
                status,
                answer,
                lead=lead_view,
                follow_up=follow_up,
                rule=choice.rule if choice else "kept its owner",
                message=form.message,
                channel_id=workspace.intake_channel or workspace.reminder_channel,
                facts=form.facts(),
            )
            # Telling Slack, durably: the posts are queued in this same transaction.
            queued = self._queue_posts(
                session,
                ws,
                lead,
                task,
                channel_id=outcome.channel_id,
                detail={
                    "status": status,
                    "answer": answer,
                    "rule": outcome.rule,
                    "message": outcome.message,
                    "facts": outcome.facts,
                },
            )
            return replace(outcome, posts=posts_of(outcome, queued, ws))

    def expire_intake_keys(self, *, batches: int = 5, limit: int = KEY_EXPIRY_BATCH) -> int:
        """Delete Idempotency-Keys older than KEY_TTL: at most `batches` short transactions of
        `limit` keys each (the sweep calls this; a backlog goes over several sweeps)."""
        gone = 0
        for _ in range(batches):
            with self._db.write() as session:
                done = expire_idempotency_keys(session, before=self._now() - KEY_TTL, limit=limit)
            gone += done
            if done < limit:
                break
        return gone

    def _lead_from_form(self, session: Session, ws: str, form: IntakeForm) -> tuple[Lead, Choice]:
        choice = self._choose_owner(session, ws, form.facts())
        now = self._now()
        lead = Lead(
            workspace_id=ws,
            number=queries.next_number(session, ws, RecordKind.LEAD),
            name=form.name,
            company=form.company,
            email=form.email,
            phone=form.phone,
            source=form.source,
            owner_id=choice.owner_id,
            status=LeadStatus.NEW.value,
            score=0,
            created_at=now,
            updated_at=now,
            extra=form.extra or None,
        )
        session.add(lead)
        self._index(session, lead)
        queries.add_event(
            session,
            ws=ws,
            at=now,
            actor=INTAKE_ACTOR,
            action="create",
            record=lead,
            before=None,
            after=queries.snapshot(lead),
        )
        return lead, choice

    def _update_from_form(
        self, session: Session, ws: str, lead: Lead, form: IntakeForm
    ) -> Choice | None:
        """Newer non-empty details replace older ones; the source and owner stay, unless the
        owner can't take leads any more (left, deactivated): then the lead is assigned again."""
        before = queries.snapshot(lead)
        for name in ("name", "company", "phone"):
            value = getattr(form, name)
            if value:
                setattr(lead, name, value)
        if form.extra:
            lead.extra = {**(lead.extra or {}), **form.extra}
        choice = None
        owner = session.scalars(
            select(Rep).where(Rep.workspace_id == ws, Rep.user_id == lead.owner_id)
        ).one_or_none()
        if owner is None or not owner.active:
            choice = self._choose_owner(session, ws, form.facts())
            lead.owner_id = choice.owner_id
        lead.updated_at = self._now()
        self._index(session, lead)
        old, new = queries.diff(before, queries.snapshot(lead))
        if new:
            queries.add_event(
                session,
                ws=ws,
                at=self._now(),
                actor=INTAKE_ACTOR,
                action="update",
                record=lead,
                before=old,
                after=new,
            )
        return choice

    def _first_follow_up(
        self, session: Session, workspace: Workspace, lead: Lead
    ) -> FollowUp | None:
        """The lead's first open follow-up; made when there is none, due within the SLA."""
        if lead.owner_id is None:
            return None
        open_task = session.scalars(
            select(FollowUp)
            .where(
                FollowUp.workspace_id == workspace.id,
                FollowUp.lead_id == lead.id,
                FollowUp.status == FollowUpStatus.OPEN.value,
            )
            .order_by(FollowUp.due_at)
            .limit(1)
        ).first()
        if open_task is not None:
            return open_task
        owner = session.scalars(
            select(Rep).where(Rep.workspace_id == workspace.id, Rep.user_id == lead.owner_id)
        ).one_or_none()
        now = self._now()
        settings = workspace.settings or {}
        due = add_working_minutes(
            now,
            sla_minutes(settings),
            owner.tz if owner else "UTC",
            WorkingHours.from_settings(settings),
        )
        task = FollowUp(
            workspace_id=workspace.id,
            number=queries.next_number(session, workspace.id, RecordKind.FOLLOW_UP),
            title=clean_text(f"Reply to {lead.name} (web form)", field="title", max_len=500)[:300],
            due_at=due,
            remind_at=due,
            owner_id=lead.owner_id,
            lead_id=lead.id,
            channel_id=workspace.intake_channel,
            status=FollowUpStatus.OPEN.value,
            created_by=INTAKE_ACTOR,
            created_at=now,
            remind_attempts=0,
        )
        session.add(task)
        session.flush()
        queries.add_event(
            session,
            ws=workspace.id,
            at=now,
            actor=INTAKE_ACTOR,
            action="create",
            record=task,
            before=None,
            after=queries.snapshot(task),
        )
        return task

    def _log_form(self, session: Session, ws: str, lead: Lead, form: IntakeForm) -> None:
        """The submission itself is communication: it goes on the lead's activity."""
        session.add(
            Interaction(
                workspace_id=ws,
                kind=InteractionKind.NOTE.value,
                occurred_at=self._now(),
                logged_by=INTAKE_ACTOR,
                summary=form.message or "Sent the web form.",
                outcome="web form",
                lead_id=lead.id,
                private=False,
                created_at=self._now(),
            )
        )

    def workspace_ids(self) -> tuple[str, ...]:
        """Every workspace in the database (the CLI's `--team` default when there is one)."""
        with self._db.read() as session:
            return tuple(session.scalars(select(Workspace.id).order_by(Workspace.id)))

    # --- tokens and settings (admins) -----------------------------------------

    def rotate_intake_token(self, ws: str, *, by: str) -> str:
        """Admins: a new intake token for the workspace; the old one stops working at once.

        Only its SHA-256 is kept, so the plaintext returned here is shown once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "rotate the intake token")
            row = session.get(IntakeToken, ws)
            if row is None:
                row = IntakeToken(workspace_id=ws)
                session.add(row)
            row.token_hash, row.hint = hash_token(token), token[-4:]
            row.created_by, row.created_at = by, self._now()
        return token

    def workspace_for_intake_token(self, token: str) -> str:
        """The workspace whose intake token this is, or IntakeTokenInvalid."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise IntakeTokenInvalid("That intake token is not valid.")
        with self._db.read() as session:
            ws = session.scalars(
                select(IntakeToken.workspace_id).where(IntakeToken.token_hash == hash_token(token))
            ).one_or_none()
        if ws is None:
            raise IntakeTokenInvalid("That intake token is not valid.")
        return ws

    def intake_settings(self, ws: str) -> IntakeSettings:
        """The intake channel, the response SLA and which token is active (its last 4)."""
        with self._db.read() as session:
            workspace = session.get(Workspace, ws)
            token = session.get(IntakeToken, ws)
            return IntakeSettings(
                channel_id=workspace.intake_channel if workspace else None,
                sla_minutes=sla_minutes(workspace.settings if workspace else None),
                token_hint=token.hint if token else None,
                token_created_at=token.created_at if token else None,
                token_created_by=token.created_by if token else None,
            )

    def set_intake_channel(self, ws: str, channel_id: str | None, *, by: str) -> None:
        """Admins: the channel new web leads are announced in (None: the reminder channel)."""
        channel = (channel_id or "").strip() or None
        if channel is not None and (len(channel) > 32 or not channel.isalnum()):
            raise InvalidInput("channel", "That is not a Slack channel id.", example="C0123ABCD")
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "set the intake channel")
            workspace = session.get(Workspace, ws)
            assert workspace is not None
            workspace.intake_channel = channel

    def set_response_sla(self, ws: str, minutes: int, *, by: str) -> None:
        """Admins: how much working time a new web lead's first follow-up gets."""
        if not 0 < minutes <= MAX_MINUTES:
            raise InvalidInput("sla", f"The response time must be 1 to {MAX_MINUTES} minutes.")
        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "set the response time")
            workspace = session.get(Workspace, ws)
            assert workspace is not None
            workspace.settings = {**(workspace.settings or {}), "response_sla_minutes": minutes}


def sla_minutes(settings: Mapping[str, Any] | None) -> int:
    """The workspace's response SLA in working minutes (default one working hour)."""
    raw = (settings or {}).get("response_sla_minutes", DEFAULT_SLA_MINUTES)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return DEFAULT_SLA_MINUTES
    return value if 0 < value <= MAX_MINUTES else DEFAULT_SLA_MINUTES
