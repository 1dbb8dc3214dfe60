"""Slack's side of the conversation: signed requests to the app, shaped as Slack sends them.

`SlackSide` builds the payloads Slack would send for a slash command, a click, a modal
submission, a type-ahead query, an event or a message shortcut, signs them with the signing
secret and posts them over HTTP. The response_urls and trigger ids in those payloads are
issued by the fake Web API (`FakeSlack`), so what the app does with them is recorded there.
The demo console and the test suite (tests/slackapp.py) both speak to the app through it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmbot.demo.fakeslack import Call, FakeSlack

JSON = dict[str, Any]


@dataclass
class Answer:
    """The app's HTTP answer to one request."""

    status: int
    body: str

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


def sign(body: bytes, timestamp: int, secret: str) -> str:
    """`X-Slack-Signature` for a body sent at `timestamp` (Slack's v0 scheme)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


_EMAIL = re.compile(r"(?<![\w.<|:])([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")
_URL = re.compile(r"(?<![<|\w])(https?://[^\s<>|]+)")
_MENTION = re.compile(r"(?<![\w<|])@([\w.-]+)")
_CHANNEL = re.compile(r"(?<![\w<|&])#([\w-]+)")


def as_slack_sends(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """What Slack delivers for typed command text when the command escapes (`should_escape`).

    `&`, `<`, `>` become entities; `@name` of a known user becomes `<@U…|name>`, `#name` of a
    known channel `<#C…|name>`, addresses `<mailto:…|…>` and web links `<https://…>`.
    `users` and `channels` map names to ids.
    """
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def mention(match: re.Match[str]) -> str:
        name = match[1].rstrip(".")
        user_id = users.get(name.lower())
        if user_id is None:
            return match[0]
        return f"<@{user_id}|{name}>" + match[1][len(name) :]

    def channel(match: re.Match[str]) -> str:
        channel_id = channels.get(match[1].lower())
        return f"<#{channel_id}|{match[1]}>" if channel_id else match[0]

    out = _URL.sub(lambda m: f"<{m[1]}>", out)
    out = _EMAIL.sub(lambda m: f"<mailto:{m[1]}|{m[1]}>", out)
    out = _MENTION.sub(mention, out)
    return _CHANNEL.sub(channel, out)


class SlackSide:
    """Plays Slack's side: signed commands, clicks, submissions and events to /slack/events.

    `team`, `user` and `channel` are the defaults for every request; each method can
    override them.
    """

    def __init__(
        self,
        base_url: str,
        fake: FakeSlack,
        *,
        secret: str,
        team: str,
        user: str,
        channel: str,
        app_id: str = "A1",
    ) -> None:
        self.base_url = base_url
        self.fake = fake
        self.secret = secret
        self.team = team
        self.user = user
        self.channel = channel
        self.app_id = app_id

    # --- raw HTTP ------------------------------------------------------------

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        path: str = "/slack/events",
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST a signed body to the app."""
        ts = int(time.time()) if timestamp is None else timestamp
        request = urllib.request.Request(
            self.base_url + path,
            data=body,
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": str(ts),
                "X-Slack-Signature": sign(body, ts, self.secret if secret is None else secret),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())

    def get(self, path: str) -> Answer:
        """GET a path of the app (unsigned, like a health check)."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:
                return Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.read().decode())

    def form(self, fields: dict[str, str], **kwargs: Any) -> Answer:
        """POST form fields, signed."""
        return self.post(
            urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded", **kwargs
        )

    def interactive(self, payload: JSON, **kwargs: Any) -> Answer:
        """POST an interactivity payload (`payload=<json>`), signed."""
        return self.form({"payload": json.dumps(payload)}, **kwargs)

    # --- Slack surfaces ------------------------------------------------------

    def _who(self, user: str | None, team: str | None) -> tuple[str, str]:
        return user or self.user, team or self.team

    def _team_json(self, team: str) -> JSON:
        return {"id": team, "domain": team.lower()}

    def channel_name(self, team: str, channel: str) -> str:
        """The name Slack puts beside a channel id in payloads."""
        if channel.startswith("D"):
            return "directmessage"
        return self.fake.channels(team).get(channel) or channel.lower()

    def send_command(
        self,
        text: str,
        *,
        user: str | None = None,
        team: str | None = None,
        channel: str | None = None,
        command: str = "/crm",
        **kwargs: Any,
    ) -> tuple[Answer, str, str]:
        """Send `/crm text`; return the HTTP answer, the response_url and the trigger id."""
        user, team = self._who(user, team)
        channel = channel or self.channel
        response_url = self.fake.response_url(team, channel_id=channel, user_id=user)
        trigger = self.fake.issue_trigger_id(user)
        fields = {
            "token": "legacy",
            "team_id": team,
            "team_domain": team.lower(),
            "channel_id": channel,
            "channel_name": self.channel_name(team, channel),
            "user_id": user,
            "user_name": self.fake.users(team).get(user, user.lower()),
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": trigger,
            "api_app_id": self.app_id,
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
        """The first post to `response_url`, or the modal opened with `trigger`."""
        key = response_url.rsplit("/", 1)[1]
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            calls = self.fake.calls
            for call in calls[seen:]:
                if call.method == "response_url" and call.path.endswith(f"/response/{key}"):
                    return call
                if (
                    trigger
                    and call.method == "views.open"
                    and call.args.get("trigger_id") == trigger
                ):
                    return call
            seen = len(calls)
            self.fake.wait_calls(seen, min(0.1, max(0.0, deadline - time.monotonic())))
        raise AssertionError(
            f"no reply to {response_url}; calls: {[c.method for c in self.fake.calls]}"
        )

    def act(
        self,
        action: JSON,
        *,
        user: str | None = None,
        team: str | None = None,
        channel: str | None = None,
        view: JSON | None = None,
        message: JSON | None = None,
    ) -> tuple[Answer, str, str]:
        """Send a block_actions payload for one `action` (button press, menu pick, ...).

        In a view (modal or App Home) give `view`; on a channel message give `message`
        (with its `ts`); otherwise the action was on an ephemeral message in `channel`.
        Returns the HTTP answer, the response_url ("" for views) and the trigger id.
        """
        user, team = self._who(user, team)
        channel = channel or self.channel
        trigger = self.fake.issue_trigger_id(user)
        payload: JSON = {
            "type": "block_actions",
            "team": self._team_json(team),
            "user": {"id": user, "team_id": team, "username": self.fake.users(team).get(user)},
            "api_app_id": self.app_id,
            "trigger_id": trigger,
            "actions": [{"action_ts": str(time.time()), **action}],
        }
        response_url = ""
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view.get("id", "V1")}
            return self.interactive(payload), response_url, trigger
        ts = message.get("ts") if message is not None else None
        response_url = self.fake.response_url(team, channel_id=channel, user_id=user, message_ts=ts)
        payload["response_url"] = response_url
        payload["channel"] = {"id": channel, "name": self.channel_name(team, channel)}
        if message is not None:
            payload["message"] = message
            payload["container"] = {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel,
                "is_ephemeral": False,
            }
        else:
            payload["container"] = {"type": "message", "channel_id": channel, "is_ephemeral": True}
        return self.interactive(payload), response_url, trigger

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str | None = None,
        team: str | None = None,
        channel: str | None = None,
        view: JSON | None = None,
        block_id: str = "b",
    ) -> tuple[Answer, str, str]:
        """Click a button; return the HTTP answer, response_url and trigger id."""
        action = {"action_id": action_id, "block_id": block_id, "value": value, "type": "button"}
        return self.act(action, user=user, team=team, channel=channel, view=view)

    def submit(
        self,
        view: JSON,
        values: dict[str, dict[str, Any]],
        *,
        user: str | None = None,
        team: str | None = None,
    ) -> Answer:
        """Submit a modal as Slack would: the opened view plus its state values."""
        user, team = self._who(user, team)
        submitted = {
            **view,
            "id": view.get("id", "V1"),
            "team_id": team,
            "state": {"values": values},
        }
        payload = {
            "type": "view_submission",
            "team": self._team_json(team),
            "user": {"id": user, "team_id": team},
            "api_app_id": self.app_id,
            "view": submitted,
        }
        return self.interactive(payload)

    def options(
        self,
        action_id: str,
        value: str,
        *,
        user: str | None = None,
        team: str | None = None,
        block_id: str = "record",
        view: JSON | None = None,
    ) -> Answer:
        """Type-ahead in an external select (block_suggestion)."""
        user, team = self._who(user, team)
        payload = {
            "type": "block_suggestion",
            "team": self._team_json(team),
            "user": {"id": user, "team_id": team},
            "api_app_id": self.app_id,
            "action_id": action_id,
            "block_id": block_id,
            "value": value,
            "view": view
            or {"id": "V1", "type": "modal", "callback_id": "x", "private_metadata": ""},
        }
        return self.interactive(payload)

    def event(self, event: JSON, *, team: str | None = None, retry: int | None = None) -> Answer:
        """Deliver an Events API event (e.g. app_home_opened)."""
        body = {
            "token": "legacy",
            "team_id": team or self.team,
            "api_app_id": self.app_id,
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
        self,
        message: JSON,
        *,
        user: str | None = None,
        team: str | None = None,
        channel: str | None = None,
    ) -> tuple[Answer, str]:
        """Run the "Log to CRM" message shortcut on `message`; return the answer and trigger."""
        user, team = self._who(user, team)
        channel = channel or self.channel
        trigger = self.fake.issue_trigger_id(user)
        payload = {
            "type": "message_action",
            "callback_id": "log_to_crm",
            "team": self._team_json(team),
            "user": {"id": user, "team_id": team},
            "channel": {"id": channel, "name": self.channel_name(team, channel)},
            "message": message,
            "message_ts": message.get("ts"),
            "trigger_id": trigger,
            "response_url": self.fake.response_url(team, channel_id=channel, user_id=user),
        }
        return self.interactive(payload), trigger
