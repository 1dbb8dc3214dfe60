"""response_url replies over kept-alive connections (crmbot/handlers/replies.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crmbot.handlers import replies


class _Hook(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[dict[str, Any]] = []
        self.connections = 0
        self.statuses: list[tuple[int, dict[str, str]]] = []  # answered first, then 200s


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        hook: _Hook = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook.bodies.append(json.loads(body))
        status, headers = hook.statuses.pop(0) if hook.statuses else (200, {})
        data = b"ok" if status == 200 else b"error"
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _url(hook: _Hook) -> str:
    return f"http://127.0.0.1:{hook.server_address[1]}/response/abc?x=1"


def test_replies_share_one_kept_alive_connection_and_keep_bolts_body(hook: _Hook) -> None:
    pool = replies.ConnectionPool()
    respond = replies.PooledRespond(response_url=_url(hook), pool=pool)
    first = respond(response_type="ephemeral", text="one", blocks=[{"type": "divider"}])
    second = respond("two", replace_original=False)
    third = respond({"text": "three", "delete_original": True})
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert hook.bodies == [
        {"text": "one", "blocks": [{"type": "divider"}], "response_type": "ephemeral"},
        {"text": "two", "replace_original": False},
        {"text": "three", "delete_original": True},
    ]
    assert hook.connections == 1
    pool.close()


def test_a_dropped_kept_connection_is_replaced_once(hook: _Hook) -> None:
    pool = replies.ConnectionPool()
    respond = replies.PooledRespond(response_url=_url(hook), pool=pool)
    respond(text="one")
    for conns in pool._idle.values():  # the server went away meanwhile
        for conn in conns:
            assert conn.sock is not None
            conn.sock.close()
    assert respond(text="two").status_code == 200
    assert [b["text"] for b in hook.bodies] == ["one", "two"]
    pool.close()


def test_429_with_a_short_retry_after_and_a_5xx_are_retried(hook: _Hook) -> None:
    waits: list[float] = []
    hook.statuses = [(429, {"Retry-After": "2"}), (503, {})]
    answer = replies.post(
        _url(hook), {"text": "hi"}, pool=replies.ConnectionPool(), sleep=waits.append
    )
    assert answer.status_code == 200
    assert len(hook.bodies) == 3
    assert waits == [2.0, 0.5]


def test_a_long_retry_after_or_a_client_error_is_answered_not_retried(hook: _Hook) -> None:
    waits: list[float] = []
    hook.statuses = [(429, {"Retry-After": "60"}), (404, {})]
    pool = replies.ConnectionPool()
    assert replies.post(_url(hook), {"text": "a"}, pool=pool, sleep=waits.append).status_code == 429
    assert replies.post(_url(hook), {"text": "b"}, pool=pool, sleep=waits.append).status_code == 404
    assert waits == []
    assert len(hook.bodies) == 2


def test_without_a_response_url_respond_refuses() -> None:
    with pytest.raises(ValueError, match="no response_url"):
        replies.PooledRespond(response_url=None)(text="x")
