"""The duplicate guard on the convert path: a lead whose person is already a contact."""

from __future__ import annotations

import json

from crmbot.domain import ContactView
from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from tests.slackapp import SlackSim
from tests.test_duplicates import buttons
from tests.test_modals import accepted, open_modal, submit


def question(slack: SlackSim) -> dict[str, list[str]]:
    """The buttons of the (only) ephemeral reply, once it came."""
    assert slack.fake.wait_for("chat.postEphemeral")
    (message,) = slack.fake.ephemerals(channel="C1", user="UBOB")
    text = str(message["text"]) + json.dumps(message.get("blocks", []), ensure_ascii=False)
    assert "looks like a contact you already have" in text, text
    return buttons(message["blocks"])


def test_converting_a_lead_that_is_a_known_contact_asks_and_merge_uses_that_contact(
    slack: SlackSim,
) -> None:
    slack.crm.create_contact(
        "T1", by="UBOB", name="Ana Lima", email="ana@acme.com", account="Acme Corp"
    )
    slack.crm.create_lead(
        "T1", by="UBOB", name="Ana Lima", email="ANA@acme.com", phone="+1 415 555 0100"
    )
    view = open_modal(slack, modals.open_convert, lead="L-1")
    accepted(submit(slack, view, deal_name="Pilot", amount="$10k", stage="Proposal"))
    found = question(slack)
    assert set(found) == {Action.CONVERT_MERGE.value, Action.CONVERT_ANYWAY.value}
    assert slack.crm.show("T1", "L-1").record.status.value == "new"  # type: ignore[union-attr]
    _, response_url, _ = slack.click(Action.CONVERT_MERGE.value, found["convert_merge"][0])
    reply = slack.wait_reply(response_url)
    assert reply.args["replace_original"] is True
    assert "into contact *C-1*" in reply.args["text"] + json.dumps(reply.args["blocks"])
    lead = slack.crm.show("T1", "L-1").record
    assert lead.status.value == "converted"  # type: ignore[union-attr]
    contact = slack.crm.show("T1", "C-1").record
    assert isinstance(contact, ContactView)
    assert (contact.email, contact.phone, contact.account_name) == (
        "ana@acme.com",  # its own address kept
        "+1 415 555 0100",  # the lead's phone: it had none
        "Acme Corp",
    )
    deal = slack.crm.show("T1", "D-1").record
    assert (deal.name, str(deal.amount)) == ("Pilot", "USD 10,000.00")  # type: ignore[union-attr]
    assert "C-2" not in [h.ref for h in slack.crm.find("T1", "Ana Lima")]
    # A second click (the old question) converts nothing twice.
    _, again_url, _ = slack.click(Action.CONVERT_MERGE.value, found["convert_merge"][0])
    assert "already converted" in json.dumps(slack.wait_reply(again_url).args)


def test_create_anyway_converts_into_a_new_contact(slack: SlackSim) -> None:
    slack.crm.create_contact("T1", by="UBOB", name="Grace Hopper", email="grace@navy.mil")
    slack.crm.create_lead("T1", by="UBOB", name="Grace Hoper", email="g.hopper@navy.mil")
    view = open_modal(slack, modals.open_convert, lead="L-1")
    accepted(submit(slack, view))
    (value,) = question(slack)[Action.CONVERT_ANYWAY.value]
    _, response_url, _ = slack.click(Action.CONVERT_ANYWAY.value, value)
    assert "into contact *C-2*" in slack.wait_reply(response_url).args["text"] + json.dumps(
        slack.wait_reply(response_url).args["blocks"]
    )
    assert slack.crm.show("T1", "C-2").record.name == "Grace Hoper"


def test_a_lead_nobody_knows_converts_at_once(slack: SlackSim) -> None:
    slack.crm.create_contact("T1", by="UBOB", name="Grace Hopper", email="grace@navy.mil")
    slack.crm.create_lead("T1", by="UBOB", name="Ada Lovelace", email="ada@gmail.com")
    view = open_modal(slack, modals.open_convert, lead="L-1")
    accepted(submit(slack, view))
    assert slack.fake.wait_for("chat.postEphemeral")
    (message,) = slack.fake.ephemerals(channel="C1", user="UBOB")
    assert "Converted" in message["text"]
    assert slack.crm.show("T1", "C-2").record.name == "Ada Lovelace"


def test_a_tampered_question_changes_nothing(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    _, response_url, _ = slack.click(Action.CONVERT_MERGE.value, '{"lead": 5}')
    assert "out of date" in json.dumps(slack.wait_reply(response_url).args)
    assert slack.crm.show("T1", "L-1").record.status.value == "new"  # type: ignore[union-attr]


def test_merge_with_another_account_named_keeps_the_contacts_own(slack: SlackSim) -> None:
    crm = slack.crm
    crm.create_contact("T1", by="UBOB", name="Ana Lima", email="ana@acme.com", account="Acme Corp")
    crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    result = crm.convert_lead(
        "T1", "L-1", by="UBOB", account_name="Globex", deal_name="Globex pilot", into_contact="C-1"
    )
    assert result.contact.ref == "C-1"
    assert result.contact.account_name == "Acme Corp"  # the contact's own account stays
    assert result.account is not None
    assert result.account.name == "Globex"  # the deal's
    assert crm.show("T1", "D-1").record.account_name == "Globex"  # type: ignore[union-attr]
    assert [h.ref for h in crm.find("T1", "Ana Lima")].count("C-2") == 0
