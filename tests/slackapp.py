"""crmbot served for real, with Slack faked at the wire: signed HTTP in, fake Web API out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from crmbot.app import create_app
from crmbot.config import Settings
from crmbot.demo.slack_side import Answer, SlackSide
from crmbot.demo.slack_side import sign as _sign
from crmbot.handlers.intake import intake_endpoint
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.web import create_wsgi, make_server
from tests.fakeslack import FakeSlack

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-T1"
INTAKE_TOKEN = "test-intake-token-T1"  # CRMBOT_INTAKE_TOKEN: the bot's team (T1)

__all__ = ["SECRET", "TOKEN", "Answer", "SlackSim", "build_fake", "sign", "slack"]


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    return _sign(body, timestamp, secret)


class SlackSim(SlackSide):
    """Plays Slack's side (crmbot.demo.slack_side) as UBOB in #sales (C1) of T1, by default."""

    def __init__(self, base_url: str, fake: FakeSlack, crm: CrmService) -> None:
        super().__init__(base_url, fake, secret=SECRET, team="T1", user="UBOB", channel="C1")
        self.crm = crm


def build_fake() -> FakeSlack:
    fake = FakeSlack()
    fake.start()
    fake.add_token(TOKEN, "T1", bot_user_id="UBOT")
    fake.add_user("T1", "UADMIN", "ada", real_name="Ada Admin", tz="Europe/Berlin")
    fake.add_user("T1", "UBOB", "bob", real_name="Bob Rep", tz="America/Los_Angeles")
    fake.add_user("T1", "UCAROL", "carol", real_name="Carol Closer", tz="Asia/Kolkata")
    fake.add_user("T2", "UEVE", "eve", real_name="Eve Other", tz="UTC")
    fake.add_channel("T1", "C1", "sales")
    fake.add_channel("T2", "C2", "other-sales")
    return fake


@pytest.fixture
def slack(db: Database, clock: Any) -> Iterator[SlackSim]:
    """The real app behind a real HTTP server, talking to a fake Slack."""
    fake = build_fake()
    settings = Settings(
        database_url=db.url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.url,
        threads=8,
        intake_token=INTAKE_TOKEN,
    )
    crm = CrmService(db, clock)
    crm.ensure_workspace("T1")
    crm.upsert_rep("T1", "UADMIN", name="Ada Admin", tz="Europe/Berlin")
    app = create_app(settings, crm, db=db)
    intake = intake_endpoint(settings, crm, app)
    wsgi = create_wsgi(app, db, intake=intake)
    server = make_server(wsgi, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield SlackSim(f"http://127.0.0.1:{server.effective_port}", fake, crm)
    finally:
        server.close()
        intake.close()
        fake.stop()
