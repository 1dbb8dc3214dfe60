"""Who gets a web lead: territory rules, fair round-robin, away and inactive reps, the SLA."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from crmbot.domain import InvalidInput, PermissionDenied
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.workhours import WorkingHours, add_working_minutes
from tests.conftest import Clock

REPS = ("UADMIN", "UBOB", "UCAROL", "UDAN")


@pytest.fixture
def sales(crm: CrmService) -> CrmService:
    """Four reps: Ada (admin, Berlin), Bob (Los Angeles), Carol (Kolkata), Dan (UTC)."""
    crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    crm.upsert_rep("T1", "UDAN", name="Dan Deals", tz="UTC")
    return crm


def web_lead(crm: CrmService, n: int, **more: str) -> str:
    owner = crm.intake_lead("T1", {"name": f"Lead {n}", "email": f"l{n}@c{n}.com", **more})
    assert owner.answer["owner"] is not None
    return str(owner.answer["owner"])


def test_twenty_intakes_without_territory_spread_within_one_lead(sales: CrmService) -> None:
    owners = [web_lead(sales, n) for n in range(20)]
    spread = Counter(owners)
    assert set(spread) == set(REPS)
    assert max(spread.values()) - min(spread.values()) <= 1
    assert owners[:4] == sorted(REPS)  # turn order: by user id, wrapping around
    assert {e.rule for e in sales.assignment_log("T1", limit=20)} == {"round-robin"}


def test_the_pointer_is_kept_in_the_database(db: Database, sales: CrmService, clock: Clock) -> None:
    first = [web_lead(sales, n) for n in range(3)]
    again = CrmService(db, clock)  # a new process
    assert web_lead(again, 3) == sorted(REPS)[3]
    assert first == sorted(REPS)[:3]


def test_away_and_deactivated_reps_get_no_leads(sales: CrmService, clock: Clock) -> None:
    sales.set_away("T1", "UBOB", clock.now + timedelta(days=3), by="UBOB")
    sales.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata", active=False)
    owners = Counter(web_lead(sales, n) for n in range(6))
    assert owners == {"UADMIN": 3, "UDAN": 3}
    clock.advance(days=4)  # Bob's holiday is over
    assert "UBOB" in {web_lead(sales, n) for n in range(6, 9)}
    with pytest.raises(PermissionDenied):
        sales.set_away("T1", "UDAN", None, by="UBOB")  # reps mark only themselves


def test_territory_rules_come_first_country_then_region_then_industry(
    sales: CrmService,
) -> None:
    sales.set_territory_rule("T1", "country", "DE", ["UCAROL"], by="UADMIN")
    sales.set_territory_rule("T1", "region", "EMEA", ["UBOB", "UDAN"], by="UADMIN")
    sales.set_territory_rule("T1", "industry", "Healthcare", ["UADMIN"], by="UADMIN")
    assert web_lead(sales, 1, country="de", region="EMEA") == "UCAROL"
    emea = [web_lead(sales, n, country="FR", region="emea") for n in range(2, 6)]
    assert emea == ["UBOB", "UDAN", "UBOB", "UDAN"]  # the group takes turns
    assert web_lead(sales, 6, industry="healthcare") == "UADMIN"
    log = sales.assignment_log("T1", limit=10)
    assert log[0].rule == "territory: industry = Healthcare"
    assert log[-1].rule == "territory: country = DE"
    assert [r.field for r in sales.territory_rules("T1")] == ["country", "region", "industry"]


def test_a_territory_with_nobody_available_falls_back_to_round_robin(
    sales: CrmService, clock: Clock
) -> None:
    sales.set_territory_rule("T1", "country", "JP", ["UCAROL"], by="UADMIN")
    sales.set_away("T1", "UCAROL", clock.now + timedelta(hours=2), by="UADMIN")
    owner = web_lead(sales, 1, country="JP")
    assert owner != "UCAROL"
    assert "JP has nobody available" in sales.assignment_log("T1")[0].rule
    assert sales.delete_territory_rule("T1", "country", "jp", by="UADMIN")
    assert sales.territory_rules("T1") == ()


def test_only_admins_set_territory_rules_and_bad_ones_are_refused(sales: CrmService) -> None:
    with pytest.raises(PermissionDenied):
        sales.set_territory_rule("T1", "country", "DE", ["UBOB"], by="UBOB")
    with pytest.raises(InvalidInput) as bad_field:
        sales.set_territory_rule("T1", "planet", "Mars", ["UBOB"], by="UADMIN")
    assert bad_field.value.field == "field"
    with pytest.raises(InvalidInput):
        sales.set_territory_rule("T1", "country", "DE", [], by="UADMIN")


def test_with_no_reps_the_lead_waits_unassigned(db: Database, clock: Clock) -> None:
    crm = CrmService(db, clock)
    outcome = crm.intake_lead("T9", {"name": "Early Bird", "email": "e@b.io"})
    assert outcome.answer == {"lead": "L-1", "owner": None, "follow_up": None}
    assert outcome.rule.startswith("unassigned")


def test_concurrent_intakes_never_share_a_turn(sales: CrmService) -> None:
    owners: list[str] = []
    lock = threading.Lock()

    def take(worker: int) -> None:
        for i in range(3):
            owner = web_lead(sales, worker * 10 + i)
            with lock:
                owners.append(owner)

    threads = [threading.Thread(target=take, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(owners) == dict.fromkeys(REPS, 3)


def test_claim_moves_the_lead_and_its_open_follow_ups(sales: CrmService) -> None:
    owner = web_lead(sales, 1)
    claimer = next(r for r in REPS if r != owner)
    result = sales.claim_lead("T1", "L-1", by=claimer)
    assert (result.previous_owner, result.owner_id) == (owner, claimer)
    assert sales.tasks("T1", owner_id=claimer).upcoming[0].about_ref == "L-1"
    assert sales.assignment_log("T1")[0].rule == "claimed"


# --- the response SLA in working time ------------------------------------------------------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "tz", "minutes", "due"),
    [
        ("2026-11-23T10:00", "UTC", 60, "2026-11-23T11:00"),  # Monday morning
        ("2026-11-23T16:30", "UTC", 60, "2026-11-24T09:30"),  # across the evening
        ("2026-11-27T18:00", "UTC", 60, "2026-11-30T10:00"),  # Friday evening -> Monday
        ("2026-11-28T12:00", "UTC", 60, "2026-11-30T10:00"),  # Saturday
        ("2026-11-23T06:00", "America/New_York", 60, "2026-11-23T15:00"),  # 01:00 there
        ("2026-11-23T10:00", "UTC", 16 * 60, "2026-11-25T10:00"),  # two working days
        ("2026-03-29T00:30", "Europe/Berlin", 60, "2026-03-30T08:00"),  # 10:00 CEST
        ("2026-11-23T10:00", "Not/AZone", 30, "2026-11-23T10:30"),  # unknown: UTC
    ],
)
def test_working_minutes_skip_nights_and_weekends(
    start: str, tz: str, minutes: int, due: str
) -> None:
    assert add_working_minutes(utc(start), minutes, tz) == utc(due)


def test_working_hours_come_from_workspace_settings() -> None:
    hours = WorkingHours.from_settings(
        {"working_hours": {"start": "08:00", "end": "12:00", "days": [5]}}
    )
    assert add_working_minutes(utc("2026-11-23T10:00"), 60, "UTC", hours) == utc("2026-11-28T09:00")
    assert WorkingHours.from_settings({"working_hours": {"start": "18:00", "end": "09:00"}}) == (
        WorkingHours()
    )


def test_the_sla_is_an_admin_setting(sales: CrmService) -> None:
    sales.set_response_sla("T1", 240, by="UADMIN")
    assert sales.intake_settings("T1").sla_minutes == 240
    with pytest.raises(PermissionDenied):
        sales.set_response_sla("T1", 30, by="UBOB")
    assert web_lead(sales, 1) == "UADMIN"  # in Berlin: Monday 16:00, an hour of the day left
    due = sales.tasks("T1", owner_id="UADMIN").upcoming[0].due_at
    assert due == utc("2026-11-24T11:00")  # Tuesday 12:00 in Berlin
