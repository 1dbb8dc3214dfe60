"""`/crm history` and `/crm undo` on both engines, and through Slack."""

from __future__ import annotations

import pytest

from crmbot.domain import Conflict, DealStatus, FollowUpStatus
from crmbot.service import CrmService
from crmbot.service.undo import NothingToUndo
from tests.slackapp import SlackSim
from tests.test_slack_commands import reply_text

from .conftest import Clock

WS = "T1"


def test_undo_reverts_an_update_and_says_exactly_what(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima", company="Acme")
    crm.update(WS, "L-1", by="UBOB", company="Globex", phone="+1 415 555 0100")
    undone = crm.undo(WS, by="UBOB")
    assert (undone.ref, undone.action) == ("L-1", "update")
    assert {(c.field, c.before, c.after) for c in undone.changes} == {
        ("company", "Globex", "Acme"),
        ("phone", "+1 415 555 0100", None),
    }
    lead = crm.show(WS, "L-1").record
    assert (lead.company, lead.phone) == ("Acme", None)  # type: ignore[union-attr]


def test_undo_of_a_move_puts_the_deal_back_and_forgets_the_stage_stint(
    crm: CrmService, clock: Clock
) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", amount=None, stage="Proposal")
    clock.advance(minutes=5)
    crm.move_deal(WS, "D-1", "Negotiation", by="UBOB")
    undone = crm.undo(WS, by="UBOB")
    assert [(c.field, c.before, c.after) for c in undone.changes] == [
        ("stage", "Negotiation", "Proposal")
    ]
    report = crm.pipeline_report(WS)
    assert {r.stage: r.count for r in report.stages}["Proposal"] == 1
    assert all(r.stints == 0 for r in report.stages)  # the reverted move left no stint


def test_undo_of_a_win_reopens_the_deal(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", stage="Negotiation")
    crm.close_deal(WS, "D-1", by="UBOB", won=True)
    crm.undo(WS, by="UBOB")
    deal = crm.show(WS, "D-1").record
    assert (deal.status, deal.stage) == (DealStatus.OPEN, "Negotiation")  # type: ignore[union-attr]


def test_undo_of_a_loss_clears_the_reason(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal")
    crm.close_deal(WS, "D-1", by="UBOB", won=False, reason="budget")
    undone = crm.undo(WS, by="UBOB")
    assert ("lost reason", "budget", None) in {(c.field, c.before, c.after) for c in undone.changes}
    assert crm.show(WS, "D-1").record.lost_reason is None  # type: ignore[union-attr]


def test_undo_of_a_creation_soft_deletes_the_record(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Oops Typo")
    undone = crm.undo(WS, by="UBOB")
    assert undone.action == "create"
    assert crm.find(WS, "Oops Typo") == ()
    assert crm.restore(WS, "L-1", by="UADMIN").name == "Oops Typo"


def test_undo_of_an_assignment_gives_the_record_back(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima")
    crm.assign(WS, "L-1", "UADMIN", by="UBOB")
    undone = crm.undo(WS, by="UBOB")
    assert [(c.field, c.before, c.after, c.is_user) for c in undone.changes] == [
        ("owner", "UADMIN", "UBOB", True)
    ]
    assert crm.find(WS, "Ana Lima")[0].owner_id == "UBOB"


def test_follow_up_done_and_snooze_are_undone(crm: CrmService, clock: Clock) -> None:
    created = crm.create_follow_up(WS, by="UBOB", about=None, when="tomorrow 9am", title="Call")
    due = created.follow_up.due_at
    crm.snooze_follow_up(WS, "T-1", by="UBOB", when="in 3 days")
    crm.undo(WS, by="UBOB")
    assert crm.tasks(WS, owner_id="UBOB").upcoming[0].due_at == due
    crm.complete_follow_up(WS, "T-1", by="UBOB")
    crm.undo(WS, by="UBOB")
    assert crm.tasks(WS, owner_id="UBOB").upcoming[0].status is FollowUpStatus.OPEN


def test_a_second_undo_goes_one_change_further_back(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima")
    crm.update(WS, "L-1", by="UBOB", company="Acme")
    crm.update(WS, "L-1", by="UBOB", company="Globex")
    assert crm.undo(WS, by="UBOB").changes[0].after == "Acme"
    assert crm.undo(WS, by="UBOB").changes[0].after is None
    assert crm.undo(WS, by="UBOB").action == "create"
    with pytest.raises(NothingToUndo):
        crm.undo(WS, by="UBOB")


def test_changes_older_than_fifteen_minutes_are_not_undone(crm: CrmService, clock: Clock) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima")
    clock.advance(minutes=16)
    with pytest.raises(NothingToUndo, match="15 minutes") as caught:
        crm.undo(WS, by="UBOB")
    assert "L-1" in caught.value.message
    assert crm.find(WS, "Ana Lima")


def test_undo_only_ever_reverts_your_own_change(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima")
    crm.update(WS, "L-1", by="UADMIN", company="Acme")
    with pytest.raises(Conflict, match="Ada Admin changed L-1"):
        crm.undo(WS, by="UBOB")  # Bob's creation has Ada's change on top of it
    crm.undo(WS, by="UADMIN")
    assert crm.show(WS, "L-1").record.company is None  # type: ignore[union-attr]
    with pytest.raises(NothingToUndo):
        crm.undo(WS, by="UCAROL")


def test_a_conversion_cannot_be_undone_and_says_so(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima", company="Acme")
    crm.convert_lead(WS, "L-1", by="UBOB")
    with pytest.raises(NothingToUndo, match="conversion of L-1"):
        crm.undo(WS, by="UBOB")


def test_undo_never_reaches_into_another_workspace(crm: CrmService) -> None:
    crm.create_lead("T2", by="UBOB", name="Elsewhere")
    with pytest.raises(NothingToUndo):
        crm.undo(WS, by="UBOB")
    assert crm.find("T2", "Elsewhere")


def test_history_shows_who_changed_what_before_and_after(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Renewal", stage="Proposal")
    crm.move_deal(WS, "D-1", "Negotiation", by="UADMIN")
    crm.undo(WS, by="UADMIN")
    history = crm.record_history(WS, "D-1")
    assert [(e.actor, e.action, e.undoes) for e in history.entries] == [
        ("UADMIN", "undo", "move"),
        ("UADMIN", "move", None),
        ("UBOB", "create", None),
    ]
    assert [(c.field, c.before, c.after) for c in history.entries[1].changes] == [
        ("stage", "Proposal", "Negotiation")
    ]


def test_history_and_undo_through_slack(slack: SlackSim) -> None:
    slack.command("deal Acme renewal 50k proposal")
    slack.command("move D-1 negotiation")
    history = reply_text(slack.command("history D-1"))
    assert "Proposal → Negotiation" in history
    assert "<@UBOB>" in history
    undo = reply_text(slack.command("undo"))
    assert "Undid your move of *D-1*" in undo
    assert "Negotiation → back to Proposal" in undo
    assert slack.crm.show("T1", "D-1").record.stage == "Proposal"  # type: ignore[union-attr]
    assert "undid the move" in reply_text(slack.command("history D-1"))


def test_undo_with_nothing_to_undo_answers_plainly_through_slack(slack: SlackSim) -> None:
    reply = slack.command("undo", user="UCAROL")
    assert reply.args["response_type"] == "ephemeral"
    assert "no recent change to undo" in reply_text(reply)
