"""Posting reminders to Slack: one chat.postMessage, its pacing, and what its answer means.

Used by the scheduler (crmbot/scheduler.py). A post never raises for Slack's sake: the answer
is a `Posted`, which says whether it went out, and if not whether the channel or the person
is gone (fall back elsewhere) or the problem is passing (retry later, after `retry_after`).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from crmbot.config import Settings
from crmbot.handlers.render import Reply

CHANNEL_GAP = 1.0  # seconds between two posts to one channel (Slack allows about one)
RATE_LIMIT_WAIT = 10  # wait out a Retry-After this short in process; longer: a later sweep
CHANNEL_GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
PERSON_GONE = frozenset(
    {"user_disabled", "user_not_found", "cannot_dm_bot", "user_not_visible", "account_inactive"}
)
AUTH_GONE = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "team_access_not_granted"}
)


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """Wait out HTTP 429 in process only when Retry-After is short.

    slack-sdk's handler sleeps whatever Slack asks; a long sleep would run past the sweep's
    lease. A long Retry-After surfaces as an error instead, and the reminder is released to
    be retried by a sweep after that time (which is how Retry-After is honoured).
    """

    def __init__(self, max_retry_count: int = 2, max_wait: int = RATE_LIMIT_WAIT) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after({k: v[0] if v else "" for k, v in response.headers.items()})
        return wait is None or wait <= self.max_wait


def _retry_after(headers: Any) -> float | None:
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return None
    return None


class Pacer:
    """At most one message per `gap` seconds per channel, within this process."""

    def __init__(
        self,
        gap: float = CHANNEL_GAP,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gap, self._sleep, self._clock = gap, sleep, clock
        self._last: dict[str, float] = {}

    def wait(self, channel: str) -> None:
        """Sleep until a post to `channel` is allowed."""
        last = self._last.get(channel)
        if last is not None:
            left = self.gap - (self._clock() - last)
            if left > 0:
                self._sleep(left)

    def posted(self, channel: str) -> None:
        """A post to `channel` is over: the gap counts from here (it surely arrived by now)."""
        self._last[channel] = self._clock()


@dataclass(frozen=True)
class Posted:
    """How one chat.postMessage went."""

    ok: bool
    channel: str = ""
    ts: str = ""
    error: str = ""
    retry_after: float | None = None

    @property
    def channel_gone(self) -> bool:
        return self.error in CHANNEL_GONE

    @property
    def person_gone(self) -> bool:
        return self.error in PERSON_GONE


def post(client: WebClient, channel: str, reply: Reply, *, pacer: Pacer) -> Posted:
    """chat.postMessage `reply` to a channel (or a user id: their DM with the bot)."""
    pacer.wait(channel)
    try:
        answer = client.chat_postMessage(channel=channel, **reply.payload())
    except SlackApiError as error:
        status = error.response.status_code
        code = str(error.response.get("error") or f"http_{status}")
        if status == 429:
            code = "ratelimited"
        elif status >= 500 and " " in code:  # an HTML error page, not Slack's JSON
            code = f"http_{status}"
        return Posted(False, error=code, retry_after=_retry_after(error.response.headers))
    except (OSError, http.client.HTTPException) as error:  # timeouts, dropped connections
        return Posted(False, error=type(error).__name__)
    finally:
        pacer.posted(channel)
    return Posted(True, channel=str(answer["channel"]), ts=str(answer["ts"]))


def queued_post_client(settings: Settings, token: str) -> WebClient:
    """crmbot's WebClient for posts a later sweep retries (reminders, intake notices): one
    quick retry for a 5xx or a dropped connection, Retry-After waited out only when short, so
    a sweep or a web thread never sits on one channel."""
    from crmbot.app import web_client  # crmbot.app registers the listeners that use this

    client = web_client(settings, token)
    client.retry_handlers = [
        ShortRateLimitRetry(),
        ServerErrorRetryHandler(max_retry_count=1),
        ConnectionErrorRetryHandler(max_retry_count=1),
    ]
    return client
