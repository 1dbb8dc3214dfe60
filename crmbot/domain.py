"""Domain vocabulary: enums, the CrmError family and the frozen views the service returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

WorkspaceId = str
UserId = str


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"


class RecordKind(StrEnum):
    LEAD = "lead"
    CONTACT = "contact"
    ACCOUNT = "account"
    DEAL = "deal"
    FOLLOW_UP = "follow_up"

    @property
    def prefix(self) -> str:
        return REF_PREFIX[self]

    @property
    def label(self) -> str:
        return "follow-up" if self is RecordKind.FOLLOW_UP else self.value


REF_PREFIX: dict[RecordKind, str] = {
    RecordKind.LEAD: "L",
    RecordKind.CONTACT: "C",
    RecordKind.ACCOUNT: "A",
    RecordKind.DEAL: "D",
    RecordKind.FOLLOW_UP: "T",
}
KIND_BY_PREFIX: dict[str, RecordKind] = {v: k for k, v in REF_PREFIX.items()}


class LeadStatus(StrEnum):
    NEW = "new"
    WORKING = "working"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    CONVERTED = "converted"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class InteractionKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    MESSAGE = "message"


class FollowUpStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


# ---------------------------------------------------------------------------
# Errors: every one carries a message fit to show the person who caused it.


class CrmError(Exception):
    """Base of every error the service raises on purpose; `message` is user-facing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecordNotFound(CrmError):
    def __init__(self, what: str, *, did_you_mean: Sequence[str] = ()) -> None:
        self.what = what
        self.did_you_mean = tuple(did_you_mean)
        hint = f" Did you mean {' or '.join(self.did_you_mean)}?" if self.did_you_mean else ""
        super().__init__(f"I couldn't find {what}.{hint}")


@dataclass(frozen=True)
class Candidate:
    """One record offered when a name is ambiguous."""

    ref: str
    kind: RecordKind
    name: str
    detail: str = ""


class AmbiguousName(CrmError):
    def __init__(self, name: str, candidates: Sequence[Candidate]) -> None:
        self.name = name
        self.candidates = tuple(candidates)
        listed = ", ".join(f"{c.ref} {c.name}" for c in self.candidates)
        super().__init__(f'"{name}" matches several records: {listed}. Use a reference.')


class InvalidInput(CrmError):
    def __init__(self, field: str, problem: str, *, example: str = "") -> None:
        self.field = field
        self.problem = problem
        self.example = example
        tail = f" For example: {example}" if example else ""
        super().__init__(f"{problem}{tail}")


class PermissionDenied(CrmError):
    pass


class Conflict(CrmError):
    pass


# ---------------------------------------------------------------------------
# Views: what the service returns. Plain values only, so rendering can't lazy-load.


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.currency} {self.amount:,.2f}"


@dataclass(frozen=True)
class RepView:
    user_id: UserId
    name: str
    role: Role
    tz: str
    active: bool
    email: str | None = None
    territory: str | None = None
    refreshed_at: datetime | None = None
    team: str | None = None


@dataclass(frozen=True)
class AccountView:
    ref: str
    name: str
    domain: str | None
    industry: str | None
    size: int | None
    region: str | None
    owner_id: UserId | None
    created_at: datetime


@dataclass(frozen=True)
class ContactView:
    ref: str
    name: str
    email: str | None
    phone: str | None
    title: str | None
    account_ref: str | None
    account_name: str | None
    owner_id: UserId | None
    source: str | None
    created_at: datetime


@dataclass(frozen=True)
class LeadView:
    ref: str
    name: str
    company: str | None
    email: str | None
    phone: str | None
    source: str | None
    status: LeadStatus
    score: int
    owner_id: UserId | None
    created_at: datetime
    converted_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class DealView:
    ref: str
    name: str
    amount: Money | None
    stage: str
    probability: int
    close_date: date | None
    owner_id: UserId | None
    status: DealStatus
    account_ref: str | None
    account_name: str | None
    contact_ref: str | None
    contact_name: str | None
    lost_reason: str | None
    created_at: datetime


RecordView = LeadView | ContactView | AccountView | DealView


@dataclass(frozen=True)
class InteractionView:
    id: int
    kind: InteractionKind
    occurred_at: datetime
    logged_by: UserId
    summary: str
    outcome: str | None
    duration_minutes: int | None
    about: tuple[str, ...]
    permalink: str | None


@dataclass(frozen=True)
class FollowUpView:
    ref: str
    title: str
    due_at: datetime
    remind_at: datetime
    owner_id: UserId
    status: FollowUpStatus
    about_ref: str | None
    about_name: str | None
    channel_id: str | None
    overdue: bool


@dataclass(frozen=True)
class ConversionView:
    lead: LeadView
    contact: ContactView
    account: AccountView | None
    deal: DealView | None
    account_created: bool


@dataclass(frozen=True)
class CardView:
    """Everything `/crm show` needs for one record."""

    record: RecordView
    interactions: tuple[InteractionView, ...]
    follow_ups: tuple[FollowUpView, ...]
    related: tuple[Candidate, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    ref: str
    kind: RecordKind
    name: str
    detail: str
    owner_id: UserId | None
    updated_at: datetime


@dataclass(frozen=True)
class StageSummary:
    stage: str
    probability: int
    count: int
    amounts: tuple[Money, ...]
    weighted: tuple[Money, ...]


@dataclass(frozen=True)
class PipelineView:
    owner_id: UserId | None
    stages: tuple[StageSummary, ...]
    totals: tuple[Money, ...]
    weighted_totals: tuple[Money, ...]


@dataclass(frozen=True)
class FollowUpCreated:
    follow_up: FollowUpView
    in_past: bool


@dataclass(frozen=True)
class TaskList:
    owner_id: UserId | None
    overdue: tuple[FollowUpView, ...]
    upcoming: tuple[FollowUpView, ...]


@dataclass(frozen=True)
class EventView:
    at: datetime
    actor: UserId
    action: str
    ref: str
    before: dict[str, object] | None
    after: dict[str, object] | None


@dataclass(frozen=True)
class StageView:
    name: str
    position: int
    probability: int
    kind: StageKind
    rotting_days: int


@dataclass(frozen=True)
class Changes:
    """A before/after pair for audit events."""

    before: dict[str, object] = field(default_factory=dict)
    after: dict[str, object] = field(default_factory=dict)
