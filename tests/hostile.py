"""Shared pieces of the hostile-input property tests: text, budgets, snapshots, inert payloads.

Budgets: every property test here takes its number of examples from `examples(n)`, so the CI
run is bounded and derandomized (the `ci` hypothesis profile, registered in conftest.py) and
`HYPOTHESIS_PROFILE=long` multiplies each budget by `LONG_FACTOR` with fresh random seeds.
`BUDGETS` records each test's CI budget (times the engines it runs on) so one test can check
that they add up to the 10,000 inputs the issue asks for.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crmbot.store.db import Database
from crmbot.store.models import Base

LONG = os.environ.get("HYPOTHESIS_PROFILE", "") == "long"
LONG_FACTOR = 20
ENGINES = 2  # the `db` fixture runs each test on SQLite and on PostgreSQL

# test id -> inputs generated in CI (examples times engines); filled by `budget`.
BUDGETS: dict[str, int] = {}


def budget(name: str, n: int, *, engines: int = 1) -> settings:
    """Hypothesis settings for a test with a CI budget of `n` examples per engine."""
    BUDGETS[name] = n * engines
    return settings(
        max_examples=n * LONG_FACTOR if LONG else n,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # the database is checked, not reset, per example
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# --- hostile text ------------------------------------------------------------------------

MENTIONS = ("<!channel>", "<!here>", "<!everyone>", "<@UEVIL42>", "<#CEVIL42>", "<!subteam^S1>")
LINKS = ("<https://evil.example|bank>", "<https://evil.example>", "<mailto:x@evil.example|ceo>")
FRAGMENTS = (
    *MENTIONS,
    *LINKS,
    *("*bold*", "_it_", "~gone~", "`code`", "```", "> quote", "&amp;", "&lt;", "&gt;", "&"),
    *("<", ">", "|", "'; DROP TABLE lead; --", "' OR '1'='1", '"', "%", "_", "\\", "\\x00"),
    *("\x00", "\x07", "\x1b[31m", "\r", "\n", "\t", "\x85", "\u2028", "\x7f", "\x9b"),
    *("\u200b", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\ufeff", "\u00ad"),
    *("\u061c", "\u2060", "\u2063", "\U000e0041\U000e0042", "\u200d", "\u200c", "\ufe0f"),
    *("👨\u200d👩\u200d👧", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"),
    *("שלום", "مرحبا", "Zoe\u0308", "Zoë", "नमस्ते", "東京", "İstanbul", "ß", "ﬁ", "🎉", "Ω"),
    *("L-1", "L-2", "D-1", "C-1", "A-1", "T-1", "L-999999", "d1", "Ana", "Acme", "ana@acme.com"),
    *("+1 415 555 0100", "50k", "€3,000", "tomorrow 9am", "proposal", "won", "@bob", "@ada"),
    *("source:web", "owner:@bob", "stage:prop", "for", "at", "to", "-", ":", "  "),
    *("²", "٣", "1" * 5000, "-0", "1e9", "NaN"),
)

fragment = st.sampled_from(FRAGMENTS)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(fragment, st.text(max_size=6)), max_size=8).map(" ".join),
    st.lists(fragment, min_size=1, max_size=8).map("".join),
    st.integers(1, 6000).map(lambda n: "x" * n),
)
optional_text = st.none() | hostile_text

# A web form's fields: the known ones and anything else, with any JSON value.
KNOWN = ["name", "first_name", "last_name", "email", "phone", "company", "source", "message"]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)
FIELD_VALUE = hostile_text | st.sampled_from(["ana@acme.com", "+1 415 555 0100", "Ana"]) | JSONISH
INTAKE_BODY = st.dictionaries(
    st.sampled_from([*KNOWN, "country", "utm_campaign"]) | hostile_text, FIELD_VALUE, max_size=8
)


# --- the database, unchanged ------------------------------------------------------------

# Tables that keep request bookkeeping rather than anyone's data (request_key): a refused request
# may still note that it was seen.
BOOKKEEPING = re.compile(r"idempot|dedupe|request_key")


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every crmbot table, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as session:
        for table in Base.metadata.sorted_tables:
            if BOOKKEEPING.search(table.name):
                continue
            rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(row) for row in rows]
    return out


def changed_tables(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


# --- Slack payloads: user text must be inert ---------------------------------------------

_INJECTED = re.compile(
    r"<!channel>|<!here>|<!everyone>|<@UEVIL42>|<#CEVIL42>|<!subteam|<https://evil|<mailto:x@evil"
)


def mrkdwn(value: Any, *, top: bool = True) -> Iterator[str]:
    """Every string of a payload that Slack reads as mrkdwn: a message's top-level `text`
    (also used for notifications) and the text of every `mrkdwn` object. plain_text objects
    and input values are shown as typed, so they may hold anything."""
    if isinstance(value, dict):
        if (top or value.get("type") == "mrkdwn") and isinstance(value.get("text"), str):
            yield value["text"]
        for key, item in value.items():
            if key != "text" or not isinstance(item, str):
                yield from mrkdwn(item, top=False)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from mrkdwn(item, top=False)


def injected(payload: Any) -> list[str]:
    """mrkdwn strings in a payload where hostile markup survived as live markup."""
    return [s for s in mrkdwn(payload) if _INJECTED.search(s)]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
