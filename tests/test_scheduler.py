"""Reminder sweeps against the fake Slack: digests, grouping, fallbacks, faults, buttons."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import select

from crmbot import cli
from crmbot.config import Settings
from crmbot.domain import FollowUpStatus, Role
from crmbot.handlers.delivery import Pacer
from crmbot.handlers.ids import Action
from crmbot.scheduler import Sweeper, SweepReport, Tokens, schedule, start_in_background
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import Notification
from tests.conftest import Clock
from tests.fakeslack import Call, FakeSlack, Fault
from tests.slackapp import TOKEN, SlackSim, build_fake
from tests.test_forms import slack_state

REF = re.compile(r"\bT-\d+\b")
# Slack-side behaviour: the database side of the same paths runs on both engines in
# test_reminders.py (and on PostgreSQL, with real processes, in test_remind_processes.py).
slack_side = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = build_fake()
    for channel, name in (("C3", "deals"), ("CREM", "reminders"), ("CMGR", "managers")):
        fake.add_channel("T1", channel, name)
    fake.add_channel("T1", "CARCH", "old-deals", is_archived=True)
    yield fake
    fake.stop()


def make_sweeper(crm: CrmService, fake: FakeSlack, *, pacer: Pacer | None = None) -> Sweeper:
    settings = Settings(slack_bot_token=TOKEN, slack_api_url=fake.url, reminder_lease=300)
    return Sweeper(crm, settings, pacer=pacer or Pacer(0))


@pytest.fixture
def sweeper(crm: CrmService, fake: FakeSlack) -> Sweeper:
    return make_sweeper(crm, fake)


def overdue(
    crm: CrmService,
    channel: str | None,
    *,
    owner: str = "UBOB",
    hours: float = 2,
    title: str = "Call back",
) -> str:
    made = crm.create_follow_up(
        "T1",
        by=owner,
        about=None,
        due_at=crm.now() - timedelta(hours=hours),
        title=title,
        channel_id=channel,
    )
    return made.follow_up.ref


def shown(call: Call | dict[str, Any]) -> str:
    args = call.args if isinstance(call, Call) else call
    return str(args.get("text", "")) + "\n" + json.dumps(args.get("blocks", []), ensure_ascii=False)


def posts(fake: FakeSlack) -> list[Call]:
    return fake.calls_to("chat.postMessage", ok=True)


def test_one_digest_per_channel_mentions_the_owners_and_lists_every_item(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper
) -> None:
    for n in range(4):
        overdue(crm, "C1", owner="UBOB" if n % 2 else "UADMIN", title=f"Call {n}")
    for n in range(3):
        overdue(crm, "C3", title=f"Mail {n}")

    report = sweeper.sweep()

    assert (report.messages, report.items) == (2, 7)
    by_channel = {c.args["channel"]: shown(c) for c in posts(fake)}
    assert set(by_channel) == {"C1", "C3"}
    assert set(REF.findall(by_channel["C1"])) == {"T-1", "T-2", "T-3", "T-4"}
    assert "<@UBOB>" in by_channel["C1"]
    assert "<@UADMIN>" in by_channel["C1"]
    for action in (Action.DONE, Action.SNOOZE_HOUR, Action.SNOOZE_DAY, Action.SNOOZE_MONDAY):
        assert action.value in by_channel["C3"]
    assert Action.RESCHEDULE.value in by_channel["C3"]
    assert Action.LOG_NEXT.value in by_channel["C3"]
    assert "overdue 2 h" in by_channel["C3"]
    assert sweeper.sweep().messages == 0


@slack_side
def test_a_digest_too_big_for_fifty_blocks_groups_the_rest_and_drops_nothing(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper
) -> None:
    crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    owners = ("UADMIN", "UBOB", "UCAROL")
    for n in range(90):
        overdue(crm, "C1", owner=owners[n % 3], hours=n + 1, title=f"Task number {n}")

    sweeper.sweep()

    (call,) = posts(fake)
    assert len(call.args["blocks"]) <= 50
    assert set(REF.findall(shown(call))) == {f"T-{n}" for n in range(1, 91)}
    assert "more" in shown(call)
    assert "90 follow-ups overdue" in shown(call)


def test_an_archived_channel_falls_back_to_the_reminder_channel_and_admins_are_told_once(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    crm.configure_reminders("T1", reminder_channel="CREM")
    overdue(crm, "CARCH")

    report = sweeper.sweep()

    assert report.messages == 1
    assert [c.error for c in fake.calls_to("chat.postMessage") if c.args["channel"] == "CARCH"] == [
        "is_archived"
    ]
    (moved,) = fake.messages("CREM")
    assert "T-1" in shown(moved)
    assert "<#CARCH>" in shown(moved)
    (notice,) = fake.dms_to("UADMIN")
    assert "is_archived" in notice["text"]
    assert "<#CREM>" in notice["text"]
    clock.advance(days=1, minutes=1)
    assert sweeper.sweep().messages == 1
    assert len(fake.messages("CREM")) == 2
    assert len(fake.dms_to("UADMIN")) == 1  # told once


def test_without_a_reminder_channel_each_owner_gets_their_reminders_by_dm(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper
) -> None:
    overdue(crm, "CGONE", owner="UBOB", title="Bob's")
    overdue(crm, "CGONE", owner="UADMIN", title="Ada's")
    overdue(crm, "DUBOB", owner="UBOB", title="from a DM")

    sweeper.sweep()

    bob = "\n".join(shown(m) for m in fake.dms_to("UBOB"))
    assert set(REF.findall(bob)) == {"T-1", "T-3"}
    ada = [shown(m) for m in fake.dms_to("UADMIN")]
    assert any("T-2" in m for m in ada)  # her reminder
    assert any("channel_not_found" in m for m in ada)  # and the notice, as an admin


def test_a_reminder_nobody_can_be_told_is_recorded_undeliverable(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, db: Database
) -> None:
    # No reminder channel, a follow-up made in a DM, and an owner Slack won't DM (deactivated).
    fake.add_user("T1", "UGONE", "gone", real_name="Gone Rep", deleted=True)
    overdue(crm, "DUGONE", owner="UGONE", title="Nobody hears this")

    sweeper.sweep()

    with db.read() as session:
        statuses = set(session.scalars(select(Notification.status)))
    assert "undeliverable" in statuses  # fits the column on PostgreSQL too
    assert fake.dms_to("UGONE") == []


@slack_side
def test_a_deactivated_owner_is_named_in_the_channel_without_a_mention(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    fake.add_user("T1", "UDAN", "dan", real_name="Dan Gone", deleted=True)
    crm.upsert_rep("T1", "UDAN", name="Dan Gone")
    overdue(crm, "C1", owner="UDAN")
    clock.advance(days=2)  # his profile is stale: the sweep asks Slack

    sweeper.sweep()

    (call,) = posts(fake)
    assert "Dan Gone" in shown(call)
    assert "<@UDAN>" not in shown(call)
    rep = crm.rep("T1", "UDAN")
    assert rep is not None
    assert not rep.active


@slack_side
def test_with_429s_500s_and_dropped_connections_every_reminder_goes_out_exactly_once(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    expected = {overdue(crm, channel, title=f"t{n}") for n, channel in enumerate(["C1", "C3"] * 6)}
    for n in range(4):
        expected.add(overdue(crm, "CREM", title=f"r{n}"))

    def plan(number: int, method: str) -> Fault | None:
        if method != "chat.postMessage":
            return None
        if number % 3 == 0:
            return Fault.ratelimited(retry_after=0)
        if number % 4 == 1:
            return Fault.server_error(500, json_body=number % 8 == 1)
        if number % 7 == 2:
            return Fault(status=0, error="dropped", drop=True)
        return None

    fake.fault_plan(plan)
    reports: list[SweepReport] = []
    for _ in range(8):
        reports.append(sweeper.sweep())
        clock.advance(minutes=5)

    delivered = Counter(ref for call in posts(fake) for ref in set(REF.findall(shown(call))))
    assert set(delivered) == expected
    assert set(delivered.values()) == {1}
    assert fake.faulted_calls  # the faults did happen
    assert any(r.to_retry for r in reports)  # and some waited for a later sweep


@slack_side
def test_a_long_retry_after_is_honoured_by_a_later_sweep(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    overdue(crm, "C1")
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=120)
    assert sweeper.sweep().to_retry == 1
    clock.advance(seconds=90)
    assert sweeper.sweep().messages == 0  # Slack said 120 s
    clock.advance(seconds=31)
    assert sweeper.sweep().messages == 1


@slack_side
def test_two_posts_to_one_channel_in_a_sweep_are_a_second_apart(
    crm: CrmService, clock: Clock
) -> None:
    with FakeSlack(post_rate_limit_per_channel=1.0) as fake:
        fake.add_token(TOKEN, "T1", bot_user_id="UBOT")
        fake.add_user("T1", "UADMIN", "ada")
        fake.add_user("T1", "UBOB", "bob")
        fake.add_channel("T1", "CREM", "reminders")
        fake.add_channel("T1", "CARCH", "old", is_archived=True)
        crm.configure_reminders("T1", reminder_channel="CREM")
        overdue(crm, None, title="made in a DM")  # goes to CREM
        overdue(crm, "CARCH", title="made in an archived channel")  # falls back to CREM

        make_sweeper(crm, fake, pacer=Pacer()).sweep()

        (first, second) = [c for c in posts(fake) if c.args["channel"] == "CREM"]
        assert second.at - first.at >= 0.95
        assert fake.faulted_calls == []


def test_the_morning_digest_is_a_dm_at_nine_local_time_after_the_clocks_change(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    clock.now = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)
    overdue(crm, "C1", owner="UADMIN", title="Send the contract")
    sweeper.sweep()  # the channel reminder
    clock.now = datetime(2026, 10, 26, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin (CET now)
    fake.clear_calls()
    sweeper.sweep()
    assert fake.dms_to("UADMIN") == []
    clock.now = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    report = sweeper.sweep()
    assert report.mornings == 1
    (dm,) = fake.dms_to("UADMIN")
    assert "Overdue" in shown(dm)
    assert "T-1" in shown(dm)
    assert Action.DIGEST_OFF.value in shown(dm)
    clock.advance(hours=1)
    assert sweeper.sweep().mornings == 0


def test_an_escalation_is_posted_once_to_the_manager_channel_with_an_acknowledge_button(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper, clock: Clock
) -> None:
    crm.configure_reminders("T1", manager_channel="CMGR", escalate_after_days=3)
    overdue(crm, "C1", hours=80, title="Renewal call")
    sweeper.sweep()
    (escalated,) = fake.messages("CMGR")
    assert "T-1" in shown(escalated)
    assert "<@UBOB>" in shown(escalated)
    assert Action.ACKNOWLEDGE.value in shown(escalated)
    clock.advance(days=1, minutes=1)
    sweeper.sweep()
    assert len(fake.messages("CMGR")) == 1
    assert len(fake.messages("C1")) == 2


# --- buttons on the digest, through the real app ---------------------------------------


def digest_message(slack: SlackSim, channel: str = "C1") -> dict[str, Any]:
    (message,) = slack.fake.messages(channel)
    return message


def press(
    slack: SlackSim, action: Action, value: str, message: dict[str, Any], *, user: str = "UBOB"
) -> tuple[str, str]:
    answer, response_url, trigger = slack.act(
        {"action_id": action.value, "block_id": "b", "value": value, "type": "button"},
        message=message,
        channel="C1",
        user=user,
    )
    assert answer.status == 200
    return response_url, trigger


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_done_and_snooze_on_the_digest_change_the_follow_ups_and_redraw_it_in_place(
    slack: SlackSim, clock: Clock
) -> None:
    crm = slack.crm
    done, snoozed, monday, left = (overdue(crm, "C1", title=t) for t in "abcd")
    make_sweeper(crm, slack.fake).sweep()

    press(slack, Action.DONE, done, digest_message(slack))
    slack.fake.wait_for("chat.update", 1)
    press(slack, Action.SNOOZE_HOUR, snoozed, digest_message(slack))
    slack.fake.wait_for("chat.update", 2)
    press(slack, Action.SNOOZE_MONDAY, monday, digest_message(slack))
    slack.fake.wait_for("chat.update", 3)

    assert crm.follow_up("T1", done).status is FollowUpStatus.DONE
    assert crm.follow_up("T1", snoozed).due_at == clock.now + timedelta(hours=1)
    assert crm.follow_up("T1", monday).due_at == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    message = digest_message(slack)
    blocks = {b.get("block_id"): b for b in message["blocks"]}
    assert f"rem:{done}" not in blocks
    assert "done" in json.dumps(blocks[f"item:{done}"])
    assert f"rem:{snoozed}" not in blocks
    assert "moved to" in json.dumps(blocks[f"item:{snoozed}"])
    assert f"rem:{left}" in blocks  # still open: still has its buttons
    assert "(1)" in message["blocks"][0]["text"]["text"]  # one left for Bob
    # Nothing comes back for the done or snoozed ones on the next sweeps.
    slack.fake.clear_calls()
    clock.advance(minutes=30)
    make_sweeper(crm, slack.fake).sweep()
    assert slack.fake.calls_to("chat.postMessage") == []


@slack_side
def test_reschedule_opens_a_modal_and_moves_the_follow_up(slack: SlackSim, clock: Clock) -> None:
    crm = slack.crm
    ref = overdue(crm, "C1")
    make_sweeper(crm, slack.fake).sweep()
    _, _trigger = press(slack, Action.RESCHEDULE, ref, digest_message(slack))
    (opened,) = slack.fake.wait_for("views.open")
    view = opened.response["view"]
    state = slack_state(view, reschedule_date="2026-12-01", reschedule_time="14:30")
    answer = slack.submit(view, state)
    assert answer.status == 200
    assert "errors" not in answer.body
    slack.fake.wait_for("chat.update")
    moved = crm.follow_up("T1", ref)
    assert moved.due_at == datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 14:30 in Los Angeles
    past = slack_state(view, reschedule_date="2026-11-01", reschedule_time="09:00")
    assert "errors" in slack.submit(view, past).body


@slack_side
def test_log_call_and_schedule_next_logs_finishes_and_plans_the_next_one(
    slack: SlackSim, clock: Clock
) -> None:
    crm = slack.crm
    lead = crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme")
    made = crm.create_follow_up(
        "T1", by="UBOB", about=lead.ref, due_at=clock.now - timedelta(hours=3), channel_id="C1"
    )
    make_sweeper(crm, slack.fake).sweep()
    press(slack, Action.LOG_NEXT, made.follow_up.ref, digest_message(slack))
    (opened,) = slack.fake.wait_for("views.open")
    view = opened.response["view"]
    assert view["callback_id"] == "log_call_next"
    assert "in 1 week" in json.dumps(view["blocks"])
    answer = slack.submit(view, slack_state(view, notes="Talked pricing"))
    assert answer.status == 200
    assert "errors" not in answer.body
    slack.fake.wait_for("chat.update")
    assert crm.follow_up("T1", made.follow_up.ref).status is FollowUpStatus.DONE
    card = crm.show("T1", lead.ref)
    assert [i.summary for i in card.interactions] == ["Talked pricing"]
    assert [f.due_at for f in card.follow_ups] == [
        datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # a week from now
    ]


def test_a_manager_acknowledges_an_escalation_and_the_message_says_who(
    slack: SlackSim, db: Database
) -> None:
    crm = slack.crm
    crm.configure_reminders("T1", manager_channel="C3")
    slack.fake.add_channel("T1", "C3", "managers")
    crm.set_role("T1", "UCAROL", Role.MANAGER, by="UADMIN")
    overdue(crm, "C1", hours=100)
    make_sweeper(crm, slack.fake).sweep()
    (escalated,) = slack.fake.messages("C3")
    button = next(
        el
        for b in escalated["blocks"]
        if (el := b.get("accessory")) and el["action_id"] == Action.ACKNOWLEDGE.value
    )
    slack.act(
        {"action_id": Action.ACKNOWLEDGE.value, "value": button["value"], "type": "button"},
        message=escalated,
        channel="C3",
        user="UCAROL",
    )
    slack.fake.wait_for("chat.update")
    redrawn = shown(slack.fake.messages("C3")[0])
    assert "acknowledged by <@UCAROL>" in redrawn
    assert Action.ACKNOWLEDGE.value not in redrawn


# --- the job and the command line --------------------------------------------------


def test_the_job_runs_late_sweeps_coalesced_and_never_two_at_once(
    crm: CrmService, fake: FakeSlack, sweeper: Sweeper
) -> None:
    background = BackgroundScheduler(timezone=UTC)
    job = schedule(background, sweeper, 60)
    assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (None, True, 1)
    assert job.trigger.interval == timedelta(seconds=60)


@slack_side
def test_a_single_process_install_sweeps_inside_the_web_process(
    crm: CrmService, fake: FakeSlack, db: Database
) -> None:
    overdue(crm, "C1")
    settings = Settings(
        database_url=db.url, slack_bot_token=TOKEN, slack_api_url=fake.url, reminder_interval=60
    )
    clock = start_in_background(settings, crm, db)
    try:
        fake.wait_for("chat.postMessage", 1, timeout=10)  # the first sweep runs at start-up
    finally:
        clock.shutdown(wait=True)
    assert "T-1" in shown(posts(fake)[0])


@slack_side
def test_reminder_settings_from_the_command_line(
    crm: CrmService,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url)
    for name in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert (
        cli.main(
            [
                "reminder-settings",
                "T1",
                "--reminder-channel",
                "CREM",
                "--digest-days",
                "mon-thu",
                "--escalate-after",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "reminder channel: CREM" in out
    assert "digest days: mon-thu" in out
    assert crm.reminder_settings("T1").escalate_after_days == 5
    assert cli.main(["reminder-settings", "T1", "--rep", "UBOB", "--digest-time", "7:45"]) == 0
    assert crm.digest_preferences("T1", "UBOB").digest_time == "07:45"
    assert cli.main(["reminder-settings", "T1", "--digest-time", "noon"]) == 2
    assert "not a time of day" in capsys.readouterr().err
    assert cli.main(["remind"]) == 2
    assert "crmbot scheduler" in capsys.readouterr().err
    assert cli.main(["remind", "--once"]) == 2  # no token: a paragraph, not a traceback
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err


@slack_side
def test_each_workspace_is_posted_to_with_its_own_installation_token(db: Database) -> None:
    from slack_sdk.oauth.installation_store import Installation

    settings = Settings(
        database_url=db.url, slack_client_id="111.222", slack_client_secret="secret"
    )
    tokens = Tokens(settings, db)
    store = SQLAlchemyInstallationStore(client_id="111.222", engine=db.engine)
    store.save(Installation(app_id="A1", team_id="T1", user_id="UADMIN", bot_token="xoxb-t1"))
    store.save(Installation(app_id="A1", team_id="T2", user_id="UEVE", bot_token="xoxb-t2"))
    assert tokens.token_for("T1") == "xoxb-t1"
    assert tokens.token_for("T2") == "xoxb-t2"
    assert tokens.token_for("T9") is None  # uninstalled: its reminders wait
    single = Tokens(Settings(slack_bot_token=TOKEN))
    assert single.token_for("T1") == TOKEN


def test_a_rep_turns_the_morning_digest_off_and_on_and_moves_it_from_the_digest(
    slack: SlackSim, clock: Clock
) -> None:
    crm = slack.crm
    overdue(crm, "C1", owner="UADMIN")
    clock.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    make_sweeper(crm, slack.fake).sweep()
    assert len(slack.fake.dms_to("UADMIN")) == 1

    def click(action: Action) -> None:
        slack.act(
            {"action_id": action.value, "value": "x", "type": "button"},
            message=slack.fake.dms_to("UADMIN")[0],
            channel="DUADMIN",
            user="UADMIN",
        )

    updates = len(slack.fake.calls_to("chat.update"))
    click(Action.DIGEST_OFF)
    slack.fake.wait_for("chat.update", updates + 1)
    assert crm.digest_preferences("T1", "UADMIN").enabled is False
    assert Action.DIGEST_ON.value in shown(slack.fake.dms_to("UADMIN")[0])
    click(Action.DIGEST_ON)
    slack.fake.wait_for("chat.update", updates + 2)
    assert crm.digest_preferences("T1", "UADMIN").enabled is True
    assert Action.DIGEST_OFF.value in shown(slack.fake.dms_to("UADMIN")[0])
    option = {"text": {"type": "plain_text", "text": "07:30"}, "value": "07:30"}
    slack.act(
        {"action_id": Action.DIGEST_TIME.value, "type": "static_select", "selected_option": option},
        message=slack.fake.dms_to("UADMIN")[0],
        channel="DUADMIN",
        user="UADMIN",
    )
    wait_until(lambda: crm.digest_preferences("T1", "UADMIN").digest_time == "07:30")
