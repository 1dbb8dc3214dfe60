"""Replies through `response_url` over kept-alive connections, in place of Bolt's `respond`.

Bolt's `Respond` builds a slack-sdk `WebhookClient` per call, which opens a new connection
(urllib) for every reply. `PooledRespond` takes the same arguments and builds the same JSON
body, but posts it over a connection kept per host and reused by the next reply. Like
`WebhookClient`, it answers with a `WebhookResponse` and does not raise for HTTP errors;
it retries a dropped kept-alive connection once, HTTP 429 when Retry-After is short, and a
5xx once.
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from slack_bolt import App
from slack_bolt.context.respond import Respond
from slack_bolt.context.respond.internals import _build_message
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.webhook import WebhookResponse

log = logging.getLogger(__name__)

TIMEOUT = 10.0
MAX_IDLE = 8  # kept connections per host
MAX_HOSTS = 16  # hosts with kept connections (Slack has one; tests start many fakes)
MAX_RETRY_AFTER = 5.0  # wait out a 429 in process only when Slack asks for this little
RETRIES = 2


class ConnectionPool:
    """Idle HTTP(S) connections per (scheme, host, port); safe to share between threads."""

    def __init__(self, *, max_idle: int = MAX_IDLE, timeout: float = TIMEOUT) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._timeout = timeout
        self._ssl = ssl.create_default_context()

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=self._timeout)

    def post_json(self, url: str, body: bytes) -> tuple[int, str, dict[str, str]]:
        """POST `body` as JSON; (status, text, headers). Raises OSError when it can't connect."""
        parts = urlsplit(url)
        scheme = parts.scheme or "https"
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"Content-Type": "application/json;charset=utf-8"}
        for attempt in range(2):
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            reused = conn is not None
            if conn is None:
                conn = self._connect(scheme, host, port)
            try:
                conn.request("POST", target, body=body, headers=headers)
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                conn.close()
                if reused and attempt == 0:  # the server closed a kept connection: reconnect
                    continue
                raise
            if response.will_close:
                conn.close()
            else:
                with self._lock:
                    stale: list[http.client.HTTPConnection] = []
                    if key not in self._idle and len(self._idle) >= MAX_HOSTS:
                        stale = self._idle.pop(next(iter(self._idle)))  # the oldest host
                    idle = self._idle.setdefault(key, [])
                    if len(idle) < self._max_idle:
                        idle.append(conn)
                        conn = None
                for old in stale:
                    old.close()
                if conn is not None:
                    conn.close()
            return response.status, text, {k.lower(): v for k, v in response.getheaders()}
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


POOL = ConnectionPool()


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers.get("retry-after", "1"))
    except ValueError:
        return None


def post(
    url: str,
    message: dict[str, Any],
    *,
    pool: ConnectionPool = POOL,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookResponse:
    """POST one response_url message, retrying 429 (short Retry-After) and 5xx."""
    body = json.dumps(message).encode()
    server_error_retried = False
    for attempt in range(RETRIES + 1):
        status, text, headers = pool.post_json(url, body)
        if attempt < RETRIES:
            if status == 429:
                wait = _retry_after(headers)
                if wait is not None and wait <= MAX_RETRY_AFTER:
                    sleep(wait)
                    continue
            elif status >= 500 and not server_error_retried:
                server_error_retried = True
                sleep(0.5)
                continue
        break
    return WebhookResponse(url=url, status_code=status, body=text, headers=headers)


class PooledRespond(Respond):
    """Bolt's `respond`, same arguments and body, posted through the shared pool."""

    def __init__(self, *, response_url: str | None, pool: ConnectionPool = POOL) -> None:
        super().__init__(response_url=response_url)
        self.pool = pool

    def __call__(  # type: ignore[override]
        self, text: str | dict[str, Any] = "", **kwargs: Any
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        if isinstance(text, dict):
            message = _build_message(**text)
        elif isinstance(text, str):
            message = _build_message(text=text, **kwargs)
        else:
            raise ValueError(f"The arg is unexpected type ({type(text)})")
        return post(self.response_url, message, pool=self.pool)


class PooledRespondMiddleware(Middleware):
    """Puts a `PooledRespond` in each request's context (where listeners get `respond`)."""

    def __init__(self, pool: ConnectionPool = POOL) -> None:
        self.pool = pool

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        context = req.context
        url = context.response_url
        if url and getattr(context.get("client"), "proxy", None) is None:
            context["respond"] = PooledRespond(response_url=url, pool=self.pool)
        return next()


def install(app: App, pool: ConnectionPool = POOL) -> None:
    """Give every listener (and the error handler) a `PooledRespond` as `respond`."""
    app.use(PooledRespondMiddleware(pool))
