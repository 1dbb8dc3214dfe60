"""Frozen views for managers: pipeline, period report, audit trail, undo, segments, scores.

Plain values only (like crmbot.domain's views), so rendering and charting cannot lazy-load.
Money stays per currency everywhere: a tuple of Money, one per currency, never summed across.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from crmbot.domain import InteractionKind, Money, RecordKind, UserId

CENT = Decimal("0.01")


def percent(part: int, whole: int) -> Decimal | None:
    """part / whole as a percentage with one decimal, or None when whole is 0."""
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


# --- pipeline ----------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    """One open stage: what sits in it now and how long deals used to stay."""

    stage: str
    probability: int
    rotting_days: int
    count: int
    amounts: tuple[Money, ...]
    weighted: tuple[Money, ...]
    avg_days: Decimal | None  # mean length of finished stints in this stage, in days
    stints: int  # how many finished stints that mean is over
    stale: int


@dataclass(frozen=True)
class ForecastMonth:
    """Open deals expected to close in one calendar month."""

    month: date  # the first day of the month
    count: int
    amounts: tuple[Money, ...]
    weighted: tuple[Money, ...]


@dataclass(frozen=True)
class StaleDeal:
    ref: str
    name: str
    stage: str
    owner_id: UserId | None
    amount: Money | None
    idle_days: int
    rotting_days: int


@dataclass(frozen=True)
class WinRate:
    """Deals closed in the last `days` days."""

    days: int
    won: int
    lost: int
    won_amounts: tuple[Money, ...]

    @property
    def rate(self) -> Decimal | None:
        return percent(self.won, self.won + self.lost)


@dataclass(frozen=True)
class OwnerRow:
    """One owner's open pipeline."""

    owner_id: UserId | None
    name: str
    count: int
    amounts: tuple[Money, ...]
    weighted: tuple[Money, ...]


@dataclass(frozen=True)
class PipelineReport:
    owner_id: UserId | None
    team: bool
    as_of: datetime
    today: date
    stages: tuple[StageRow, ...]
    totals: tuple[Money, ...]
    weighted_totals: tuple[Money, ...]
    forecast: tuple[ForecastMonth, ...]  # this quarter's and next quarter's months
    undated: int  # open deals with no expected close date
    slipped: int  # open deals whose expected close date has passed
    win_rate: WinRate
    stale: tuple[StaleDeal, ...]  # the longest idle first, at most STALE_SHOWN
    stale_count: int
    owners: tuple[OwnerRow, ...]  # per owner, filled for the team view
    hidden_amounts: int = 0  # open deals whose restricted amounts this viewer may not see

    @property
    def open_count(self) -> int:
        return sum(row.count for row in self.stages)

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(m.currency for m in self.totals)


# --- period report -------------------------------------------------------------


@dataclass(frozen=True)
class Counted:
    """A number in this period and in the one before."""

    now: int
    before: int

    @property
    def change(self) -> int:
        return self.now - self.before

    @property
    def change_percent(self) -> Decimal | None:
        if self.before == 0:
            return None
        return (Decimal(self.change) * 100 / self.before).quantize(Decimal("1"), ROUND_HALF_UP)


@dataclass(frozen=True)
class RepActivity:
    user_id: UserId
    name: str
    by_kind: tuple[tuple[InteractionKind, int], ...]  # this period, every kind, fixed order
    interactions: Counted
    won: int
    lost: int
    overdue: int


@dataclass(frozen=True)
class LostReason:
    reason: str
    count: int


@dataclass(frozen=True)
class ModelInfo:
    """The learned lead score of a workspace and how well it did on held-out leads."""

    trained_at: datetime
    samples: int  # converted + disqualified leads it learned from (train + held out)
    held_out: int
    accuracy: Decimal  # percent of held-out leads it classed right
    rule_accuracy: Decimal  # the rule-based score on the same leads, for comparison
    auc: Decimal  # 0..1
    rule_auc: Decimal
    active: bool  # whether scores come from it (it beat the rules on held-out leads)


@dataclass(frozen=True)
class ActivityReport:
    period: str  # week | month | quarter
    start: datetime
    end: datetime
    previous_start: datetime
    owner_id: UserId | None
    interactions: Counted
    by_kind: tuple[tuple[InteractionKind, Counted], ...]
    reps: tuple[RepActivity, ...]
    leads_created: Counted
    leads_qualified: Counted
    leads_converted: Counted
    deals_won: Counted
    deals_lost: Counted
    won_amounts: tuple[Money, ...]
    previous_won_amounts: tuple[Money, ...]
    lost_reasons: tuple[LostReason, ...]
    overdue: int  # open follow-ups past due right now
    model: ModelInfo | None
    hidden_amounts: int = 0  # won deals whose restricted amounts this viewer may not see

    @property
    def conversion(self) -> Decimal | None:
        """Leads converted in the period per lead created in it, in percent."""
        return percent(self.leads_converted.now, self.leads_created.now)

    @property
    def previous_conversion(self) -> Decimal | None:
        return percent(self.leads_converted.before, self.leads_created.before)


# --- audit trail and undo ---------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field's change, as people read it (stage names, references, dates)."""

    field: str
    before: str | None
    after: str | None
    is_user: bool = False  # values are Slack user ids (render as mentions)


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    actor: UserId
    action: str
    changes: tuple[FieldChange, ...]
    undoes: str | None = None  # for an undo: the action it reverted


@dataclass(frozen=True)
class RecordHistory:
    ref: str
    name: str
    entries: tuple[HistoryEntry, ...]


@dataclass(frozen=True)
class Undone:
    """What `/crm undo` reverted: `changes` go from the undone value back to the earlier one."""

    ref: str
    name: str
    kind: RecordKind
    action: str
    at: datetime
    changes: tuple[FieldChange, ...]


# --- segments and scores ------------------------------------------------------------


@dataclass(frozen=True)
class SegmentView:
    name: str
    text: str
    filters: tuple[tuple[str, str], ...]
    owner_id: UserId | None
    created_by: UserId

    @property
    def query(self) -> str:
        """Text and filters as typed (the owner filter is shown apart, as a mention)."""
        parts = [self.text, *(f"{k}:{v}" for k, v in self.filters)]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class FoundRecord:
    ref: str
    kind: RecordKind
    name: str
    detail: str
    owner_id: UserId | None
    score: int | None  # leads only


@dataclass(frozen=True)
class FindResult:
    query: str  # the text and filters searched, as the person could retype them
    owner_id: UserId | None  # the owner: filter, if any
    hits: tuple[FoundRecord, ...]
    more: bool  # more records matched than are shown
    segment: str | None = None  # the saved segment used
    saved: str | None = None  # the name the search was just saved under
    note: str | None = None


@dataclass(frozen=True)
class ScoreReason:
    points: int
    reason: str


@dataclass(frozen=True)
class LeadScore:
    ref: str
    score: int
    method: str  # "rules" or "learned"
    reasons: tuple[ScoreReason, ...]
    rule_score: int
    model: ModelInfo | None
