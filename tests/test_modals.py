"""Modals through the real app: opened on the fake Slack, submitted as signed HTTP requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk import WebClient

from crmbot.config import Settings
from crmbot.domain import ContactView, DealView, InteractionKind, LeadView, PermissionDenied, Role
from crmbot.handlers import modals
from crmbot.handlers.command_text import NewDeal
from crmbot.handlers.context import Directory
from crmbot.handlers.deps import Deps
from crmbot.handlers.ids import Action
from tests.slackapp import TOKEN, Answer, SlackSim
from tests.test_forms import slack_state


def open_modal(
    slack: SlackSim,
    opener: Callable[..., None],
    *args: Any,
    user: str = "UBOB",
    channel: str | None = "C1",
    **kwargs: Any,
) -> dict[str, Any]:
    """Open a modal the way a command or button does; return the view Slack stored."""
    client = WebClient(token=TOKEN, base_url=slack.fake.url)
    settings = Settings(slack_bot_token=TOKEN, slack_api_url=slack.fake.url)
    deps = Deps(crm=slack.crm, settings=settings, directory=Directory(slack.crm))
    actor = deps.directory.actor({"team_id": "T1"}, client, user)
    trigger = slack.fake.issue_trigger_id(user)
    opener(deps, client, trigger, actor, channel, *args, **kwargs)
    (call,) = [c for c in slack.fake.calls_to("views.open") if c.args["trigger_id"] == trigger]
    assert call.ok, call.response
    view: dict[str, Any] = call.response["view"]
    return view


def submit(slack: SlackSim, view: dict[str, Any], *, user: str = "UBOB", **typed: Any) -> Answer:
    answer = slack.submit(view, slack_state(view, **typed), user=user)
    assert answer.status == 200, answer
    return answer


def errors_of(answer: Answer) -> dict[str, str]:
    body = answer.json()
    assert body["response_action"] == "errors", body
    errors: dict[str, str] = body["errors"]
    return errors


def told(slack: SlackSim, user: str = "UBOB", channel: str = "C1") -> str:
    """The ephemeral reply the person got after a successful submission."""
    assert slack.fake.wait_for("chat.postEphemeral")
    (message,) = slack.fake.ephemerals(channel=channel, user=user)
    return str(message["text"]) + json.dumps(message.get("blocks", []), ensure_ascii=False)


def accepted(answer: Answer) -> None:
    assert not answer.body or answer.json().get("response_action") != "errors", answer.body


# --- New lead ---------------------------------------------------------------------------


def test_the_new_lead_modal_from_the_command_creates_the_lead(slack: SlackSim) -> None:
    call = slack.command("lead")
    view = call.response["view"]
    accepted(submit(slack, view, name="Ana <Lima>", company="Acme", email="ana@acme.com"))
    reply = told(slack)
    assert "L-1" in reply
    assert "Ana &lt;Lima&gt;" in reply
    lead = slack.crm.show("T1", "L-1").record
    assert isinstance(lead, LeadView)
    assert (lead.name, lead.email, lead.owner_id) == ("Ana <Lima>", "ana@acme.com", "UBOB")


def test_a_new_lead_with_a_bad_email_stays_open_and_writes_nothing(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_lead)
    answer = submit(slack, view, name="Ana", email="ana at acme")
    assert set(errors_of(answer)) == {"email"}
    assert slack.crm.find("T1", "Ana") == ()


# --- Log interaction ----------------------------------------------------------------------


def test_logging_a_call_with_a_follow_up_saves_both(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    view = open_modal(slack, modals.open_log, kind=InteractionKind.CALL, record="ana lima")
    assert slack_state(view)["record"]["record_picker"]["selected_option"]["value"] == "L-1"
    answer = submit(slack, view, duration="30", notes="Wants a demo", follow_up="tomorrow 9am")
    accepted(answer)
    assert "T-1" in told(slack)
    card = slack.crm.show("T1", "L-1")
    (item,) = card.interactions
    assert (item.kind, item.duration_minutes, item.summary) == ("call", 30, "Wants a demo")
    (task,) = card.follow_ups
    assert task.due_at.isoformat() == "2026-11-24T17:00:00+00:00"  # 9am in Los Angeles
    assert task.channel_id == "C1"


def test_a_log_in_the_future_or_with_a_bad_duration_is_refused_on_its_field(
    slack: SlackSim,
) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    view = open_modal(slack, modals.open_log, record="L-1")
    assert set(errors_of(submit(slack, view, duration="lots"))) == {"duration"}
    assert set(errors_of(submit(slack, view, date="2027-03-01"))) == {"date"}  # the service's
    assert slack.crm.show("T1", "L-1").interactions == ()


def test_a_record_that_is_not_one_record_goes_into_the_notes(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_log, record="Nobody Known", notes="said hi")
    state = slack_state(view)
    assert state["record"]["record_picker"]["selected_option"] is None
    assert state["notes"]["notes"]["value"] == "Nobody Known said hi"


def test_a_message_logged_from_the_shortcut_keeps_its_text_and_permalink(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    link = "https://example.slack.com/archives/C1/p1"
    view = open_modal(slack, modals.open_log_message, "Ship it &amp; bill &lt;Acme&gt;", link)
    assert set(errors_of(submit(slack, view))) == {"record"}
    accepted(submit(slack, view, record="L-1"))
    (item,) = slack.crm.show("T1", "L-1").interactions
    assert (item.kind, item.summary, item.permalink) == ("message", "Ship it & bill <Acme>", link)


# --- Deals ------------------------------------------------------------------------------


def test_a_prefilled_new_deal_submitted_as_is_creates_it(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    prefill = NewDeal("Renewal", Decimal("50000"), "EUR", "prop", "L-1")
    view = open_modal(slack, modals.open_new_deal, prefill=prefill)
    accepted(submit(slack, view))
    assert "D-1" in told(slack)
    deal = slack.crm.show("T1", "D-1").record
    assert isinstance(deal, DealView)
    assert (deal.name, deal.stage, str(deal.amount)) == ("Renewal", "Proposal", "EUR 50,000.00")


def test_a_new_deal_in_a_closed_stage_is_refused_on_the_stage(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_deal)
    answer = submit(slack, view, name="Renewal", stage="Won")  # not offered: forged
    assert set(errors_of(answer)) == {"stage"}
    assert slack.crm.find("T1", "Renewal") == ()


def test_moving_a_deal_and_losing_it_without_a_reason(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Renewal")
    view = open_modal(slack, modals.open_move, deal="D-1")
    assert set(errors_of(submit(slack, view, stage="Lost"))) == {"reason"}
    assert slack.crm.show("T1", "D-1").record.stage == "Prospecting"  # type: ignore[union-attr]
    accepted(submit(slack, view, stage="Negotiation"))
    assert "Negotiation" in told(slack)
    assert slack.crm.show("T1", "D-1").record.stage == "Negotiation"  # type: ignore[union-attr]


def test_converting_a_lead_makes_a_contact_an_account_and_a_deal(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme")
    view = open_modal(slack, modals.open_convert, lead="L-1")
    forged = submit(slack, view, deal_name="Pilot", stage="Lost")
    assert set(errors_of(forged)) == {"stage"}
    assert slack.crm.show("T1", "L-1").record.status.value == "new"  # type: ignore[union-attr]
    accepted(submit(slack, view, deal_name="Pilot", amount="$10k", stage="Proposal"))
    assert "C-1" in told(slack)
    contact = slack.crm.show("T1", "C-1").record
    assert isinstance(contact, ContactView)
    assert contact.account_name == "Acme"
    assert slack.crm.show("T1", "D-1").record.name == "Pilot"


# --- People and time ---------------------------------------------------------------------


def test_assigning_from_the_modal_dms_the_new_owner(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    view = open_modal(slack, modals.open_assign, ref="L-1")
    assert set(errors_of(submit(slack, view))) == {"owner"}
    accepted(submit(slack, view, owner="UCAROL"))
    assert slack.crm.show("T1", "L-1").record.owner_id == "UCAROL"
    slack.fake.wait_for("chat.postMessage")
    (dm,) = slack.fake.dms_to("UCAROL")
    assert "<@UBOB> assigned *L-1* Ana Lima to you." in json.dumps(dm["blocks"])
    assert "<@UCAROL>" in told(slack)
    assert slack.crm.rep("T1", "UCAROL").tz == "Asia/Kolkata"  # type: ignore[union-attr]


def test_a_follow_up_in_the_past_is_saved_with_a_warning(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Renewal")
    view = open_modal(slack, modals.open_follow_up, ref="D-1")
    assert set(errors_of(submit(slack, view, when="when pigs fly"))) == {"when"}
    assert slack.crm.tasks("T1").overdue == ()
    accepted(submit(slack, view, when="yesterday 3pm", text="Send the contract"))
    assert "already passed" in told(slack)
    (task,) = slack.crm.tasks("T1").overdue
    assert (task.title, task.about_ref) == ("Send the contract", "D-1")


def test_only_admins_open_settings_and_change_roles(slack: SlackSim) -> None:
    with pytest.raises(PermissionDenied):
        open_modal(slack, modals.open_settings)
    view = open_modal(slack, modals.open_settings, user="UADMIN")
    assert set(errors_of(submit(slack, view, user="UADMIN", role="manager"))) == {"role_user"}
    # Bob, a rep, can't use the admin's modal to promote himself.
    mine = submit(slack, view, user="UBOB", role_user="UBOB", role="admin")
    assert set(errors_of(mine)) == {"role_user"}
    assert slack.crm.rep("T1", "UBOB").role is Role.REP  # type: ignore[union-attr]
    accepted(submit(slack, view, user="UADMIN", role_user="UCAROL", role="manager"))
    assert "manager" in told(slack, user="UADMIN")
    assert slack.crm.rep("T1", "UCAROL").role is Role.MANAGER  # type: ignore[union-attr]


def test_admins_put_people_in_teams_in_settings(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_settings, user="UADMIN")
    assert set(errors_of(submit(slack, view, user="UADMIN", team="EMEA"))) == {"role_user"}
    accepted(submit(slack, view, user="UADMIN", role_user="UCAROL", team="<EMEA & co>"))
    assert "in team &lt;EMEA &amp; co&gt;" in told(slack, user="UADMIN")
    assert slack.crm.rep("T1", "UCAROL").team == "<EMEA & co>"  # type: ignore[union-attr]
    accepted(submit(slack, view, user="UADMIN", role_user="UCAROL", role="manager", team="None"))
    slack.fake.wait_for("chat.postEphemeral", 2)
    said = slack.fake.ephemerals(channel="C1", user="UADMIN")[-1]["text"]
    assert "is now manager" in said
    assert "in no team" in said
    carol = slack.crm.rep("T1", "UCAROL")
    assert (carol.role, carol.team) == (Role.MANAGER, None)  # type: ignore[union-attr]


def test_admins_edit_the_pipeline_and_reminders_in_settings(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Renewal", stage="Proposal")
    view = open_modal(slack, modals.open_settings, user="UADMIN")
    stages = next(b for b in view["blocks"] if b["block_id"] == "stages")
    assert stages["element"]["initial_value"].splitlines()[:3] == [
        "Prospecting 10%",
        "Qualification 20%",
        "Proposal 50%",
    ]
    # Removing a stage with a deal in it: an error on the stages, and nothing else changes.
    refused = submit(
        slack,
        view,
        user="UADMIN",
        stages="Prospecting 10%\nNegotiation 75%\nWon\nLost",
        reminder_channel="C0REMIND",
        role_user="UCAROL",
        role="manager",
    )
    assert "Deals are or were in Proposal" in errors_of(refused)["stages"]
    assert slack.crm.reminder_settings("T1").reminder_channel is None
    assert slack.crm.rep("T1", "UCAROL") is None or slack.crm.rep("T1", "UCAROL").role is Role.REP
    accepted(
        submit(
            slack,
            view,
            user="UADMIN",
            stages="Prospecting 10%\nProposal -> Proposal <sent> 45%\nNegotiation 75%\nWon\nLost",
            reminder_channel="C0REMIND",
            digest_time="08:15",
        )
    )
    said = told(slack, user="UADMIN")
    assert "Proposal &lt;sent&gt;" in said
    assert "<#C0REMIND>" in said
    assert "08:15" in said
    assert slack.crm.show("T1", "D-1").record.stage == "Proposal <sent>"  # type: ignore[union-attr]
    now = slack.crm.reminder_settings("T1")
    assert (now.reminder_channel, now.digest_time) == ("C0REMIND", "08:15")


def test_without_a_channel_the_result_comes_by_dm(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_lead, channel=None)
    accepted(submit(slack, view, name="Ana"))
    slack.fake.wait_for("chat.postMessage")
    (message,) = slack.fake.dms_to("UBOB")
    assert "L-1" in message["text"]
    assert slack.fake.ephemerals() == []


# --- The record picker and other workspaces ----------------------------------------------


def test_the_record_picker_suggests_this_workspaces_records(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    slack.crm.create_deal("T1", by="UBOB", name="Ana " + "x" * 100, about="L-1")
    slack.crm.ensure_workspace("T2")
    slack.crm.create_lead("T2", by="UEVE", name="Ana Other")
    answer = slack.options(Action.RECORD_PICKER.value, "ana")
    options = answer.json()["options"]
    labels = {o["value"]: o["text"]["text"] for o in options}
    assert labels["L-1"] == "L-1 Ana Lima · lead"
    assert len(labels["D-1"]) == 75
    assert labels["D-1"].endswith("… · deal")
    assert "Ana Other" not in json.dumps(options)
    assert slack.options(Action.RECORD_PICKER.value, " ").json()["options"] == []


def test_a_ref_from_another_workspace_is_an_unknown_ref(slack: SlackSim) -> None:
    slack.crm.ensure_workspace("T2")
    slack.crm.create_lead("T2", by="UEVE", name="Eve's lead")
    slack.crm.create_lead("T2", by="UEVE", name="Eve's other lead")
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    log = open_modal(slack, modals.open_log)
    assert set(errors_of(submit(slack, log, record="L-2", notes="hi"))) == {"record"}
    assign = open_modal(slack, modals.open_assign, ref="L-1")
    assign["private_metadata"] = json.dumps({"channel": "C1", "ref": "L-2"})
    assert set(errors_of(submit(slack, assign, owner="UBOB"))) == {"owner"}
    assert slack.crm.show("T2", "L-2").record.owner_id == "UEVE"
    assert slack.crm.show("T2", "L-2").interactions == ()
