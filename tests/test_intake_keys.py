"""Intake Idempotency-Keys replay for 7 days, then expire; the sweep deletes them in bounded
batches."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from crmbot.service.intake import KEY_TTL
from crmbot.store.db import Database
from crmbot.store.models import IntakeRequest, Lead
from tests.conftest import Clock
from tests.slackapp import SlackSim
from tests.test_intake import ANA, count, send
from tests.test_intake import team as team  # the fixture
from tests.test_intake_posts import sweeper


def keys(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(IntakeRequest)) or 0)


def test_a_key_replays_for_seven_days_then_is_new_again(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    assert timedelta(days=7) == KEY_TTL
    first = send(team, key="form-123")
    clock.advance(days=6, hours=23)
    assert send(team, key="form-123").json() == first.json()  # still a replay
    changed = {**ANA, "phone": "+1 415 555 0199"}
    assert send(team, changed, key="form-123").status == 422
    clock.advance(hours=2)  # expired, even before any sweep deleted it
    again = send(team, changed, key="form-123")
    assert again.status == 200  # a new request (a replay would be the first 201): the same
    # email updates the lead
    assert count(db, Lead) == 1
    assert team.crm.show("T1", "L-1").record.phone == "+1 415 555 0199"  # type: ignore[union-attr]


def test_the_sweep_deletes_expired_keys_in_bounded_batches(
    team: SlackSim, db: Database, clock: Clock
) -> None:
    for n in range(7):
        send(team, {**ANA, "email": f"ana{n}@acme.com"}, key=f"old-{n}")
    clock.advance(days=8)
    fresh = send(team, {**ANA, "email": "fresh@acme.com"}, key="fresh")
    assert keys(db) == 8
    assert team.crm.expire_intake_keys(batches=2, limit=2) == 4  # at most 2 x 2 per call
    assert keys(db) == 4
    sweeper(team).sweep()
    assert keys(db) == 1  # only the fresh key is left
    with db.read() as session:
        assert session.scalars(select(IntakeRequest.key)).all() == ["fresh"]
    leads = count(db, Lead)
    assert send(team, {**ANA, "email": "fresh@acme.com"}, key="fresh").json() == fresh.json()
    assert count(db, Lead) == leads  # still replayed
