"""Private notes and restricted fields: who reads what, surface by surface (issue 7, item 2).

The visibility matrix: every read surface of the service x admin / manager / the rep who owns
the records / another rep. A private note is read by whoever logged it, the owner of its record,
managers and admins; a restricted field by the record's owner, managers and admins. Everyone
else sees that a private note exists, and counts without the restricted amounts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from crmbot import cli
from crmbot.csvmap import Kind
from crmbot.domain import AmbiguousName, InteractionKind, InvalidInput, PermissionDenied, Role
from crmbot.exporter import export_csv
from crmbot.handlers import forms
from crmbot.handlers import modal_views as views
from crmbot.handlers.command_text import Log, parse_command
from crmbot.service import CrmService
from crmbot.store.db import Database
from tests.test_forms import STAGES, slack_state

ADMIN, MANAGER, OWNER, OTHER = "UADMIN", "UMGR", "UBOB", "UCAROL"
VIEWERS = {"admin": ADMIN, "manager": MANAGER, "rep-owner": OWNER, "rep-other": OTHER}
NOTE = "PRIVMARK-Q7Z"  # only ever in the private note's text and outcome
OLD_EMAIL = "zq-old@acme-hidden.example"
EMAIL = "zq-secret@acme-hidden.example"
PHONE = "+1 415 555 0199"
AMOUNT = Decimal("98765")
WON = Decimal("4321")


@pytest.fixture
def world(crm: CrmService, clock: object) -> CrmService:
    """Bob (a rep) owns lead L-1, open deal D-1 (98,765) and won deal D-2 (4,321); a private
    note and a public call on D-1; then the admin restricts amount, email and phone."""
    crm.upsert_rep("T1", ADMIN, name="Ada Admin")  # the first rep: admin
    crm.upsert_rep("T1", MANAGER, name="Mia Manager")
    crm.upsert_rep("T1", OWNER, name="Bob Rep")
    crm.upsert_rep("T1", OTHER, name="Carol Closer")
    crm.set_role("T1", MANAGER, Role.MANAGER, by=ADMIN)
    crm.create_lead("T1", by=OWNER, name="Ana Lima", company="Acme", email=OLD_EMAIL, phone=PHONE)
    crm.update("T1", "L-1", by=OWNER, email=EMAIL)  # the history holds an email change
    crm.create_deal(
        "T1", by=OWNER, name="Acme pilot", amount=AMOUNT, about="L-1", close_date=date(2026, 12, 10)
    )
    crm.create_deal("T1", by=OWNER, name="Acme renewal", amount=WON)
    crm.close_deal("T1", "D-2", by=OWNER, won=True)
    crm.log_interaction(
        "T1",
        by=OWNER,
        kind="note",
        about="D-1",
        summary=f"{NOTE} they may be acquired",
        outcome=f"{NOTE} outcome",
        duration_minutes=17,
        private=True,
    )
    crm.log_interaction("T1", by=OWNER, kind="call", about="D-1", summary="public call")
    crm.set_restricted_fields("T1", ["amount", "email", "phone"], by=ADMIN)
    return crm


# Each surface: what the viewer gets, as text, and the strings that only a reader may see.
Surface = tuple[Callable[[CrmService, str], object], tuple[str, ...]]
SURFACES: dict[str, Surface] = {
    "card: private note": (lambda c, who: c.show("T1", "D-1", by=who).interactions, (NOTE,)),
    "card: deal amount": (lambda c, who: c.show("T1", "D-1", by=who).record, ("98765",)),
    "card: lead email and phone": (
        lambda c, who: c.show("T1", "L-1", by=who).record,
        ("acme-hidden", "555 0199"),
    ),
    "card of the lead: the note on its deal": (
        lambda c, who: c.show("T1", "L-1", by=who).interactions,
        (NOTE,),
    ),
    "search: detail line": (lambda c, who: c.find("T1", "acme", by=who), ("98,765", "acme-hidden")),
    "search: by a restricted email": (
        lambda c, who: [h.ref for h in c.find("T1", "zq-secret", by=who)],
        ("L-1",),
    ),
    "search: by a restricted phone": (
        lambda c, who: [h.ref for h in c.find("T1", "415 555", by=who)],
        ("L-1",),
    ),
    "find with filters": (
        lambda c, who: c.find_records("T1", by=who, filters=[("kind", "deal")]).hits,
        ("98,765",),
    ),
    "find with filters, by a restricted email": (
        lambda c, who: [h.ref for h in c.find_records("T1", by=who, text="zq-secret").hits],
        ("L-1",),
    ),
    "history": (lambda c, who: c.record_history("T1", "L-1", by=who), ("acme-hidden",)),
    "history events": (lambda c, who: c.history("T1", "L-1", by=who), ("acme-hidden",)),
    "history of the deal": (lambda c, who: c.history("T1", "D-1", by=who), ("98765",)),
    "pipeline report": (
        lambda c, who: c.pipeline_report("T1", team=True, by=who),
        ("98765", "9876.5"),  # the amount, and weighted at 10 %
    ),
    "pipeline (App Home)": (lambda c, who: c.pipeline("T1", by=who), ("98765", "9876.5")),
    "period report": (lambda c, who: c.activity_report("T1", "week", by=who), ("4321",)),
}


@pytest.mark.parametrize("role", list(VIEWERS))
@pytest.mark.parametrize("surface", list(SURFACES))
def test_each_viewer_reads_exactly_what_the_rule_allows(
    world: CrmService, surface: str, role: str
) -> None:
    read, secrets = SURFACES[surface]
    seen = repr(read(world, VIEWERS[role]))
    may_read = role != "rep-other"
    for secret in secrets:
        assert (secret in seen) is may_read, (surface, role, secret, seen[:2000])


def test_others_see_that_a_private_note_exists_and_who_wrote_it_when(world: CrmService) -> None:
    public, hidden = world.show("T1", "D-1", by=OTHER).interactions  # newest first
    _, full = world.show("T1", "D-1", by=OWNER).interactions
    assert (hidden.private, hidden.hidden, hidden.kind, hidden.logged_by) == (
        True,
        True,
        "note",
        OWNER,
    )
    assert hidden.occurred_at == full.occurred_at
    assert (hidden.summary, hidden.outcome, hidden.duration_minutes) == ("", None, None)
    assert (public.summary, public.hidden) == ("public call", False)
    assert (full.private, full.hidden, full.duration_minutes) == (True, False, 17)


def test_the_rep_who_logged_a_private_note_and_the_records_owner_both_read_it(
    world: CrmService,
) -> None:
    world.upsert_rep("T1", "UDAN", name="Dan Rep")
    world.log_interaction(
        "T1", by=OTHER, kind="call", about="D-1", summary="CAROLS-OWN-NOTE", private=True
    )
    readers = {
        who: "CAROLS-OWN-NOTE" in repr(world.show("T1", "D-1", by=who).interactions)
        for who in (ADMIN, MANAGER, OWNER, OTHER, "UDAN")
    }
    assert readers == {ADMIN: True, MANAGER: True, OWNER: True, OTHER: True, "UDAN": False}


def test_a_reassigned_record_shows_its_restricted_fields_to_the_new_owner(
    world: CrmService,
) -> None:
    assert world.show("T1", "D-1", by=OTHER).record.amount is None
    world.assign("T1", "D-1", OTHER, by=MANAGER)
    assert world.show("T1", "D-1", by=OTHER).record.amount is not None
    assert world.show("T1", "D-1", by=OWNER).record.amount is None


def test_counts_stay_whole_when_amounts_are_hidden(world: CrmService) -> None:
    mine = world.pipeline_report("T1", team=True, by=OWNER)
    theirs = world.pipeline_report("T1", team=True, by=OTHER)
    assert theirs.open_count == mine.open_count == 1
    assert (theirs.totals, theirs.hidden_amounts, mine.hidden_amounts) == ((), 1, 0)
    report = world.activity_report("T1", "week", by=OTHER)
    assert (report.deals_won.now, report.won_amounts, report.hidden_amounts) == (1, (), 1)
    home = world.pipeline("T1", by=OTHER)
    assert (sum(s.count for s in home.stages), home.totals, home.hidden_amounts) == (1, (), 1)


def test_a_reps_own_deals_still_count_in_their_totals(world: CrmService) -> None:
    world.create_deal("T1", by=OTHER, name="Carol's deal", amount=Decimal("1000"))
    theirs = world.pipeline_report("T1", team=True, by=OTHER)
    assert [str(m) for m in theirs.totals] == ["USD 1,000.00"]
    assert theirs.hidden_amounts == 1
    assert [str(m) for m in world.pipeline_report("T1", by=ADMIN).totals] == ["USD 99,765.00"]


def test_without_restrictions_every_rep_reads_every_field(world: CrmService) -> None:
    world.set_restricted_fields("T1", [], by=ADMIN)
    assert world.restricted_fields("T1") == frozenset()
    card = world.show("T1", "D-1", by=OTHER)
    assert card.record.amount is not None
    assert NOTE not in repr(card.interactions)  # private notes stay private regardless
    assert world.find("T1", "zq-secret", by=OTHER)[0].ref == "L-1"


def test_only_admins_choose_restricted_fields(world: CrmService) -> None:
    for who in (MANAGER, OWNER):
        with pytest.raises(PermissionDenied, match="Only admins"):
            world.set_restricted_fields("T1", ["amount"], by=who)
    with pytest.raises(InvalidInput, match="not a field that can be restricted"):
        world.set_restricted_fields("T1", ["amount", "salary"], by=ADMIN)
    assert world.restricted_fields("T1") == {"amount", "email", "phone"}
    assert world.set_restricted_fields("T1", [" Amount "], by=ADMIN) == {"amount"}
    assert world.show("T1", "L-1", by=OTHER).record.email == EMAIL


def test_a_rep_cannot_sort_other_peoples_deals_by_a_hidden_amount(world: CrmService) -> None:
    with pytest.raises(PermissionDenied, match="sort by amount"):
        world.find_records("T1", by=OTHER, filters=[("sort", "amount")])
    assert world.find_records("T1", by=MANAGER, filters=[("sort", "amount")]).hits


def test_a_pick_list_for_an_ambiguous_name_hides_restricted_details(world: CrmService) -> None:
    world.create_deal("T1", by=OWNER, name="Acme pilot", amount=Decimal("55555"))
    with pytest.raises(AmbiguousName) as theirs:
        world.show("T1", "acme pilot", by=OTHER)
    assert "98,765" not in repr(theirs.value.candidates)
    assert "55,555" not in repr(theirs.value.candidates)
    with pytest.raises(AmbiguousName) as moved:
        world.move_deal("T1", "acme pilot", "Proposal", by=OTHER)
    assert "98,765" not in repr(moved.value.candidates)
    with pytest.raises(AmbiguousName) as mine:
        world.show("T1", "acme pilot", by=OWNER)
    assert "98,765" in repr(mine.value.candidates)


def test_private_note_text_is_not_searchable(world: CrmService) -> None:
    assert world.find("T1", NOTE, by=ADMIN) == ()
    assert world.find_records("T1", by=ADMIN, text=NOTE).hits == ()


def test_the_operator_reads_everything(world: CrmService) -> None:
    card = world.show("T1", "D-1")
    assert NOTE in repr(card.interactions)
    assert card.record.amount is not None


def test_an_export_as_a_rep_leaves_their_restricted_fields_empty(
    world: CrmService, db: Database
) -> None:
    def export(kind: Kind, who: str | None) -> list[dict[str, str]]:
        out = io.StringIO()
        export_csv(db, "T1", kind, out, as_user=who)
        return list(csv.DictReader(io.StringIO(out.getvalue())))

    assert [r["amount"] for r in export(Kind.DEALS, None)] == ["98765.00", "4321.00"]
    assert [r["amount"] for r in export(Kind.DEALS, OWNER)] == ["98765.00", "4321.00"]
    assert [r["amount"] for r in export(Kind.DEALS, MANAGER)] == ["98765.00", "4321.00"]
    assert [r["amount"] for r in export(Kind.DEALS, OTHER)] == ["", ""]
    (lead,) = export(Kind.LEADS, OTHER)
    assert (lead["name"], lead["email"], lead["phone"]) == ("Ana Lima", "", "")
    (lead,) = export(Kind.LEADS, None)
    assert lead["email"] == EMAIL


def test_the_cli_shows_and_sets_the_restricted_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for variable in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    assert cli.main(["restricted-fields", "--team", "T9"]) == 0
    assert capsys.readouterr().out.strip() == "T9: restricted fields: none"
    assert cli.main(["restricted-fields", "--team", "T9", "amount", "Phone"]) == 0
    assert capsys.readouterr().out.strip() == "T9: restricted fields: amount, phone"
    assert cli.main(["restricted-fields", "--team", "T9", "salary"]) == 2
    assert "salary" in capsys.readouterr().err
    assert cli.main(["restricted-fields", "--team", "T9", "--none"]) == 0
    assert capsys.readouterr().out.strip() == "T9: restricted fields: none"


# --- marking a note private: the command text and the forms ------------------------------

CALL, NOTE_KIND = InteractionKind.CALL, InteractionKind.NOTE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("log private note L-1 they may sell", Log(NOTE_KIND, "L-1", "they may sell", True)),
        ("log note private L-1 they may sell", Log(NOTE_KIND, "L-1", "they may sell", True)),
        ("note private L-1 x", Log(NOTE_KIND, "L-1", "x", True)),
        ("log PRIVATE call L-1", Log(CALL, "L-1", "", True)),
        ("call --private L-1 talked", Log(CALL, "L-1", "talked", True)),
        ("call L-1 talked --private", Log(CALL, "L-1", "talked", True)),
        ("call L-1 talked —private", Log(CALL, "L-1", "talked", True)),  # Slack's em dash
        ("call L-1 private matters", Log(CALL, "L-1", "private matters", False)),  # notes
        ("log private", Log(None, None, "", True)),
        ("log call L-1 talked", Log(CALL, "L-1", "talked", False)),
    ],
)
def test_private_before_the_record_or_dash_dash_private_anywhere_marks_it(
    text: str, expected: Log
) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("private", [True, False])
def test_the_private_box_reads_back_from_the_log_forms(private: bool) -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    view = views.log_interaction("C1", tz="UTC", now=now, notes="hi", private=private)
    form = forms.parse_log(slack_state(view), tz="UTC", now=now)
    assert isinstance(form, forms.LogInput)
    assert form.private is private
    shortcut = views.log_message("C1", text="hi", permalink=None)
    ticked = ["private"] if private else []
    state = slack_state(shortcut, record="L-1", private=ticked)
    read = forms.parse_log_message(state)
    assert isinstance(read, forms.LogInput)
    assert read.private is private


def test_a_forged_private_box_value_is_not_private() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    view = views.log_interaction("C1", tz="UTC", now=now, notes="hi")
    state = slack_state(view, private=["yes please"])
    form = forms.parse_log(state, tz="UTC", now=now)
    assert isinstance(form, forms.LogInput)
    assert form.private is False


def test_the_settings_modal_shows_and_reads_the_restricted_fields() -> None:
    view = views.settings("C1", stages=STAGES, restricted={"amount"})
    state = slack_state(view)
    assert [o["value"] for o in state["restricted"]["restricted"]["selected_options"]] == ["amount"]
    read = forms.parse_settings(slack_state(view, restricted=["email", "phone", "forged"]))
    assert isinstance(read, forms.SettingsInput)
    assert read.restricted == {"email", "phone"}
    del state["restricted"]  # a form without the input changes nothing
    untouched = forms.parse_settings(state)
    assert isinstance(untouched, forms.SettingsInput)
    assert untouched.restricted is None
