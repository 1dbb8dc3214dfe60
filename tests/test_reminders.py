"""The reminder service on both engines: claims, leases, the notification log, the calendar."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmbot.domain import InvalidInput, PermissionDenied, Role
from crmbot.service import CrmService
from crmbot.service.reminder_types import (
    DeliveryKind,
    ReminderClaim,
    next_weekday_at,
    parse_days,
    retry_delay,
    wall_time,
)
from crmbot.store.db import Database
from crmbot.store.models import FollowUp, Notification
from tests.conftest import Clock

LEASE = timedelta(minutes=5)


def overdue(
    crm: CrmService,
    *,
    hours: float = 1,
    channel: str | None = "C1",
    owner: str = "UBOB",
    title: str = "Call back",
    about: str | None = None,
) -> str:
    """A follow-up that fell due `hours` ago; its reference."""
    made = crm.create_follow_up(
        "T1",
        by=owner,
        about=about,
        due_at=crm.now() - timedelta(hours=hours),
        title=title,
        channel_id=channel,
    )
    return made.follow_up.ref


def refs(claim: ReminderClaim) -> list[str]:
    return sorted((i.ref for i in claim.items), key=lambda r: int(r[2:]))


def send_all(crm: CrmService, claim: ReminderClaim) -> None:
    for n, digest in enumerate(claim.digests):
        crm.record_sent(claim, digest, channel_id=digest.target, message_ts=f"1.{n}")


def test_due_reminders_are_claimed_and_grouped_one_digest_per_channel(crm: CrmService) -> None:
    lead = crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme")
    overdue(crm, channel="C1", about=lead.ref, title="Send the proposal")
    overdue(crm, channel="C1", owner="UADMIN")
    overdue(crm, channel="C2")
    crm.create_follow_up("T1", by="UBOB", about=None, when="tomorrow 9am", channel_id="C1")

    claim = crm.claim_reminders(lease=LEASE)

    assert {d.target: [i.ref for i in d.items] for d in claim.digests} == {
        "C1": ["T-1", "T-2"],
        "C2": ["T-3"],
    }
    first = claim.digests[0].items[0]
    assert (first.title, first.about_ref, first.about_name) == (
        "Send the proposal",
        "L-1",
        "Ana Lima",
    )
    assert (first.owner.name, first.owner.active, first.kind) == (
        "Bob Rep",
        True,
        DeliveryKind.REMINDER,
    )
    assert claim.digests[0].admins == ("UADMIN",)


def test_a_claimed_reminder_is_not_claimed_again_while_its_lease_runs(
    crm: CrmService, clock: Clock
) -> None:
    overdue(crm)
    assert refs(crm.claim_reminders(lease=LEASE)) == ["T-1"]
    assert refs(crm.claim_reminders(lease=LEASE)) == []
    clock.advance(minutes=4, seconds=59)
    assert refs(crm.claim_reminders(lease=LEASE)) == []


def test_a_sweep_that_died_after_claiming_loses_nothing_once_the_lease_runs_out(
    crm: CrmService, db: Database, clock: Clock
) -> None:
    overdue(crm)
    dead = crm.claim_reminders(lease=LEASE)  # ... and the process is killed here
    clock.advance(minutes=5, seconds=1)
    again = crm.claim_reminders(lease=LEASE)
    assert refs(again) == ["T-1"]
    # The same log row is taken over: the message is still one delivery.
    assert [d.delivery_ids for d in again.digests] == [d.delivery_ids for d in dead.digests]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1


def test_a_sent_reminder_comes_back_once_a_day_while_it_stays_overdue(
    crm: CrmService, db: Database, clock: Clock
) -> None:
    overdue(crm)
    send_all(crm, crm.claim_reminders(lease=LEASE))
    for _ in range(3):  # hourly sweeps re-ping nobody
        clock.advance(hours=1)
        assert refs(crm.claim_reminders(lease=LEASE)) == []
    clock.advance(hours=21)
    tomorrow = crm.claim_reminders(lease=LEASE)
    assert refs(tomorrow) == ["T-1"]
    send_all(crm, tomorrow)
    with db.read() as session:
        rows = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [(r.kind, r.status, r.channel_id, r.message_ts) for r in rows] == [
            ("digest", "sent", "C1", "1.0"),
            ("digest", "sent", "C1", "1.0"),
        ]
        assert len({r.dedupe_key for r in rows}) == 2
        follow_up = session.scalars(select(FollowUp)).one()
        assert follow_up.last_reminded_at == clock.now
        assert follow_up.remind_at == clock.now + timedelta(days=1)


def test_done_cancelled_and_snoozed_follow_ups_get_no_reminder(crm: CrmService) -> None:
    done, cancelled, snoozed, due = (overdue(crm, title=t) for t in ("a", "b", "c", "d"))
    crm.complete_follow_up("T1", done, by="UBOB")
    crm.cancel_follow_up("T1", cancelled, by="UBOB")
    crm.snooze_follow_up("T1", snoozed, by="UBOB", when="in 2 hours")
    assert refs(crm.claim_reminders(lease=LEASE)) == [due]


def test_a_follow_up_done_while_its_digest_was_posting_is_not_reminded_again(
    crm: CrmService, clock: Clock
) -> None:
    ref = overdue(crm)
    claim = crm.claim_reminders(lease=LEASE)
    crm.complete_follow_up("T1", ref, by="UBOB")
    send_all(crm, claim)
    clock.advance(days=2)
    assert refs(crm.claim_reminders(lease=LEASE)) == []


def test_a_follow_up_snoozed_while_its_digest_was_posting_keeps_the_snooze(
    crm: CrmService, clock: Clock
) -> None:
    ref = overdue(crm)
    claim = crm.claim_reminders(lease=LEASE)
    crm.snooze_follow_up("T1", ref, by="UBOB", until=clock.now + timedelta(hours=1))
    send_all(crm, claim)
    clock.advance(minutes=61)
    assert refs(crm.claim_reminders(lease=LEASE)) == [ref]  # an hour later, not a day


def test_a_failed_post_is_retried_after_a_growing_backoff(crm: CrmService, clock: Clock) -> None:
    overdue(crm)
    first = crm.claim_reminders(lease=LEASE)
    (digest,) = first.digests
    assert crm.release(first, digest, error="internal_error") == clock.now + timedelta(minutes=1)
    assert refs(crm.claim_reminders(lease=LEASE)) == []
    clock.advance(minutes=1, seconds=1)
    second = crm.claim_reminders(lease=LEASE)
    assert refs(second) == ["T-1"]
    assert second.digests[0].delivery_ids == digest.delivery_ids  # the same message, retried
    assert crm.release(second, second.digests[0], error="ratelimited") == (
        clock.now + timedelta(minutes=2)
    )
    clock.advance(minutes=2, seconds=1)
    third = crm.claim_reminders(lease=LEASE)
    # A long Retry-After wins over the backoff.
    assert crm.release(third, third.digests[0], error="ratelimited", retry_after=600) == (
        clock.now + timedelta(minutes=10)
    )


def test_a_retry_and_a_new_round_for_one_channel_make_one_message(
    crm: CrmService, clock: Clock
) -> None:
    overdue(crm, title="first")
    claim = crm.claim_reminders(lease=LEASE)
    crm.release(claim, claim.digests[0], error="internal_error")
    overdue(crm, title="second")
    clock.advance(minutes=2)
    merged = crm.claim_reminders(lease=LEASE)
    (digest,) = merged.digests
    assert [i.title for i in digest.items] == ["first", "second"]
    assert len(digest.delivery_ids) == 2
    send_all(crm, merged)
    posted = crm.posted_digest("T1", "C1", "1.0")
    assert posted is not None
    assert [i.title for i in posted.items] == ["first", "second"]


def test_a_digest_failing_for_a_day_does_not_double_the_next_days_reminder(
    crm: CrmService, clock: Clock
) -> None:
    ref = overdue(crm)
    claim = crm.claim_reminders(lease=LEASE)
    crm.release(claim, claim.digests[0], error="ratelimited", retry_after=2 * 86400)
    clock.advance(days=1, minutes=1)
    assert refs(crm.claim_reminders(lease=LEASE)) == [ref]  # the next round, on time
    clock.advance(days=1)
    # The old message comes up for its retry, but a newer round took its follow-up: only
    # today's round goes out, and the old message is dropped.
    (today,) = crm.claim_reminders(lease=LEASE).digests
    assert [i.ref for i in today.items] == [ref]
    assert not set(today.delivery_ids) & set(claim.digests[0].delivery_ids)


def test_handed_back_reminders_are_free_for_the_next_sweep_at_once(crm: CrmService) -> None:
    overdue(crm)
    claim = crm.claim_reminders(lease=LEASE)
    crm.hand_back(claim, claim.digests)
    assert refs(crm.claim_reminders(lease=LEASE)) == ["T-1"]


def test_follow_ups_made_in_a_dm_go_to_the_reminder_channel_else_the_owners_dm(
    crm: CrmService, clock: Clock
) -> None:
    overdue(crm, channel="DUBOB")
    overdue(crm, channel=None, owner="UADMIN")
    claim = crm.claim_reminders(lease=LEASE)
    assert {(d.channel_id, d.dm_user) for d in claim.digests} == {
        (None, "UBOB"),
        (None, "UADMIN"),
    }
    send_all(crm, claim)
    crm.configure_reminders("T1", reminder_channel="CREMIND")
    clock.advance(days=1)
    claim = crm.claim_reminders(lease=LEASE)
    assert [(d.channel_id, refs(claim)) for d in claim.digests] == [("CREMIND", ["T-1", "T-2"])]


def test_a_follow_up_overdue_past_the_threshold_is_escalated_once(
    crm: CrmService, clock: Clock
) -> None:
    crm.configure_reminders("T1", manager_channel="CMGR", escalate_after_days=3)
    overdue(crm, hours=70, title="not yet")
    overdue(crm, hours=73, title="escalate me")
    claim = crm.claim_reminders(lease=LEASE)
    by_channel = {d.target: [(i.ref, i.kind.value) for i in d.items] for d in claim.digests}
    assert by_channel == {
        "C1": [("T-1", "reminder"), ("T-2", "reminder")],
        "CMGR": [("T-2", "escalation")],
    }
    send_all(crm, claim)
    clock.advance(days=1, minutes=1)
    claim = crm.claim_reminders(lease=LEASE)
    by_channel = {d.target: [(i.ref, i.kind.value) for i in d.items] for d in claim.digests}
    assert by_channel == {
        "C1": [("T-1", "reminder"), ("T-2", "reminder")],
        "CMGR": [("T-1", "escalation")],  # T-2 was escalated already
    }


def test_a_round_whose_escalation_failed_retries_only_the_escalation(
    crm: CrmService, clock: Clock
) -> None:
    crm.configure_reminders("T1", manager_channel="CMGR")
    overdue(crm, hours=100)
    claim = crm.claim_reminders(lease=LEASE)
    channel, managers = claim.digests
    assert (channel.target, managers.target) == ("C1", "CMGR")
    crm.record_sent(claim, channel, channel_id="C1", message_ts="1.1")
    crm.release(claim, managers, error="internal_error")
    clock.advance(minutes=2)
    retry = crm.claim_reminders(lease=LEASE)
    assert [(d.target, i.kind.value) for d in retry.digests for i in d.items] == [
        ("CMGR", "escalation")
    ]
    send_all(crm, retry)
    clock.advance(hours=23)
    assert refs(crm.claim_reminders(lease=LEASE)) == []


def test_concurrent_sweeps_never_claim_the_same_follow_up(crm: CrmService, db: Database) -> None:
    for n in range(120):
        overdue(crm, channel=f"C{n % 4}", title=f"task {n}")
    claimed: list[list[str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def sweep() -> None:
        try:
            start.wait()
            mine: list[str] = []
            for _ in range(4):
                claim = crm.claim_reminders(lease=LEASE, limit=25)
                mine.extend(refs(claim))
                send_all(crm, claim)
            with lock:
                claimed.append(mine)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    everything = [ref for mine in claimed for ref in mine]
    assert sorted(everything, key=lambda r: int(r[2:])) == [f"T-{n}" for n in range(1, 121)]
    with db.read() as session:
        statuses = session.scalars(select(Notification.status)).all()
        assert set(statuses) == {"sent"}
        assert (
            session.scalar(
                select(func.count())
                .select_from(FollowUp)
                .where(FollowUp.last_reminded_at.is_(None))
            )
            == 0
        )


def test_the_dedupe_key_refuses_a_second_log_row_for_the_same_round(
    crm: CrmService, db: Database
) -> None:
    overdue(crm)
    crm.claim_reminders(lease=LEASE)
    with db.read() as session:
        row = session.scalars(select(Notification)).one()
        copy = {c.key: getattr(row, c.key) for c in Notification.__table__.columns}
    copy.pop("id")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), db.write() as session:
        session.add(Notification(**copy))


def test_the_digest_message_is_read_back_with_each_follow_ups_state(crm: CrmService) -> None:
    first, second = overdue(crm), overdue(crm, owner="UADMIN")
    claim = crm.claim_reminders(lease=LEASE)
    send_all(crm, claim)
    crm.complete_follow_up("T1", first, by="UBOB")
    posted = crm.posted_digest("T1", "C1", "1.0")
    assert posted is not None
    assert [(i.ref, i.status.value) for i in posted.items] == [(first, "done"), (second, "open")]
    assert crm.posted_digest("T1", "C1", "9.9") is None
    assert crm.posted_digest("T2", "C1", "1.0") is None  # nothing crosses workspaces


def test_only_managers_acknowledge_escalations_and_the_first_one_counts(crm: CrmService) -> None:
    crm.configure_reminders("T1", manager_channel="CMGR")
    overdue(crm, hours=100)
    claim = crm.claim_reminders(lease=LEASE)
    send_all(crm, claim)
    escalation = next(i for i in claim.items if i.kind is DeliveryKind.ESCALATION)
    assert escalation.escalation_id is not None
    with pytest.raises(PermissionDenied):
        crm.acknowledge_escalation("T1", escalation.escalation_id, by="UBOB")
    crm.set_role("T1", "UCAROL", Role.MANAGER, by="UADMIN")
    acked = crm.acknowledge_escalation("T1", escalation.escalation_id, by="UCAROL")
    assert (acked.ref, acked.by, acked.channel_id) == ("T-1", "UCAROL", "CMGR")
    again = crm.acknowledge_escalation("T1", escalation.escalation_id, by="UADMIN")
    assert again.by == "UCAROL"


def test_snooze_to_next_monday_is_nine_in_the_owners_zone(crm: CrmService, clock: Clock) -> None:
    ref = overdue(crm)  # owned by Bob, in Los Angeles; the clock says Monday
    snoozed = crm.snooze_until_next("T1", ref, by="UADMIN")
    assert snoozed.due_at == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 09:00 PST


def test_reminder_settings_are_validated_and_kept(crm: CrmService) -> None:
    settings = crm.reminder_settings("T1")
    assert (settings.digest_time, settings.digest_days, settings.escalate_after_days) == (
        "09:00",
        (0, 1, 2, 3, 4),
        3,
    )
    changed = crm.configure_reminders(
        "T1",
        by="UADMIN",
        reminder_channel="#CREMIND",
        digest_time="8:30",
        digest_days=parse_days("mon,wed-thu"),
        escalate_after_days=5,
    )
    assert (changed.reminder_channel, changed.digest_time, changed.digest_days) == (
        "CREMIND",
        "08:30",
        (0, 2, 3),
    )
    assert crm.configure_reminders("T1", reminder_channel="").reminder_channel is None
    with pytest.raises(PermissionDenied):
        crm.configure_reminders("T1", by="UBOB", digest_time="10:00")
    for bad in (
        {"digest_time": "25:00"},
        {"reminder_channel": "DUBOB"},
        {"escalate_after_days": 0},
    ):
        with pytest.raises(InvalidInput):
            crm.configure_reminders("T1", **bad)  # type: ignore[arg-type]


def test_calendar_rules() -> None:
    monday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert next_weekday_at(monday, "Europe/Berlin", 0, time(9)) == (
        datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    )
    # After the clocks went back in Berlin (Sunday 25 October) 09:00 is 08:00 UTC, not 07:00.
    assert wall_time(date(2026, 10, 23), time(9), "Europe/Berlin") == (
        datetime(2026, 10, 23, 7, 0, tzinfo=UTC)
    )
    assert wall_time(date(2026, 10, 26), time(9), "Europe/Berlin") == (
        datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    )
    assert parse_days("weekdays") == (0, 1, 2, 3, 4)
    assert parse_days("fri-mon") == (0, 4, 5, 6)
    assert retry_delay(0) == timedelta(minutes=1)
    assert retry_delay(20) == timedelta(hours=1)
    with pytest.raises(InvalidInput):
        parse_days("someday")


# --- morning digests -------------------------------------------------------------


def mornings(crm: CrmService) -> list[tuple[str, str]]:
    """(user, local day) of the morning digests due now; each is recorded as sent."""
    out = []
    for digest in crm.claim_morning_digests(lease=LEASE):
        crm.record_morning(digest, channel_id=f"D{digest.rep.user_id}", message_ts="1.1")
        out.append((digest.rep.user_id, digest.local_day.isoformat()))
    return out


def test_the_morning_digest_comes_at_nine_local_time_across_the_dst_change(
    crm: CrmService, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 22, 12, 0, tzinfo=UTC)
    overdue(crm, owner="UADMIN", hours=2)  # Ada is in Berlin
    clock.now = datetime(2026, 10, 23, 6, 59, tzinfo=UTC)  # Friday 08:59 CEST
    assert mornings(crm) == []
    clock.now = datetime(2026, 10, 23, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert mornings(crm) == [("UADMIN", "2026-10-23")]
    clock.advance(minutes=30)
    assert mornings(crm) == []  # once a day
    clock.now = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)  # Saturday
    assert mornings(crm) == []
    # Sunday 25 October the clocks go back: Monday's 09:00 is 08:00 UTC, not 07:00.
    clock.now = datetime(2026, 10, 26, 7, 0, tzinfo=UTC)
    assert mornings(crm) == []
    clock.now = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert mornings(crm) == [("UADMIN", "2026-10-26")]


def test_the_morning_digest_says_what_is_overdue_due_today_loose_and_stale(
    crm: CrmService, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    crm.create_deal("T1", by="UADMIN", name="Quiet deal", amount=Decimal(50000))
    planned = crm.create_deal("T1", by="UADMIN", name="Planned deal")
    crm.create_follow_up(
        "T1", by="UADMIN", about=planned.ref, due_at=datetime(2026, 11, 24, 14, tzinfo=UTC)
    )
    clock.now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    overdue(crm, owner="UADMIN", hours=3, title="Send the contract")
    overdue(crm, owner="UBOB", hours=3, title="Bob's, not Ada's")
    crm.create_follow_up(
        "T1", by="UADMIN", about=None, due_at=clock.now + timedelta(hours=5), title="Demo"
    )
    clock.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    (digest,) = crm.claim_morning_digests(lease=LEASE)
    assert digest.rep.user_id == "UADMIN"
    assert [t.title for t in digest.overdue] == ["Send the contract"]
    assert [t.title for t in digest.due_today] == ["Demo"]
    assert [d.name for d in digest.no_next_step] == ["Quiet deal"]
    assert [(d.name, d.idle_days) for d in digest.stale] == [
        ("Quiet deal", 20),
        ("Planned deal", 20),
    ]


def test_a_rep_with_nothing_to_report_or_who_turned_it_off_gets_no_digest(
    crm: CrmService, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 09:00 in Los Angeles
    assert crm.claim_morning_digests(lease=LEASE) == ()  # Bob has nothing open
    overdue(crm, owner="UBOB")
    clock.now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    crm.set_digest_preferences("T1", "UBOB", enabled=False)
    assert mornings(crm) == []
    crm.set_digest_preferences("T1", "UBOB", enabled=True, digest_time="07:30")
    clock.now = datetime(2026, 11, 25, 15, 29, tzinfo=UTC)
    assert mornings(crm) == []
    clock.now = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 07:30 in Los Angeles
    assert mornings(crm) == [("UBOB", "2026-11-25")]


def test_a_clock_that_was_down_catches_up_the_morning_digest_within_hours(
    crm: CrmService, clock: Clock
) -> None:
    overdue(crm, owner="UADMIN")
    clock.now = datetime(2026, 11, 24, 11, 59, tzinfo=UTC)  # 12:59 in Berlin
    assert mornings(crm) == [("UADMIN", "2026-11-24")]
    clock.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00: too late for a morning
    assert mornings(crm) == []


def test_a_failed_morning_digest_is_retried_the_same_day(crm: CrmService, clock: Clock) -> None:
    overdue(crm, owner="UADMIN")
    clock.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    (digest,) = crm.claim_morning_digests(lease=LEASE)
    crm.release_morning(digest, error="internal_error")
    assert crm.claim_morning_digests(lease=LEASE) == ()
    clock.advance(minutes=1, seconds=1)
    (again,) = crm.claim_morning_digests(lease=LEASE)
    assert again.delivery_id == digest.delivery_id
