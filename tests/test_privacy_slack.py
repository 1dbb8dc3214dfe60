"""Private notes and restricted fields through the real app: signed requests in, and every
payload the fake Slack recorded for a viewer searched for the secrets they may not read."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest

from crmbot.domain import InteractionKind, Role
from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from tests.slackapp import SlackSim
from tests.test_forms import slack_state
from tests.test_modals import accepted, open_modal, submit, told

ADMIN, MANAGER, OWNER, OTHER = "UADMIN", "UMGR", "UBOB", "UCAROL"
NOTE = "PRIVMARK-Q7Z"
SECRETS = (NOTE, "acme-hidden", "98,765", "98765", "9,876", "555 0199", "5550199")


def settle(slack: SlackSim, quiet: float = 0.6, limit: float = 20.0) -> None:
    """Wait until the app has stopped calling Slack (charts upload after the text reply)."""
    deadline = time.monotonic() + limit
    seen, since = slack.fake.call_count, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = slack.fake.call_count
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the app kept calling Slack")


@pytest.fixture
def team(slack: SlackSim) -> SlackSim:
    """Bob owns lead L-1 and deal D-1 (98,765) and logged a private note on D-1 from the
    modal (`/crm log private …`); the admin restricted amount, email and phone in Settings."""
    slack.fake.add_user("T1", MANAGER, "mia", real_name="Mia Manager", tz="UTC")
    crm = slack.crm
    for user, name in ((MANAGER, "Mia Manager"), (OWNER, "Bob Rep"), (OTHER, "Carol Closer")):
        crm.upsert_rep("T1", user, name=name)
    crm.set_role("T1", MANAGER, Role.MANAGER, by=ADMIN)
    crm.create_lead(
        "T1",
        by=OWNER,
        name="Ana Lima",
        company="Acme",
        email="zq-secret@acme-hidden.example",
        phone="+1 415 555 0199",
    )
    crm.create_deal("T1", by=OWNER, name="Acme pilot", amount=Decimal("98765"), about="L-1")
    opened = slack.command(f"log private note D-1 {NOTE} they may be acquired", user=OWNER)
    view = opened.response["view"]
    assert slack_state(view)["private"]["private"]["selected_options"], "Private is ticked"
    accepted(submit(slack, view, user=OWNER, outcome=f"{NOTE} outcome"))
    assert NOTE in told(slack, user=OWNER)
    (note,) = crm.show("T1", "D-1").interactions
    assert note.private
    settings = open_modal(slack, modals.open_settings, user=ADMIN)
    accepted(submit(slack, settings, user=ADMIN, restricted=["amount", "email", "phone"]))
    assert crm.restricted_fields("T1") == {"amount", "email", "phone"}
    settle(slack)
    return slack


def everything_seen_by(slack: SlackSim, who: str) -> tuple[str, str]:
    """Run every read surface as `who`; all the app sent to Slack, and the picker's answer."""
    settle(slack)
    slack.fake.clear_calls()
    for text in (
        "show L-1",
        "show D-1",
        "find acme",
        "find zq-secret",
        "find 415 555",
        "find kind:deal",
        "find kind:lead owner:@bob",
        "history L-1",
        "history D-1",
        "pipeline team",
        "pipeline",
        "report week",
        "move acme proposal",  # a rep is refused; the reply must not leak either
    ):
        slack.command(text, user=who)
    _, url, _ = slack.click(Action.SHOW.value, "D-1", user=who)
    slack.wait_reply(url)
    slack.event({"type": "app_home_opened", "user": who, "channel": f"D{who}", "tab": "home"})
    slack.fake.wait_for("views.publish")
    picker = slack.options(Action.RECORD_PICKER.value, "zq-secret", user=who)
    settle(slack)
    sent = json.dumps([c.args for c in slack.fake.calls], ensure_ascii=False, default=str)
    return sent, picker.body


@pytest.mark.parametrize(
    ("who", "may_read"), [(ADMIN, True), (MANAGER, True), (OWNER, True), (OTHER, False)]
)
def test_no_payload_to_a_viewer_carries_what_they_may_not_read(
    team: SlackSim, who: str, may_read: bool
) -> None:
    sent, picker = everything_seen_by(team, who)
    if may_read:
        for secret in (NOTE, "acme-hidden", "98,765", "555 0199"):
            assert secret in sent, secret
        assert "Ana Lima" in picker
        return
    leaked = [secret for secret in SECRETS if secret in sent or secret in picker]
    assert leaked == [], leaked
    assert "Private note" in sent
    assert "hidden" in sent
    assert "Ana Lima" not in picker  # matched only through the restricted email
    assert "Amounts are visible to managers and admins only" in sent


def test_the_log_to_crm_shortcut_and_the_log_form_have_the_private_box(team: SlackSim) -> None:
    view = open_modal(
        team,
        modals.open_log_message,
        user=OWNER,
        text="SHORTCUT-SECRET from the thread",
        permalink="https://x.slack.com/archives/C1/p1",
    )
    accepted(submit(team, view, user=OWNER, record="L-1", private=["private"]))
    plain = open_modal(team, modals.open_log, user=OWNER, kind=InteractionKind.CALL, record="L-1")
    accepted(submit(team, plain, user=OWNER, notes="PLAIN-CALL"))
    as_other = repr(team.crm.show("T1", "L-1", by=OTHER).interactions)
    assert "SHORTCUT-SECRET" not in as_other
    assert "PLAIN-CALL" in as_other
    assert "SHORTCUT-SECRET" in repr(team.crm.show("T1", "L-1", by=OWNER).interactions)


def test_a_rep_cannot_restrict_fields_from_settings(team: SlackSim) -> None:
    team.crm.set_role("T1", OTHER, Role.ADMIN, by=ADMIN)  # Carol may open the modal…
    view = open_modal(team, modals.open_settings, user=OTHER)
    team.crm.set_role("T1", OTHER, Role.REP, by=ADMIN)  # …but is a rep when she saves
    answer = submit(team, view, user=OTHER, restricted=[])
    errors: dict[str, Any] = answer.json()["errors"]
    assert list(errors.values()) == ["Only admins can change settings."]
    assert team.crm.restricted_fields("T1") == {"amount", "email", "phone"}


def test_a_web_leads_channel_notice_leaves_out_restricted_fields(slack: SlackSim) -> None:
    from tests.test_intake import ANA, send

    slack.crm.set_intake_channel("T1", "C1", by=ADMIN)
    slack.crm.set_restricted_fields("T1", ["email", "phone"], by=ADMIN)
    answer = send(slack)
    assert answer.status == 201, answer
    owner = answer.json()["owner"]
    posted = {
        c.args["channel"]: json.dumps(c.args) for c in slack.fake.wait_for("chat.postMessage", 2)
    }
    assert "L-1" in posted["C1"]
    assert ANA["email"] not in posted["C1"]
    assert "555 0100" not in posted["C1"]
    assert ANA["message"] in posted["C1"]
    assert "L-1" in posted[f"D{owner}"]  # the owner's DM: their own lead


def test_the_duplicate_question_hides_the_known_leads_restricted_email(team: SlackSim) -> None:
    theirs = json.dumps(team.command("lead Ana Lima at Acme", user=OTHER).args)
    assert "Merge into" in theirs
    assert "L-1" in theirs
    assert "acme-hidden" not in theirs
    mine = json.dumps(team.command("lead Ana Lima at Acme", user=OWNER).args)
    assert "acme-hidden" in mine
