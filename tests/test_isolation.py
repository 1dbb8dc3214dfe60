"""Tenant isolation: workspace T2 tries every Slack surface with T1's references.

Each attempt must read exactly like a reference that exists nowhere (the same reply, with
the reference swapped) and must write nothing to T1.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from crmbot.service import CrmService
from tests.slackapp import INTAKE_TOKEN, SlackSim
from tests.test_forms import slack_state
from tests.test_modals import open_modal

EVE = {"user": "UEVE", "team": "T2", "channel": "C2"}
UNKNOWN = {"L-1": "L-98", "D-1": "D-98", "T-1": "T-98"}


@pytest.fixture
def t1(slack: SlackSim) -> SlackSim:
    """T1 holds Bob's lead L-1, deal D-1 and follow-up T-1; Eve is T2's admin, with no records."""
    crm = slack.crm
    crm.upsert_rep("T1", "UBOB", name="Bob Rep")
    crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Lima Ltd", email="ana@lima.io")
    crm.create_deal("T1", by="UBOB", name="Lima renewal", amount=None, about="L-1")
    crm.create_follow_up("T1", by="UBOB", about="L-1", when="tomorrow 9am", title="call Ana")
    crm.ensure_workspace("T2")
    crm.upsert_rep("T2", "UEVE", name="Eve Other")  # the first rep of T2: its admin
    return slack


def state_of(crm: CrmService) -> Any:
    """Everything about T1's records an attack could change."""
    return (
        [crm.show("T1", ref) for ref in ("L-1", "D-1")],
        [crm.history("T1", ref) for ref in ("L-1", "D-1", "T-1")],
        crm.follow_up("T1", "T-1"),
        crm.find("T1", "lima"),
    )


def unknown(text: str) -> str:
    for ref, other in UNKNOWN.items():
        text = text.replace(other, "REF").replace(ref, "REF")
    return text


def normalized(call: Any) -> str | None:
    if call is None:
        return None
    args = {k: v for k, v in call.args.items() if k not in ("trigger_id", "view_id")}
    return unknown(json.dumps(args, sort_keys=True))


def reply_or_none(slack: SlackSim, response_url: str, trigger: str) -> Any:
    try:
        return slack.wait_reply(response_url, trigger, timeout=3)
    except AssertionError:
        return None


COMMANDS = [
    "show L-1",
    "find Ana Lima",
    "move D-1 proposal",
    "won D-1",
    "lost D-1 went elsewhere",
    "assign L-1 @eve",
    "assign T-1 @eve",
    "followup L-1 tomorrow 9am call",
    "history L-1",
    "history T-1",
    "delete L-1",
    "restore L-1",
    "convert L-1",
    "log call L-1 talked",
    "done T-1",
]


@pytest.mark.parametrize("text", COMMANDS)
def test_a_command_with_another_workspaces_ref_reads_as_an_unknown_ref(
    t1: SlackSim, text: str
) -> None:
    before = state_of(t1.crm)
    attempt = t1.command(text, **EVE)
    assert "Lima Ltd" not in json.dumps(attempt.args)
    assert "Bob" not in json.dumps(attempt.args)
    nowhere = text
    for ref, other in UNKNOWN.items():
        nowhere = nowhere.replace(ref, other)
    assert normalized(attempt) == normalized(t1.command(nowhere, **EVE))
    assert state_of(t1.crm) == before


REF_ACTIONS = [
    (Action.SHOW, "L-1"),
    (Action.SHOW, "D-1"),
    (Action.LOG_CALL, "L-1"),
    (Action.FOLLOW_UP, "L-1"),
    (Action.MOVE, "D-1"),
    (Action.ASSIGN, "L-1"),
    (Action.ASSIGN, "T-1"),
    (Action.CONVERT, "L-1"),
    (Action.DONE, "T-1"),
    (Action.SNOOZE_HOUR, "T-1"),
    (Action.SNOOZE_DAY, "T-1"),
    (Action.SNOOZE_WEEK, "T-1"),
    (Action.SNOOZE_MONDAY, "T-1"),
    (Action.RESCHEDULE, "T-1"),
    (Action.LOG_NEXT, "T-1"),
    (Action.CLAIM, "L-1"),
    (Action.PICK, "L-1"),
]


@pytest.mark.parametrize(("action", "ref"), REF_ACTIONS)
def test_a_button_with_another_workspaces_ref_reads_as_an_unknown_ref(
    t1: SlackSim, action: Action, ref: str
) -> None:
    before = state_of(t1.crm)
    _, url, trigger = t1.click(action.value, ref, **EVE)
    attempt = reply_or_none(t1, url, trigger)
    _, url, trigger = t1.click(action.value, UNKNOWN[ref], **EVE)
    assert normalized(attempt) == normalized(reply_or_none(t1, url, trigger))
    assert "Ana Lima" not in json.dumps(attempt.args if attempt else {})
    assert state_of(t1.crm) == before


def _move(slack: SlackSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return open_modal(slack, modals.open_move, deal="D-1"), {"stage": "Proposal"}


def _assign(slack: SlackSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return open_modal(slack, modals.open_assign, ref="L-1"), {"owner": "UEVE"}


def _follow_up(slack: SlackSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return open_modal(slack, modals.open_follow_up, ref="L-1"), {}


def _convert(slack: SlackSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return open_modal(slack, modals.open_convert, lead="L-1"), {}


def _log(slack: SlackSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return open_modal(slack, modals.open_log), {"record": "L-1", "notes": "hi"}


@pytest.mark.parametrize("opener", [_move, _assign, _follow_up, _convert, _log])
def test_a_modal_submitted_from_another_workspace_reads_as_an_unknown_ref(
    t1: SlackSim, opener: Any
) -> None:
    """The view was opened in T1 (private_metadata and picks name T1's refs); T2 submits it."""
    view, typed = opener(t1)
    # A view T2 opened: Slack stamps the installing team, so only the refs inside are T1's.
    view = {**view, "team_id": "T2", "app_installed_team_id": "T2"}
    before = state_of(t1.crm)
    attempt = t1.submit(view, slack_state(view, **typed), user="UEVE", team="T2")
    swapped = json.loads(json.dumps(view).replace("L-1", "L-98").replace("D-1", "D-98"))
    retyped = {k: UNKNOWN.get(v, v) if isinstance(v, str) else v for k, v in typed.items()}
    nowhere = t1.submit(swapped, slack_state(swapped, **retyped), user="UEVE", team="T2")
    assert (attempt.status, unknown(attempt.body)) == (nowhere.status, unknown(nowhere.body))
    assert state_of(t1.crm) == before


def test_type_ahead_from_another_workspace_suggests_none_of_its_records(t1: SlackSim) -> None:
    for typed in ("ana", "L-1", "D-1", "lima"):
        answer = t1.options(Action.RECORD_PICKER.value, typed, user="UEVE", team="T2")
        assert answer.json()["options"] == [], typed


def test_the_intake_token_of_one_workspace_only_writes_to_that_workspace(t1: SlackSim) -> None:
    """T1's token files leads in T1, whatever the body says; T2's token only in T2."""
    before = t1.crm.find("T2", "Zed")
    form = {"name": "Zed Zero", "email": "zed@zero.io", "team_id": "T2", "workspace": "T2"}
    answer = t1.post(
        json.dumps(form).encode(),
        "application/json",
        path="/intake/lead",
        headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
    )
    assert answer.status == 201, answer
    assert t1.crm.find("T2", "Zed") == before
    assert t1.crm.find("T1", "Zed")[0].name == "Zed Zero"
