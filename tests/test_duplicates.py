"""The duplicate guard in Slack: "Merge into …?" instead of a silent second record."""

from __future__ import annotations

import json
from typing import Any

from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from tests.slackapp import SlackSim
from tests.test_modals import accepted, open_modal, submit, told


def buttons(blocks: list[dict[str, Any]]) -> dict[str, list[str]]:
    """action_id -> the values of the buttons with it."""
    found: dict[str, list[str]] = {}
    for block in blocks:
        elements = block.get("elements") or ([block["accessory"]] if "accessory" in block else [])
        for element in elements:
            if element.get("type") == "button":
                found.setdefault(element["action_id"], []).append(element["value"])
    return found


def test_a_lead_with_a_known_email_asks_to_merge_and_merge_updates_it(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    reply = slack.command("lead Ana Lima at Acme Corp ANA@acme.com +1 415 555 0100")
    assert "Merge into *L-1* Ana Lima?" in json.dumps(reply.args)
    found = buttons(reply.args["blocks"])
    assert set(found) == {Action.MERGE.value, Action.CREATE_ANYWAY.value}
    assert [h.ref for h in slack.crm.find("T1", "Ana Lima")] == ["L-1"]  # nothing created yet
    _, response_url, _ = slack.click(Action.MERGE.value, found[Action.MERGE.value][0])
    merged = slack.wait_reply(response_url)
    assert merged.args["replace_original"] is True
    assert "Merged into *L-1*" in merged.args["text"]
    lead = slack.crm.show("T1", "L-1").record
    assert (lead.company, lead.phone, lead.email) == (  # type: ignore[union-attr]
        "Acme Corp",
        "+1 415 555 0100",
        "ana@acme.com",  # the same address: not rewritten
    )
    assert [h.ref for h in slack.crm.find("T1", "Ana Lima")] == ["L-1"]


def test_create_anyway_creates_the_second_record(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    reply = slack.command("lead Ana Lima ana@acme.com")
    (value,) = buttons(reply.args["blocks"])[Action.CREATE_ANYWAY.value]
    _, response_url, _ = slack.click(Action.CREATE_ANYWAY.value, value)
    assert "L-2" in slack.wait_reply(response_url).args["text"]
    assert slack.crm.show("T1", "L-2").record.owner_id == "UBOB"


def test_a_close_name_at_the_same_company_domain_is_a_likely_duplicate(slack: SlackSim) -> None:
    slack.crm.create_contact(
        "T1", by="UBOB", name="Grace Hopper", email="grace@navy.mil", account="US Navy"
    )
    reply = slack.command("lead Grace Hoper g.hopper@navy.mil")
    assert "Merge into *C-1* Grace Hopper?" in json.dumps(reply.args)
    other = slack.command("lead Grace Hoper at Army gh@army.mil")
    assert "L-1" in other.args["text"]  # another company: created at once


def test_free_mail_domains_and_different_names_are_not_duplicates(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@gmail.com")
    reply = slack.command("lead Bruno Costa bruno@gmail.com")
    assert "L-2" in reply.args["text"]
    assert Action.MERGE.value not in json.dumps(reply.args)


def test_the_new_lead_modal_asks_too(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme", email="ana@acme.com")
    view = open_modal(slack, modals.open_new_lead)
    accepted(submit(slack, view, name="Ana Lima", email="ana@acme.com"))
    question = told(slack)
    assert "Merge into *L-1* Ana Lima?" in question
    assert Action.CREATE_ANYWAY.value in question
    assert len(slack.crm.find("T1", "Ana Lima")) == 1
