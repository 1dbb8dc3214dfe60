"""`/crm pipeline` and `/crm report` against numbers worked out by hand, on both engines.

The fixture (clock: Monday 2026-11-23 15:00 UTC; this quarter Oct-Dec, next Jan-Mar):

    deal  stage          amount        prob  close       owner   notes
    D-1   Prospecting    USD 10,000     10   2026-12-15  UBOB    created 30 days ago, untouched
    D-2   Proposal       USD 20,000.50  50   2026-11-30  UBOB    created 30 days ago, call 5 ago
    D-3   Proposal       EUR 5,000      80*  2027-01-10  UBOB    created 25 days ago, untouched
    D-4   Negotiation    USD 1,234.57   75   —           UADMIN  Prospecting 10 -> 5 days ago
    D-5   Qualification  —              20   —           UBOB
    D-6   won            USD 7,000           —           UBOB    Qualification 5 days, won now
    D-7   lost "price"   EUR 3,000           —           UBOB    Prospecting 0 days, lost now
    D-8   Qualification  USD 2,000      20   2026-10-01  UBOB    close date already passed
    (* the deal overrides its stage's 50 %)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crmbot.domain import InteractionKind, InvalidInput, Money
from crmbot.reporting import Counted
from crmbot.service import CrmService
from tests.slackapp import SlackSim
from tests.test_slack_commands import reply_text

from .conftest import Clock

WS = "T1"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def usd(value: str) -> Money:
    return Money(Decimal(value), "USD")


def eur(value: str) -> Money:
    return Money(Decimal(value), "EUR")


def at(clock: Clock, days_ago: float) -> None:
    clock.now = NOW - timedelta(days=days_ago)


@pytest.fixture
def sales(crm: CrmService, clock: Clock) -> CrmService:
    at(clock, 30)
    crm.create_deal(WS, by="UBOB", name="Alpha", amount=Decimal("10000"), stage="Prospecting",
                    close_date=date(2026, 12, 15))  # fmt: skip
    crm.create_deal(WS, by="UBOB", name="Beta", amount=Decimal("20000.50"), stage="Proposal",
                    close_date=date(2026, 11, 30))  # fmt: skip
    at(clock, 25)
    crm.create_deal(WS, by="UBOB", name="Gamma", amount=Decimal("5000"), currency="EUR",
                    stage="Proposal", probability=80, close_date=date(2027, 1, 10))  # fmt: skip
    at(clock, 10)
    crm.create_deal(WS, by="UADMIN", name="Delta", amount=Decimal("1234.57"), stage="Prospecting")
    at(clock, 5)
    crm.move_deal(WS, "D-4", "Negotiation", by="UADMIN")
    crm.log_interaction(WS, by="UBOB", kind="call", about="D-2", summary="pricing call")
    at(clock, 0)
    crm.create_deal(WS, by="UBOB", name="Epsilon", stage="Qualification")
    at(clock, 5)
    crm.create_deal(WS, by="UBOB", name="Zeta", amount=Decimal("7000"), stage="Qualification")
    at(clock, 0)
    crm.close_deal(WS, "D-6", by="UBOB", won=True)
    crm.create_deal(WS, by="UBOB", name="Eta", amount=Decimal("3000"), currency="EUR")
    crm.close_deal(WS, "D-7", by="UBOB", won=False, reason="price")
    crm.create_deal(WS, by="UBOB", name="Theta", amount=Decimal("2000"), stage="Qualification",
                    close_date=date(2026, 10, 1))  # fmt: skip
    return crm


def test_pipeline_by_stage_and_forecast_by_month_match_the_hand_computed_figures(
    sales: CrmService,
) -> None:
    report = sales.pipeline_report(WS)
    rows = {r.stage: (r.count, r.amounts, r.weighted) for r in report.stages}
    assert rows == {
        "Prospecting": (1, (usd("10000.00"),), (usd("1000.00"),)),
        "Qualification": (2, (usd("2000.00"),), (usd("400.00"),)),
        "Proposal": (2, (eur("5000.00"), usd("20000.50")), (eur("4000.00"), usd("10000.25"))),
        "Negotiation": (1, (usd("1234.57"),), (usd("925.93"),)),  # 925.9275 rounds half up
    }
    assert report.totals == (eur("5000.00"), usd("33235.07"))
    assert report.weighted_totals == (eur("4000.00"), usd("12326.18"))
    assert report.currencies == ("EUR", "USD")  # side by side, never added together
    months = [(m.month, m.count, m.weighted) for m in report.forecast]
    assert months == [
        (date(2026, 10, 1), 1, (usd("400.00"),)),
        (date(2026, 11, 1), 1, (usd("10000.25"),)),
        (date(2026, 12, 1), 1, (usd("1000.00"),)),
        (date(2027, 1, 1), 1, (eur("4000.00"),)),
        (date(2027, 2, 1), 0, ()),
        (date(2027, 3, 1), 0, ()),
    ]
    assert (report.undated, report.slipped) == (2, 1)


def test_win_rate_stage_timings_and_stale_deals(sales: CrmService, clock: Clock) -> None:
    report = sales.pipeline_report(WS)
    rate = report.win_rate
    assert (rate.won, rate.lost, rate.rate, rate.won_amounts) == (
        1,
        1,
        Decimal("50.0"),
        (usd("7000.00"),),
    )
    timings = {r.stage: (r.avg_days, r.stints) for r in report.stages}
    assert timings == {
        "Prospecting": (Decimal("2.5"), 2),  # D-4 5 days, D-7 0 days
        "Qualification": (Decimal("5.0"), 1),  # D-6
        "Proposal": (None, 0),
        "Negotiation": (None, 0),
    }
    assert [(d.ref, d.idle_days, d.rotting_days, d.owner_id) for d in report.stale] == [
        ("D-1", 30, 14, "UBOB"),
        ("D-3", 25, 21, "UBOB"),
    ]
    assert report.stale_count == 2
    assert {r.stage: r.stale for r in report.stages}["Proposal"] == 1
    assert "D-2" not in [d.ref for d in report.stale]  # its call keeps it fresh...
    clock.advance(days=17)  # the call was 5 + 17 = 22 days ago; Proposal rots after 21
    assert "D-2" in [d.ref for d in sales.pipeline_report(WS).stale]


def test_one_reps_pipeline_and_the_team_by_owner(sales: CrmService) -> None:
    mine = sales.pipeline_report(WS, owner_id="UADMIN")
    assert [(r.stage, r.count) for r in mine.stages if r.count] == [("Negotiation", 1)]
    assert mine.totals == (usd("1234.57"),)
    assert (mine.win_rate.won, mine.stale_count) == (0, 0)
    team = sales.pipeline_report(WS, team=True)
    assert [(o.owner_id, o.name, o.count, o.amounts, o.weighted) for o in team.owners] == [
        (
            "UBOB",
            "Bob Rep",
            5,
            (eur("5000.00"), usd("32000.50")),
            (eur("4000.00"), usd("11400.25")),
        ),
        ("UADMIN", "Ada Admin", 1, (usd("1234.57"),), (usd("925.93"),)),
    ]
    sales.create_deal("T2", by="UX", name="Elsewhere", amount=Decimal("999"))
    sales.delete(WS, "D-1", by="UADMIN")
    report = sales.pipeline_report(WS)
    assert {r.stage: r.count for r in report.stages}["Prospecting"] == 0
    assert report.totals == (eur("5000.00"), usd("23235.07"))  # deleted and foreign deals out


def test_an_empty_pipeline_has_every_stage_at_zero(crm: CrmService) -> None:
    report = crm.pipeline_report(WS)
    assert [(r.stage, r.count, r.amounts) for r in report.stages] == [
        ("Prospecting", 0, ()),
        ("Qualification", 0, ()),
        ("Proposal", 0, ()),
        ("Negotiation", 0, ()),
    ]
    assert (report.totals, report.weighted_totals, report.stale, report.win_rate.rate) == (
        (),
        (),
        (),
        None,
    )
    assert all(m.count == 0 for m in report.forecast)


@pytest.fixture
def busy_week(sales: CrmService, clock: Clock) -> CrmService:
    """Last 7 days vs the 7 before, on top of the deals above."""
    crm = sales
    for days_ago, who, kind in ((11, "UADMIN", "note"), (13, "UBOB", "meeting"),
                                (3, "UBOB", "email")):  # fmt: skip
        crm.log_interaction(WS, by=who, kind=kind, about="D-1", summary="x",
                            occurred_at=NOW - timedelta(days=days_ago))  # fmt: skip
    at(clock, 12)
    crm.create_lead(WS, by="UBOB", name="Old Lead")
    crm.update(WS, "L-1", by="UBOB", status="qualified")
    at(clock, 3)
    crm.create_lead(WS, by="UBOB", name="New Lead", company="Initech")
    crm.create_lead(WS, by="UADMIN", name="Other Lead", company="Hooli")
    crm.update(WS, "L-2", by="UBOB", status="qualified")
    crm.convert_lead(WS, "L-3", by="UADMIN")
    at(clock, 0)
    crm.create_follow_up(WS, by="UBOB", about="D-1", due_at=NOW - timedelta(days=1))
    crm.create_follow_up(WS, by="UADMIN", about="D-4", due_at=NOW + timedelta(days=1))
    return crm


def test_week_report_against_the_week_before_for_the_team_and_one_rep(
    busy_week: CrmService,
) -> None:
    report = busy_week.activity_report(WS, "week")
    assert (report.start, report.previous_start) == (
        NOW - timedelta(days=7),
        NOW - timedelta(days=14),
    )
    assert report.interactions == Counted(now=2, before=2)  # call + email vs meeting + note
    kinds = dict(report.by_kind)
    assert (kinds[InteractionKind.CALL], kinds[InteractionKind.NOTE]) == (
        Counted(1, 0),
        Counted(0, 1),
    )
    assert (report.leads_created, report.leads_qualified, report.leads_converted) == (
        Counted(2, 1),
        Counted(1, 1),
        Counted(1, 0),
    )
    assert (report.conversion, report.previous_conversion) == (Decimal("50.0"), Decimal("0.0"))
    assert (report.deals_won, report.deals_lost) == (Counted(1, 0), Counted(1, 0))
    assert report.won_amounts == (usd("7000.00"),)
    assert [(r.reason, r.count) for r in report.lost_reasons] == [("price", 1)]
    assert report.overdue == 1
    bob = next(r for r in report.reps if r.user_id == "UBOB")
    assert (bob.name, bob.interactions, bob.won, bob.lost, bob.overdue) == (
        "Bob Rep",
        Counted(2, 1),
        1,
        1,
        1,
    )
    assert dict(bob.by_kind)[InteractionKind.EMAIL] == 1
    report = busy_week.activity_report(WS, "week", owner_id="UADMIN")
    assert report.interactions == Counted(0, 1)
    assert (report.leads_created, report.leads_converted) == (Counted(1, 0), Counted(1, 0))
    assert (report.deals_won.now, report.overdue) == (0, 0)
    assert [r.user_id for r in report.reps] == ["UADMIN"]


def test_month_and_quarter_reports_cover_longer_windows(busy_week: CrmService) -> None:
    month = busy_week.activity_report(WS, "month")
    assert month.interactions == Counted(4, 0)
    assert month.leads_created == Counted(3, 0)
    quarter = busy_week.activity_report(WS, "quarter")
    assert quarter.start == NOW - timedelta(days=91)
    with pytest.raises(InvalidInput):
        busy_week.activity_report(WS, "decade")


def test_pipeline_command_reads_as_text_on_its_own(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UBOB", name="Acme", amount=Decimal("50000"), stage="Proposal")
    slack.crm.create_deal(
        "T1", by="UBOB", name="Globex", amount=Decimal("1000"), currency="EUR", stage="Proposal"
    )
    text = reply_text(slack.command("pipeline team"))
    assert "*Proposal* (50 %) · 2 deals · €1,000 / $50,000 · weighted €500 / $25,000" in text
    assert "Win rate, last 90 days" in text
    assert "kept apart" in text
    assert "By owner" in text
    assert "<@UBOB>'s pipeline" in reply_text(slack.command("pipeline <@UBOB|bob>"))
    slack.fake.wait_for("files.completeUploadExternal", 2)  # charts follow every reply


def test_pipeline_with_no_deals_says_so(slack: SlackSim) -> None:
    assert "no open deals yet" in reply_text(slack.command("pipeline"))


def test_report_command_shows_the_period_and_the_change(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    slack.crm.log_interaction("T1", by="UBOB", kind="call", about="L-1", summary="intro")
    text = reply_text(slack.command("report month"))
    assert "last 30 days" in text
    assert "1 interaction (+1)" in text
    assert "1 created (+1)" in text
    assert "<@UBOB>" in text
    slack.fake.wait_for("files.completeUploadExternal")
