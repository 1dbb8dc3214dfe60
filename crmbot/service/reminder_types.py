"""What the reminder service hands out: frozen digests, settings, and the calendar rules.

Nothing here knows Slack: a `Digest` says which channel (or whose DM) gets which items; the
scheduler decides how to post it and the handlers how to draw it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmbot.domain import FollowUpStatus, InvalidInput, Money

DEFAULT_DIGEST_TIME = "09:00"
DEFAULT_DIGEST_DAYS = (0, 1, 2, 3, 4)  # Monday to Friday
DEFAULT_ESCALATE_AFTER_DAYS = 3
REMIND_AGAIN_AFTER = timedelta(days=1)  # an overdue follow-up is re-reminded at most daily
MORNING_CATCH_UP = timedelta(hours=4)  # a clock that was down sends the digest this late
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class DeliveryKind(StrEnum):
    """Kinds of log rows (and, REMINDER / ESCALATION, of the items in a digest)."""

    DIGEST = "digest"  # one message of reminders (and escalations) for a channel or a DM
    REMINDER = "reminder"
    ESCALATION = "escalation"
    MORNING = "morning"
    NOTICE = "notice"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # claimed (or waiting for a retry): not known to be posted
    SENT = "sent"
    SKIPPED = "skipped"  # nothing to say any more (an empty morning digest, a stale retry)
    UNDELIVERABLE = "undeliverable"  # no channel and no DM would take it
    SPLIT = "split"  # handed on to one digest per owner (their DMs)


FINISHED = (
    DeliveryStatus.SENT,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.UNDELIVERABLE,
    DeliveryStatus.SPLIT,
)


@dataclass(frozen=True)
class Person:
    """A follow-up's owner as the database knows them."""

    user_id: str
    name: str
    active: bool
    tz: str
    refreshed_at: datetime | None = None


@dataclass(frozen=True)
class DigestItem:
    """One follow-up in a digest: a reminder, or an escalation to the managers."""

    kind: DeliveryKind  # REMINDER or ESCALATION
    follow_up_id: int
    ref: str
    title: str
    about_ref: str | None
    about_name: str | None
    owner: Person
    due_at: datetime
    status: FollowUpStatus
    origin_channel: str | None
    escalation_id: int | None = None  # the escalation's log row (its Acknowledge button)
    acknowledged_by: str | None = None

    def overdue(self, now: datetime) -> bool:
        """Still open and past its due time."""
        return self.status is FollowUpStatus.OPEN and self.due_at <= now


@dataclass(frozen=True)
class Digest:
    """One message: every item for one channel (or one owner's DM) in a sweep.

    `delivery_ids` are its log rows: the sweep's own, plus any earlier digest for the same
    target that is being retried in the same message.
    """

    delivery_ids: tuple[int, ...]
    workspace_id: str
    enterprise_id: str | None
    channel_id: str | None  # a channel; None: the DM of `dm_user`
    dm_user: str | None
    items: tuple[DigestItem, ...]
    reminder_channel: str | None  # the workspace's fallback channel
    admins: tuple[str, ...]
    now: datetime
    attempts: int = 0

    @property
    def reminders(self) -> tuple[DigestItem, ...]:
        return tuple(i for i in self.items if i.kind is DeliveryKind.REMINDER)

    @property
    def escalations(self) -> tuple[DigestItem, ...]:
        return tuple(i for i in self.items if i.kind is DeliveryKind.ESCALATION)

    @property
    def target(self) -> str:
        """Where it goes: the channel id, or the user id whose DM it is."""
        return self.channel_id or self.dm_user or ""


@dataclass(frozen=True)
class ReminderClaim:
    """Due reminders claimed by one sweep: its token, its lease, its digests."""

    token: str
    now: datetime
    lease_until: datetime
    digests: tuple[Digest, ...]

    @property
    def items(self) -> tuple[DigestItem, ...]:
        return tuple(item for digest in self.digests for item in digest.items)


@dataclass(frozen=True)
class DealLine:
    """A deal in the morning digest."""

    ref: str
    name: str
    stage: str
    amount: Money | None
    idle_days: int


@dataclass(frozen=True)
class TaskLine:
    """A follow-up in the morning digest."""

    ref: str
    title: str
    about_ref: str | None
    about_name: str | None
    due_at: datetime


@dataclass(frozen=True)
class MorningDigest:
    """A rep's morning DM: overdue, due today, deals without a next step, stale deals."""

    delivery_id: int
    workspace_id: str
    enterprise_id: str | None
    rep: Person
    local_day: date
    digest_time: str
    now: datetime
    overdue: tuple[TaskLine, ...]
    overdue_count: int
    due_today: tuple[TaskLine, ...]
    due_today_count: int
    no_next_step: tuple[DealLine, ...]
    no_next_step_count: int
    stale: tuple[DealLine, ...]
    stale_count: int
    attempts: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.overdue_count
            or self.due_today_count
            or self.no_next_step_count
            or self.stale_count
        )


@dataclass(frozen=True)
class ReminderSettings:
    """A workspace's reminder settings (columns of `workspace` and keys of its settings)."""

    workspace_id: str
    reminder_channel: str | None
    manager_channel: str | None
    digest_time: str
    digest_days: tuple[int, ...]
    escalate_after_days: int
    morning_digest: bool


@dataclass(frozen=True)
class DigestPreferences:
    """A rep's own morning-digest choices; None means "the workspace's"."""

    user_id: str
    enabled: bool | None
    digest_time: str | None
    digest_days: tuple[int, ...] | None


@dataclass(frozen=True)
class Acknowledged:
    """An escalation someone acknowledged, and the message it is on."""

    ref: str
    by: str
    channel_id: str | None
    message_ts: str | None


# --- calendar rules ------------------------------------------------------------


def zone(tz: str | None) -> ZoneInfo:
    """The zone by name; UTC when the name is unknown (Slack's names are IANA names)."""
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def parse_clock(text: str, field: str = "digest_time") -> str:
    """ "9:00" / "09:00" -> "09:00"; anything else is an InvalidInput."""
    match = _HHMM.match(text.strip())
    if not match:
        raise InvalidInput(field, f'"{text}" is not a time of day.', example="09:00")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def clock_time(text: str) -> time:
    """ "09:00" -> time(9, 0) (the default time when the stored text is malformed)."""
    match = _HHMM.match(text or "")
    if not match:
        match = _HHMM.match(DEFAULT_DIGEST_TIME)
        assert match is not None
    return time(int(match.group(1)), int(match.group(2)))


def parse_days(text: str) -> tuple[int, ...]:
    """ "mon-fri", "mon,wed,fri" or "weekdays" -> weekday numbers (Monday is 0)."""
    words = text.strip().lower()
    if words in ("weekdays", "working days"):
        return DEFAULT_DIGEST_DAYS
    if words in ("every day", "daily", "all"):
        return tuple(range(7))
    days: set[int] = set()
    for part in (p.strip() for p in words.split(",") if p.strip()):
        first, _, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first.strip()[:3])
            end = DAY_NAMES.index(last.strip()[:3]) if last else start
        except ValueError:
            raise InvalidInput(
                "digest_days", f'"{text}" is not a list of days.', example="mon-fri"
            ) from None
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
        days.update(span)
    if not days:
        raise InvalidInput("digest_days", "Name at least one day.", example="mon-fri")
    return tuple(sorted(days))


def days_text(days: Sequence[int]) -> str:
    """(0, 1, 2, 3, 4) -> "mon-fri"; otherwise a comma list."""
    ordered = sorted(set(days))
    if ordered and ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{DAY_NAMES[ordered[0]]}-{DAY_NAMES[ordered[-1]]}"
    return ",".join(DAY_NAMES[d] for d in ordered)


def wall_time(day: date, at: time, tz: str) -> datetime:
    """`at` on `day` in the zone, as aware UTC (a skipped time on a DST day moves forward)."""
    local = datetime.combine(day, at.replace(fold=0), tzinfo=zone(tz))
    return local.astimezone(ZoneInfo("UTC"))


def next_weekday_at(now: datetime, tz: str, weekday: int, at: time) -> datetime:
    """The next `weekday` (Monday 0) after today, at `at` local time, as aware UTC."""
    today = now.astimezone(zone(tz)).date()
    ahead = (weekday - today.weekday()) % 7 or 7
    return wall_time(today + timedelta(days=ahead), at, tz)


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """Back off 1, 2, 4 … minutes up to an hour, never sooner than Slack's Retry-After."""
    delay: timedelta = min(RETRY_FIRST * (2 ** min(attempts, 12)), RETRY_MAX)
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def overdue_text(due_at: datetime, now: datetime) -> str:
    """How long ago it fell due: "20 min", "5 h", "3 days"."""
    late = now - due_at
    if late < timedelta(hours=1):
        return f"{max(1, int(late.total_seconds() // 60))} min"
    if late < timedelta(days=2):
        return f"{int(late.total_seconds() // 3600)} h"
    return f"{late.days} days"
