"""`crmbot socket` as a real process: Socket Mode against a local WebSocket endpoint.

The fake Web API's `apps.connections.open` (app-level token) hands out the URL of
tests/fakesocket.py's server; commands, modal submissions and events arrive as envelopes
and must be acknowledged within 3 s, replies go to the fake Web API as over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from crmbot.service import CrmService
from crmbot.store.db import Database
from tests.fakesocket import FakeSocketMode, SocketSide
from tests.slackapp import TOKEN, build_fake
from tests.test_forms import slack_state

APP_TOKEN = "xapp-1-A1-test"


class SocketSim(SocketSide):
    def __init__(self, socket: FakeSocketMode, fake: object, crm: CrmService) -> None:
        super().__init__(socket, fake, team="T1", user="UBOB", channel="C1")  # type: ignore[arg-type]
        self.crm = crm


@pytest.fixture
def socket_app(db: Database, tmp_path: Path) -> Iterator[SocketSim]:
    fake = build_fake()
    endpoint = FakeSocketMode()
    fake.add_app_token(APP_TOKEN, endpoint.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CRMBOT_"))}
    env.update(
        DATABASE_URL=db.url,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_API_URL=fake.url,
        CRMBOT_WEB_SCHEDULER="false",
    )
    log = (tmp_path / "socket.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "crmbot.cli", "socket"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        endpoint.wait_connected(timeout=60)
        yield SocketSim(endpoint, fake, CrmService(db))
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        endpoint.stop()
        fake.stop()
    text = (tmp_path / "socket.log").read_text()
    assert "Traceback" not in text, text
    assert TOKEN not in text
    assert APP_TOKEN not in text


def shown(call: object) -> str:
    args = call.args  # type: ignore[attr-defined]
    return str(args.get("text", "")) + json.dumps(args.get("blocks", []), ensure_ascii=False)


def test_crmbot_socket_serves_commands_modals_and_events(socket_app: SocketSim) -> None:
    slack = socket_app
    calls = [c.method for c in slack.fake.calls]
    assert "apps.connections.open" in calls
    assert "L-1" in shown(slack.command("lead Ana Lima at Acme Corp ana@acme.com"))
    assert "L-1" in shown(slack.command("find ana"))
    log_view = slack.command("log call L-1").response["view"]
    answer = slack.submit(log_view, slack_state(log_view, notes="Intro call", duration="20"))
    assert answer.status == 200
    assert "errors" not in answer.body
    slack.fake.wait_for("chat.postEphemeral")
    # A bad submission gets its field errors back in the acknowledgement.
    log_view = slack.command("log call L-1").response["view"]
    answer = slack.submit(log_view, slack_state(log_view, notes="x", duration="forever"))
    assert answer.json()["response_action"] == "errors"
    slack.event({"type": "app_home_opened", "user": "UBOB", "channel": "DUBOB", "tab": "home"})
    home = slack.fake.wait_for("views.publish")[0]
    assert home.args["user_id"] == "UBOB"
    assert [i.summary for i in slack.crm.show("T1", "L-1").interactions] == ["Intro call"]


def test_the_fake_refuses_an_app_token_for_bot_methods_and_a_bot_token_for_sockets() -> None:
    fake = build_fake()
    try:
        fake.add_app_token(APP_TOKEN, "ws://127.0.0.1:1/")
        with pytest.raises(SlackApiError, match="not_allowed_token_type"):
            WebClient(token=APP_TOKEN, base_url=fake.url).chat_postMessage(channel="C1", text="x")
        with pytest.raises(SlackApiError, match="not_allowed_token_type"):
            WebClient(token=TOKEN, base_url=fake.url).apps_connections_open(app_token=TOKEN)
        opened = WebClient(base_url=fake.url).apps_connections_open(app_token=APP_TOKEN)
        assert opened["url"] == "ws://127.0.0.1:1/"
    finally:
        fake.stop()
