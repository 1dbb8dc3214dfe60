"""CSV columns -> crmbot fields: crmbot's own export headers and those of Salesforce, HubSpot
and Pipedrive exports, plus the value formats those exports use (statuses, stages, dates).

Headers are compared folded, with punctuation as spaces ("Person - Email - Work" is
"person email work"). A header that doesn't match is tried again without a leading entity
word ("Deal - Expected close date" -> "expected close date").
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum

from crmbot.domain import InvalidInput, LeadStatus
from crmbot.parsing import fold


class Kind(StrEnum):
    LEADS = "leads"
    CONTACTS = "contacts"
    ACCOUNTS = "accounts"
    DEALS = "deals"


_PEOPLE_COMMON: dict[str, tuple[str, ...]] = {
    "first_name": ("first name", "firstname", "given name"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "email": (
        "email",
        "email address",
        "e mail",
        "primary email",
        "work email",
        "email work",
        "email home",
        "email other",
    ),
    "phone": (
        "phone",
        "phone number",
        "mobile",
        "mobile phone",
        "mobile phone number",
        "business phone",
        "work phone",
        "telephone",
        "phone work",
        "phone mobile",
        "phone home",
        "phone other",
    ),
    "source": ("source", "lead source", "original source", "contact source"),
}
_COMMON: dict[str, tuple[str, ...]] = {
    "ref": ("ref", "reference", "crmbot ref"),
    "owner": (
        "owner",
        "owner name",
        "owner email",
        "lead owner",
        "contact owner",
        "account owner",
        "company owner",
        "organization owner",
        "opportunity owner",
        "deal owner",
        "record owner",
        "assigned to",
    ),
    "created_at": ("created at", "created", "created date", "create date", "add time"),
    "updated_at": ("updated at", "last modified date", "last modified", "update time"),
}
_COMPANY = ("company", "company name", "organization", "organisation", "organization name")
ALIASES: dict[Kind, dict[str, tuple[str, ...]]] = {
    Kind.LEADS: {
        **_COMMON,
        **_PEOPLE_COMMON,
        "name": ("name", "full name", "lead name", "person", "person name", "contact person"),
        "company": (*_COMPANY, "account name"),
        "status": ("status", "lead status"),
        "score": ("score", "lead score", "hubspot score"),
        "converted_contact": ("converted contact",),
        "converted_account": ("converted account",),
        "converted_deal": ("converted deal",),
        "extra": ("extra",),
    },
    Kind.CONTACTS: {
        **_COMMON,
        **_PEOPLE_COMMON,
        "name": ("name", "full name", "contact name", "person", "person name"),
        "title": ("title", "job title", "position"),
        "account": ("account", "account name", *_COMPANY, "associated company"),
        "account_ref": ("account ref",),
    },
    Kind.ACCOUNTS: {
        **_COMMON,
        "name": ("name", "account name", *_COMPANY, "account"),
        "domain": ("domain", "website", "web site", "company domain name", "domain name", "url"),
        "industry": ("industry",),
        "size": ("size", "employees", "number of employees", "employee count", "company size"),
        "region": ("region", "country", "country region", "billing country", "territory"),
    },
    Kind.DEALS: {
        **_COMMON,
        "name": ("name", "deal name", "opportunity name", "title", "deal title", "deal"),
        "amount": ("amount", "value", "deal value", "deal amount", "opportunity amount"),
        "currency": ("currency", "deal currency", "opportunity currency", "currency code"),
        "stage": ("stage", "deal stage", "stage name", "pipeline stage"),
        "probability": ("probability", "deal probability"),
        "close_date": ("close date", "expected close date", "closing date"),
        "status": ("status", "deal status"),
        "lost_reason": ("lost reason", "loss reason", "closed lost reason"),
        "account": ("account", "account name", *_COMPANY, "associated company"),
        "account_ref": ("account ref",),
        "contact": (
            "contact",
            "contact name",
            "primary contact",
            "person",
            "person name",
            "contact person",
            "associated contact",
        ),
        "contact_ref": ("contact ref",),
        "lead_ref": ("lead ref",),
        "closed_at": ("closed at",),
    },
}
ENTITY_WORDS = ("person", "deal", "organization", "lead", "contact", "account", "company")
_PUNCT = re.compile(r"[^0-9a-z]+")


def header_key(header: str) -> str:
    """A header as compared: folded, punctuation to single spaces."""
    return _PUNCT.sub(" ", fold(header)).strip()


def map_headers(kind: Kind, headers: list[str]) -> dict[int, str]:
    """Column index -> field, for the columns this kind understands."""
    lookup = {alias: field for field, aliases in ALIASES[kind].items() for alias in aliases}
    mapped: dict[int, str] = {}
    for index, header in enumerate(headers):
        key = header_key(header)
        field = lookup.get(key)
        if field is None:
            first, _, rest = key.partition(" ")
            if first in ENTITY_WORDS and rest:
                field = lookup.get(rest)
        if field is not None:
            mapped[index] = field
    return mapped


# --- values --------------------------------------------------------------------------------

_LEAD_STATUS_WORDS: tuple[tuple[str, LeadStatus], ...] = (  # first match wins
    ("not contacted", LeadStatus.NEW),
    ("not converted", LeadStatus.DISQUALIFIED),
    ("unqualified", LeadStatus.DISQUALIFIED),
    ("disqualified", LeadStatus.DISQUALIFIED),
    ("bad timing", LeadStatus.DISQUALIFIED),
    ("converted", LeadStatus.CONVERTED),
    ("open deal", LeadStatus.QUALIFIED),
    ("qualified", LeadStatus.QUALIFIED),
    ("working", LeadStatus.WORKING),
    ("contacted", LeadStatus.WORKING),
    ("in progress", LeadStatus.WORKING),
    ("attempted", LeadStatus.WORKING),
    ("connected", LeadStatus.WORKING),
    ("open", LeadStatus.NEW),
    ("new", LeadStatus.NEW),
)


def lead_status(text: str) -> str:
    """A lead status from crmbot, Salesforce ("Working - Contacted") or HubSpot ("IN_PROGRESS");
    anything unrecognised imports as new."""
    key = header_key(text)
    if key in {s.value for s in LeadStatus}:
        return key
    for words, status in _LEAD_STATUS_WORDS:
        if words in key:
            return status.value
    return LeadStatus.NEW.value


# Salesforce, HubSpot (labels and internal names) and Pipedrive default pipelines.
STAGE_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ("lead in", "appointment scheduled", "appointmentscheduled", "new"), "Prospecting"
    ),
    **dict.fromkeys(
        (
            "needs analysis",
            "value proposition",
            "id decision makers",
            "perception analysis",
            "qualified to buy",
            "qualifiedtobuy",
            "contact made",
            "needs defined",
            "demo scheduled",
            "presentation scheduled",
            "presentationscheduled",
        ),
        "Qualification",
    ),
    **dict.fromkeys(
        (
            "proposal price quote",
            "proposal made",
            "decision maker bought in",
            "decisionmakerboughtin",
        ),
        "Proposal",
    ),
    **dict.fromkeys(
        ("negotiation review", "negotiations started", "contract sent", "contractsent"),
        "Negotiation",
    ),
    **dict.fromkeys(("closed won", "closedwon"), "Won"),
    **dict.fromkeys(("closed lost", "closedlost"), "Lost"),
}

_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_MDY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def parse_date(text: str, field: str) -> date:
    """ISO (2026-12-01, also with a time), 12/01/2026 (month first, as US exports write it)
    or 01.12.2026 (day first)."""
    raw = text.strip()
    try:
        if len(raw) > 10:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
        return date.fromisoformat(raw.replace("/", "-"))
    except ValueError:
        pass
    try:
        if match := _MDY.fullmatch(raw):
            return date(int(match[3]), int(match[1]), int(match[2]))
        if match := _DMY.fullmatch(raw):
            return date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        pass
    raise InvalidInput(field, f'"{raw[:40]}" is not a date.', example="2026-12-01")


def parse_time(text: str) -> datetime | None:
    """An ISO timestamp (naive ones are UTC), or None when it isn't one."""
    raw = text.strip()
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parse_size(text: str) -> int:
    """Employees: "250", "1,200" or a range such as "51-200" (its upper end)."""
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]
    if not numbers or len(numbers) > 2 or not re.fullmatch("[\\d,\\s+\\-\u2013]+", text.strip()):
        raise InvalidInput("size", f'"{text[:40]}" is not a number of employees.', example="250")
    return max(numbers)


_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}")


def is_user_id(text: str) -> bool:
    return bool(_USER_ID.fullmatch(text))
