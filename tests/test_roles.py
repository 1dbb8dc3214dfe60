"""The role matrix: every mutating verb x admin / manager / rep x own / someone else's record.

Reps change only what they own; managers and admins change any record of the workspace (a
manager put in a team changes only that team's records, see the team matrix below); only admins
change settings, roles, teams and intake tokens, and delete or restore. Creating, logging and
claiming are open to all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crmbot.domain import PermissionDenied, Role
from crmbot.service import CrmService
from tests.slackapp import SlackSim

ADMIN, MANAGER, REP = "UADMIN", "UMGR", "UBOB"
OTHER = "UCAROL"  # a second rep, the owner of "someone else's" records
ROLES = {"admin": ADMIN, "manager": MANAGER, "rep": REP}

Verb = Callable[[CrmService, str], Any]


@pytest.fixture
def team(crm: CrmService) -> CrmService:
    crm.upsert_rep("T1", MANAGER, name="Mia Manager")
    crm.upsert_rep("T1", OTHER, name="Carol Closer")
    crm.upsert_rep("T1", "UDAN", name="Dan Rep")
    crm.set_role("T1", MANAGER, Role.MANAGER, by=ADMIN)
    return crm


def records_owned_by(crm: CrmService, owner: str) -> None:
    """L-1 (with follow-up T-1) and D-1, all owned by `owner`."""
    crm.create_lead("T1", by=owner, name="Ana Lima", company="Lima Ltd")
    crm.create_deal("T1", by=owner, name="Big deal", amount=None)
    crm.create_follow_up("T1", by=owner, about="L-1", when="tomorrow 9am")


# Verbs on a record: the owner, a manager or an admin.
OWNED: dict[str, Verb] = {
    "edit": lambda crm, by: crm.update("T1", "L-1", by=by, company="Acme"),
    "reassign": lambda crm, by: crm.assign("T1", "L-1", "UDAN", by=by),
    "reassign a follow-up": lambda crm, by: crm.assign("T1", "T-1", "UDAN", by=by),
    "move": lambda crm, by: crm.move_deal("T1", "D-1", "Proposal", by=by),
    "close won": lambda crm, by: crm.close_deal("T1", "D-1", by=by, won=True),
    "close lost": lambda crm, by: crm.close_deal("T1", "D-1", by=by, won=False, reason="price"),
    "convert": lambda crm, by: crm.convert_lead("T1", "L-1", by=by),
    "complete": lambda crm, by: crm.complete_follow_up("T1", "T-1", by=by),
    "cancel": lambda crm, by: crm.cancel_follow_up("T1", "T-1", by=by),
    "snooze": lambda crm, by: crm.snooze_follow_up("T1", "T-1", by=by, when="in 2 days"),
    "snooze to monday": lambda crm, by: crm.snooze_until_next("T1", "T-1", by=by),
    "merge a duplicate": lambda crm, by: crm.merge_into("T1", "L-1", by=by, company="New Co"),
    "give a follow-up on it": lambda crm, by: crm.create_follow_up(
        "T1", by=by, about="L-1", when="tomorrow", owner_id="UDAN"
    ),
}

# Open to every role, whoever owns the record.
OPEN: dict[str, Verb] = {
    "create a lead": lambda crm, by: crm.create_lead("T1", by=by, name="Someone New"),
    "log an interaction": lambda crm, by: crm.log_interaction(
        "T1", by=by, kind="call", about="L-1", summary="rang"
    ),
    "add a follow-up for yourself": lambda crm, by: crm.create_follow_up(
        "T1", by=by, about="L-1", when="tomorrow"
    ),
    "claim from intake": lambda crm, by: crm.claim_lead("T1", "L-1", by=by),
    "mark yourself away": lambda crm, by: crm.set_away("T1", by, None, by=by),
}

# Managers and admins only, whoever owns the record.
MANAGERS: dict[str, Verb] = {
    "give a follow-up with no record": lambda crm, by: crm.create_follow_up(
        "T1", by=by, about=None, when="tomorrow", owner_id="UDAN"
    ),
    "mark someone else away": lambda crm, by: crm.set_away("T1", "UDAN", None, by=by),
}


# Admins only.
ADMINS: dict[str, Verb] = {
    "delete": lambda crm, by: crm.delete("T1", "L-1", by=by),
    "restore": lambda crm, by: crm.restore("T1", "L-1", by=by),
    "change a role": lambda crm, by: crm.set_role("T1", "UDAN", Role.MANAGER, by=by),
    "put someone in a team": lambda crm, by: crm.set_team("T1", "UDAN", "EMEA", by=by),
    "change reminder settings": lambda crm, by: crm.configure_reminders(
        "T1", by=by, digest_time="08:00"
    ),
    "rotate the intake token": lambda crm, by: crm.rotate_intake_token("T1", by=by),
    "set the intake channel": lambda crm, by: crm.set_intake_channel("T1", "C9", by=by),
    "set the response time": lambda crm, by: crm.set_response_sla("T1", 30, by=by),
    "set a territory rule": lambda crm, by: crm.set_territory_rule(
        "T1", "region", "EMEA", ["UDAN"], by=by
    ),
}


def allowed(group: str, role: str, own: bool) -> bool:
    if group == "owned":
        return role != "rep" or own
    if group == "open":
        return True
    if group == "managers":
        return role != "rep"
    return role == "admin"


CASES = [
    pytest.param(group, name, verb, role, own, id=f"{role}-{'own' if own else 'other'}-{name}")
    for group, verbs in (
        ("owned", OWNED),
        ("open", OPEN),
        ("managers", MANAGERS),
        ("admins", ADMINS),
    )
    for name, verb in verbs.items()
    for role in ROLES
    for own in (True, False)
]


# What must be true before a verb can run at all.
PREPARE: dict[str, Verb] = {"restore": lambda crm, by: crm.delete("T1", "L-1", by=by)}


@pytest.mark.parametrize(("group", "name", "verb", "role", "own"), CASES)
def test_each_role_may_do_exactly_what_the_rule_allows(
    team: CrmService, group: str, name: str, verb: Verb, role: str, own: bool
) -> None:
    actor = ROLES[role]
    records_owned_by(team, actor if own else OTHER)
    if name in PREPARE:
        PREPARE[name](team, ADMIN)
    before = (team.history("T1", "L-1"), team.history("T1", "D-1"), team.history("T1", "T-1"))
    if allowed(group, role, own):
        verb(team, actor)
        return
    with pytest.raises(PermissionDenied):
        verb(team, actor)
    after = (team.history("T1", "L-1"), team.history("T1", "D-1"), team.history("T1", "T-1"))
    assert after == before


def test_a_denial_names_the_owner_and_the_record(team: CrmService) -> None:
    records_owned_by(team, OTHER)
    with pytest.raises(PermissionDenied) as denied:
        team.move_deal("T1", "D-1", "Proposal", by=REP)
    assert str(denied.value) == (
        "Only the owner (@Carol Closer), a manager or an admin can move D-1."
    )


def test_a_demoted_manager_loses_the_right_at_once(team: CrmService) -> None:
    records_owned_by(team, OTHER)
    team.update("T1", "L-1", by=MANAGER, company="Acme")
    team.set_role("T1", MANAGER, Role.REP, by=ADMIN)
    with pytest.raises(PermissionDenied):
        team.update("T1", "L-1", by=MANAGER, company="Other")
    assert team.show("T1", "L-1").record.company == "Acme"


def test_a_rep_cannot_move_someone_elses_deal_from_slack(slack: SlackSim) -> None:
    slack.crm.upsert_rep("T1", "UBOB", name="Bob Rep")
    slack.crm.create_deal("T1", by="UBOB", name="Bob's deal", amount=None)
    reply = slack.command("move D-1 proposal", user="UCAROL")
    text = reply.args["text"]
    assert reply.args.get("response_type", "ephemeral") == "ephemeral"
    assert "Only the owner (@Bob Rep), a manager or an admin can move D-1." in text
    assert slack.crm.show("T1", "D-1").record.stage == "Prospecting"


# The team matrix: a manager's team against the record owner's team, for every owned verb.
TEAMS = [
    # (the manager's team, the owner's team, may the manager act?)
    (None, None, True),  # a manager without a team manages the whole workspace
    (None, "US", True),
    ("EMEA", "EMEA", True),
    ("EMEA", "US", False),
    ("EMEA", None, False),  # a teamless owner belongs to workspace-wide managers only
]


@pytest.mark.parametrize(("manager_team", "owner_team", "may"), TEAMS)
@pytest.mark.parametrize("name", sorted(OWNED))
def test_a_manager_with_a_team_acts_on_that_teams_records_only(
    team: CrmService, name: str, manager_team: str | None, owner_team: str | None, may: bool
) -> None:
    team.set_team("T1", MANAGER, manager_team, by=ADMIN)
    team.set_team("T1", OTHER, owner_team, by=ADMIN)
    records_owned_by(team, OTHER)
    before = (team.history("T1", "L-1"), team.history("T1", "D-1"), team.history("T1", "T-1"))
    if may:
        OWNED[name](team, MANAGER)
        return
    with pytest.raises(PermissionDenied) as denied:
        OWNED[name](team, MANAGER)
    assert "@Carol Closer" in str(denied.value)
    after = (team.history("T1", "L-1"), team.history("T1", "D-1"), team.history("T1", "T-1"))
    assert after == before


def test_a_team_manager_may_still_act_on_their_own_records(team: CrmService) -> None:
    team.set_team("T1", MANAGER, "EMEA", by=ADMIN)
    team.create_deal("T1", by=MANAGER, name="Mia's deal", amount=None)
    team.move_deal("T1", "D-1", "Proposal", by=MANAGER)
    assert team.show("T1", "D-1").record.stage == "Proposal"


def test_a_team_denial_names_the_team(team: CrmService) -> None:
    team.set_team("T1", MANAGER, "EMEA", by=ADMIN)
    team.set_team("T1", OTHER, "US", by=ADMIN)
    records_owned_by(team, OTHER)
    with pytest.raises(PermissionDenied) as denied:
        team.move_deal("T1", "D-1", "Proposal", by=MANAGER)
    assert str(denied.value) == (
        "Only the owner (@Carol Closer), a manager of team US or an admin can move D-1."
    )


def test_team_names_are_cleaned_and_can_be_removed(team: CrmService) -> None:
    assert team.set_team("T1", OTHER, "  EMEA  ", by=ADMIN).team == "EMEA"
    assert team.set_team("T1", OTHER, "", by=ADMIN).team is None
    assert team.set_team("T1", OTHER, None, by=ADMIN).team is None
