"""modal_views.py and forms.py as a pair: build a view, fill it in as Slack would, read it back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.views import View

from crmbot.domain import (
    DealStatus,
    DealView,
    InteractionKind,
    LeadStatus,
    LeadView,
    Role,
    StageKind,
    StageView,
)
from crmbot.handlers import forms
from crmbot.handlers import modal_views as views
from crmbot.handlers.forms import FieldErrors
from crmbot.handlers.modal_views import Picked
from crmbot.service.stages import StageLine
from tests.fakeslack import validate_view

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday; 16:00 in Berlin
STAGES = (
    StageView("Prospecting", 0, 10, StageKind.OPEN, 14),
    StageView("Proposal", 1, 50, StageKind.OPEN, 21),
    StageView("Won", 2, 100, StageKind.WON, 0),
    StageView("Lost", 3, 0, StageKind.LOST, 0),
)
DEAL = DealView(
    "D-4", "<!channel> & co", None, "Proposal", 50, None, "UBOB", DealStatus.OPEN,
    None, None, None, None, None, NOW,
)  # fmt: skip
LEAD = LeadView("L-3", "Ana Lima", "Acme <Corp>", None, None, None, LeadStatus.NEW, 0, "UBOB", NOW)

_INITIAL = {
    "plain_text_input": ("initial_value", "value"),
    "static_select": ("initial_option", "selected_option"),
    "external_select": ("initial_option", "selected_option"),
    "datepicker": ("initial_date", "selected_date"),
    "timepicker": ("initial_time", "selected_time"),
    "users_select": ("initial_user", "selected_user"),
    "conversations_select": ("initial_conversation", "selected_conversation"),
    "multi_users_select": ("initial_users", "selected_users"),
}


def slack_state(view: View | dict[str, Any], **typed: Any) -> dict[str, Any]:
    """`view.state.values` as Slack sends it: initial values, overridden by what was typed.

    For selects pass the option value (a str) or None; everything else is the raw value.
    """
    data = view.to_dict() if isinstance(view, View) else view
    values: dict[str, Any] = {}
    for block in data["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        kind = element["type"]
        initial_key, state_key = _INITIAL[kind]
        value = element.get(initial_key)
        if block["block_id"] in typed:
            value = typed.pop(block["block_id"])
            if kind in ("static_select", "external_select") and value is not None:
                value = {"text": {"type": "plain_text", "text": str(value)}, "value": value}
        values[block["block_id"]] = {element["action_id"]: {"type": kind, state_key: value}}
    assert not typed, f"no such inputs: {sorted(typed)}"
    return values


def all_views() -> list[View]:
    record = Picked("L-3", "Ana <Lima>")
    return [
        views.new_lead("C1", name="Ana", source="web form"),
        views.log_interaction("C1", tz="Europe/Berlin", now=NOW, record=record, notes="x" * 5000),
        views.new_deal(None, stages=STAGES, record=record, missing="<@U1> thing"),
        views.move_deal("C1", deal=DEAL, stages=STAGES),
        views.assign("C1", record=record, owner_id="UBOB"),
        views.follow_up("C1", record=record),
        views.convert_lead("C1", lead=LEAD, stages=STAGES),
        views.settings("C1", stages=STAGES),
        views.log_message("C1", text="y" * 5000, permalink="https://x.slack.com/archives/C1/p1"),
    ]


@pytest.mark.parametrize("view", all_views(), ids=lambda v: v.callback_id)
def test_every_modal_is_valid_block_kit_with_short_metadata(view: View) -> None:
    data = view.to_dict()
    assert validate_view(data) == []
    assert len(data["title"]["text"]) <= 24
    assert len(data["private_metadata"]) < 3000


def test_user_text_is_escaped_in_mrkdwn_and_raw_in_inputs() -> None:
    moved = json.dumps(views.move_deal("C1", deal=DEAL, stages=STAGES).to_dict())
    assert "&lt;!channel&gt; &amp; co" in moved
    assert "<!channel>" not in moved
    converted = views.convert_lead("C1", lead=LEAD, stages=STAGES).to_dict()
    assert slack_state(converted)["account"]["account"]["value"] == "Acme <Corp>"


def test_metadata_round_trips_and_garbage_is_dropped() -> None:
    raw = views.metadata("C1", ref="D-4", permalink="https://x.slack.com/p1")
    assert forms.read_metadata(raw) == forms.Metadata("C1", "D-4", "https://x.slack.com/p1")
    assert forms.read_metadata(views.metadata(None)) == forms.Metadata()
    assert forms.read_metadata("not json") == forms.Metadata()
    assert forms.read_metadata('{"channel": "<!here>", "permalink": "javascript:x"}') == (
        forms.Metadata()
    )


# --- New lead -----------------------------------------------------------------------


def test_a_prefilled_new_lead_submitted_as_is_reads_back() -> None:
    view = views.new_lead("C1", name="Ana", company="Acme", email="ana@ACME.com", source="referral")
    form = forms.parse_new_lead(slack_state(view, phone="+1 415 555 0100"))
    assert form == forms.NewLeadInput("Ana", "Acme", "ana@acme.com", "+1 415 555 0100", "referral")


def test_a_new_lead_without_name_or_with_a_bad_email_and_phone_gets_three_errors() -> None:
    view = views.new_lead("C1")
    form = forms.parse_new_lead(slack_state(view, name="  ", email="ana at acme", phone="12"))
    assert isinstance(form, FieldErrors)
    assert set(form.by_block) == {"name", "email", "phone"}


def test_a_source_typed_in_the_command_is_offered_and_kept() -> None:
    view = views.new_lead("C1", name="Ana", source="web form")
    form = forms.parse_new_lead(slack_state(view))
    assert isinstance(form, forms.NewLeadInput)
    assert form.source == "web form"


# --- Log interaction ---------------------------------------------------------------


def test_the_log_modal_defaults_to_now_in_the_reps_zone_and_reads_back_aware() -> None:
    view = views.log_interaction(
        "C1", tz="Europe/Berlin", now=NOW, kind=InteractionKind.MEETING, record=Picked("L-3", "A")
    )
    values = slack_state(view, duration="45", notes="Demo\nwent well", follow_up="tomorrow 9am")
    assert values["time"]["time"]["selected_time"] == "16:00"
    form = forms.parse_log(values, tz="Europe/Berlin", now=NOW)
    assert isinstance(form, forms.LogInput)
    assert (form.record, form.kind, form.duration_minutes) == ("L-3", InteractionKind.MEETING, 45)
    assert form.occurred_at == NOW
    assert form.notes == "Demo\nwent well"
    assert form.follow_up is not None
    assert form.follow_up.at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_a_log_with_bad_duration_follow_up_and_nothing_to_log_about_gets_errors() -> None:
    view = views.log_interaction("C1", tz="UTC", now=NOW)
    values = slack_state(view, duration="lots", follow_up="when pigs fly", time=None)
    form = forms.parse_log(values, tz="UTC", now=NOW)
    assert isinstance(form, FieldErrors)
    assert set(form.by_block) == {"duration", "follow_up", "notes", "time"}


def test_a_forged_record_value_is_refused() -> None:
    view = views.log_interaction("C1", tz="UTC", now=NOW)
    form = forms.parse_log(slack_state(view, record="Robert'); DROP"), tz="UTC", now=NOW)
    assert isinstance(form, FieldErrors)
    assert set(form.by_block) == {"record"}


def test_log_message_needs_a_record_and_keeps_the_message_as_notes() -> None:
    view = views.log_message("C1", text="Call me at 5 & bring <docs>", permalink=None)
    missing = forms.parse_log_message(slack_state(view))
    assert isinstance(missing, FieldErrors)
    assert set(missing.by_block) == {"record"}
    form = forms.parse_log_message(slack_state(view, record="c-7"))
    assert isinstance(form, forms.LogInput)
    assert (form.record, form.kind, form.notes) == (
        "C-7",
        InteractionKind.MESSAGE,
        "Call me at 5 & bring <docs>",
    )


# --- Deals -------------------------------------------------------------------------


def test_a_new_deal_reads_money_currency_stage_record_and_close_date() -> None:
    view = views.new_deal("C1", stages=STAGES, name="Renewal", amount="€3,000", stage="Proposal")
    values = slack_state(view, record="A-2", close_date="2026-12-31")
    form = forms.parse_new_deal(values)
    assert form == forms.NewDealInput(
        "Renewal", Decimal("3000.00"), "EUR", "Proposal", "A-2", date(2026, 12, 31)
    )


def test_a_deal_amount_without_a_symbol_takes_the_currency_field_or_none() -> None:
    view = views.new_deal("C1", stages=STAGES, name="Renewal")
    form = forms.parse_new_deal(slack_state(view, amount="50k", currency="gbp"))
    assert isinstance(form, forms.NewDealInput)
    assert (form.amount, form.currency) == (Decimal("50000.00"), "GBP")
    bare = forms.parse_new_deal(slack_state(view, amount="50k"))
    assert isinstance(bare, forms.NewDealInput)
    assert (bare.currency, bare.stage) == (None, "Prospecting")


def test_a_deal_with_unreadable_amount_or_clashing_currency_gets_errors() -> None:
    view = views.new_deal("C1", stages=STAGES)
    form = forms.parse_new_deal(slack_state(view, amount="lots"))
    assert isinstance(form, FieldErrors)
    assert set(form.by_block) == {"name", "amount"}
    clash = forms.parse_new_deal(slack_state(view, name="X", amount="$5", currency="EUR"))
    assert isinstance(clash, FieldErrors)
    assert set(clash.by_block) == {"currency"}


def test_move_leaves_out_the_current_stage_and_needs_a_stage() -> None:
    view = views.move_deal("C1", deal=DEAL, stages=STAGES)
    offered = [o["value"] for o in view.to_dict()["blocks"][1]["element"]["options"]]
    assert offered == ["Prospecting", "Won", "Lost"]
    assert isinstance(forms.parse_move(slack_state(view)), FieldErrors)
    form = forms.parse_move(slack_state(view, stage="Lost", reason=" budget cut "))
    assert form == forms.MoveInput("Lost", "budget cut")
    assert forms.read_metadata(view.private_metadata).ref == "D-4"


def test_convert_prefills_the_account_and_wants_a_deal_name_for_an_amount() -> None:
    view = views.convert_lead("C1", lead=LEAD, stages=STAGES)
    plain = forms.parse_convert(slack_state(view))
    assert plain == forms.ConvertInput("Acme <Corp>", None, None, None, None)
    orphan = forms.parse_convert(slack_state(view, amount="10k"))
    assert isinstance(orphan, FieldErrors)
    assert set(orphan.by_block) == {"deal_name"}
    full = forms.parse_convert(
        slack_state(view, deal_name="Pilot", amount="£10k", stage="Proposal")
    )
    assert full == forms.ConvertInput(
        "Acme <Corp>", "Pilot", Decimal("10000.00"), "GBP", "Proposal"
    )


# --- People and time ---------------------------------------------------------------


def test_assign_needs_a_slack_user() -> None:
    view = views.assign("C1", record=Picked("L-3", "Ana"), owner_id=None)
    assert set(_errors(forms.parse_assign(slack_state(view)))) == {"owner"}
    assert set(_errors(forms.parse_assign(slack_state(view, owner="bob")))) == {"owner"}
    assert forms.parse_assign(slack_state(view, owner="UCAROL")) == forms.AssignInput("UCAROL")


def test_a_follow_up_reads_when_in_the_reps_zone_and_flags_the_past() -> None:
    view = views.follow_up("C1", record=Picked("D-4", "Deal"))
    form = forms.parse_follow_up(
        slack_state(view, when="yesterday 3pm", text="Call back"), tz="Asia/Kolkata", now=NOW
    )
    assert isinstance(form, forms.FollowUpInput)
    assert (form.record, form.title, form.due.in_past) == ("D-4", "Call back", True)
    assert form.due.at == datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def test_a_follow_up_without_a_readable_when_gets_an_error_on_when() -> None:
    view = views.follow_up("C1")
    for when in (None, "someday maybe"):
        form = forms.parse_follow_up(slack_state(view, when=when), tz="UTC", now=NOW)
        assert set(_errors(form)) == {"when"}


def test_settings_change_a_role_only_with_both_person_and_role() -> None:
    view = views.settings("C1", stages=STAGES)
    pipeline = (
        StageLine("Prospecting", 10),
        StageLine("Proposal", 50),
        StageLine("Won", None),
        StageLine("Lost", None),
    )
    same = forms.SettingsInput(None, None, None, pipeline, None, None, "09:00")
    assert forms.parse_settings(slack_state(view)) == same
    assert set(_errors(forms.parse_settings(slack_state(view, role_user="UBOB")))) == {"role"}
    team = forms.parse_settings(slack_state(view, role_user="UBOB", team=" EMEA "))
    assert team == replace(same, user_id="UBOB", team="EMEA")
    no_team = forms.parse_settings(slack_state(view, role_user="UBOB", team="NONE"))
    assert no_team == replace(same, user_id="UBOB", team="")
    assert set(_errors(forms.parse_settings(slack_state(view, role="admin")))) == {"role_user"}
    both = forms.parse_settings(slack_state(view, role_user="UBOB", role="manager"))
    assert both == replace(same, user_id="UBOB", role=Role.MANAGER)


def test_settings_read_the_stage_editor_channels_and_digest_time() -> None:
    reminders = views.SettingsNow("C0REMIND", None, "08:30")
    view = views.settings("C1", stages=STAGES, reminders=reminders)
    form = forms.parse_settings(slack_state(view))
    assert isinstance(form, forms.SettingsInput)
    assert (form.reminder_channel, form.manager_channel, form.digest_time) == (
        "C0REMIND",
        None,
        "08:30",
    )
    typed = slack_state(
        view, stages="Prospecting 10%\nProposal -> Offer 40%", manager_channel="G0MGRS"
    )
    form = forms.parse_settings(typed)
    assert isinstance(form, forms.SettingsInput)
    assert form.stages == (StageLine("Prospecting", 10), StageLine("Offer", 40, "Proposal"))
    assert form.manager_channel == "G0MGRS"
    bad = slack_state(view, stages="Proposal 500%", reminder_channel="D0DM", digest_time="9am")
    assert set(_errors(forms.parse_settings(bad))) == {"stages", "reminder_channel", "digest_time"}
    assert set(_errors(forms.parse_settings(slack_state(view, stages="")))) == {"stages"}


def _errors(form: object) -> dict[str, str]:
    assert isinstance(form, FieldErrors), form
    return form.by_block


# --- Anything Slack (or someone pretending to be Slack) might send ------------------

_junk = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.integers(),
    st.dictionaries(st.sampled_from(["value", "x"]), st.text(max_size=20), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parsers_answer_every_state_with_input_or_errors_never_an_exception(
    data: st.DataObject,
) -> None:
    parsers: list[Callable[[dict[str, Any]], object]] = [
        forms.parse_new_lead,
        forms.parse_new_deal,
        forms.parse_move,
        forms.parse_assign,
        forms.parse_convert,
        forms.parse_settings,
        forms.parse_log_message,
        lambda v: forms.parse_log(v, tz="Europe/Berlin", now=NOW),
        lambda v: forms.parse_follow_up(v, tz="Europe/Berlin", now=NOW),
    ]
    blocks = [b.value for b in views.BlockId]
    values = {
        block: {
            "a": {
                key: data.draw(_junk)
                for key in ("value", "selected_option", "selected_date", "selected_time")
            }
            | {"selected_user": data.draw(_junk)}
        }
        for block in data.draw(st.lists(st.sampled_from(blocks), unique=True))
    }
    for parse in parsers:
        form = parse(values)
        if isinstance(form, FieldErrors):
            assert form.by_block
            assert all(key in blocks for key in form.by_block)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=4000), short=st.text(max_size=300))
def test_any_user_text_still_makes_valid_modals(text: str, short: str) -> None:
    record = Picked("L-3", short)
    lead = LeadView("L-3", short or "x", text, None, None, None, LeadStatus.NEW, 0, None, NOW)
    deal = DealView(
        "D-4", text or "x", None, short or "Proposal", 50, None, None, DealStatus.OPEN,
        None, None, None, None, None, NOW,
    )  # fmt: skip
    built = [
        views.new_lead("C1", name=text, company=text, email=short, phone=short, source=short),
        views.log_interaction("C1", tz=short, now=NOW, record=record, notes=text),
        views.new_deal("C1", stages=STAGES, name=text, amount=short, record=record, missing=text),
        views.move_deal("C1", deal=deal, stages=STAGES),
        views.assign("C1", record=record, owner_id=None),
        views.follow_up("C1", record=record, when=text, text=text),
        views.convert_lead("C1", lead=lead, stages=STAGES),
        views.log_message("C1", text=text, permalink="https://x.slack.com/p1"),
    ]
    for view in built:
        assert validate_view(view.to_dict()) == []
