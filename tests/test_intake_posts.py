"""The intake's Slack posts are durable: queued with the lead, retried by the sweep until they
arrive, exactly once (Slack faked at the wire, both engines)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select

from crmbot.config import Settings
from crmbot.handlers.delivery import Pacer
from crmbot.handlers.intake import retry_intake_posts
from crmbot.scheduler import Sweeper
from crmbot.store.db import Database
from crmbot.store.intake_queries import INTAKE_KIND
from crmbot.store.models import Notification
from tests.conftest import Clock
from tests.slackapp import TOKEN, SlackSim
from tests.test_intake import ANA, send
from tests.test_intake import team as team  # the fixture


def sweeper(slack: SlackSim) -> Sweeper:
    settings = Settings(slack_bot_token=TOKEN, slack_api_url=slack.fake.url, reminder_lease=300)
    return Sweeper(slack.crm, settings, pacer=Pacer(0))


def posts(db: Database) -> list[Any]:
    with db.read() as session:
        rows = session.scalars(
            select(Notification).where(Notification.kind == INTAKE_KIND).order_by(Notification.id)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def settled(db: Database, timeout: float = 10.0) -> list[Any]:
    """The intake's rows once its own process is done with them (sent or given back)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = posts(db)
        if rows and all(r.status != "pending" or r.claim_token is None for r in rows):
            return rows
        assert time.monotonic() < deadline, [(r.status, r.claim_token) for r in rows]
        time.sleep(0.05)


def delivered(slack: SlackSim, channel: str) -> list[Any]:
    """Intake messages (the notice, the owner's DM) about L-1 Slack accepted in `channel`
    (not the reminders about its follow-up, which the sweep posts as well)."""
    return [
        c
        for c in slack.fake.calls_to("chat.postMessage", ok=True)
        if c.args["channel"] == channel
        and "web lead l-1" in str(c.args.get("text", "")).lower()
        and "L-1" in json.dumps(c.args)
    ]


def test_the_posts_are_queued_with_the_lead_and_marked_sent(team: SlackSim, db: Database) -> None:
    answer = send(team)
    owner = answer.json()["owner"]
    rows = settled(db)
    assert sorted((r.detail["target"], r.status) for r in rows) == [
        ("channel", "sent"),
        ("owner", "sent"),
    ]
    assert {r.channel_id for r in rows} == {"C1", f"D{owner}"}
    assert all(r.message_ts for r in rows)
    report = sweeper(team).sweep()  # nothing left for the sweep
    assert not [line for line in report.lines if "intake" in line]
    assert len(delivered(team, "C1")) == 1
    assert len(delivered(team, f"D{owner}")) == 1


def test_a_slack_outage_is_retried_by_the_sweep_and_posts_exactly_once(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    # 500s: the first try and its one quick retry fail, for the notice (chat.postMessage)
    # and the DM (conversations.open) alike; then Slack is back.
    team.fake.fail_next("chat.postMessage", "internal_error", times=2)
    team.fake.fail_next("conversations.open", "internal_error", times=2)
    answer = send(team)
    assert answer.status == 201
    owner = answer.json()["owner"]
    rows = settled(db)
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1), ("pending", 1)]
    assert delivered(team, "C1") == []
    sweep = sweeper(team)
    sweep.sweep()  # the backoff (a minute) has not passed: nothing yet
    assert delivered(team, "C1") == []
    clock.advance(minutes=2)
    report = sweep.sweep()
    assert sum("→ posted" in line for line in report.lines) == 2, report.lines
    assert [r.status for r in posts(db)] == ["sent", "sent"]
    clock.advance(hours=2)
    sweep.sweep()
    sweeper(team).sweep()  # another process's sweep finds nothing either
    assert len(delivered(team, "C1")) == 1
    assert len(delivered(team, f"D{owner}")) == 1


def test_a_long_retry_after_is_honoured(team: SlackSim, db: Database, clock: Clock) -> None:
    # 429 with Retry-After 300 s: too long to wait in process, so the sweep waits it out.
    team.fake.fail_next("chat.postMessage", "ratelimited", retry_after=300, times=1)
    team.crm.set_intake_channel("T1", "C1", by="UADMIN")
    team.crm.upsert_rep("T1", "UBOB", name="Bob Rep", active=False)
    team.crm.upsert_rep("T1", "UCAROL", name="Carol Closer", active=False)
    send(team)  # Ada's: the channel notice is rate limited, the DM goes out
    rows = settled(db)
    by_target = {r.detail["target"]: r for r in rows}
    assert (by_target["channel"].status, by_target["channel"].error) == ("pending", "ratelimited")
    assert by_target["owner"].status == "sent"
    sweep = sweeper(team)
    clock.advance(minutes=2)  # past the usual backoff, not past Retry-After
    sweep.sweep()
    assert delivered(team, "C1") == []
    clock.advance(minutes=4)
    sweep.sweep()
    sweep.sweep()
    assert len(delivered(team, "C1")) == 1
    assert len(delivered(team, "DUADMIN")) == 1


def test_posts_a_crashed_process_never_made_go_out_after_its_lease(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    # The intake committed, then its process died before posting: only the queue knows.
    outcome = team.crm.intake_lead("T1", ANA)
    assert len(outcome.posts) == 2
    sweep = sweeper(team)
    sweep.sweep()  # still leased to the (dead) process that took the intake
    assert delivered(team, "C1") == []
    clock.advance(minutes=6)
    sweep.sweep()
    sweep.sweep()
    assert len(delivered(team, "C1")) == 1
    assert len(delivered(team, f"D{outcome.lead.owner_id}")) == 1  # type: ignore[union-attr]


def test_a_channel_that_refuses_the_bot_is_not_retried(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    team.fake.fail_next("chat.postMessage", "not_in_channel", times=1)
    team.crm.upsert_rep("T1", "UBOB", name="Bob Rep", active=False)
    team.crm.upsert_rep("T1", "UCAROL", name="Carol Closer", active=False)
    send(team)
    rows = {r.detail["target"]: r for r in settled(db)}
    assert (rows["channel"].status, rows["channel"].error) == ("failed", "not_in_channel")
    clock.advance(hours=3)
    sweeper(team).sweep()
    assert delivered(team, "C1") == []


def test_posts_a_sweep_has_no_time_for_are_handed_back_uncounted(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    team.crm.intake_lead("T1", ANA)  # queued; its process "died" before posting
    clock.advance(minutes=6)
    lines: list[str] = []
    client = WebClient(token=TOKEN, base_url=team.fake.url)
    # A lease with no time in it: nothing may start, everything goes back untouched.
    sent = retry_intake_posts(
        team.crm, lambda ws: client, lease=timedelta(0), pacer=Pacer(0), say=lines.append
    )
    assert (sent, lines) == (0, [])
    rows = posts(db)
    assert [(r.status, r.attempts, r.claim_token) for r in rows] == [("pending", 0, None)] * 2
    clock.advance(seconds=1)  # free from "now": the next sweep takes them
    sweeper(team).sweep()
    assert [r.status for r in posts(db)] == ["sent", "sent"]
    assert len(delivered(team, "C1")) == 1
