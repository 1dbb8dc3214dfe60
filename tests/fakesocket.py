"""Slack's side of Socket Mode: a local WebSocket server the app connects to.

The fake Web API's `apps.connections.open` hands out this server's URL (see
`FakeSlack.add_app_token`). Like Slack, the server says `hello`, then sends envelopes
(`slash_commands`, `interactive`, `events_api`) and waits for the app to acknowledge each
`envelope_id` — within 3 seconds, or Slack would show the user an error.

`SocketSide` is `SlackSide` with the transport swapped: every command, click, submission
and event that the HTTP tests send signed to /slack/events goes over the socket instead.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from crmbot.demo.fakeslack import FakeSlack
from crmbot.demo.slack_side import Answer, SlackSide

ACK_WITHIN = 3.0  # seconds Slack waits for an envelope's acknowledgement


class FakeSocketMode:
    """A Socket Mode endpoint on 127.0.0.1 (plain ws://, which slack-sdk allows off port 443)."""

    def __init__(self, app_id: str = "A1") -> None:
        self.app_id = app_id
        self._server: Server = serve(self._connected, "127.0.0.1", 0)
        self.port = int(self._server.socket.getsockname()[1])
        self._changed = threading.Condition()
        self._connection: ServerConnection | None = None
        self._acks: dict[str, Any] = {}
        self.connections = 0
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}"

    def _connected(self, connection: ServerConnection) -> None:
        connection.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "applink-fake", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        with self._changed:
            self._connection = connection
            self.connections += 1
            self._changed.notify_all()
        try:
            for message in connection:
                data = json.loads(message)
                envelope_id = data.get("envelope_id")
                if envelope_id:
                    with self._changed:
                        self._acks[envelope_id] = data.get("payload")
                        self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if self._connection is connection:
                    self._connection = None
                self._changed.notify_all()

    def wait_connected(self, timeout: float = 30.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._connection is not None, timeout):
                raise AssertionError("the app never connected to the Socket Mode endpoint")

    def send(self, kind: str, payload: dict[str, Any]) -> Answer:
        """Send one envelope; return the app's acknowledgement as an Answer (body: its
        response payload as JSON, or empty). Fails if no ack comes within 3 s."""
        self.wait_connected()
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        with self._changed:
            connection = self._connection
        assert connection is not None
        sent = time.monotonic()
        connection.send(json.dumps(envelope))
        with self._changed:
            acked = self._changed.wait_for(lambda: envelope_id in self._acks, ACK_WITHIN)
            if not acked:
                raise AssertionError(f"{kind} envelope not acknowledged within {ACK_WITHIN}s")
            response = self._acks.pop(envelope_id)
        self.last_ack_seconds = time.monotonic() - sent
        return Answer(200, json.dumps(response) if response else "")

    def stop(self) -> None:
        self._server.shutdown()


class SocketSide(SlackSide):
    """Slack's side over Socket Mode: same payloads as over HTTP, sent as envelopes."""

    def __init__(self, socket: FakeSocketMode, fake: FakeSlack, **kwargs: Any) -> None:
        super().__init__("socket://", fake, secret="unused in Socket Mode", **kwargs)
        self.socket = socket

    def post(self, body: bytes, content_type: str, **kwargs: Any) -> Answer:
        del kwargs  # no signature, timestamp or retry headers in Socket Mode
        if content_type == "application/json":
            return self.socket.send("events_api", json.loads(body))
        fields = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        if "payload" in fields:
            return self.socket.send("interactive", json.loads(fields["payload"]))
        return self.socket.send("slash_commands", fields)
