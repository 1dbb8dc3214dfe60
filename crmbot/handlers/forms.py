"""Modal state -> typed input or field errors: the inverse of modal_views.py, pure functions.

Slack validates required inputs and lengths in the client, but a submission is just an HTTP
request, so every shape is checked again here. Domain rules (does the record exist, may this
stage be used) stay in the service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from crmbot.dates import When, parse_when
from crmbot.domain import InteractionKind, InvalidInput, Role
from crmbot.handlers.modal_views import (
    AMOUNT_MAX,
    NAME_MAX,
    NOTES_MAX,
    OUTCOME_MAX,
    PRIVATE_OPTION,
    REASON_MAX,
    RESTRICTABLE_LABELS,
    STAGES_MAX,
    TEAM_MAX,
    TEXT_MAX,
    TITLE_MAX,
    WHEN_MAX,
    BlockId,
    clip,
    zone,
)
from crmbot.parsing import clean_text, fold, parse_email, parse_money, parse_phone, parse_ref
from crmbot.service.digests import require_channel
from crmbot.service.stages import StageLine, parse_stage_lines

T = TypeVar("T")
ERROR_MAX = 300
MAX_DURATION = 24 * 60
# ISO 4217's "no currency": parse_money hands it back when the amount named none, which
# lets the workspace's default currency apply in the service.
_NO_CURRENCY = "XXX"
_CHANNEL_RE = re.compile(r"[CDG][A-Z0-9]{1,31}")
_USER_RE = re.compile(r"[UW][A-Z0-9]{1,31}")
_STAGE_MAX = 100


@dataclass(frozen=True)
class FieldErrors:
    """What to show under which input: `ack(response_action="errors", errors=by_block)`."""

    by_block: dict[str, str]


@dataclass(frozen=True)
class Metadata:
    """What a modal carries in private_metadata."""

    channel_id: str | None = None
    ref: str | None = None
    permalink: str | None = None


@dataclass(frozen=True)
class NewLeadInput:
    name: str
    company: str | None
    email: str | None
    phone: str | None
    source: str | None


@dataclass(frozen=True)
class LogInput:
    record: str | None
    kind: InteractionKind
    occurred_at: datetime | None
    outcome: str | None
    duration_minutes: int | None
    notes: str
    follow_up: When | None = None
    private: bool = False


@dataclass(frozen=True)
class NewDealInput:
    name: str
    amount: Decimal | None
    currency: str | None
    stage: str | None
    about: str | None
    close_date: date | None


@dataclass(frozen=True)
class MoveInput:
    stage: str
    reason: str | None


@dataclass(frozen=True)
class AssignInput:
    owner_id: str


@dataclass(frozen=True)
class FollowUpInput:
    record: str | None
    due: When
    title: str


@dataclass(frozen=True)
class ConvertInput:
    account_name: str | None
    deal_name: str | None
    amount: Decimal | None
    currency: str | None
    stage: str | None


@dataclass(frozen=True)
class SettingsInput:
    """What the Settings modal holds.

    The role and team change are None when the admin changed nothing; `team` is "" to take
    the person out of their team. The stages, channels and digest time are as submitted
    (None: left empty); the handler compares them with what is stored.
    """

    user_id: str | None
    role: Role | None
    team: str | None = None
    stages: tuple[StageLine, ...] | None = None
    reminder_channel: str | None = None
    manager_channel: str | None = None
    digest_time: str | None = None
    # The restricted fields ticked; None when the form had no such input (nothing to change).
    restricted: frozenset[str] | None = None


def read_metadata(raw: str | None) -> Metadata:
    """The modal's private_metadata; anything malformed is dropped, never trusted."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return Metadata()
    if not isinstance(data, dict):
        return Metadata()
    channel, ref, link = data.get("channel"), data.get("ref"), data.get("permalink")
    return Metadata(
        channel_id=channel if isinstance(channel, str) and _CHANNEL_RE.fullmatch(channel) else None,
        ref=ref if isinstance(ref, str) and 0 < len(ref) <= NAME_MAX else None,
        permalink=link if isinstance(link, str) and link.startswith("https://") else None,
    )


class _Reader:
    """Reads `view.state.values` block by block, collecting one error per block."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values if isinstance(values, dict) else {}
        self.errors: dict[str, str] = {}

    def fail(self, block: BlockId, message: str) -> None:
        self.errors.setdefault(block.value, clip(message, ERROR_MAX))

    def guard(self, block: BlockId, parse: Callable[[], T]) -> T | None:
        """Run a parser, turning its InvalidInput into an error on `block`."""
        try:
            return parse()
        except InvalidInput as error:
            self.fail(block, error.message)
            return None

    def result(self, build: Callable[[], T]) -> T | FieldErrors:
        return FieldErrors(dict(self.errors)) if self.errors else build()

    def _element(self, block: BlockId) -> dict[str, Any]:
        actions = self._values.get(block.value)
        if isinstance(actions, dict):
            for element in actions.values():  # one element per input block
                if isinstance(element, dict):
                    return element
        return {}

    def _raw(self, block: BlockId, key: str) -> str | None:
        value = self._element(block).get(key)
        if isinstance(value, dict):  # selected_option
            value = value.get("value")
        return value if isinstance(value, str) and value != "" else None

    def ticked(self, block: BlockId, allowed: Collection[str]) -> frozenset[str] | None:
        """The values ticked in a checkboxes input (only offered ones); None if it is absent."""
        if block.value not in self._values:
            return None
        chosen = self._element(block).get("selected_options")
        if not isinstance(chosen, list):
            return frozenset()
        values = {o.get("value") for o in chosen[:50] if isinstance(o, dict)}
        return frozenset(v for v in values if isinstance(v, str) and v in allowed)

    def text(
        self, block: BlockId, *, max_len: int, required: bool = False, multiline: bool = False
    ) -> str:
        raw = self._raw(block, "value") or ""
        cleaned = self.guard(
            block,
            lambda: clean_text(
                raw, field=block.value, max_len=max_len, required=required, multiline=multiline
            ),
        )
        return cleaned or ""

    def choice(self, block: BlockId, *, required: bool = False, max_len: int = 150) -> str | None:
        value = self._raw(block, "selected_option")
        if value is None and required:
            self.fail(block, "Please choose one.")
        if value is not None and len(value) > max_len:
            self.fail(block, "Please choose one of the options.")
            return None
        return value

    def record(self, block: BlockId = BlockId.RECORD, *, required: bool = False) -> str | None:
        value = self._raw(block, "selected_option")
        if value is None:
            if required:
                self.fail(block, "Pick a record: type part of its name or its reference.")
            return None
        ref = parse_ref(value)
        if ref is None:
            self.fail(block, "Pick a record from the list.")
            return None
        return str(ref)

    def day(self, block: BlockId, *, required: bool = False) -> date | None:
        value = self._raw(block, "selected_date")
        if value is None:
            if required:
                self.fail(block, "Pick a date.")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(block, "Pick a date from the calendar.")
            return None

    def clock(self, block: BlockId, *, required: bool = False) -> time | None:
        value = self._raw(block, "selected_time")
        if value is None:
            if required:
                self.fail(block, "Pick a time.")
            return None
        if not re.fullmatch(r"\d{2}:\d{2}", value):
            self.fail(block, "Pick a time from the list.")
            return None
        try:
            return time.fromisoformat(value)
        except ValueError:
            self.fail(block, "Pick a time from the list.")
            return None

    def conversation(self, block: BlockId) -> str | None:
        return self._raw(block, "selected_conversation")

    def user(self, block: BlockId, *, required: bool = False) -> str | None:
        value = self._raw(block, "selected_user")
        if value is None:
            if required:
                self.fail(block, "Choose a person.")
            return None
        if not _USER_RE.fullmatch(value):
            self.fail(block, "Choose a person from the list.")
            return None
        return value

    def money(
        self, amount_block: BlockId, currency_block: BlockId | None = None
    ) -> tuple[Decimal | None, str | None]:
        """An amount ("50k", "€3,000") and its currency (None: the workspace's default)."""
        text = self.text(amount_block, max_len=AMOUNT_MAX)
        code = self.text(currency_block, max_len=3).upper() if currency_block else ""
        if code and not (len(code) == 3 and code.isascii() and code.isalpha()):
            assert currency_block is not None
            self.fail(currency_block, "A currency is a three-letter code.\nFor example: USD, EUR")
            code = ""
        if not text:
            return None, code or None
        parsed = self.guard(amount_block, lambda: parse_money(text, _NO_CURRENCY))
        if parsed is None:
            return None, None
        amount, named = parsed
        if named == _NO_CURRENCY:
            return amount, code or None
        if code and code != named and currency_block is not None:
            self.fail(currency_block, f"The amount is in {named} but the currency says {code}.")
        return amount, named


def _optional(text: str) -> str | None:
    return text or None


# --- one parser per modal -------------------------------------------------------


def parse_new_lead(values: dict[str, Any]) -> NewLeadInput | FieldErrors:
    """New lead: a name, and an email and phone that look like ones."""
    r = _Reader(values)
    name = r.text(BlockId.NAME, max_len=NAME_MAX, required=True)
    company = r.text(BlockId.COMPANY, max_len=TEXT_MAX)
    email_text = r.text(BlockId.EMAIL, max_len=320)
    phone_text = r.text(BlockId.PHONE, max_len=50)
    email = parse_email(email_text) if email_text else None
    if email_text and email is None:
        r.fail(BlockId.EMAIL, f'"{email_text}" is not an email address.\nFor example: ana@acme.com')
    phone = parse_phone(phone_text) if phone_text else None
    if phone_text and phone is None:
        r.fail(
            BlockId.PHONE, f'"{phone_text}" is not a phone number.\nFor example: +1 415 555 0100'
        )
    source = r.choice(BlockId.SOURCE, max_len=50)
    return r.result(lambda: NewLeadInput(name, _optional(company), email, phone, source))


def _kind(r: _Reader) -> InteractionKind:
    value = r.choice(BlockId.KIND, required=True)
    try:
        return InteractionKind(value or InteractionKind.NOTE)
    except ValueError:
        r.fail(BlockId.KIND, "Please choose one of the options.")
        return InteractionKind.NOTE


def _duration(r: _Reader) -> int | None:
    text = r.text(BlockId.DURATION, max_len=4)
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= MAX_DURATION:
        r.fail(
            BlockId.DURATION, f"Minutes as a whole number, 0 to {MAX_DURATION}.\nFor example: 30"
        )
        return None
    return int(text)


def parse_log(values: dict[str, Any], *, tz: str, now: datetime) -> LogInput | FieldErrors:
    """Log interaction: the date and time are read in the rep's zone `tz`."""
    r = _Reader(values)
    tz = zone(tz).key
    record = r.record()
    kind = _kind(r)
    day = r.day(BlockId.DATE, required=True)
    at = r.clock(BlockId.TIME, required=True)
    occurred_at = datetime.combine(day, at, tzinfo=zone(tz)) if day and at else None
    outcome = r.text(BlockId.OUTCOME, max_len=OUTCOME_MAX)
    duration = _duration(r)
    notes = r.text(BlockId.NOTES, max_len=NOTES_MAX, multiline=True)
    when_text = r.text(BlockId.FOLLOW_UP, max_len=WHEN_MAX)
    follow = (
        r.guard(BlockId.FOLLOW_UP, lambda: parse_when(when_text, tz, now)) if when_text else None
    )
    if record is None and not notes and BlockId.RECORD.value not in r.errors:
        r.fail(BlockId.NOTES, "Say what happened, or pick a record.")
    private = bool(r.ticked(BlockId.PRIVATE, (PRIVATE_OPTION,)))
    return r.result(
        lambda: LogInput(
            record, kind, occurred_at, _optional(outcome), duration, notes, follow, private
        )
    )


def parse_log_message(values: dict[str, Any]) -> LogInput | FieldErrors:
    """Log to CRM: a record (required), a kind and the message as notes."""
    r = _Reader(values)
    record = r.record(required=True)
    kind = _kind(r)
    notes = r.text(BlockId.NOTES, max_len=NOTES_MAX, multiline=True)
    private = bool(r.ticked(BlockId.PRIVATE, (PRIVATE_OPTION,)))
    return r.result(lambda: LogInput(record, kind, None, None, None, notes, private=private))


def parse_new_deal(values: dict[str, Any]) -> NewDealInput | FieldErrors:
    """New deal: a name; amount and currency readable; the rest optional."""
    r = _Reader(values)
    name = r.text(BlockId.NAME, max_len=NAME_MAX, required=True)
    amount, currency = r.money(BlockId.AMOUNT, BlockId.CURRENCY)
    stage = r.choice(BlockId.STAGE, max_len=_STAGE_MAX)
    about = r.record()
    close = r.day(BlockId.CLOSE_DATE)
    return r.result(lambda: NewDealInput(name, amount, currency, stage, about, close))


def parse_move(values: dict[str, Any]) -> MoveInput | FieldErrors:
    """Move deal: a stage, and a reason (the service decides when one is needed)."""
    r = _Reader(values)
    stage = r.choice(BlockId.STAGE, required=True, max_len=_STAGE_MAX)
    reason = r.text(BlockId.REASON, max_len=REASON_MAX)
    return r.result(lambda: MoveInput(stage or "", _optional(reason)))


def parse_assign(values: dict[str, Any]) -> AssignInput | FieldErrors:
    """Assign: the new owner."""
    r = _Reader(values)
    owner = r.user(BlockId.OWNER, required=True)
    return r.result(lambda: AssignInput(owner or ""))


def parse_follow_up(
    values: dict[str, Any], *, tz: str, now: datetime
) -> FollowUpInput | FieldErrors:
    """Follow-up: "when" is natural language read in the rep's zone `tz`."""
    r = _Reader(values)
    tz = zone(tz).key
    record = r.record()
    when_text = r.text(BlockId.WHEN, max_len=WHEN_MAX, required=True)
    due = r.guard(BlockId.WHEN, lambda: parse_when(when_text, tz, now)) if when_text else None
    title = r.text(BlockId.TEXT, max_len=TITLE_MAX)
    return r.result(lambda: _follow_up(record, due, title))


def _follow_up(record: str | None, due: When | None, title: str) -> FollowUpInput:
    assert due is not None  # an error was recorded otherwise
    return FollowUpInput(record, due, title)


def parse_convert(values: dict[str, Any]) -> ConvertInput | FieldErrors:
    """Convert lead: an amount or stage only make sense with a deal name."""
    r = _Reader(values)
    account = r.text(BlockId.ACCOUNT, max_len=NAME_MAX)
    deal = r.text(BlockId.DEAL_NAME, max_len=NAME_MAX)
    amount, currency = r.money(BlockId.AMOUNT)
    stage = r.choice(BlockId.STAGE, max_len=_STAGE_MAX)
    if not deal and (amount is not None or stage):
        r.fail(BlockId.DEAL_NAME, "Name the deal, or leave its amount and stage empty.")
    return r.result(
        lambda: ConvertInput(_optional(account), _optional(deal), amount, currency, stage)
    )


def parse_settings(values: dict[str, Any]) -> SettingsInput | FieldErrors:
    """Settings: the stage editor, channels and digest time; a role or team change needs
    the person and the role or team."""
    r = _Reader(values)
    stage_text = r.text(BlockId.STAGES, max_len=STAGES_MAX, multiline=True, required=True)
    stages = r.guard(BlockId.STAGES, lambda: parse_stage_lines(stage_text)) if stage_text else None
    channels: dict[BlockId, str | None] = {}
    for block in (BlockId.REMINDER_CHANNEL, BlockId.MANAGER_CHANNEL):
        raw = r.conversation(block)
        if raw is not None:
            channels[block] = r.guard(block, partial(require_channel, raw, block.value))
    digest = r.clock(BlockId.DIGEST_TIME)
    user = r.user(BlockId.ROLE_USER)
    team: str | None = r.text(BlockId.TEAM, max_len=TEAM_MAX) or None
    if team is not None and fold(team) == "none":
        team = ""
    value = r.choice(BlockId.ROLE)
    role: Role | None = None
    if value is not None:
        try:
            role = Role(value)
        except ValueError:
            r.fail(BlockId.ROLE, "Please choose one of the options.")
    if user and value is None and team is None:
        r.fail(BlockId.ROLE, "Choose the new role, or type their team.")
    if (value or team is not None) and user is None and BlockId.ROLE_USER.value not in r.errors:
        r.fail(BlockId.ROLE_USER, "Choose whose role or team changes.")
    restricted = r.ticked(BlockId.RESTRICTED, RESTRICTABLE_LABELS)
    return r.result(
        lambda: SettingsInput(
            user,
            role,
            team,
            stages or None,
            channels.get(BlockId.REMINDER_CHANNEL),
            channels.get(BlockId.MANAGER_CHANNEL),
            digest.strftime("%H:%M") if digest is not None else None,
            restricted,
        )
    )
