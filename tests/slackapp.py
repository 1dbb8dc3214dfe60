"""crmbot served for real, with Slack faked at the wire: signed HTTP in, fake Web API out."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from crmbot.app import create_app
from crmbot.config import Settings
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.web import create_wsgi, make_server
from tests.fakeslack import Call, FakeSlack

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-T1"


@dataclass
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def sign(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSim:
    """Plays Slack's side: sends signed commands, clicks and submissions to /slack/events."""

    def __init__(self, base_url: str, fake: FakeSlack, crm: CrmService) -> None:
        self.base_url = base_url
        self.fake = fake
        self.crm = crm

    # --- raw HTTP ------------------------------------------------------------

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        path: str = "/slack/events",
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        ts = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": sign(body, ts, secret),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())

    def get(self, path: str) -> Answer:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())

    def form(self, fields: dict[str, str], **kwargs: Any) -> Answer:
        return self.post(
            urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", **kwargs
        )

    def interactive(self, payload: dict[str, Any], **kwargs: Any) -> Answer:
        return self.form({"payload": json.dumps(payload)}, **kwargs)

    # --- Slack surfaces ------------------------------------------------------

    def send_command(
        self,
        text: str,
        *,
        user: str = "UBOB",
        team: str = "T1",
        channel: str = "C1",
        command: str = "/crm",
        **kwargs: Any,
    ) -> tuple[Answer, str, str]:
        """Send `/crm text`; return the HTTP answer, the response_url and the trigger id."""
        response_url = self.fake.response_url(team, channel_id=channel, user_id=user)
        trigger = self.fake.issue_trigger_id(user)
        fields = {
            "token": "legacy",
            "team_id": team,
            "team_domain": team.lower(),
            "channel_id": channel,
            "channel_name": "sales",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger,
            "api_app_id": "A1",
        }
        return self.form(fields, **kwargs), response_url, trigger

    def command(self, text: str, **kwargs: Any) -> Call:
        """Send `/crm text` and wait for the bot's reply (a response_url post or a modal)."""
        answer, response_url, trigger = self.send_command(text, **kwargs)
        assert answer.status == 200, answer
        return self.wait_reply(response_url, trigger)

    def wait_reply(
        self, response_url: str, trigger: str | None = None, timeout: float = 10
    ) -> Call:
        key = response_url.rsplit("/", 1)[1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in list(self.fake.calls):
                if call.method == "response_url" and call.path.endswith(f"/response/{key}"):
                    return call
                if (
                    trigger
                    and call.method == "views.open"
                    and call.args.get("trigger_id") == trigger
                ):
                    return call
            time.sleep(0.01)
        raise AssertionError(
            f"no reply to {response_url}; calls: {[c.method for c in self.fake.calls]}"
        )

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "UBOB",
        team: str = "T1",
        channel: str = "C1",
        view: dict[str, Any] | None = None,
    ) -> tuple[Answer, str, str]:
        """Click a button; return the HTTP answer, response_url and trigger id."""
        trigger = self.fake.issue_trigger_id(user)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": team, "domain": team.lower()},
            "user": {"id": user, "team_id": team},
            "api_app_id": "A1",
            "trigger_id": trigger,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "type": "button",
                    "action_ts": str(time.time()),
                }
            ],
        }
        response_url = ""
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view.get("id", "V1")}
        else:
            response_url = self.fake.response_url(team, channel_id=channel, user_id=user)
            payload["response_url"] = response_url
            payload["channel"] = {"id": channel, "name": "sales"}
            payload["container"] = {"type": "message", "channel_id": channel, "is_ephemeral": True}
        return self.interactive(payload), response_url, trigger

    def submit(
        self,
        view: dict[str, Any],
        values: dict[str, dict[str, Any]],
        *,
        user: str = "UBOB",
        team: str = "T1",
    ) -> Answer:
        """Submit a modal as Slack would: the opened view plus its state values."""
        submitted = {
            **view,
            "id": view.get("id", "V1"),
            "team_id": team,
            "state": {"values": values},
        }
        payload = {
            "type": "view_submission",
            "team": {"id": team, "domain": team.lower()},
            "user": {"id": user, "team_id": team},
            "api_app_id": "A1",
            "view": submitted,
        }
        return self.interactive(payload)

    def options(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "UBOB",
        team: str = "T1",
        block_id: str = "record",
    ) -> Answer:
        """Type-ahead in an external select (block_suggestion)."""
        payload = {
            "type": "block_suggestion",
            "team": {"id": team, "domain": team.lower()},
            "user": {"id": user, "team_id": team},
            "api_app_id": "A1",
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "view": {"id": "V1", "type": "modal", "callback_id": "x", "private_metadata": ""},
        }
        return self.interactive(payload)

    def event(self, event: dict[str, Any], *, team: str = "T1", retry: int | None = None) -> Answer:
        body = {
            "token": "legacy",
            "team_id": team,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "event": event,
        }
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else {}
        )
        return self.post(json.dumps(body).encode(), "application/json", headers=headers)

    def shortcut(
        self, message: dict[str, Any], *, user: str = "UBOB", team: str = "T1", channel: str = "C1"
    ) -> tuple[Answer, str]:
        trigger = self.fake.issue_trigger_id(user)
        payload = {
            "type": "message_action",
            "callback_id": "log_to_crm",
            "team": {"id": team, "domain": team.lower()},
            "user": {"id": user, "team_id": team},
            "channel": {"id": channel, "name": "sales"},
            "message": message,
            "message_ts": message.get("ts"),
            "trigger_id": trigger,
            "response_url": self.fake.response_url(team, channel_id=channel, user_id=user),
        }
        return self.interactive(payload), trigger


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
    )
    crm = CrmService(db, clock)
    crm.ensure_workspace("T1")
    crm.upsert_rep("T1", "UADMIN", name="Ada Admin", tz="Europe/Berlin")
    app = create_app(settings, crm, db=db)
    server = make_server(create_wsgi(app, db), host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield SlackSim(f"http://127.0.0.1:{server.effective_port}", fake, crm)
    finally:
        server.close()
        fake.stop()
