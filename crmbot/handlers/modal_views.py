"""Block Kit for modals: pure functions from plain values to `View`s (forms.py reads them back)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    DatePickerElement,
    ExternalDataSelectElement,
    InputBlock,
    InputInteractiveElement,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    TimePickerElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from crmbot.domain import DealView, InteractionKind, LeadView, Role, StageKind, StageView
from crmbot.handlers.ids import Action, Modal
from crmbot.handlers.render import esc

# Limits shared with forms.py, so what Slack lets through and what we accept agree.
NAME_MAX = 200
TEXT_MAX = 200
TEAM_MAX = 100  # the service's limit on a team name
STAGES_MAX = 2000  # the stage editor: 20 stages of up to 60 characters, and their numbers
NOTES_MAX = 3000
OUTCOME_MAX = 200
WHEN_MAX = 200
TITLE_MAX = 300
AMOUNT_MAX = 60
REASON_MAX = 500
OPTION_MAX = 75
METADATA_MAX = 3000


class BlockId(StrEnum):
    """Input block ids (each input's action_id is the same string, except the record picker)."""

    NAME = "name"
    COMPANY = "company"
    EMAIL = "email"
    PHONE = "phone"
    SOURCE = "source"
    RECORD = "record"
    KIND = "kind"
    DATE = "date"
    TIME = "time"
    OUTCOME = "outcome"
    DURATION = "duration"
    NOTES = "notes"
    FOLLOW_UP = "follow_up"
    AMOUNT = "amount"
    CURRENCY = "currency"
    STAGE = "stage"
    CLOSE_DATE = "close_date"
    REASON = "reason"
    OWNER = "owner"
    WHEN = "when"
    TEXT = "text"
    ACCOUNT = "account"
    DEAL_NAME = "deal_name"
    ROLE_USER = "role_user"
    ROLE = "role"
    TEAM = "team"
    STAGES = "stages"
    REMINDER_CHANNEL = "reminder_channel"
    MANAGER_CHANNEL = "manager_channel"
    DIGEST_TIME = "digest_time"
    SLA = "sla"
    NEW_RULE_FIELD = "new_rule_field"
    NEW_RULE_VALUE = "new_rule_value"
    NEW_RULE_REPS = "new_rule_reps"
    PRIVATE = "private"
    RESTRICTED = "restricted"


SOURCES: tuple[tuple[str, str], ...] = (
    ("referral", "Referral"),
    ("trade show", "Trade show"),
    ("website", "Website"),
    ("cold outreach", "Cold outreach"),
    ("event", "Event"),
    ("partner", "Partner"),
    ("other", "Other"),
)
KIND_LABELS: dict[InteractionKind, str] = {
    InteractionKind.CALL: "Call",
    InteractionKind.EMAIL: "Email",
    InteractionKind.MEETING: "Meeting",
    InteractionKind.NOTE: "Note",
    InteractionKind.MESSAGE: "Slack message",
}
ROLE_LABELS: dict[Role, str] = {Role.REP: "Rep", Role.MANAGER: "Manager", Role.ADMIN: "Admin"}


@dataclass(frozen=True)
class Picked:
    """A record shown in a record picker: its reference and name."""

    ref: str
    name: str


# --- small builders -----------------------------------------------------------


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def zone(tz: str) -> ZoneInfo:
    """The rep's zone; UTC when Slack gave us a name this system doesn't know."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def option(value: str, label: str) -> Option:
    return Option(value=value[:150], text=clip(label, OPTION_MAX))


def option_dict(value: str, label: str) -> dict[str, Any]:
    """`option(value, label).to_dict()`, built directly: type-ahead answers twenty per key
    press, before its ack (tests/test_blockkit.py checks they are the same)."""
    text: dict[str, Any] = {"emoji": True, "type": "plain_text"}
    if label:  # slack-sdk leaves an empty text out
        text["text"] = clip(label, OPTION_MAX)
    return {"text": text, "value": value[:150]}


def record_option(picked: Picked) -> Option:
    return option(picked.ref, f"{picked.ref} {picked.name}")


def metadata(
    channel_id: str | None, *, ref: str | None = None, permalink: str | None = None
) -> str:
    """private_metadata: only what the submission needs, as compact JSON."""
    data = {"channel": channel_id, "ref": ref, "permalink": permalink}
    raw = json.dumps({k: v for k, v in data.items() if v}, separators=(",", ":"))
    if len(raw) > METADATA_MAX:  # only an absurd permalink gets here; the rest is tiny
        raw = json.dumps({k: v for k, v in data.items() if v and k != "permalink"})
    return raw


def _input(
    block: BlockId,
    label: str,
    element: InputInteractiveElement,
    *,
    optional: bool = False,
    hint: str | None = None,
) -> InputBlock:
    return InputBlock(
        block_id=block.value, label=label, element=element, optional=optional, hint=hint
    )


def _text(
    block: BlockId,
    label: str,
    *,
    initial: str = "",
    max_len: int = TEXT_MAX,
    optional: bool = True,
    multiline: bool = False,
    placeholder: str | None = None,
    hint: str | None = None,
) -> InputBlock:
    element = PlainTextInputElement(
        action_id=block.value,
        initial_value=clip(initial, max_len) or None,  # plain_text inputs take raw text
        max_length=max_len,
        multiline=multiline or None,
        placeholder=placeholder,
    )
    return _input(block, label, element, optional=optional, hint=hint)


def _select(
    block: BlockId,
    label: str,
    choices: Sequence[tuple[str, str]],
    *,
    initial: str | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> InputBlock:
    options = [option(value, text) for value, text in choices]
    chosen = next((o for o in options if o.value == initial), None)
    element = StaticSelectElement(
        action_id=block.value, options=options, initial_option=chosen, placeholder="Choose…"
    )
    return _input(block, label, element, optional=optional, hint=hint)


def _record_picker(
    label: str, picked: Picked | None, *, optional: bool, block: BlockId = BlockId.RECORD
) -> InputBlock:
    element = ExternalDataSelectElement(
        action_id=Action.RECORD_PICKER.value,
        placeholder="Type a name or a reference (L-12)",
        min_query_length=1,
        initial_option=record_option(picked) if picked else None,
    )
    return _input(block, label, element, optional=optional)


def _stage_choices(stages: Sequence[StageView], *, open_only: bool) -> list[tuple[str, str]]:
    return [
        (s.name, f"{s.name} ({s.probability} %)")
        for s in stages
        if not open_only or s.kind is StageKind.OPEN
    ]


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 2900), verbatim=True))


def _modal(
    callback: Modal, title: str, submit: str, blocks: Sequence[Block], private_metadata: str
) -> View:
    return View(
        type="modal",
        callback_id=callback.value,
        title=title,
        submit=submit,
        close="Cancel",
        blocks=list(blocks),
        private_metadata=private_metadata,
    )


# --- the modals ---------------------------------------------------------------


def new_lead(
    channel_id: str | None,
    *,
    name: str = "",
    company: str = "",
    email: str = "",
    phone: str = "",
    source: str | None = None,
) -> View:
    """New lead: name, company, email, phone, source."""
    source = (source or "").strip() or None
    sources = list(SOURCES)
    if source and source not in dict(SOURCES):  # keep what was typed after `source:`
        sources.append((source, source))
    blocks = [
        _text(BlockId.NAME, "Name", initial=name, max_len=NAME_MAX, optional=False),
        _text(BlockId.COMPANY, "Company", initial=company),
        _text(BlockId.EMAIL, "Email", initial=email, max_len=320, placeholder="ana@acme.com"),
        _text(BlockId.PHONE, "Phone", initial=phone, max_len=50, placeholder="+1 415 555 0100"),
        _select(BlockId.SOURCE, "Source", sources, initial=source, optional=True),
    ]
    return _modal(Modal.NEW_LEAD, "New lead", "Create", blocks, metadata(channel_id))


PRIVATE_OPTION = "private"
PRIVATE_LABEL = "Private: only me, the record's owner, managers and admins can read it"


def _private_box(checked: bool) -> InputBlock:
    """The Private checkbox of the log forms (others see only that a private note exists)."""
    box = option(PRIVATE_OPTION, PRIVATE_LABEL)
    element = CheckboxesElement(
        action_id=BlockId.PRIVATE.value, options=[box], initial_options=[box] if checked else None
    )
    return _input(BlockId.PRIVATE, "Visibility", element, optional=True)


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind.value, label) for kind, label in KIND_LABELS.items()]


def log_interaction(
    channel_id: str | None,
    *,
    tz: str,
    now: datetime,
    kind: InteractionKind | None = None,
    record: Picked | None = None,
    notes: str = "",
    private: bool = False,
) -> View:
    """Log interaction: record, kind, date and time (now, in the rep's zone), details."""
    local = now.astimezone(zone(tz))
    blocks = [
        _record_picker("Record", record, optional=True),
        _select(BlockId.KIND, "Kind", _kind_choices(), initial=(kind or InteractionKind.CALL)),
        _input(
            BlockId.DATE,
            "Date",
            DatePickerElement(action_id=BlockId.DATE.value, initial_date=local.date().isoformat()),
        ),
        _input(
            BlockId.TIME,
            "Time",
            TimePickerElement(action_id=BlockId.TIME.value, initial_time=local.strftime("%H:%M")),
        ),
        _text(BlockId.OUTCOME, "Outcome", max_len=OUTCOME_MAX, placeholder="Interested, demo next"),
        _text(BlockId.DURATION, "Duration (minutes)", max_len=4, placeholder="30"),
        _text(BlockId.NOTES, "Notes", initial=notes, max_len=NOTES_MAX, multiline=True),
        _text(
            BlockId.FOLLOW_UP,
            "Follow up",
            max_len=WHEN_MAX,
            placeholder="tomorrow 9am, in 3 days, next friday",
            hint="Leave empty for no follow-up.",
        ),
        _private_box(private),
    ]
    return _modal(Modal.LOG, "Log interaction", "Log", blocks, metadata(channel_id))


def new_deal(
    channel_id: str | None,
    *,
    stages: Sequence[StageView],
    name: str = "",
    amount: str = "",
    currency: str = "",
    stage: str | None = None,
    record: Picked | None = None,
    close_date: date | None = None,
    missing: str | None = None,
) -> View:
    """New deal: name, amount, currency, stage, for-record, expected close date.

    `missing` is a record that was typed but isn't one record: shown, so it isn't lost.
    """
    choices = _stage_choices(stages, open_only=True)
    blocks: list[Block] = [
        _text(BlockId.NAME, "Deal name", initial=name, max_len=NAME_MAX, optional=False),
        _text(BlockId.AMOUNT, "Amount", initial=amount, max_len=AMOUNT_MAX, placeholder="50k"),
        _text(
            BlockId.CURRENCY,
            "Currency",
            initial=currency,
            max_len=3,
            placeholder="USD",
            hint="Leave empty for the amount's symbol or the workspace currency.",
        ),
        _select(
            BlockId.STAGE, "Stage", choices, initial=stage or (choices[0][0] if choices else None)
        ),
        _record_picker("For", record, optional=True),
        _input(
            BlockId.CLOSE_DATE,
            "Expected close date",
            DatePickerElement(
                action_id=BlockId.CLOSE_DATE.value,
                initial_date=close_date.isoformat() if close_date else None,
            ),
            optional=True,
        ),
    ]
    if missing:
        note = f"I couldn't tell which record “{esc(missing)}” is; pick it under *For*."
        blocks.insert(5, ContextBlock(elements=[MarkdownTextObject(text=clip(note, 2900))]))
    return _modal(Modal.NEW_DEAL, "New deal", "Create", blocks, metadata(channel_id))


def move_deal(channel_id: str | None, *, deal: DealView, stages: Sequence[StageView]) -> View:
    """Move deal: stage (the deal's own stage left out) and a reason for Lost."""
    choices = [c for c in _stage_choices(stages, open_only=False) if c[0] != deal.stage]
    blocks: list[Block] = [
        _section(f"*{deal.ref}* {esc(deal.name)} is in *{esc(deal.stage)}*."),
        _select(BlockId.STAGE, "Move to", choices),
        _text(BlockId.REASON, "Reason", max_len=REASON_MAX, hint="Needed when the deal is lost."),
    ]
    return _modal(Modal.MOVE_DEAL, "Move deal", "Move", blocks, metadata(channel_id, ref=deal.ref))


def assign(channel_id: str | None, *, record: Picked, owner_id: str | None) -> View:
    """Assign: pick the new owner of a record or follow-up."""
    owner = f"<@{owner_id}>" if owner_id else "nobody"
    blocks: list[Block] = [
        _section(f"*{record.ref}* {esc(record.name)} belongs to {owner}."),
        _input(
            BlockId.OWNER,
            "New owner",
            UserSelectElement(action_id=BlockId.OWNER.value, placeholder="Choose a person"),
        ),
    ]
    return _modal(
        Modal.ASSIGN, "Assign owner", "Assign", blocks, metadata(channel_id, ref=record.ref)
    )


def follow_up(
    channel_id: str | None, *, record: Picked | None = None, when: str = "", text: str = ""
) -> View:
    """Follow-up: about which record, when (natural language), what."""
    blocks = [
        _record_picker("About", record, optional=True),
        _text(
            BlockId.WHEN,
            "When",
            initial=when,
            max_len=WHEN_MAX,
            optional=False,
            placeholder="tomorrow 9am, in 3 days, next friday",
        ),
        _text(
            BlockId.TEXT, "What", initial=text, max_len=TITLE_MAX, placeholder="Send the proposal"
        ),
    ]
    return _modal(Modal.FOLLOW_UP, "New follow-up", "Save", blocks, metadata(channel_id))


def convert_lead(channel_id: str | None, *, lead: LeadView, stages: Sequence[StageView]) -> View:
    """Convert lead: account name (from the lead's company), optional deal."""
    blocks: list[Block] = [
        _section(f"Convert *{lead.ref}* {esc(lead.name)} into a contact."),
        _text(
            BlockId.ACCOUNT,
            "Account",
            initial=lead.company or "",
            max_len=NAME_MAX,
            hint="Found by name or email domain, created when new.",
        ),
        _text(
            BlockId.DEAL_NAME,
            "Deal name",
            max_len=NAME_MAX,
            hint="Leave empty to convert without a deal.",
        ),
        _text(BlockId.AMOUNT, "Deal amount", max_len=AMOUNT_MAX, placeholder="50k"),
        _select(BlockId.STAGE, "Deal stage", _stage_choices(stages, open_only=True), optional=True),
    ]
    return _modal(
        Modal.CONVERT, "Convert lead", "Convert", blocks, metadata(channel_id, ref=lead.ref)
    )


RESTRICTABLE_LABELS: dict[str, str] = {
    "amount": "Deal amount (and totals, forecasts, charts)",
    "email": "Email of leads and contacts",
    "phone": "Phone of leads and contacts",
}


def _restricted_box(restricted: Collection[str]) -> InputBlock:
    """Which fields only the record's owner, managers and admins may read."""
    boxes = [option(name, label) for name, label in RESTRICTABLE_LABELS.items()]
    chosen = [b for b in boxes if b.value in restricted]
    element = CheckboxesElement(
        action_id=BlockId.RESTRICTED.value, options=boxes, initial_options=chosen or None
    )
    return _input(
        BlockId.RESTRICTED,
        "Visible to managers and admins only",
        element,
        optional=True,
        hint="Besides managers and admins, a record's owner still sees these fields.",
    )


def settings(
    channel_id: str | None,
    *,
    stages: Sequence[StageView],
    reminders: SettingsNow | None = None,
    extra: Sequence[Block] = (),
    restricted: Collection[str] | None = None,
) -> View:
    """Settings (admins): the pipeline's stages, the reminder channels and digest time,
    someone's role and team, then `extra` (the web-form intake's part, from handlers/intake.py).
    """
    now = reminders or SettingsNow()
    blocks: list[Block] = [
        _text(
            BlockId.STAGES,
            "Pipeline stages",
            initial=stage_lines(stages),
            max_len=STAGES_MAX,
            optional=False,
            multiline=True,
            hint="One stage per line, in order, with its win probability. Rename a stage with "
            "Old -> New (its deals stay in it). Won and Lost close deals; keep them.",
        ),
        _input(
            BlockId.REMINDER_CHANNEL,
            "Reminder channel",
            _channel_picker(BlockId.REMINDER_CHANNEL, now.reminder_channel),
            optional=True,
            hint="Overdue follow-ups created in a DM are reminded here.",
        ),
        _input(
            BlockId.MANAGER_CHANNEL,
            "Escalation channel",
            _channel_picker(BlockId.MANAGER_CHANNEL, now.manager_channel),
            optional=True,
            hint="Follow-ups overdue for days are escalated to managers here.",
        ),
        _input(
            BlockId.DIGEST_TIME,
            "Morning digest time",
            TimePickerElement(action_id=BlockId.DIGEST_TIME.value, initial_time=now.digest_time),
            optional=True,
            hint="Each rep's morning DM, in their own time zone.",
        ),
        _input(
            BlockId.ROLE_USER,
            "Change the role or team of",
            UserSelectElement(action_id=BlockId.ROLE_USER.value, placeholder="Choose a person"),
            optional=True,
        ),
        _select(
            BlockId.ROLE,
            "New role",
            [(role.value, label) for role, label in ROLE_LABELS.items()],
            optional=True,
        ),
        _text(
            BlockId.TEAM,
            "Their team",
            max_len=TEAM_MAX,
            placeholder="e.g. EMEA",
            hint="A manager with a team acts on that team's records only. "
            "Type none to take the person out of their team.",
        ),
        *([_restricted_box(restricted)] if restricted is not None else []),
        *extra,
    ]
    return _modal(Modal.SETTINGS, "CRM settings", "Save", blocks, metadata(channel_id))


@dataclass(frozen=True)
class SettingsNow:
    """The reminder settings the Settings modal starts from."""

    reminder_channel: str | None = None
    manager_channel: str | None = None
    digest_time: str = "09:00"


def stage_lines(stages: Sequence[StageView]) -> str:
    """The stage editor's text: "Proposal 50%" per line, in pipeline order."""
    return "\n".join(
        s.name if s.kind is not StageKind.OPEN else f"{s.name} {s.probability}%" for s in stages
    )


def _channel_picker(block: BlockId, channel: str | None) -> ConversationSelectElement:
    return ConversationSelectElement(
        action_id=block.value,
        placeholder="Choose a channel",
        initial_conversation=channel,
        filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
    )


def log_message(
    channel_id: str | None,
    *,
    text: str,
    permalink: str | None,
    record: Picked | None = None,
) -> View:
    """Log to CRM (message shortcut): record, kind (message), the message as notes."""
    blocks = [
        _record_picker("Record", record, optional=False),
        _select(BlockId.KIND, "Kind", _kind_choices(), initial=InteractionKind.MESSAGE),
        _text(BlockId.NOTES, "Notes", initial=text, max_len=NOTES_MAX, multiline=True),
        _private_box(False),
    ]
    meta = metadata(channel_id, permalink=permalink)
    return _modal(Modal.LOG_MESSAGE, "Log to CRM", "Log", blocks, meta)
