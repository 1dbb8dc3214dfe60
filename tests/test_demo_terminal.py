"""The demo console's screen: Block Kit drawn as terminal text, modals filled in as forms."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest

from crmbot.demo.forms import AnswerError, Form, pick_option
from crmbot.demo.slack_side import as_slack_sends
from crmbot.demo.terminal import Choice, Renderer, format_date, use_color
from crmbot.domain import InteractionKind
from crmbot.handlers import forms as app_forms
from crmbot.handlers import modal_views
from crmbot.handlers import render as app_render
from crmbot.handlers.modal_views import Picked

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday: 16:00 in Berlin, 10:00 in New York
USERS = {"U02BOB": "bob", "U01ADA": "ada"}
CHANNELS = {"C01SALES": "sales"}


def renderer(*, color: bool = False, tz: str = "Europe/Berlin") -> Renderer:
    return Renderer(users=USERS, channels=CHANNELS, tz=tz, color=color, now=lambda: NOW)


class Numbering:
    """Collects the choices a rendering numbers, from 1."""

    def __init__(self) -> None:
        self.choices: list[Choice] = []

    def __call__(self, choice: Choice) -> int:
        self.choices.append(choice)
        return len(self.choices)


def draw(blocks: list[dict[str, Any]], **kwargs: Any) -> tuple[str, Numbering]:
    numbering = Numbering()
    return "\n".join(renderer(**kwargs).blocks(blocks, numbering)), numbering


def test_a_card_draws_its_header_fields_context_divider_and_numbered_buttons() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "L-5 Ana Lima"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Company:* Acme &amp; Co"},
            "fields": [
                {"type": "mrkdwn", "text": "*Owner:* <@U02BOB>"},
                {"type": "plain_text", "text": "Stage: 50 % &lt;hot&gt;"},
            ],
        },
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "No activity yet."}]},
        {
            "type": "actions",
            "block_id": "record:L-5",
            "elements": [
                {"type": "button", "action_id": "log_call", "value": "L-5",
                 "text": {"type": "plain_text", "text": "Log call"}},
                {"type": "button", "action_id": "assign_record", "value": "L-5",
                 "text": {"type": "plain_text", "text": "Assign"}, "style": "danger"},
            ],
        },
    ]  # fmt: skip
    text, numbering = draw(blocks)
    assert text.splitlines() == [
        "== L-5 Ana Lima ==",
        "Company: Acme & Co",
        "Owner: @bob",
        "Stage: 50 % <hot>",
        "-" * 40,
        "No activity yet.",
        "[1] Log call  [2] Assign",
    ]
    assert [(c.label, c.value, c.block_id) for c in numbering.choices] == [
        ("Log call", "L-5", "record:L-5"),
        ("Assign", "L-5", "record:L-5"),
    ]
    action = numbering.choices[1].action()
    assert (action["type"], action["action_id"], action["value"], action["block_id"]) == (
        "button",
        "assign_record",
        "L-5",
        "record:L-5",
    )


def test_a_section_accessory_button_sits_at_the_end_of_its_text() -> None:
    reply = app_render.search([], "nobody")
    assert "Nothing matches “nobody”" in draw(reply.payload()["blocks"])[0]
    section = {
        "type": "section",
        "block_id": "hit",
        "text": {"type": "mrkdwn", "text": "*L-5* Ana Lima\nAcme Corp"},
        "accessory": {"type": "button", "action_id": "show_record", "value": "L-5",
                      "text": {"type": "plain_text", "text": "Open"}},
    }  # fmt: skip
    assert draw([section])[0] == "L-5 Ana Lima\nAcme Corp  [1] Open"


def test_menu_options_are_choices_that_send_the_selected_option() -> None:
    menu = {
        "type": "actions",
        "block_id": "digest",
        "elements": [
            {
                "type": "static_select",
                "action_id": "digest_time",
                "placeholder": {"type": "plain_text", "text": "Send at"},
                "options": [
                    {"text": {"type": "plain_text", "text": "08:00"}, "value": "08:00"},
                    {"text": {"type": "plain_text", "text": "09:00"}, "value": "09:00"},
                ],
            }
        ],
    }
    text, numbering = draw([menu])
    assert text == "Send at: [1] 08:00  [2] 09:00"
    action = numbering.choices[1].action()
    assert action["selected_option"]["value"] == "09:00"
    assert action["type"] == "static_select"


def test_mentions_channels_links_and_entities_read_as_in_the_slack_client() -> None:
    r = renderer()
    text = (
        "<@U01ADA> and <@U9|someone> in <#C01SALES> and <#C7|other>: "
        "<https://example.com/a_b_c|the deck> <mailto:ana@acme.com|ana@acme.com> "
        "<!here> &lt;!channel&gt; a &amp; b :tada:"
    )
    assert r.mrkdwn(text) == (
        "@ada and @someone in #sales and #other: the deck ana@acme.com @here <!channel> a & b 🎉"
    )


def test_styles_are_dropped_without_color_and_kept_out_of_code_and_links() -> None:
    r = renderer()
    assert r.mrkdwn("*bold* _it_ ~gone~ `*raw*` snake_case_name 5 * 3") == (
        "bold it gone `*raw*` snake_case_name 5 * 3"
    )


def test_colors_only_when_asked_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\x1b[1m" in renderer(color=True).mrkdwn("*bold*")
    assert "\x1b[" not in renderer(color=False).mrkdwn("*bold* <@U01ADA>")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color(Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(Tty()) is False


def test_dates_show_in_the_readers_time_zone_with_the_fallback_for_unknown_tokens() -> None:
    at = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    token = app_render.when(at)  # what the app sends: <!date^…^{date_short_pretty} {time}|…>
    assert renderer(tz="Europe/Berlin").mrkdwn(token) == "Tomorrow 09:30"
    assert renderer(tz="America/New_York").mrkdwn(token) == "Tomorrow 03:30"
    assert renderer(tz="Asia/Kolkata").mrkdwn(token) == "Tomorrow 14:00"
    stamp = int(at.timestamp())
    assert renderer().mrkdwn(f"<!date^{stamp}^{{nonsense}}|fallback text>") == "fallback text"
    assert format_date(stamp, "{date_num} {date_long}", tz="UTC", now=NOW) == (
        "2026-11-24 Tuesday, November 24th, 2026"
    )


def test_a_message_without_blocks_shows_its_text() -> None:
    lines = renderer().message({"text": "Hi <@U02BOB>\nsecond line"}, Numbering())
    assert lines == ["Hi @bob", "second line"]


# --- forms ---------------------------------------------------------------------------


def log_view() -> dict[str, Any]:
    view = modal_views.log_interaction(
        "C01SALES",
        tz="Europe/Berlin",
        now=NOW,
        kind=InteractionKind.CALL,
        record=Picked("L-5", "Ana Lima"),
    ).to_dict()
    view["id"] = "V1"
    return view


def test_a_form_starts_from_the_views_initial_values_and_sends_slacks_state_shape() -> None:
    form = Form(log_view(), users=USERS, tz_today=date(2026, 11, 23))
    assert [f.label for f in form.fields][:4] == ["Record", "Kind", "Date", "Time"]
    form.answer(form.field("notes"), "Intro call, wants a pilot", lambda f, q: [])
    form.answer(form.field("duration"), "20", lambda f, q: [])
    form.answer(form.field("kind"), "meet", lambda f, q: [])
    values = form.state_values()
    assert values["record"]["record_picker"]["selected_option"]["value"] == "L-5"
    assert values["kind"]["kind"]["selected_option"]["value"] == "meeting"
    assert values["date"]["date"] == {"type": "datepicker", "selected_date": "2026-11-23"}
    assert values["time"]["time"] == {"type": "timepicker", "selected_time": "16:00"}
    assert values["outcome"]["outcome"] == {"type": "plain_text_input", "value": None}
    # what the app's own form reader makes of it
    parsed = app_forms.parse_log(values, tz="Europe/Berlin", now=NOW)
    assert not isinstance(parsed, app_forms.FieldErrors)
    assert (parsed.kind, parsed.record, parsed.notes, parsed.duration_minutes) == (
        InteractionKind.MEETING,
        "L-5",
        "Intro call, wants a pilot",
        20,
    )


def test_a_type_ahead_field_takes_the_apps_suggestion_for_the_query() -> None:
    form = Form(log_view(), users=USERS, tz_today=date(2026, 11, 23))
    asked: list[str] = []
    suggestions = [
        {"text": {"type": "plain_text", "text": "D-1 Globex expansion · deal"}, "value": "D-1"},
        {"text": {"type": "plain_text", "text": "A-1 Globex · account"}, "value": "A-1"},
    ]

    def lookup(field: Any, query: str) -> list[dict[str, Any]]:
        asked.append(query)
        return suggestions

    form.answer(form.field("record"), "A-1", lookup)
    assert asked == ["A-1"]
    assert form.values["record"]["value"] == "A-1"
    form.answer(form.field("Record"), "globex", lookup)
    assert form.values["record"]["value"] == "D-1"  # no exact match: the first suggestion


def test_like_the_slack_client_a_form_refuses_empty_required_inputs_and_long_texts() -> None:
    form = Form(log_view(), users=USERS, tz_today=date(2026, 11, 23))
    form.answer(form.field("kind"), "", lambda f, q: [])
    form.answer(form.field("duration"), "twenty", lambda f, q: [])
    assert form.client_errors() == {
        "kind": "Please complete this required field.",
        "duration": "Must be at most 4 characters.",
    }


def test_answers_that_dont_fit_say_what_would() -> None:
    form = Form(log_view(), users=USERS, tz_today=date(2026, 11, 23))
    with pytest.raises(AnswerError, match="pick one of: Call, Email"):
        form.answer(form.field("kind"), "telegram", lambda f, q: [])
    with pytest.raises(AnswerError, match="YYYY-MM-DD"):
        form.answer(form.field("date"), "next week", lambda f, q: [])
    with pytest.raises(AnswerError, match="HH:MM"):
        form.answer(form.field("time"), "25:00", lambda f, q: [])
    with pytest.raises(AnswerError, match="no field “budget”"):
        form.field("budget")
    form.answer(form.field("date"), "yesterday", lambda f, q: [])
    assert form.values["date"] == "2026-11-22"


def test_options_are_picked_by_number_value_or_the_start_of_a_label() -> None:
    options = [
        {"text": {"type": "plain_text", "text": "Proposal (50 %)"}, "value": "Proposal"},
        {"text": {"type": "plain_text", "text": "Prospecting (10 %)"}, "value": "Prospecting"},
    ]
    assert pick_option(options, "2")["value"] == "Prospecting"
    assert pick_option(options, "proposal")["value"] == "Proposal"
    assert pick_option(options, "prosp")["value"] == "Prospecting"
    with pytest.raises(AnswerError, match="could be several"):
        pick_option(options, "pro")


def test_typed_command_text_arrives_escaped_like_slack_sends_it() -> None:
    users, channels = {"bob": "U02BOB"}, {"sales": "C01SALES"}
    sent = as_slack_sends(
        "assign L-5 @bob in #sales <b> & ana@acme.com https://acme.com @nobody",
        users,
        channels,
    )
    assert sent == (
        "assign L-5 <@U02BOB|bob> in <#C01SALES|sales> &lt;b&gt; &amp; "
        "<mailto:ana@acme.com|ana@acme.com> <https://acme.com> @nobody"
    )
