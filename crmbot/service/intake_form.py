"""A web form, read and checked: the spec's fields (and the names forms commonly give them),
everything else kept; InvalidInput names the first bad field. Nothing here touches the
database, so a bad body is refused before any transaction starts."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crmbot.domain import InvalidInput
from crmbot.parsing import clean_text
from crmbot.service.assignment import TERRITORY_FIELDS
from crmbot.service.records import clean_field

DEFAULT_SOURCE = "website"
KNOWN = ("name", "email", "phone", "company", "source", "message", "country")
LIMITS = {"name": 200, "company": 200, "email": 320, "phone": 50, "source": 50, "country": 100}
MESSAGE_MAX = 3000
EXTRA_MAX_FIELDS = 50
EXTRA_VALUE_MAX = 2000
KEY_MAX = 100
IDEMPOTENCY_KEY_MAX = 255
# Names web forms commonly use for the spec's fields.
ALIASES = {
    "full_name": "name",
    "your_name": "name",
    "company_name": "company",
    "organization": "company",
    "organisation": "company",
    "phone_number": "phone",
    "telephone": "phone",
    "tel": "phone",
    "comment": "message",
    "comments": "message",
    "country_code": "country",
}
FIRST_NAMES = ("first_name", "firstname", "given_name")
LAST_NAMES = ("last_name", "lastname", "family_name", "surname")
_KEY_RE = re.compile(r"[^a-z0-9]+")
_IDEMPOTENCY_RE = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyReused(InvalidInput):
    """The Idempotency-Key was used before for a different form."""

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key",
            "This Idempotency-Key was already used for a different submission; use a new key.",
        )


@dataclass(frozen=True)
class IntakeForm:
    """A web form, checked and cleaned: what the lead gets, and what else was sent."""

    name: str
    email: str | None
    phone: str | None
    company: str | None
    source: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def facts(self) -> dict[str, str]:
        """The territory facts the form carries (country, region, industry)."""
        return {f: str(self.extra[f]) for f in TERRITORY_FIELDS if self.extra.get(f)}


def _key(raw: str) -> str:
    return _KEY_RE.sub("_", raw.strip().lower()).strip("_")


def _text(name: str, value: Any) -> str | None:
    """A known field's value as text (numbers allowed, e.g. a phone sent as a number)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(name, f"{name} must be text.")
    return str(value)


def _extra_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value, field=name, max_len=EXTRA_VALUE_MAX, multiline=True)
    if value is None or isinstance(value, bool | int | float):
        return value
    value = _clean_nested(name, value)
    try:
        size = len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError):
        raise InvalidInput(name, f"{name} can't be stored.") from None
    if size > EXTRA_VALUE_MAX:
        raise InvalidInput(name, f"{name} is too long (at most {EXTRA_VALUE_MAX} characters).")
    return value


def _clean_nested(name: str, value: Any, depth: int = 0) -> Any:
    """Strings inside a JSON value cleaned like every other text (keys too)."""
    if depth > 20:
        raise InvalidInput(name, f"{name} is nested too deeply.")
    if isinstance(value, str):
        return clean_text(value, field=name, max_len=EXTRA_VALUE_MAX, multiline=True)
    if isinstance(value, list):
        return [_clean_nested(name, item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            clean_text(str(key), field=name, max_len=KEY_MAX): _clean_nested(name, item, depth + 1)
            for key, item in value.items()
        }
    return value


def read_intake(fields: Mapping[str, Any]) -> IntakeForm:
    """Check a submitted form; InvalidInput names the first bad field. Nothing is written."""
    known: dict[str, str | None] = {}
    extra: dict[str, Any] = {}
    first = last = None
    for raw_key, value in fields.items():
        key = _key(str(raw_key))
        if not key or len(str(raw_key)) > KEY_MAX:
            raise InvalidInput("field name", f"{str(raw_key)[:40]!r} is not a usable field name.")
        key = ALIASES.get(key, key)
        if key in KNOWN:
            if known.get(key):
                continue  # an alias and the field itself: the first non-empty one wins
            known[key] = _text(key, value)
        elif key in FIRST_NAMES:
            first = _text("first_name", value)
        elif key in LAST_NAMES:
            last = _text("last_name", value)
        else:
            if len(extra) >= EXTRA_MAX_FIELDS:
                raise InvalidInput("fields", f"At most {EXTRA_MAX_FIELDS} extra fields, please.")
            extra[key] = _extra_value(key, value)
    if not known.get("name") and (first or last):
        known["name"] = " ".join(p.strip() for p in (first, last) if p and p.strip())
    email = clean_field("email", known.get("email"))
    name_raw = clean_text(known.get("name") or "", field="name", max_len=LIMITS["name"])
    if not name_raw and not email:
        raise InvalidInput("name", "Name is required (or an email address).", example="Ana Lima")
    company = clean_text(known.get("company") or "", field="company", max_len=LIMITS["company"])
    country = clean_text(known.get("country") or "", field="country", max_len=LIMITS["country"])
    if country:
        extra["country"] = country
    form = IntakeForm(
        name=clean_field("name", name_raw or email),
        email=email,
        phone=clean_field("phone", known.get("phone")),
        company=company or None,
        source=clean_field("source", known.get("source")) or DEFAULT_SOURCE,
        message=clean_text(
            known.get("message") or "", field="message", max_len=MESSAGE_MAX, multiline=True
        ),
        extra=extra,
    )
    canonical = json.dumps(
        {str(k): v for k, v in fields.items()}, sort_keys=True, ensure_ascii=False, default=str
    )
    return replace(form, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())


def check_idempotency_key(key: str | None) -> str | None:
    """The header's value, checked: 1-255 visible ASCII characters."""
    if key is None:
        return None
    if not _IDEMPOTENCY_RE.fullmatch(key):
        raise InvalidInput(
            "Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters."
        )
    return key
