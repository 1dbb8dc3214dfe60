"""The domain service on both engines: every verb, its audit trail and its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crmbot.domain import (
    AmbiguousName,
    DealStatus,
    FollowUpStatus,
    InvalidInput,
    LeadStatus,
    Money,
    PermissionDenied,
    RecordKind,
    RecordNotFound,
    Role,
)
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import Contact, Lead, SearchDoc

from .conftest import Clock

WS = "T1"


def test_first_rep_of_a_workspace_is_admin_and_later_ones_are_reps(crm: CrmService) -> None:
    assert crm.rep(WS, "UADMIN").role is Role.ADMIN  # type: ignore[union-attr]
    assert crm.rep(WS, "UBOB").role is Role.REP  # type: ignore[union-attr]


def test_a_rep_made_by_a_refused_write_is_made_again_by_the_next(crm: CrmService) -> None:
    # The refused log made UNEW's rep row, then rolled back: it must not be remembered.
    with pytest.raises(InvalidInput):
        crm.log_interaction(WS, by="UNEW", kind="note", about=None, summary="")
    assert crm.rep(WS, "UNEW") is None
    crm.log_interaction(WS, by="UNEW", kind="note", about=None, summary="first call")
    assert crm.rep(WS, "UNEW") is not None
    # Once seen committed it is remembered; the next write still works.
    crm.log_interaction(WS, by="UNEW", kind="note", about=None, summary="second call")
    assert crm.rep(WS, "UNEW").name == "UNEW"  # type: ignore[union-attr]


def test_workspace_starts_with_the_default_pipeline(crm: CrmService) -> None:
    stages = crm.stages(WS)
    assert [(s.name, s.probability) for s in stages] == [
        ("Prospecting", 10),
        ("Qualification", 20),
        ("Proposal", 50),
        ("Negotiation", 75),
        ("Won", 100),
        ("Lost", 0),
    ]


def test_create_lead_hands_out_per_workspace_references(crm: CrmService) -> None:
    first = crm.create_lead(WS, by="UBOB", name="Ana Lima", company="Acme", email="ana@acme.com")
    second = crm.create_lead(WS, by="UBOB", name="Ben Ode")
    other = crm.create_lead("T2", by="UX", name="Someone Else")
    assert (first.ref, second.ref, other.ref) == ("L-1", "L-2", "L-1")
    assert first.owner_id == "UBOB"
    assert first.status is LeadStatus.NEW


def test_lead_with_a_bad_email_is_rejected_and_nothing_is_written(crm: CrmService) -> None:
    with pytest.raises(InvalidInput) as caught:
        crm.create_lead(WS, by="UBOB", name="Ana", email="not-an-email")
    assert caught.value.field == "email"
    assert crm.find(WS, "Ana") == ()


def test_workspaces_never_see_each_others_records(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Secret Prospect")
    assert crm.find("T2", "Secret") == ()
    with pytest.raises(RecordNotFound):
        crm.show("T2", "L-1")


def test_references_resolve_in_any_spelling(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana Lima")
    for spelling in ("L-1", "l-1", "L1", "l1"):
        assert crm.show(WS, spelling).record.ref == "L-1"


def test_names_resolve_case_and_accent_insensitively(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Zoë Müller")
    assert crm.show(WS, "zoe muller").record.ref == "L-1"
    assert crm.show(WS, "ZOË").record.ref == "L-1"


def test_a_small_typo_still_finds_the_one_close_name(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Margaret Hamilton")
    crm.create_lead(WS, by="UBOB", name="Grace Hopper")
    assert crm.show(WS, "Margret Hamilton").record.ref == "L-1"


def test_ambiguous_names_offer_candidates_instead_of_guessing(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="John Smith", company="Acme")
    crm.create_lead(WS, by="UBOB", name="John Smith", company="Globex")
    with pytest.raises(AmbiguousName) as caught:
        crm.show(WS, "john smith")
    assert {c.ref for c in caught.value.candidates} == {"L-1", "L-2"}


def test_unknown_name_says_did_you_mean_when_something_is_close(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Katherine Johnson")
    with pytest.raises(RecordNotFound) as caught:
        crm.show(WS, "Kathryn Jonsen")
    assert any("L-1" in hint for hint in caught.value.did_you_mean)
    with pytest.raises(RecordNotFound) as nothing:
        crm.show(WS, "zzzzqqq")
    assert nothing.value.did_you_mean == ()


def test_find_ranks_exact_then_prefix_then_substring(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Mary Annson")  # substring "ann"
    crm.create_lead(WS, by="UBOB", name="Annabel Lee")  # prefix
    crm.create_lead(WS, by="UBOB", name="Ann")  # exact
    hits = crm.find(WS, "ann")
    assert [h.name for h in hits] == ["Ann", "Annabel Lee", "Mary Annson"]


def test_find_matches_company_email_phone_and_domain(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana", company="Initech", phone="+1 415 555 0100")
    crm.create_account(WS, by="UBOB", name="Globex", domain="globex.example")
    crm.create_contact(WS, by="UBOB", name="Hank", email="hank@globex.example")
    assert [h.ref for h in crm.find(WS, "initech")] == ["L-1"]
    assert [h.ref for h in crm.find(WS, "555 0100")] == ["L-1"]
    assert {h.ref for h in crm.find(WS, "globex.example")} == {"A-1", "C-1"}


def test_find_returns_at_most_twenty(crm: CrmService) -> None:
    for i in range(25):
        crm.create_lead(WS, by="UBOB", name=f"Dupont {i}")
    assert len(crm.find(WS, "dupont")) == 20


def test_find_treats_sql_and_fts_syntax_as_plain_text(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name='O\'Brien "the" 100% _x_')
    for hostile in ("' OR 1=1 --", '"', "NEAR(a b)", "a AND b", "%", "_", "*", "\\"):
        crm.find(WS, hostile)
    assert [h.ref for h in crm.find(WS, "100%")] == ["L-1"]
    assert [h.ref for h in crm.find(WS, "o'brien")] == ["L-1"]


def test_the_whole_lead_to_won_deal_story(crm: CrmService, clock: Clock) -> None:
    lead = crm.create_lead(
        WS, by="UBOB", name="Ana Lima", company="Acme Corp", email="ana@acme.com", source="referral"
    )
    call = crm.log_interaction(
        WS,
        by="UBOB",
        kind="call",
        about=lead.ref,
        summary="Intro call",
        outcome="interested",
        duration_minutes=20,
    )
    assert call.about == ("L-1",)
    follow = crm.create_follow_up(
        WS, by="UBOB", about=lead.ref, when="next friday 10am", tz="Europe/Berlin"
    )
    assert follow.follow_up.due_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    converted = crm.convert_lead(
        WS, lead.ref, by="UBOB", deal_name="Acme pilot", amount=Decimal("50000"), currency="EUR"
    )
    assert converted.lead.status is LeadStatus.CONVERTED
    assert converted.account is not None
    assert converted.account.name == "Acme Corp"
    assert converted.account_created
    assert converted.deal is not None
    assert converted.deal.stage == "Prospecting"
    assert set(converted.lead.converted_to) == {"C-1", "A-1", "D-1"}
    card = crm.show(WS, "C-1")
    assert [i.summary for i in card.interactions] == ["Intro call"]
    assert [f.ref for f in card.follow_ups] == ["T-1"]
    moved = crm.move_deal(WS, "D-1", "propo", by="UBOB")
    assert (moved.stage, moved.probability) == ("Proposal", 50)
    pipeline = crm.pipeline(WS)
    proposal = next(s for s in pipeline.stages if s.stage == "Proposal")
    assert proposal.count == 1
    assert proposal.amounts == (Money(Decimal("50000.00"), "EUR"),)
    assert proposal.weighted == (Money(Decimal("25000.00"), "EUR"),)
    won = crm.close_deal(WS, "Acme pilot", by="UBOB", won=True)
    assert won.status is DealStatus.WON
    assert crm.pipeline(WS).totals == ()


def test_conversion_reuses_the_account_with_the_same_email_domain(crm: CrmService) -> None:
    crm.create_account(WS, by="UBOB", name="Acme", domain="acme.com")
    lead = crm.create_lead(WS, by="UBOB", name="Ana", company="ACME Inc", email="ana@acme.com")
    converted = crm.convert_lead(WS, lead.ref, by="UBOB")
    assert converted.account is not None
    assert converted.account.ref == "A-1"
    assert not converted.account_created
    assert converted.deal is None


def test_converting_twice_is_refused(crm: CrmService) -> None:
    lead = crm.create_lead(WS, by="UBOB", name="Ana", company="Acme")
    crm.convert_lead(WS, lead.ref, by="UBOB")
    with pytest.raises(InvalidInput):
        crm.convert_lead(WS, lead.ref, by="UBOB")


def test_losing_a_deal_needs_a_reason(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Big one", amount=Decimal("1000"))
    with pytest.raises(InvalidInput) as caught:
        crm.close_deal(WS, "D-1", by="UBOB", won=False)
    assert caught.value.field == "reason"
    lost = crm.close_deal(WS, "D-1", by="UBOB", won=False, reason="budget cut")
    assert (lost.status, lost.lost_reason) == (DealStatus.LOST, "budget cut")


def test_pipeline_keeps_currencies_apart_and_honours_probability_overrides(crm: CrmService) -> None:
    crm.create_deal(
        WS, by="UBOB", name="A", amount=Decimal("100"), currency="USD", stage="Proposal"
    )
    crm.create_deal(
        WS, by="UBOB", name="B", amount=Decimal("200"), currency="EUR", stage="Proposal"
    )
    crm.create_deal(
        WS,
        by="UBOB",
        name="C",
        amount=Decimal("100"),
        currency="USD",
        stage="Proposal",
        probability=90,
    )
    crm.create_deal(WS, by="UADMIN", name="D", stage="Proposal")  # no amount
    view = crm.pipeline(WS)
    proposal = next(s for s in view.stages if s.stage == "Proposal")
    assert proposal.count == 4
    assert proposal.amounts == (Money(Decimal("200.00"), "EUR"), Money(Decimal("200.00"), "USD"))
    assert proposal.weighted == (Money(Decimal("100.00"), "EUR"), Money(Decimal("140.00"), "USD"))
    assert crm.pipeline(WS, owner_id="UADMIN").stages[2].count == 1


def test_empty_pipeline_has_every_stage_with_zero(crm: CrmService) -> None:
    view = crm.pipeline(WS)
    assert [s.count for s in view.stages] == [0, 0, 0, 0]
    assert view.totals == ()


def test_deal_for_a_contact_links_the_contact_and_its_account(crm: CrmService) -> None:
    crm.create_contact(WS, by="UBOB", name="Hank Scorpio", account="Globex")
    deal = crm.create_deal(WS, by="UBOB", name="Doomsday", amount=Decimal("1e6"), about="hank")
    assert (deal.contact_ref, deal.account_ref, deal.account_name) == ("C-1", "A-1", "Globex")


def test_assign_changes_owner_and_records_who_had_it(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana")
    assigned = crm.assign(WS, "L-1", "UCAROL", by="UBOB")
    assert (assigned.previous_owner, assigned.owner_id, assigned.ref) == ("UBOB", "UCAROL", "L-1")
    assert crm.show(WS, "L-1").record.owner_id == "UCAROL"
    history = crm.history(WS, "L-1")
    assert history[0].action == "assign"
    assert history[0].before == {"owner_id": "UBOB"}
    assert history[0].after == {"owner_id": "UCAROL"}


def test_every_change_writes_an_audit_event(crm: CrmService) -> None:
    crm.create_deal(WS, by="UBOB", name="Deal", amount=Decimal(10))
    crm.move_deal(WS, "D-1", "Qualification", by="UBOB")
    crm.update(WS, "D-1", by="UBOB", name="Renamed deal")
    actions = [e.action for e in crm.history(WS, "D-1")]
    assert actions == ["update", "move", "create"]


def test_follow_ups_list_overdue_first(crm: CrmService, clock: Clock) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana")
    later = crm.create_follow_up(WS, by="UBOB", about="L-1", when="in 3 days")
    past = crm.create_follow_up(WS, by="UBOB", about="L-1", when="yesterday 3pm")
    assert past.in_past
    assert not later.in_past
    tasks = crm.tasks(WS, owner_id="UBOB")
    assert [t.ref for t in tasks.overdue] == ["T-2"]
    assert [t.ref for t in tasks.upcoming] == ["T-1"]
    assert tasks.overdue[0].overdue


def test_done_snoozed_and_cancelled_follow_ups(crm: CrmService, clock: Clock) -> None:
    for _ in range(3):
        crm.create_follow_up(WS, by="UBOB", about=None, when="yesterday", title="call back")
    crm.complete_follow_up(WS, "T-1", by="UBOB")
    snoozed = crm.snooze_follow_up(WS, "T-2", by="UBOB", until=clock.now + timedelta(hours=1))
    assert not snoozed.overdue
    crm.cancel_follow_up(WS, "T-3", by="UBOB")
    assert crm.tasks(WS).overdue == ()
    with pytest.raises(InvalidInput):
        crm.complete_follow_up(WS, "T-1", by="UBOB")


def test_follow_up_with_garbage_when_is_refused(crm: CrmService) -> None:
    with pytest.raises(InvalidInput) as caught:
        crm.create_follow_up(WS, by="UBOB", about=None, when="whenever, man")
    assert caught.value.field == "when"
    assert crm.tasks(WS).upcoming == ()


def test_only_admins_delete_and_deleted_records_disappear_until_restored(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana")
    with pytest.raises(PermissionDenied):
        crm.delete(WS, "L-1", by="UBOB")
    crm.delete(WS, "L-1", by="UADMIN")
    assert crm.find(WS, "Ana") == ()
    with pytest.raises(RecordNotFound):
        crm.show(WS, "L-1")
    crm.restore(WS, "L-1", by="UADMIN")
    assert [h.ref for h in crm.find(WS, "Ana")] == ["L-1"]


def test_interactions_follow_the_lead_into_the_deal(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana", company="Acme")
    crm.log_interaction(WS, by="UBOB", kind="meeting", about="L-1", summary="demo")
    crm.convert_lead(WS, "L-1", by="UBOB", deal_name="Acme deal")
    assert [i.summary for i in crm.show(WS, "D-1").interactions] == ["demo"]
    assert [i.summary for i in crm.show(WS, "A-1").interactions] == ["demo"]


def test_a_logged_call_moves_its_record_up_in_search(
    crm: CrmService, db: Database, clock: Clock
) -> None:
    def doc(model: type[Contact] | type[Lead]) -> tuple[datetime, str]:
        """The search document of the workspace's first contact or lead."""
        with db.read() as session:
            row = session.execute(
                select(SearchDoc.updated_at, SearchDoc.detail)
                .join(model, SearchDoc.record_id == model.id)
                .where(SearchDoc.kind == model.__tablename__, model.number == 1)
            ).one()
        return row.updated_at, row.detail

    crm.create_contact(
        WS, by="UBOB", name="Juan Rodriguez", email="juan@globex.com", account="Globex"
    )
    crm.create_lead(WS, by="UBOB", name="Ana Lima", company="Acme")
    contact_before, contact_detail = doc(Contact)
    lead_before, lead_detail = doc(Lead)
    clock.advance(hours=1)
    crm.log_interaction(WS, by="UBOB", kind="call", about="C-1", summary="went well")
    crm.log_interaction(WS, by="UBOB", kind="call", about="L-1", summary="went well")
    contact_after, contact_detail_after = doc(Contact)
    lead_after, lead_detail_after = doc(Lead)
    assert contact_after > contact_before  # newest first among equal matches
    assert contact_detail_after == contact_detail  # nothing it shows changed
    assert lead_after > lead_before
    assert "working" in lead_detail_after  # a lead's status follows its first call
    assert "working" not in lead_detail


def test_kind_of_reference_must_match_what_the_verb_wants(crm: CrmService) -> None:
    crm.create_lead(WS, by="UBOB", name="Ana")
    with pytest.raises(RecordNotFound):
        crm.move_deal(WS, "L-1", "Proposal", by="UBOB")
    assert RecordKind.DEAL.prefix == "D"


def test_interaction_kinds_are_checked(crm: CrmService) -> None:
    with pytest.raises(InvalidInput) as caught:
        crm.log_interaction(WS, by="UBOB", kind="telegram", about=None, summary="hi")
    assert caught.value.field == "kind"


def test_follow_up_status_values(crm: CrmService) -> None:
    created = crm.create_follow_up(WS, by="UBOB", about=None, when="tomorrow 9am")
    assert created.follow_up.status is FollowUpStatus.OPEN
    # Bob is in Los Angeles: 9am there is 17:00 UTC in November.
    assert created.follow_up.due_at == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def test_find_by_a_full_email_address_uses_whole_words_inside_it(crm: CrmService) -> None:
    crm.create_contact(WS, by="UBOB", name="Juan Rodriguez", email="juan.rodriguez@globex.com")
    crm.create_contact(WS, by="UBOB", name="Juana Rodrigues", email="juana.rodrigues@globex.com")
    crm.create_contact(WS, by="UBOB", name="Deleted Juan", email="juan.rodriguez@globex.com.au")
    crm.delete(WS, "C-3", by="UADMIN")
    assert [h.ref for h in crm.find(WS, "juan.rodriguez@globex.com")] == ["C-1"]
    assert [h.ref for h in crm.find(WS, "n.rodriguez@globex.c")] == ["C-1"]
    assert [h.ref for h in crm.find(WS, "@globex.")] == ["C-2", "C-1"]
