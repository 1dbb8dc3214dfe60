"""SQLAlchemy 2 models. Every row carries its workspace; times are aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every engine (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT ids.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy's declared hook
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


def _ws() -> Mapped[str]:
    return mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=False)


class Workspace(Base):
    __tablename__ = "workspace"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    reminder_channel: Mapped[str | None] = mapped_column(String(32))
    manager_channel: Mapped[str | None] = mapped_column(String(32))
    intake_channel: Mapped[str | None] = mapped_column(String(32))
    digest_time: Mapped[str] = mapped_column(String(5), default="09:00")
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class RefCounter(Base):
    """The last number handed out per workspace and record kind."""

    __tablename__ = "ref_counter"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Rep(Base):
    __tablename__ = "rep"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    user_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="rep")
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    territory: Mapped[str | None] = mapped_column(String(100))
    # The sales team the rep belongs to; a manager with a team acts on that team's records.
    team: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    refreshed_at: Mapped[datetime | None]
    # Round-robin intake skips a rep while this lies in the future (holidays, sick days).
    away_until: Mapped[datetime | None]
    # The rep's own reminder choices (morning digest on/off, time, days); None: the defaults.
    preferences: Mapped[dict[str, Any] | None]


class _Record:
    """Columns shared by leads, contacts, accounts and deals."""

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class Account(_Record, Base):
    __tablename__ = "account"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_account_owner", "workspace_id", "owner_id"),
        Index("ix_account_domain", "workspace_id", "domain"),
        Index("ix_account_industry", "workspace_id", "industry"),  # find filters
        Index("ix_account_region", "workspace_id", "region"),
    )

    workspace_id: Mapped[str] = _ws()
    domain: Mapped[str | None] = mapped_column(String(253))
    industry: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    region: Mapped[str | None] = mapped_column(String(100))


class Contact(_Record, Base):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_contact_owner", "workspace_id", "owner_id"),
        Index("ix_contact_email", "workspace_id", "email"),
    )

    workspace_id: Mapped[str] = _ws()
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(String(200))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    source: Mapped[str | None] = mapped_column(String(100))


class Lead(_Record, Base):
    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_lead_owner", "workspace_id", "owner_id", "status"),
        Index("ix_lead_email", "workspace_id", "email"),
        Index("ix_lead_score", "workspace_id", "status", "score"),  # find sort:score
        Index("ix_lead_created", "workspace_id", "created_at"),  # reports
    )

    workspace_id: Mapped[str] = _ws()
    company: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="new")
    score: Mapped[int] = mapped_column(Integer, default=0)
    converted_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    converted_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    converted_deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    extra: Mapped[dict[str, Any] | None]


class Stage(Base):
    __tablename__ = "stage"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name"),
        Index("ix_stage_position", "workspace_id", "position"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    name: Mapped[str] = mapped_column(String(60))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8), default="open")
    rotting_days: Mapped[int] = mapped_column(Integer, default=14)


class Deal(_Record, Base):
    __tablename__ = "deal"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_deal_stage", "workspace_id", "status", "stage_id"),
        Index("ix_deal_owner", "workspace_id", "owner_id", "status"),
        Index("ix_deal_closed", "workspace_id", "status", "closed_at"),  # reports, win rate
    )

    workspace_id: Mapped[str] = _ws()
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", use_alter=True))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    probability: Mapped[int | None] = mapped_column(Integer)
    close_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="open")
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    closed_at: Mapped[datetime | None]


class StageHistory(Base):
    __tablename__ = "stage_history"
    __table_args__ = (
        Index("ix_stage_history_deal", "deal_id", "at"),
        # days in stage: the window query reads it in (deal, time) order, no table rows
        Index("ix_stage_history_workspace", "workspace_id", "deal_id", "at", "to_stage_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id", ondelete="CASCADE"))
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("stage.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("stage.id"))
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(32))


class Interaction(Base):
    __tablename__ = "interaction"
    __table_args__ = (
        Index("ix_interaction_lead", "lead_id", "occurred_at"),
        Index("ix_interaction_contact", "contact_id", "occurred_at"),
        Index("ix_interaction_account", "account_id", "occurred_at"),
        Index("ix_interaction_deal", "deal_id", "occurred_at"),
        Index("ix_interaction_logged_by", "workspace_id", "logged_by", "occurred_at"),
        # reports: interactions per rep and kind, read from the index alone
        Index("ix_interaction_workspace", "workspace_id", "occurred_at", "logged_by", "kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    logged_by: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(200))
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    permalink: Mapped[str | None] = mapped_column(String(500))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class FollowUp(Base):
    __tablename__ = "follow_up"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        # The reminder sweep reads open follow-ups by the time they next need a reminder.
        Index(
            "ix_follow_up_due",
            "remind_at",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_follow_up_owner", "workspace_id", "owner_id", "status", "due_at"),
        Index("ix_follow_up_lead", "lead_id"),
        Index("ix_follow_up_contact", "contact_id"),
        Index("ix_follow_up_account", "account_id"),
        Index("ix_follow_up_deal", "deal_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    due_at: Mapped[datetime]
    remind_at: Mapped[datetime]
    owner_id: Mapped[str] = mapped_column(String(32))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default="open")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    last_reminded_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(64))
    remind_attempts: Mapped[int] = mapped_column(Integer, default=0)


class Event(Base):
    """The audit trail: who changed what, when, before and after."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_record", "workspace_id", "kind", "record_id", "at"),
        Index("ix_event_actor", "workspace_id", "actor", "at"),
        Index("ix_event_action", "workspace_id", "kind", "action", "at"),  # lead flow
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]


class SearchDoc(Base):
    """One searchable row per lead, contact, account and deal (kept in sync on write).

    SQLite indexes `body` with an FTS5 trigram table (`search_fts`, made by the
    migration); PostgreSQL with pg_trgm GIN indexes.
    """

    __tablename__ = "search_doc"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "record_id"),
        Index("ix_search_doc_name", "workspace_id", "folded_name", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[int] = mapped_column(BigInteger)
    ref: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(300))
    folded_name: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(String(500), default="")
    owner_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Notification(Base):
    """The reminder log: one row per delivery, unique by its dedupe key, written before the post.

    A delivery is a digest message (`d:<claim token>:<workspace>:<target>`, its follow-ups in
    `detail`), a follow-up's escalation (`e:<follow-up id>:<due_at>`), a rep's morning digest
    (`m:<workspace>:<user>:<local day>`) or an admin notice (`n:<workspace>:<channel>:<error>`).
    A pending row is leased (`claim_token`, `claimed_until`) by the sweep posting it, or waits
    for a retry until `claimed_until`. `channel_id`/`message_ts` say where it went, so buttons
    on that message can redraw it.
    """

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_notification_message", "channel_id", "message_ts"),
        Index("ix_notification_follow_up", "follow_up_id"),
        Index("ix_notification_created", "created_at"),
        # Sweeps pick up pending deliveries whose lease ran out (crashes) or whose retry is due.
        Index(
            "ix_notification_pending",
            "claimed_until",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    follow_up_id: Mapped[int | None] = mapped_column(ForeignKey("follow_up.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]


# --- web-form intake and lead assignment (migration 0003) --------------------


class IntakeToken(Base):
    """A workspace's intake token, stored as its SHA-256 (the plaintext is shown once)."""

    __tablename__ = "intake_token"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class IntakeRequest(Base):
    """An intake's Idempotency-Key and the first answer given for it (replayed on retries)."""

    __tablename__ = "intake_request"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    answer: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AssignmentPointer(Base):
    """Round-robin state per pool: the rep who got the last lead (locked while advancing)."""

    __tablename__ = "assignment_pointer"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    pool: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_user_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime | None]


class TerritoryRule(Base):
    """Leads whose country, region or industry equals `value` go to these reps."""

    __tablename__ = "territory_rule"
    __table_args__ = (UniqueConstraint("workspace_id", "field", "value"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(100))
    reps: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class LeadAssignment(Base):
    """The assignment log: which rule gave which lead to whom."""

    __tablename__ = "lead_assignment"
    __table_args__ = (
        Index("ix_lead_assignment_lead", "lead_id"),
        Index("ix_lead_assignment_at", "workspace_id", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id", ondelete="CASCADE"))
    owner_id: Mapped[str | None] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class Segment(Base):
    """A saved `/crm find`: free text plus filters, reused as `/crm find @name`."""

    __tablename__ = "segment"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = _ws()
    name: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(String(300), default="")
    filters: Mapped[list[list[str]]] = mapped_column(JSON)
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScoreModel(Base):
    """A workspace's learned lead score: coefficients, and how it did on held-out leads."""

    __tablename__ = "score_model"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), primary_key=True
    )
    trained_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- request keys: retries and double submits (migration 0006) ---------------


class RequestKey(Base):
    """A Slack request claimed for processing, so a retry or a double submit runs once.

    Claimed with an upsert that only takes over an expired row of (workspace, key), so every
    process sharing the database agrees (crmbot/store/request_keys.py). No foreign key: the
    first request of a new workspace is claimed before its workspace row exists. `token`
    tells the claimer's row apart from a later claim of the same key; `done_at` is set once
    the request's answer was given.
    """

    __tablename__ = "request_key"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        Index("ix_request_key_expires", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(160))
    token: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
