"""`crmbot remind --once` as real processes over one PostgreSQL database and one fake Slack."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from crmbot.config import Settings
from crmbot.domain import RecordKind
from crmbot.handlers.delivery import Pacer
from crmbot.scheduler import Sweeper
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import FollowUp, Notification, RefCounter
from tests.conftest import Clock, _truncate_pg
from tests.fakeslack import Call, FakeSlack, Fault
from tests.slackapp import SECRET, TOKEN

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
REF = re.compile(r"\bT-\d+\b")
CHANNELS = ("C1", "C2", "C3", "C4", "C5", "C6")
OWNERS = ("UANA", "UBEN", "UCAT", "UDEV")


@pytest.fixture
def pg(pg_schema_url: str) -> Iterator[Database]:
    database = Database(pg_schema_url)
    _truncate_pg(database)
    yield database
    database.dispose()


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.start()
    fake.add_token(TOKEN, "T1", bot_user_id="UBOT")
    for user in OWNERS:
        fake.add_user("T1", user, user.lower(), tz="Europe/Berlin")
    for channel in CHANNELS:
        fake.add_channel("T1", channel, f"sales-{channel.lower()}")
    yield fake
    fake.stop()


def seed(db: Database, count: int) -> set[str]:
    """`count` follow-ups, overdue by one to three hours, spread over channels and owners."""
    now = datetime.now(UTC)
    crm = CrmService(db)
    crm.ensure_workspace("T1", name="Acme")
    # Channel digests only: after 09:00 in the owners' zone the same sweep would also DM each
    # owner a morning digest listing these follow-ups, and the counts below are per channel.
    crm.configure_reminders("T1", morning_digest=False)
    for user in OWNERS:  # fresh profiles: the sweeps need no users.info
        crm.upsert_rep("T1", user, name=user.title(), tz="Europe/Berlin")
    rows = [
        {
            "workspace_id": "T1",
            "number": n,
            "title": f"Follow up #{n}",
            "due_at": now - timedelta(minutes=60 + n % 120),
            "remind_at": now - timedelta(minutes=60 + n % 120),
            "owner_id": OWNERS[n % len(OWNERS)],
            "channel_id": CHANNELS[n % len(CHANNELS)],
            "status": "open",
            "created_by": OWNERS[n % len(OWNERS)],
            "created_at": now - timedelta(days=1),
            "remind_attempts": 0,
        }
        for n in range(1, count + 1)
    ]
    with db.write() as session:
        session.execute(insert(FollowUp), rows)
        session.execute(
            insert(RefCounter).values(
                workspace_id="T1", kind=RecordKind.FOLLOW_UP.value, value=count
            )
        )
    return {f"T-{n}" for n in range(1, count + 1)}


def environment(db_url: str, fake: FakeSlack, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    for key in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_APP_TOKEN"):
        env.pop(key, None)
    return env


def remind_once(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crmbot.cli", "remind", "--once"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(processes: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=90)
        assert process.returncode == 0, out
        outputs.append(out)
    return outputs


def shown(call: Call) -> str:
    return str(call.args.get("text", "")) + json.dumps(call.args.get("blocks", []))


def delivered(fake: FakeSlack) -> Counter[str]:
    """How often each follow-up was posted (in messages Slack accepted)."""
    return Counter(
        ref
        for c in fake.calls_to("chat.postMessage", ok=True)
        for ref in set(REF.findall(shown(c)))
    )


def sweep_later(db: Database, fake: FakeSlack, at: datetime) -> None:
    """A sweep in this process, its clock set to `at` (e.g. after the leases ran out)."""
    settings = Settings(slack_bot_token=TOKEN, slack_api_url=fake.url)
    Sweeper(CrmService(db, Clock(at)), settings, pacer=Pacer(0)).sweep()


def test_three_sweeps_started_together_post_each_follow_up_exactly_once(
    pg: Database, pg_schema_url: str, fake: FakeSlack
) -> None:
    expected = seed(pg, 300)
    env = environment(pg_schema_url, fake)

    outputs = finish([remind_once(env) for _ in range(3)])

    counts = delivered(fake)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    summaries = [line for out in outputs for line in out.splitlines() if line.startswith("sweep:")]
    assert len(summaries) == 3
    assert sum(int(s.split()[1]) for s in summaries) == 300
    # One message per channel per sweep: at most three per channel, however the work split.
    per_channel = Counter(c.args["channel"] for c in fake.calls_to("chat.postMessage"))
    assert set(per_channel) == set(CHANNELS)
    assert max(per_channel.values()) <= 3
    with pg.read() as session:  # one log row per message, each marked sent
        statuses = Counter(session.scalars(select(Notification.status)))
        assert statuses == {"sent": sum(per_channel.values())}
        unreminded = select(func.count()).where(FollowUp.last_reminded_at.is_(None))
        assert session.scalar(unreminded) == 0


def test_three_sweeps_through_429s_and_500s_deliver_everything_once(
    pg: Database, pg_schema_url: str, fake: FakeSlack
) -> None:
    expected = seed(pg, 240)

    def plan(number: int, method: str) -> Fault | None:
        if method != "chat.postMessage":
            return None
        if number % 3 == 0:
            return Fault.ratelimited(retry_after=0)
        if number % 5 == 1:
            return Fault.server_error(500)
        return None

    fake.fault_plan(plan)
    finish([remind_once(environment(pg_schema_url, fake)) for _ in range(3)])
    # Whatever the processes had to give back goes out on later sweeps, after its backoff.
    later = datetime.now(UTC)
    for _ in range(6):
        if set(delivered(fake)) == expected:
            break
        later += timedelta(minutes=10)
        sweep_later(pg, fake, later)

    counts = delivered(fake)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert any(c.fault and c.fault.status == 429 for c in fake.faulted_calls)
    assert any(c.fault and c.fault.status == 500 for c in fake.faulted_calls)


def kill_during_first_post(process: subprocess.Popen[str], seen: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not seen():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "the sweep never posted"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)


def test_a_sweep_killed_before_slack_took_the_post_loses_nothing_once_the_lease_runs_out(
    pg: Database, pg_schema_url: str, fake: FakeSlack
) -> None:
    expected = seed(pg, 120)
    # Slack hangs on the first post and never applies it: the sweep dies waiting.
    fake.fault_plan(
        lambda n, method: (
            Fault(status=0, error="held", hold=30, drop=True)
            if method == "chat.postMessage"
            else None
        )
    )
    process = remind_once(environment(pg_schema_url, fake))
    kill_during_first_post(process, lambda: bool(fake.faulted_calls))
    fake.fault_plan(None)
    killed_at = datetime.now(UTC)

    sweep_later(pg, fake, killed_at + timedelta(seconds=60))
    assert delivered(fake) == Counter()  # still leased to the dead sweep
    sweep_later(pg, fake, killed_at + timedelta(seconds=301))  # CRMBOT_REMINDER_LEASE=300

    counts = delivered(fake)
    assert set(counts) == expected
    assert set(counts.values()) == {1}


def test_a_sweep_killed_after_slack_took_the_post_repeats_only_that_message(
    pg: Database, pg_schema_url: str, fake: FakeSlack
) -> None:
    expected = seed(pg, 120)
    # Slack applies the first post but the answer never arrives: the documented window.
    fake.delay("chat.postMessage", 30, times=1)
    process = remind_once(environment(pg_schema_url, fake))
    kill_during_first_post(process, lambda: bool(fake.calls_to("chat.postMessage")))
    (in_flight,) = fake.calls_to("chat.postMessage")
    killed_at = datetime.now(UTC)

    sweep_later(pg, fake, killed_at + timedelta(seconds=301))

    counts = delivered(fake)
    assert set(counts) == expected
    twice = {ref for ref, n in counts.items() if n == 2}
    assert twice == set(REF.findall(shown(in_flight)))
    assert set(counts.values()) == {1, 2}


def test_the_clock_process_sweeps_at_start_and_stops_on_sigterm(
    pg: Database, pg_schema_url: str, fake: FakeSlack
) -> None:
    expected = seed(pg, 12)
    clock = subprocess.Popen(
        [sys.executable, "-m", "crmbot.cli", "scheduler"],
        env=environment(pg_schema_url, fake, CRMBOT_REMINDER_INTERVAL="3600"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        fake.wait_for("chat.postMessage", len(CHANNELS), timeout=60)
        clock.send_signal(signal.SIGTERM)
        out, _ = clock.communicate(timeout=30)
    finally:
        if clock.poll() is None:
            clock.kill()
    assert clock.returncode == 0, out
    assert "sweeping every 3600 s" in out
    assert set(delivered(fake)) == expected
