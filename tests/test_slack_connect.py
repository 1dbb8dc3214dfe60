"""Slack Connect: people from another organisation in a shared channel are guests, not reps.

Slack delivers their requests with the workspace the app is installed in (the shared
channel's and the view's), so Bolt's verified context says T1; `users.info` tells the truth
about their home team, and the bot refuses them before anything is created.
"""

from __future__ import annotations

from crmbot.handlers import modal_open as modals
from tests.slackapp import SlackSim
from tests.test_modals import errors_of, open_modal, submit


def test_a_guest_from_another_organisation_is_refused_and_nothing_is_made(
    slack: SlackSim,
) -> None:
    slack.fake.connect_teams("T1", "T2")
    reply = slack.command("lead Eve's sneaky lead at Other Co", user="UEVE")
    assert "another organisation" in reply.args["text"]
    assert reply.args.get("response_type", "ephemeral") == "ephemeral"
    assert slack.crm.rep("T1", "UEVE") is None
    assert slack.crm.find("T1", "sneaky") == ()
    # Their view submissions get the same answer, on the form.
    view = open_modal(slack, modals.open_new_lead)
    refused = submit(slack, view, user="UEVE", name="Eve's other lead")
    assert "another organisation" in next(iter(errors_of(refused).values()))
    assert slack.crm.find("T1", "other lead") == ()
    assert slack.crm.rep("T1", "UEVE") is None


def test_members_are_unaffected_by_a_shared_channel(slack: SlackSim) -> None:
    slack.fake.connect_teams("T1", "T2")
    assert "L-1" in slack.command("lead Ana Lima", user="UCAROL").args["text"]
    carol = slack.crm.rep("T1", "UCAROL")
    assert carol is not None
    assert carol.name == "Carol Closer"
