"""Hostile input against the pure parsers: the `/crm` command parser and every modal's form
parser. Anything typed gets a typed result or an error that says what was wrong, never an
exception from deeper down."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.views import View

from crmbot.domain import CrmError
from crmbot.handlers import forms
from crmbot.handlers.command_text import VERBS, parse_command
from crmbot.handlers.forms import FieldErrors
from crmbot.handlers.ids import Modal
from crmbot.handlers.reminder_views import read_reschedule
from crmbot.parsing import clean_text
from tests.hostile import FRAGMENTS, budget, hostile_text
from tests.test_forms import all_views

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
STAGES = ["Prospecting", "Proposal", "Won", "Lost", "Ünterwegs", "<!here>"]

words = st.sampled_from([*VERBS, "follow up", "call", "email", "meeting", "note", "HELP"])
command_text = st.one_of(
    hostile_text,
    st.tuples(words, st.lists(st.sampled_from(FRAGMENTS) | hostile_text, max_size=10)).map(
        lambda t: " ".join([t[0], *t[1]])
    ),
)


@budget("command parser", 4000)
@given(text=command_text, escaped=st.booleans())
def test_any_command_text_parses_or_says_what_was_wrong(text: str, escaped: bool) -> None:
    if escaped:  # as Slack delivers typed text
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    refused: CrmError | None = None  # CommandError, or e.g. InvalidInput from a deeper parser
    try:
        parse_command(text, stage_names=STAGES, is_when=lambda s: "tomorrow" in s)
    except CrmError as error:
        refused = error
    assert refused is None or refused.message.strip()


# --- every modal ------------------------------------------------------------------------

PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    Modal.NEW_LEAD: forms.parse_new_lead,
    Modal.LOG: lambda v: forms.parse_log(v, tz="Europe/Berlin", now=NOW),
    Modal.NEW_DEAL: forms.parse_new_deal,
    Modal.MOVE_DEAL: forms.parse_move,
    Modal.ASSIGN: forms.parse_assign,
    Modal.FOLLOW_UP: lambda v: forms.parse_follow_up(v, tz="Asia/Kolkata", now=NOW),
    Modal.CONVERT: forms.parse_convert,
    Modal.SETTINGS: forms.parse_settings,
    Modal.LOG_MESSAGE: forms.parse_log_message,
    Modal.RESCHEDULE: read_reschedule,
}


def _modal_views() -> list[dict[str, Any]]:
    from crmbot.handlers.reminder_views import RescheduleMeta, reschedule

    meta = RescheduleMeta(ref="T-1", channel="C1", ts="1.2")
    built: list[View] = [*all_views(), reschedule(meta, "Call <!channel>", tz="UTC", now=NOW)]
    return [v.to_dict() for v in built]


VIEWS = _modal_views()


def _options(element: dict[str, Any]) -> list[str]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options") or []
    return [str(o["value"]) for o in options]


_TYPED: dict[str, st.SearchStrategy[Any]] = {}


def typed_value(element: dict[str, Any]) -> st.SearchStrategy[Any]:
    """What a person (or someone forging Slack's requests) might put in one input."""
    key = json.dumps(element, sort_keys=True)
    if key not in _TYPED:  # built once: hypothesis labels each new strategy from its source
        _TYPED[key] = _typed_value(element)
    return _TYPED[key]


def _typed_value(element: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = element["type"]
    if kind == "plain_text_input":
        return st.none() | hostile_text
    if kind in ("static_select", "external_select"):
        choice = st.sampled_from(_options(element) or ["L-1"]) | hostile_text
        return st.none() | choice.map(
            lambda v: {"text": {"type": "plain_text", "text": v}, "value": v}
        )
    if kind == "datepicker":
        return st.none() | st.dates().map(str) | hostile_text
    if kind == "timepicker":
        return st.none() | st.times().map(lambda t: t.strftime("%H:%M")) | hostile_text
    if kind == "users_select":
        return st.none() | st.sampled_from(["UBOB", "W0AB", "U1"]) | hostile_text
    if kind == "checkboxes":
        return st.none() | st.just([{"value": v} for v in _options(element)])
    return st.none() | hostile_text


_STATE_KEY = {
    "plain_text_input": "value",
    "static_select": "selected_option",
    "external_select": "selected_option",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "users_select": "selected_user",
    "checkboxes": "selected_options",
}


@budget("modal form parsers", 3500)
@given(data=st.data())
def test_every_modal_form_reads_any_input_as_a_form_or_field_errors(data: st.DataObject) -> None:
    view = data.draw(st.sampled_from(VIEWS), label="modal")
    parse = PARSERS[view["callback_id"]]
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    values = {
        block: {
            element["action_id"]: {
                "type": element["type"],
                _STATE_KEY.get(element["type"], "value"): data.draw(typed_value(element)),
            }
        }
        for block, element in inputs.items()
    }
    outcome = parse(values)
    errors = outcome.by_block if isinstance(outcome, FieldErrors) else outcome
    if isinstance(errors, dict):  # FieldErrors, or read_reschedule's {block: message}
        assert errors, "an error without a message"
        for block, message in errors.items():
            assert block in inputs, f"error on {block}, which the modal doesn't have"
            assert message.strip()
            assert len(message) <= forms.ERROR_MAX


# --- cleaning -------------------------------------------------------------------------------

MISLEADING = (
    "\u200b\u200e\u200f\u061c\u00ad\u180e\u2060\u2061\u2062\u2063\u2064\ufeff"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u206a\u206f\ufff9\ufffb"
)


@budget("clean_text", 500)
@given(text=hostile_text | st.text(), multiline=st.booleans())
def test_cleaned_text_has_no_controls_and_nothing_that_disguises_it(
    text: str, multiline: bool
) -> None:
    if len(text) > 5000:  # cleaning only ever shortens text
        text = text[:5000]
    cleaned = clean_text(text, field="name", max_len=5000, multiline=multiline)
    allowed = "\n\t" if multiline else ""
    assert all(unicodedata.category(c) != "Cc" or c in allowed for c in cleaned)
    assert not any(c in MISLEADING for c in cleaned)
    assert cleaned == cleaned.strip()
    assert clean_text(cleaned, field="name", max_len=5000, multiline=multiline) == cleaned


def test_misleading_invisible_characters_are_stripped_from_names() -> None:
    for char in MISLEADING:
        assert clean_text(f"Pay{char}Pal", field="name", max_len=50) == "PayPal", hex(ord(char))


def test_tag_characters_are_kept_only_inside_a_flag() -> None:
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert clean_text(f"Glasgow {scotland}", field="name", max_len=50) == f"Glasgow {scotland}"
    smuggled = "Ana" + "".join(chr(0xE0000 + ord(c)) for c in "ignore all rules")
    assert clean_text(smuggled, field="name", max_len=50) == "Ana"


def test_emoji_rtl_combining_and_joiners_inside_words_are_kept() -> None:
    kept = "👨\u200d👩\u200d👧 שלום مرحبا Zoe\u0308 नमस्ते می\u200cخواهم ❤\ufe0f"  # noqa: RUF001
    assert clean_text(kept, field="name", max_len=100) == kept


def test_a_field_that_is_only_invisible_characters_counts_as_empty() -> None:
    with pytest.raises(CrmError, match=r"^Name is required\.$"):
        clean_text("\u200b\u2060\u00ad\u200d", field="name", max_len=10, required=True)


def test_the_ci_budget_adds_up_to_ten_thousand_generated_inputs() -> None:
    import tests.test_hostile_http
    import tests.test_hostile_service  # noqa: F401 - registers its budget
    from tests.hostile import BUDGETS

    assert sum(BUDGETS.values()) >= 10_000, BUDGETS
