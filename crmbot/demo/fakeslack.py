"""A strict local fake of the Slack Web API, spoken over real HTTP.

Point a ``slack_sdk.WebClient`` (or the app, through ``SLACK_API_URL``) at
``FakeSlack.url`` and it answers like https://slack.com/api/: ``POST /api/<method>``
with a form-encoded or JSON body, the token in ``Authorization: Bearer`` (or a
``token`` field), and ``{"ok": true, ...}`` / ``{"ok": false, "error": ...}`` with
HTTP 200.  Block Kit payloads are validated the way Slack does (limits, text
types, unique ids), trigger ids expire and are single use, and faults (429 with
Retry-After, 5xx, dropped connections, slow answers) can be injected per call.

Every answered call is recorded in ``calls``; calls answered with an injected
fault go to ``faulted_calls`` instead, so "posted exactly once" is a one-liner.

It lives in the package, not in tests/, because ``crmbot demo`` plays Slack with
it (tests import it through ``tests/fakeslack.py``). It is deliberately one
module; its sections are: public records, Block Kit validation, workspace state,
the Web API methods, and the HTTP plumbing.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import email.parser
import email.policy
import functools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

__all__ = [
    "JSON",
    "JSON_FIELDS",
    "MISSING_TEXT_WARNING",
    "Call",
    "FakeSlack",
    "Fault",
    "FaultPlan",
    "SlackError",
    "UploadedFile",
    "validate_blocks",
    "validate_view",
]

JSON = dict[str, Any]

#: Fields Slack accepts as JSON-encoded strings inside form bodies.
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "metadata", "files"})
MISSING_TEXT_WARNING = "missing_text_or_fallback_or_attachments"
_SERVER_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable"})


# ---------------------------------------------------------------------------
# Public records
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How to answer one call instead of processing it."""

    status: int = 500
    error: str = "internal_error"
    retry_after: int | None = None
    body: str | None = None  # raw body instead of {"ok": false, "error": ...}
    hold: float = 0.0  # seconds to wait before answering (or dropping)
    drop: bool = False  # close the connection without any answer

    @classmethod
    def ratelimited(cls, retry_after: int = 1) -> Fault:
        """HTTP 429 with a Retry-After header, like Slack's rate limiter."""
        return cls(status=429, error="ratelimited", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500, *, json_body: bool = True) -> Fault:
        """HTTP 5xx; with ``json_body=False`` the body is an HTML page."""
        body = None if json_body else "<html><body>Internal Server Error</body></html>"
        return cls(status=status, error="internal_error", body=body)

    @classmethod
    def timeout(cls, seconds: float) -> Fault:
        """Hold the request, then hang up without answering; nothing is applied."""
        return cls(status=0, error="timeout", hold=seconds, drop=True)

    @classmethod
    def api_error(cls, error: str) -> Fault:
        """HTTP 200 ``{"ok": false, "error": error}`` without touching state."""
        return cls(status=200, error=error)


FaultPlan = Callable[[int, str], Fault | None]
"""``plan(call_number, method)``; call numbers count every request, from 1."""


@dataclass(frozen=True)
class Call:
    """One request the fake received, with JSON-string fields decoded."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    team_id: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    fault: Fault | None = None
    path: str = ""

    @property
    def ok(self) -> bool:
        """Whether the call was answered ``ok: true``."""
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The ``error`` the call was answered with, if any."""
        error = self.response.get("error")
        return error if isinstance(error, str) else None


@dataclass
class UploadedFile:
    """A file going through files.getUploadURLExternal -> upload -> complete."""

    file_id: str
    team_id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    completed: bool = False
    channel_id: str | None = None
    initial_comment: str | None = None
    thread_ts: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None


# ---------------------------------------------------------------------------
# Block Kit validation
# ---------------------------------------------------------------------------

_SELECTS = frozenset(
    {
        f"{prefix}{kind}_select"
        for prefix in ("", "multi_")
        for kind in ("static", "external", "users", "conversations", "channels")
    }
)
_PICKERS = frozenset({"datepicker", "timepicker", "datetimepicker"})
_CHOICES = frozenset({"checkboxes", "radio_buttons"})
_ACTION_ELEMENTS = (
    _SELECTS | _PICKERS | _CHOICES | {"button", "overflow", "workflow_button", "rich_text_input"}
)
_ACCESSORIES = (
    _SELECTS | _CHOICES | {"button", "overflow", "datepicker", "timepicker", "image"}
) | {"workflow_button"}
_INPUT_ELEMENTS = (
    _SELECTS
    | _PICKERS
    | _CHOICES
    | {
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "rich_text_input",
        "file_input",
    }
)
_BLOCK_TYPES = frozenset(
    {
        "section",
        "divider",
        "image",
        "actions",
        "context",
        "input",
        "header",
        "file",
        "video",
        "rich_text",
        "markdown",
        "call",
        "table",
    }
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}$")


class _Problems:
    """Collects Slack-style ``[ERROR] ... [json-pointer:...]`` messages."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str, pointer: str) -> None:
        self.messages.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def __bool__(self) -> bool:
        return bool(self.messages)

    def string(self, value: Any, ptr: str, *, max_len: int, required: bool = False) -> None:
        if value is None:
            if required:
                self.add("missing required field", ptr)
        elif not isinstance(value, str):
            self.add("must be a string", ptr)
        elif len(value) > max_len:
            self.add(f"must be less than {max_len + 1} characters", ptr)

    def text(
        self, obj: Any, ptr: str, *, max_len: int, plain: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.add("missing required field", ptr)
            return
        if not isinstance(obj, dict):
            self.add("must be a text object", ptr)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.add("must be one of the following types: plain_text, mrkdwn", f"{ptr}/type")
        elif plain and kind != "plain_text":
            self.add("must be a plain_text object", f"{ptr}/type")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.add("must be more than 0 characters", f"{ptr}/text")
        elif len(text) > max_len:
            self.add(f"must be less than {max_len + 1} characters", f"{ptr}/text")

    def items(self, value: Any, ptr: str, *, max_items: int, min_items: int = 1) -> list[Any]:
        if not isinstance(value, list):
            self.add("must be an array", ptr)
            return []
        if len(value) < min_items:
            self.add(f"must provide at least {min_items} items", ptr)
        if len(value) > max_items:
            self.add(f"must provide no more than {max_items} items", ptr)
        return value


def _check_option(p: _Problems, option: Any, ptr: str, *, mrkdwn: bool, max_text: int) -> None:
    if not isinstance(option, dict):
        p.add("must be an option object", ptr)
        return
    p.text(option.get("text"), f"{ptr}/text", max_len=max_text, plain=not mrkdwn)
    p.string(option.get("value"), f"{ptr}/value", max_len=150, required=True)
    p.text(option.get("description"), f"{ptr}/description", max_len=75, required=False)


def _check_options(
    p: _Problems, el: JSON, ptr: str, *, max_items: int, mrkdwn: bool = False
) -> set[str]:
    """Validate options/option_groups; return the option values offered."""
    values: set[str] = set()
    if "option_groups" in el:
        if "options" in el:
            p.add("must provide either options or option_groups, not both", ptr)
        groups = p.items(el["option_groups"], f"{ptr}/option_groups", max_items=100)
        for g, group in enumerate(groups):
            gptr = f"{ptr}/option_groups/{g}"
            if not isinstance(group, dict):
                p.add("must be an option group object", gptr)
                continue
            p.text(group.get("label"), f"{gptr}/label", max_len=75, plain=True)
            for i, option in enumerate(
                p.items(group.get("options"), f"{gptr}/options", max_items=100)
            ):
                _check_option(p, option, f"{gptr}/options/{i}", mrkdwn=mrkdwn, max_text=75)
                if isinstance(option, dict) and isinstance(option.get("value"), str):
                    values.add(option["value"])
        return values
    for i, option in enumerate(p.items(el.get("options"), f"{ptr}/options", max_items=max_items)):
        _check_option(p, option, f"{ptr}/options/{i}", mrkdwn=mrkdwn, max_text=75)
        if isinstance(option, dict) and isinstance(option.get("value"), str):
            values.add(option["value"])
    return values


def _check_initial_options(p: _Problems, el: JSON, ptr: str, offered: set[str]) -> None:
    chosen: list[tuple[str, Any]] = []
    if "initial_option" in el:
        chosen.append((f"{ptr}/initial_option", el["initial_option"]))
    if "initial_options" in el:
        for i, option in enumerate(
            p.items(el["initial_options"], f"{ptr}/initial_options", max_items=100)
        ):
            chosen.append((f"{ptr}/initial_options/{i}", option))
    for optr, option in chosen:
        value = option.get("value") if isinstance(option, dict) else None
        if value not in offered:
            p.add("must provide an initial option that exists within the options", optr)


def _check_confirm(p: _Problems, confirm: Any, ptr: str) -> None:
    if not isinstance(confirm, dict):
        p.add("must be a confirmation object", ptr)
        return
    p.text(confirm.get("title"), f"{ptr}/title", max_len=100, plain=True)
    p.text(confirm.get("text"), f"{ptr}/text", max_len=300)
    p.text(confirm.get("confirm"), f"{ptr}/confirm", max_len=30, plain=True)
    p.text(confirm.get("deny"), f"{ptr}/deny", max_len=30, plain=True)


def _check_element(
    p: _Problems, el: Any, ptr: str, allowed: frozenset[str], action_ids: set[str]
) -> None:
    if not isinstance(el, dict):
        p.add("must be an element object", ptr)
        return
    kind = el.get("type")
    if kind not in allowed:
        p.add(f"element type {kind!r} is not allowed here", f"{ptr}/type")
        return
    if kind == "image":
        if "image_url" not in el and "slack_file" not in el:
            p.add("must provide image_url or slack_file", ptr)
        p.string(el.get("image_url"), f"{ptr}/image_url", max_len=3000)
        p.string(el.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
        return
    action_id = el.get("action_id")
    p.string(action_id, f"{ptr}/action_id", max_len=255)
    if isinstance(action_id, str):
        if action_id in action_ids:
            p.add(f"action_id {action_id!r} is already used in this block", f"{ptr}/action_id")
        action_ids.add(action_id)
    if "placeholder" in el:
        p.text(el["placeholder"], f"{ptr}/placeholder", max_len=150, plain=True)
    if "confirm" in el:
        _check_confirm(p, el["confirm"], f"{ptr}/confirm")
    if kind == "button":
        p.text(el.get("text"), f"{ptr}/text", max_len=75, plain=True)
        p.string(el.get("value"), f"{ptr}/value", max_len=2000)
        p.string(el.get("url"), f"{ptr}/url", max_len=3000)
        if "style" in el and el["style"] not in ("primary", "danger"):
            p.add("must be one of: primary, danger", f"{ptr}/style")
    elif kind in ("static_select", "multi_static_select"):
        offered = _check_options(p, el, ptr, max_items=100)
        _check_initial_options(p, el, ptr, offered)
    elif kind == "overflow":
        _check_options(p, el, ptr, max_items=5)
    elif kind in _CHOICES:
        offered = _check_options(p, el, ptr, max_items=10, mrkdwn=True)
        _check_initial_options(p, el, ptr, offered)
    elif kind == "plain_text_input":
        for key in ("min_length", "max_length"):
            value = el.get(key)
            if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                p.add("must be an integer between 0 and 3000", f"{ptr}/{key}")
        p.string(el.get("initial_value"), f"{ptr}/initial_value", max_len=3000)
    elif kind == "datepicker":
        date = el.get("initial_date")
        if date is not None and not (isinstance(date, str) and _DATE.match(date)):
            p.add("must be a date in the format YYYY-MM-DD", f"{ptr}/initial_date")
    elif kind == "timepicker":
        at = el.get("initial_time")
        if at is not None and not (isinstance(at, str) and _TIME.match(at)):
            p.add("must be a time in the format HH:mm", f"{ptr}/initial_time")
    elif kind == "number_input" and not isinstance(el.get("is_decimal_allowed"), bool):
        p.add("missing required field: is_decimal_allowed", f"{ptr}/is_decimal_allowed")
    if kind in _SELECTS and kind.startswith("multi_"):
        most = el.get("max_selected_items")
        if most is not None and (not isinstance(most, int) or most < 1):
            p.add("must be an integer of at least 1", f"{ptr}/max_selected_items")


def _check_block(p: _Problems, block: Any, ptr: str, block_ids: set[str]) -> bool:
    """Validate one block; return whether it is an input block."""
    if not isinstance(block, dict):
        p.add("must be a block object", ptr)
        return False
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        p.add(f"unsupported type: {kind!r}", f"{ptr}/type")
        return False
    block_id = block.get("block_id")
    p.string(block_id, f"{ptr}/block_id", max_len=255)
    if isinstance(block_id, str):
        if block_id in block_ids:
            p.add(f"block_id {block_id!r} is already used", f"{ptr}/block_id")
        block_ids.add(block_id)
    action_ids: set[str] = set()
    if kind == "section":
        if block.get("text") is None and block.get("fields") is None:
            p.add("must provide text or fields", ptr)
        p.text(block.get("text"), f"{ptr}/text", max_len=3000, required=False)
        if "fields" in block:
            for i, text in enumerate(p.items(block["fields"], f"{ptr}/fields", max_items=10)):
                p.text(text, f"{ptr}/fields/{i}", max_len=2000)
        if "accessory" in block:
            _check_element(p, block["accessory"], f"{ptr}/accessory", _ACCESSORIES, action_ids)
    elif kind == "header":
        p.text(block.get("text"), f"{ptr}/text", max_len=150, plain=True)
    elif kind == "actions":
        for i, el in enumerate(p.items(block.get("elements"), f"{ptr}/elements", max_items=25)):
            _check_element(p, el, f"{ptr}/elements/{i}", _ACTION_ELEMENTS, action_ids)
    elif kind == "context":
        for i, el in enumerate(p.items(block.get("elements"), f"{ptr}/elements", max_items=10)):
            eptr = f"{ptr}/elements/{i}"
            if isinstance(el, dict) and el.get("type") == "image":
                _check_element(p, el, eptr, frozenset({"image"}), action_ids)
            else:
                p.text(el, eptr, max_len=3000)
    elif kind == "input":
        p.text(block.get("label"), f"{ptr}/label", max_len=2000, plain=True)
        p.text(block.get("hint"), f"{ptr}/hint", max_len=2000, plain=True, required=False)
        if "element" not in block:
            p.add("missing required field: element", ptr)
        else:
            _check_element(p, block["element"], f"{ptr}/element", _INPUT_ELEMENTS, action_ids)
        return True
    elif kind == "image":
        if "image_url" not in block and "slack_file" not in block:
            p.add("must provide image_url or slack_file", ptr)
        p.string(block.get("image_url"), f"{ptr}/image_url", max_len=3000)
        p.string(block.get("alt_text"), f"{ptr}/alt_text", max_len=2000, required=True)
        p.text(block.get("title"), f"{ptr}/title", max_len=2000, plain=True, required=False)
    elif kind == "markdown":
        p.string(block.get("text"), f"{ptr}/text", max_len=12000, required=True)
    return False


def _sdk_problems(p: _Problems, build: Callable[[], Any], ptr: str) -> None:
    """Let slack_sdk.models have its say too (only when our own checks passed)."""
    try:
        model = build()
        if model is not None:
            model.to_dict()  # to_dict() runs validate_json() on every nested object
    except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        p.add(str(exc) or type(exc).__name__, ptr)


def validate_blocks(blocks: Any, *, max_blocks: int = 50, pointer: str = "/blocks") -> list[str]:
    """Slack's ``invalid_blocks`` messages for a list of blocks (empty when valid)."""
    p = _Problems()
    block_ids: set[str] = set()
    for i, block in enumerate(p.items(blocks, pointer, max_items=max_blocks, min_items=0)):
        _check_block(p, block, f"{pointer}/{i}", block_ids)
    if not p and isinstance(blocks, list):
        for i, block in enumerate(blocks):
            _sdk_problems(p, functools.partial(Block.parse, block), f"{pointer}/{i}")
    return p.messages


def validate_view(view: Any, *, types: Iterable[str] = ("modal",)) -> list[str]:
    """Slack's ``invalid_arguments`` messages for a modal or Home tab view."""
    types = tuple(types)
    p = _Problems()
    if not isinstance(view, dict):
        p.add("must be a view object", "/view")
        return p.messages
    kind = view.get("type")
    if kind not in types:
        p.add(f"must be one of the following types: {', '.join(types)}", "/view/type")
        return p.messages
    has_input = False
    block_ids: set[str] = set()
    blocks = p.items(view.get("blocks"), "/view/blocks", max_items=100, min_items=0)
    for i, block in enumerate(blocks):
        has_input = _check_block(p, block, f"/view/blocks/{i}", block_ids) or has_input
    if kind == "modal":
        p.text(view.get("title"), "/view/title", max_len=24, plain=True)
        p.text(view.get("submit"), "/view/submit", max_len=24, plain=True, required=False)
        p.text(view.get("close"), "/view/close", max_len=24, plain=True, required=False)
        if has_input and view.get("submit") is None:
            p.add("must provide a submit property when using input blocks", "/view")
    else:
        for key in ("submit", "close"):
            if key in view:
                p.add(f"{kind} views cannot have {key}", f"/view/{key}")
    p.string(view.get("private_metadata"), "/view/private_metadata", max_len=3000)
    p.string(view.get("callback_id"), "/view/callback_id", max_len=255)
    p.string(view.get("external_id"), "/view/external_id", max_len=255)
    if not p:
        _sdk_problems(p, lambda: View(**view), "/view")
    return p.messages


# ---------------------------------------------------------------------------
# Workspace state
# ---------------------------------------------------------------------------


@dataclass
class _Team:
    team_id: str
    name: str
    domain: str


@dataclass
class _User:
    team_id: str
    user_id: str
    name: str
    real_name: str
    display_name: str
    tz: str
    email: str | None
    is_bot: bool
    deleted: bool
    is_admin: bool
    is_owner: bool


@dataclass
class _Channel:
    team_id: str
    channel_id: str
    name: str
    is_archived: bool
    is_private: bool
    members: set[str] | None  # None: membership is not checked


@dataclass(frozen=True)
class _Token:
    token: str
    team_id: str
    bot_user_id: str
    bot_id: str


@dataclass
class _Trigger:
    expires_at: float
    user_id: str | None
    used: bool = False


@dataclass
class _ResponseUrl:
    team_id: str
    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    uses: int = 0


@dataclass
class _Pending:
    method: str
    fault: Fault
    remaining: int


@dataclass
class _Delay:
    seconds: float
    remaining: int | None


class SlackError(Exception):
    """Raised by a method implementation to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class _Faulted(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.error)
        self.fault = fault


@dataclass
class _Ctx:
    method: str
    args: dict[str, Any]
    token: _Token | None
    warnings: list[str] = field(default_factory=list)

    @property
    def auth(self) -> _Token:
        assert self.token is not None  # methods that need no token don't call this
        return self.token

    def arg(self, name: str) -> str:
        """A required string argument."""
        value = self.args.get(name)
        if value is None or value == "":
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
            )
        return str(value)

    def opt(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None or value == "" else str(value)


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0
    drop: bool = False


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def _error_body(error: str) -> JSON:
    return {"ok": False, "error": error}


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------


class FakeSlack:
    """A strict, recording Slack Web API on 127.0.0.1 (random port), thread-safe."""

    def __init__(
        self,
        *,
        trigger_ttl: float = 3.0,
        post_rate_limit_per_channel: float | None = None,
        response_url_max_uses: int = 5,
    ) -> None:
        self.trigger_ttl = trigger_ttl
        self.post_rate_limit_per_channel = post_rate_limit_per_channel
        self.response_url_max_uses = response_url_max_uses
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._last_ts_us = 0
        # workspace directory: survives reset()
        self._teams: dict[str, _Team] = {}
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._tokens: dict[str, _Token] = {}
        self._revoked: set[str] = set()
        self._connected: set[frozenset[str]] = set()  # Slack Connect: teams sharing a channel
        self._app_tokens: dict[str, str] = {}  # app-level token (xapp-) -> Socket Mode URL
        self._clear_state()

    def _clear_state(self) -> None:
        self._calls: list[Call] = []
        self._faulted: list[Call] = []
        self._request_count = 0
        self._messages: dict[str, list[JSON]] = {}
        self._ephemerals: list[JSON] = []
        self._views: dict[str, JSON] = {}
        self._view_users: dict[str, str | None] = {}
        self._homes: dict[str, JSON] = {}
        self._uploads: dict[str, UploadedFile] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._oauth_codes: dict[str, tuple[_Token, str, str]] = {}
        self._opened_dms: set[str] = set()
        self._pending: list[_Pending] = []
        self._plan: FaultPlan | None = None
        self._delays: dict[str, _Delay] = {}
        self._stubs: dict[str, JSON | Callable[[dict[str, Any]], JSON]] = {}
        self._last_post_at: dict[str, float] = {}

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve from a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by delays or faults are released."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the fake listens on."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started; use start() or `with FakeSlack()`")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Web API base URL to give WebClient(base_url=...) / SLACK_API_URL."""
        return f"{self.root_url}/api/"

    # -- workspaces ---------------------------------------------------------

    def add_team(self, team_id: str, *, name: str | None = None, domain: str = "example") -> None:
        """Register (or rename) a workspace; other add_* calls create it on demand."""
        with self._lock:
            self._teams[team_id] = _Team(team_id, name or team_id, domain)

    def _team(self, team_id: str) -> _Team:
        if team_id not in self._teams:
            self._teams[team_id] = _Team(team_id, team_id, "example")
        return self._teams[team_id]

    def add_token(
        self,
        token: str,
        team_id: str,
        bot_user_id: str = "UBOT",
        *,
        bot_id: str | None = None,
        bot_name: str = "crmbot",
    ) -> None:
        """Make ``token`` a bot token of ``team_id``; the bot user is added too."""
        with self._lock:
            self._team(team_id)
            bot = bot_id or f"B{bot_user_id.lstrip('U') or 'OT'}"
            self._tokens[token] = _Token(token, team_id, bot_user_id, bot)
            self._revoked.discard(token)
            if bot_user_id not in self._users:
                self.add_user(team_id, bot_user_id, bot_name, is_bot=True)

    def connect_teams(self, team_a: str, team_b: str) -> None:
        """Slack Connect: the two organisations share a channel, so each one's bot can look
        up the other's users (`users.info` answers with the user's own `team_id`)."""
        with self._lock:
            self._connected.add(frozenset((team_a, team_b)))

    def add_app_token(self, token: str, socket_url: str) -> None:
        """Make ``token`` an app-level token whose ``apps.connections.open`` hands out
        ``socket_url`` (a Socket Mode WebSocket server the test runs)."""
        with self._lock:
            self._app_tokens[token] = socket_url

    def revoke_token(self, token: str) -> None:
        """Answer ``token_revoked`` for this token from now on (app uninstalled)."""
        with self._lock:
            self._revoked.add(token)

    def add_user(
        self,
        team_id: str,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        tz: str = "America/New_York",
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
        is_owner: bool = False,
    ) -> None:
        """Add or replace a user; ``tz`` must be an IANA zone name."""
        ZoneInfo(tz)  # fail fast on a typo
        with self._lock:
            self._team(team_id)
            self._users[user_id] = _User(
                team_id=team_id,
                user_id=user_id,
                name=name,
                real_name=real_name or name,
                display_name=display_name if display_name is not None else name,
                tz=tz,
                email=None if is_bot else (email or f"{name}@example.com"),
                is_bot=is_bot,
                deleted=deleted,
                is_admin=is_admin,
                is_owner=is_owner,
            )

    def add_channel(
        self,
        team_id: str,
        channel_id: str,
        name: str,
        *,
        is_archived: bool = False,
        is_private: bool = False,
        members: Iterable[str] | None = None,
    ) -> None:
        """Add or replace a channel; with ``members`` the bot must be one of them to post."""
        with self._lock:
            self._team(team_id)
            self._channels[channel_id] = _Channel(
                team_id,
                channel_id,
                name.lstrip("#"),
                is_archived,
                is_private,
                None if members is None else set(members),
            )

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        blocks: list[JSON] | None = None,
    ) -> str:
        """Seed a message written by someone (e.g. for "Log to CRM"); return its ts."""
        with self._lock:
            stamp = ts or self._next_ts()
            message: JSON = {"type": "message", "ts": stamp, "user": user, "text": text}
            if thread_ts:
                message["thread_ts"] = thread_ts
            if blocks is not None:
                message["blocks"] = blocks
            channel_id = self._channel_key(channel)
            self._messages.setdefault(channel_id, []).append(message)
            self._messages[channel_id].sort(key=lambda m: float(m["ts"]))
            return str(stamp)

    def issue_trigger_id(self, user_id: str | None = None, *, ttl: float | None = None) -> str:
        """A trigger id as in an interaction payload: single use, valid ``trigger_ttl`` s."""
        with self._lock:
            self._seq += 1
            trigger = f"{self._seq}.{int(time.time())}.{secrets.token_hex(16)}"
            expires = time.monotonic() + (self.trigger_ttl if ttl is None else ttl)
            self._triggers[trigger] = _Trigger(expires, user_id)
            return trigger

    def response_url(
        self,
        team_id: str,
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A response_url for a slash-command/interaction payload, served by the fake.

        ``response_type: in_channel`` replies land in ``messages(channel_id)``;
        ephemeral ones in ``ephemerals()``; ``replace_original`` /
        ``delete_original`` act on ``message_ts`` when given.
        """
        with self._lock:
            self._seq += 1
            key = f"{self._seq}"
            self._response_urls[key] = _ResponseUrl(team_id, channel_id, user_id, message_ts)
        return f"{self.root_url}/response/{key}"

    def issue_oauth_code(
        self,
        team_id: str,
        *,
        token: str,
        bot_user_id: str = "UBOT",
        installer_user_id: str = "UINSTALLER",
        scope: str = "commands,chat:write,users:read,users:read.email,im:write",
    ) -> str:
        """A code that ``oauth.v2.access`` exchanges once for ``token``."""
        with self._lock:
            self._seq += 1
            code = f"code-{self._seq}-{secrets.token_hex(4)}"
            tok = _Token(token, team_id, bot_user_id, f"B{bot_user_id.lstrip('U')}")
            self._oauth_codes[code] = (tok, installer_user_id, scope)
            return code

    # -- faults -------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = 1,
        times: int = 1,
        body: str | None = None,
        fault: Fault | None = None,
    ) -> None:
        """Answer the next ``times`` calls to ``method`` (``"*"``: any Web API method)
        with an error instead of processing them.

        Status defaults: 429 for ``ratelimited``, 500 for internal_error /
        fatal_error / service_unavailable, else 200 ``{"ok": false}``.
        """
        if fault is None:
            if status is None:
                status = 429 if error == "ratelimited" else 500 if error in _SERVER_ERRORS else 200
            fault = Fault(
                status=status,
                error=error,
                retry_after=retry_after if status == 429 else None,
                body=body,
            )
        with self._lock:
            self._pending.append(_Pending(method, fault, times))

    def fault_plan(self, plan: FaultPlan | None) -> None:
        """Install ``plan(call_number, method) -> Fault | None`` (``None`` removes it)."""
        with self._lock:
            self._plan = plan

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Answer ``method`` slowly: the call is applied and recorded at once, the
        answer held for ``seconds`` (a client that times out still posted, as on
        real Slack).  ``seconds=0`` removes the delay."""
        with self._lock:
            if seconds <= 0:
                self._delays.pop(method, None)
            else:
                self._delays[method] = _Delay(seconds, times)

    def stub(self, method: str, response: JSON | Callable[[dict[str, Any]], JSON]) -> None:
        """Answer ``method`` (after auth) with ``response`` or ``response(args)``;
        ``ok: true`` is added unless the response says otherwise."""
        with self._lock:
            self._stubs[method] = response

    # -- records ------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every answered call, in arrival order (faulted calls excluded)."""
        with self._lock:
            return list(self._calls)

    @property
    def faulted_calls(self) -> list[Call]:
        """Calls answered with an injected fault or the per-channel rate limit."""
        with self._lock:
            return list(self._faulted)

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        """Answered calls to ``method``; ``ok=True/False`` filters on the answer."""
        with self._lock:
            return [c for c in self._calls if c.method == method and (ok is None or c.ok == ok)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until ``count`` calls to ``method`` were answered; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{c.method}:{c.error or 'ok'}" for c in self._calls]
                    faulted = [f"{c.method}:{c.error}" for c in self._faulted]
                    raise AssertionError(
                        f"expected {count} call(s) to {method} within {timeout}s, "
                        f"saw {len(found)}; calls: {seen}; faulted calls: {faulted}"
                    )
                self._changed.wait(left)

    @property
    def call_count(self) -> int:
        """How many calls were answered so far (an index into ``calls``)."""
        with self._lock:
            return len(self._calls)

    def wait_calls(self, after: int, timeout: float) -> list[Call]:
        """The calls answered after the first ``after`` ones, waiting up to ``timeout``
        seconds for at least one; ``[]`` when none came (or ``clear_calls`` ran)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._calls) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._changed.wait(left)
            return list(self._calls[after:])

    def users(self, team_id: str) -> dict[str, str]:
        """User id -> user name (the handle people @-mention) for one workspace."""
        with self._lock:
            return {u.user_id: u.name for u in self._users.values() if u.team_id == team_id}

    def user_tz(self, user_id: str) -> str | None:
        """A user's time zone (None for an unknown user)."""
        with self._lock:
            user = self._users.get(user_id)
            return user.tz if user is not None else None

    def channels(self, team_id: str) -> dict[str, str]:
        """Channel id -> channel name for one workspace."""
        with self._lock:
            return {c.channel_id: c.name for c in self._channels.values() if c.team_id == team_id}

    def clear_calls(self) -> None:
        """Forget recorded calls, keep Slack-side state."""
        with self._lock:
            self._calls.clear()
            self._faulted.clear()

    def reset(self) -> None:
        """Forget calls, messages, views, files, triggers, faults, delays and stubs.

        Workspaces, users, channels and tokens are kept.
        """
        with self._lock:
            self._clear_state()

    # -- Slack-side state ---------------------------------------------------

    def messages(self, channel: str) -> list[JSON]:
        """Messages in a channel (or DM, by ``D...`` or user id) as they stand now."""
        with self._lock:
            return copy.deepcopy(self._messages.get(self._channel_key(channel), []))

    def dms_to(self, user_id: str) -> list[JSON]:
        """Messages in the bot's DM with ``user_id``."""
        return self.messages(f"D{user_id}")

    def ephemerals(self, *, channel: str | None = None, user: str | None = None) -> list[JSON]:
        """Ephemeral messages (chat.postEphemeral and ephemeral response_url replies)."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._ephemerals
                if (channel is None or m.get("channel") == channel)
                and (user is None or m.get("user") == user)
            ]

    def home_view(self, user_id: str) -> JSON | None:
        """The Home tab last published for ``user_id``."""
        with self._lock:
            view = self._homes.get(user_id)
            return copy.deepcopy(view) if view is not None else None

    @property
    def open_views(self) -> dict[str, JSON]:
        """Open modals by view id (type, callback_id, private_metadata, state, ...)."""
        with self._lock:
            return copy.deepcopy(self._views)

    def close_view(self, view_id: str) -> None:
        """The user closed or submitted the modal (and, for a root, its stack)."""
        with self._lock:
            for vid, view in list(self._views.items()):
                if vid == view_id or view.get("root_view_id") == view_id:
                    del self._views[vid]

    @property
    def uploaded_files(self) -> dict[str, UploadedFile]:
        """Files by id, including uploads not (yet) completed."""
        with self._lock:
            return {k: replace(v) for k, v in self._uploads.items()}

    # -- helpers over state -------------------------------------------------

    def _next_ts(self) -> str:
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:09X}"

    def _channel_key(self, channel: str) -> str:
        return f"D{channel}" if channel in self._users else channel

    def _visible(self, team_id: str, user_team_id: str) -> bool:
        """A bot sees its own team's users and those of teams it shares a channel with."""
        return team_id == user_team_id or frozenset((team_id, user_team_id)) in self._connected

    def _user_in(self, team_id: str, user_id: str | None) -> _User:
        user = self._users.get(user_id or "")
        if user is None or user.team_id != team_id:
            raise SlackError("user_not_found")
        return user

    def _resolve_channel(self, tok: _Token, channel: str) -> tuple[str, _Channel | None]:
        """Map a channel argument to (channel id, channel or None for a DM)."""
        by_name = channel.lstrip("#")
        for chan in self._channels.values():
            if chan.team_id == tok.team_id and (
                chan.channel_id == channel or (channel.startswith("#") and chan.name == by_name)
            ):
                return chan.channel_id, chan
        user_id = channel[1:] if channel.startswith("D") else channel
        user = self._users.get(user_id)
        if user is None or user.team_id != tok.team_id:
            raise SlackError("channel_not_found")
        if user.is_bot:
            raise SlackError("cannot_dm_bot")
        if user.deleted:
            raise SlackError("user_disabled")
        return f"D{user_id}", None

    def _postable(self, tok: _Token, channel: str) -> str:
        channel_id, chan = self._resolve_channel(tok, channel)
        if chan is not None:
            if chan.is_archived:
                raise SlackError("is_archived")
            if chan.members is not None and tok.bot_user_id not in chan.members:
                raise SlackError("not_in_channel")
        return channel_id

    def _find_message(self, channel_id: str, ts: str) -> JSON:
        for message in self._messages.get(channel_id, []):
            if message["ts"] == ts:
                return message
        raise SlackError("message_not_found")

    def _check_message(self, ctx: _Ctx, *, require_content: bool = True) -> None:
        """Text/blocks/attachments rules shared by every message-sending method."""
        args = ctx.args
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        if require_content and not text and not blocks and not attachments:
            raise SlackError("no_text")
        if isinstance(text, str) and len(text) > 40_000:
            raise SlackError("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            problems = validate_blocks(blocks)
            if problems:
                raise SlackError(
                    "invalid_blocks", errors=problems, response_metadata={"messages": problems}
                )
            if not text and blocks:
                ctx.warnings.append(MISSING_TEXT_WARNING)
        if attachments is not None and (
            not isinstance(attachments, list) or len(attachments) > 100
        ):
            raise SlackError("too_many_attachments")

    def _message_fields(self, args: Mapping[str, Any]) -> JSON:
        keys = ("text", "blocks", "attachments", "metadata", "thread_ts", "files")
        return {k: args[k] for k in keys if args.get(k) not in (None, "")}

    # -- Web API methods ----------------------------------------------------

    def _m_api_test(self, ctx: _Ctx) -> JSON:
        return {"args": ctx.args}

    def _m_auth_test(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        team = self._teams[tok.team_id]
        return {
            "url": f"https://{team.domain}.slack.com/",
            "team": team.name,
            "user": self._users[tok.bot_user_id].name,
            "team_id": tok.team_id,
            "user_id": tok.bot_user_id,
            "bot_id": tok.bot_id,
            "is_enterprise_install": False,
        }

    def _m_team_info(self, ctx: _Ctx) -> JSON:
        team = self._teams[ctx.auth.team_id]
        return {"team": {"id": team.team_id, "name": team.name, "domain": team.domain}}

    def _user_json(self, user: _User, tok: _Token) -> JSON:
        profile: JSON = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.display_name,
            "display_name_normalized": user.display_name,
            "team": user.team_id,
        }
        if user.email:
            profile["email"] = user.email
        if user.is_bot and user.user_id == tok.bot_user_id:
            profile["bot_id"] = tok.bot_id
        data: JSON = {
            "id": user.user_id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": user.deleted,
            "real_name": user.real_name,
            "is_bot": user.is_bot,
            "is_admin": user.is_admin,
            "is_owner": user.is_owner,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": profile,
        }
        if not user.deleted:  # Slack leaves the time zone out for deactivated users
            local = datetime.now(UTC).astimezone(ZoneInfo(user.tz))
            offset = local.utcoffset()
            data["tz"] = user.tz
            data["tz_label"] = local.tzname()
            data["tz_offset"] = int(offset.total_seconds()) if offset is not None else 0
        return data

    def _m_users_info(self, ctx: _Ctx) -> JSON:
        user = self._users.get(ctx.arg("user"))
        if user is None or not self._visible(ctx.auth.team_id, user.team_id):
            raise SlackError("user_not_found")
        return {"user": self._user_json(user, ctx.auth)}

    def _m_users_lookupByEmail(self, ctx: _Ctx) -> JSON:
        email = ctx.arg("email").lower()
        for user in self._users.values():
            if user.team_id == ctx.auth.team_id and (user.email or "").lower() == email:
                return {"user": self._user_json(user, ctx.auth)}
        raise SlackError("users_not_found")

    def _m_users_list(self, ctx: _Ctx) -> JSON:
        members = [
            self._user_json(u, ctx.auth)
            for u in self._users.values()
            if u.team_id == ctx.auth.team_id
        ]
        start = 0
        cursor = ctx.opt("cursor")
        if cursor:
            try:
                start = int(base64.b64decode(cursor).decode().removeprefix("offset:"))
            except ValueError as exc:
                raise SlackError("invalid_cursor") from exc
        limit = int(ctx.opt("limit") or 0) or len(members) or 1
        page = members[start : start + limit]
        more = start + limit < len(members)
        next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {"members": page, "response_metadata": {"next_cursor": next_cursor}}

    def _channel_json(self, tok: _Token, channel_id: str, chan: _Channel | None) -> JSON:
        if chan is None:
            return {"id": channel_id, "is_im": True, "user": channel_id[1:], "is_open": True}
        return {
            "id": chan.channel_id,
            "name": chan.name,
            "is_channel": not chan.is_private,
            "is_group": chan.is_private,
            "is_im": False,
            "is_private": chan.is_private,
            "is_archived": chan.is_archived,
            "is_member": chan.members is None or tok.bot_user_id in chan.members,
            "context_team_id": chan.team_id,
        }

    def _m_conversations_info(self, ctx: _Ctx) -> JSON:
        channel_id, chan = self._resolve_channel(ctx.auth, ctx.arg("channel"))
        return {"channel": self._channel_json(ctx.auth, channel_id, chan)}

    def _m_conversations_open(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        if ctx.opt("channel"):
            channel_id, chan = self._resolve_channel(tok, ctx.arg("channel"))
            return {"channel": self._channel_json(tok, channel_id, chan)}
        users = [u.strip() for u in ctx.arg("users").split(",") if u.strip()]
        for user_id in users:
            if self._user_in(tok.team_id, user_id).deleted:
                raise SlackError("user_disabled")
        if len(users) == 1:
            channel_id = f"D{users[0]}"
            already = channel_id in self._opened_dms
            self._opened_dms.add(channel_id)
            data: JSON = {"channel": self._channel_json(tok, channel_id, None)}
            if already:
                data.update(no_op=True, already_open=True)
            return data
        return {"channel": {"id": "G" + "".join(sorted(u.lstrip("U") for u in users))}}

    def _m_conversations_join(self, ctx: _Ctx) -> JSON:
        channel_id, chan = self._resolve_channel(ctx.auth, ctx.arg("channel"))
        if chan is None or chan.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if chan.is_archived:
            raise SlackError("is_archived")
        data: JSON = {}
        if chan.members is not None:
            if ctx.auth.bot_user_id in chan.members:
                data["warning"] = "already_in_channel"
            chan.members.add(ctx.auth.bot_user_id)
        data["channel"] = self._channel_json(ctx.auth, channel_id, chan)
        return data

    def _m_chat_postMessage(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        channel_id = self._postable(tok, ctx.arg("channel"))
        self._check_message(ctx)
        limit = self.post_rate_limit_per_channel
        now = time.monotonic()
        if limit is not None and channel_id in self._last_post_at:
            elapsed = now - self._last_post_at[channel_id]
            if elapsed < limit:
                raise _Faulted(Fault.ratelimited(max(1, math.ceil(limit - elapsed))))
        self._last_post_at[channel_id] = now
        message: JSON = {
            "type": "message",
            "ts": self._next_ts(),
            "user": tok.bot_user_id,
            "bot_id": tok.bot_id,
            "team": tok.team_id,
            **self._message_fields(ctx.args),
        }
        message.setdefault("text", "")
        self._messages.setdefault(channel_id, []).append(message)
        return {"channel": channel_id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _m_chat_postEphemeral(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        channel_id, chan = self._resolve_channel(tok, ctx.arg("channel"))
        self._postable(tok, channel_id)
        user = self._user_in(tok.team_id, ctx.arg("user"))
        if chan is not None and chan.members is not None and user.user_id not in chan.members:
            raise SlackError("user_not_in_channel")
        self._check_message(ctx)
        ts = self._next_ts()
        self._ephemerals.append(
            {"channel": channel_id, "user": user.user_id, "ts": ts} | self._message_fields(ctx.args)
        )
        return {"message_ts": ts}

    def _m_chat_update(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        channel_id, _ = self._resolve_channel(tok, ctx.arg("channel"))
        message = self._find_message(channel_id, ctx.arg("ts"))
        if message.get("user") != tok.bot_user_id:
            raise SlackError("cant_update_message")
        self._check_message(ctx)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in ctx.args:  # blocks/attachments not given: the old ones are kept
                message[key] = ctx.args[key]
        message["edited"] = {"user": tok.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel_id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": copy.deepcopy(message),
        }

    def _m_chat_delete(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        channel_id, _ = self._resolve_channel(tok, ctx.arg("channel"))
        message = self._find_message(channel_id, ctx.arg("ts"))
        if message.get("user") != tok.bot_user_id:
            raise SlackError("cant_delete_message")
        self._messages[channel_id].remove(message)
        return {"channel": channel_id, "ts": message["ts"]}

    def _m_chat_getPermalink(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        channel_id, _ = self._resolve_channel(tok, ctx.arg("channel"))
        message = self._find_message(channel_id, ctx.arg("message_ts"))
        domain = self._teams[tok.team_id].domain
        link = f"https://{domain}.slack.com/archives/{channel_id}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel_id}"
        return {"channel": channel_id, "permalink": link}

    def _use_trigger(self, ctx: _Ctx) -> _Trigger:
        trigger_id = ctx.arg("trigger_id")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used or time.monotonic() > trigger.expires_at:
            trigger.used = True
            raise SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _check_view(self, ctx: _Ctx, types: tuple[str, ...]) -> JSON:
        view = ctx.args.get("view")
        if isinstance(view, str):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["bad view"]})
        problems = validate_view(view, types=types)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        return cast(JSON, view)

    def _store_view(
        self, ctx: _Ctx, view: JSON, *, view_id: str | None = None, root: str | None = None
    ) -> JSON:
        tok = ctx.auth
        vid = view_id or self._new_id("V")
        stored: JSON = {
            "id": vid,
            "team_id": tok.team_id,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or vid,
            "previous_view_id": None,
            "app_id": "AFAKESLACK",
            "app_installed_team_id": tok.team_id,
            "bot_id": tok.bot_id,
        }
        for key in ("title", "submit", "close"):
            if key in view:
                stored[key] = view[key]
        return stored

    def _check_external_id(self, view: JSON, keep: str | None = None) -> None:
        external_id = view.get("external_id")
        if external_id and any(
            v["external_id"] == external_id and vid != keep for vid, v in self._views.items()
        ):
            raise SlackError("duplicate_external_id")

    def _m_views_open(self, ctx: _Ctx) -> JSON:
        view = self._check_view(ctx, ("modal",))
        trigger = self._use_trigger(ctx)
        self._check_external_id(view)
        stored = self._store_view(ctx, view)
        self._views[stored["id"]] = stored
        self._view_users[stored["id"]] = trigger.user_id
        return {"view": copy.deepcopy(stored)}

    def _m_views_push(self, ctx: _Ctx) -> JSON:
        view = self._check_view(ctx, ("modal",))
        trigger = self._use_trigger(ctx)
        self._check_external_id(view)
        mine = [
            vid
            for vid in self._views
            if trigger.user_id is None or self._view_users.get(vid) == trigger.user_id
        ]
        root = self._views[mine[-1]]["root_view_id"] if mine else None
        stack = [vid for vid in self._views if self._views[vid]["root_view_id"] == root]
        if root is not None and len(stack) >= 3:
            raise SlackError("push_limit_reached")
        stored = self._store_view(ctx, view, root=root)
        stored["previous_view_id"] = stack[-1] if stack else None
        self._views[stored["id"]] = stored
        self._view_users[stored["id"]] = trigger.user_id
        return {"view": copy.deepcopy(stored)}

    def _m_views_update(self, ctx: _Ctx) -> JSON:
        view = self._check_view(ctx, ("modal", "home"))
        view_id, external_id = ctx.opt("view_id"), ctx.opt("external_id")
        if view_id is None and external_id is None:
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] view_id or external_id is required"]},
            )
        current = next(
            (
                v
                for vid, v in self._views.items()
                if (view_id is not None and vid == view_id)
                or (external_id is not None and v["external_id"] == external_id)
            ),
            None,
        )
        if current is None or current["team_id"] != ctx.auth.team_id:
            raise SlackError("not_found")
        if ctx.opt("hash") is not None and ctx.opt("hash") != current["hash"]:
            raise SlackError("hash_conflict")
        self._check_external_id(view, keep=current["id"])
        stored = self._store_view(ctx, view, view_id=current["id"], root=current["root_view_id"])
        stored["previous_view_id"] = current["previous_view_id"]
        stored["state"] = current["state"]
        self._views[current["id"]] = stored
        return {"view": copy.deepcopy(stored)}

    def _m_views_publish(self, ctx: _Ctx) -> JSON:
        user = self._user_in(ctx.auth.team_id, ctx.arg("user_id"))
        view = self._check_view(ctx, ("home",))
        current = self._homes.get(user.user_id)
        wanted = ctx.opt("hash")
        if wanted is not None and (current is None or wanted != current["hash"]):
            raise SlackError("hash_conflict")
        stored = self._store_view(ctx, view, view_id=current["id"] if current else None)
        self._homes[user.user_id] = stored
        return {"view": copy.deepcopy(stored)}

    def _m_files_getUploadURLExternal(self, ctx: _Ctx) -> JSON:
        filename = ctx.arg("filename")
        try:
            length = int(ctx.arg("length"))
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
        if length <= 0:
            raise SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._uploads[file_id] = UploadedFile(
            file_id=file_id,
            team_id=ctx.auth.team_id,
            filename=filename,
            length=length,
            alt_txt=ctx.opt("alt_txt"),
            snippet_type=ctx.opt("snippet_type"),
        )
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, ctx: _Ctx) -> JSON:
        tok = ctx.auth
        files = ctx.args.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        uploads: list[tuple[UploadedFile, JSON]] = []
        for item in files:
            upload = self._uploads.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload.team_id != tok.team_id or upload.content is None:
                raise SlackError("file_not_found")
            uploads.append((upload, item))
        targets = [c for c in (ctx.opt("channels") or "").split(",") if c]
        if ctx.opt("channel_id"):
            targets.insert(0, ctx.arg("channel_id"))
        channel_ids = [self._postable(tok, c) for c in targets]
        shared: list[JSON] = []
        for upload, item in uploads:
            upload.completed = True
            upload.title = str(item.get("title") or upload.filename)
            upload.channel_id = channel_ids[0] if channel_ids else None
            upload.initial_comment = ctx.opt("initial_comment")
            upload.thread_ts = ctx.opt("thread_ts")
            shared.append(
                {
                    "id": upload.file_id,
                    "name": upload.filename,
                    "title": upload.title,
                    "size": len(upload.content or b""),
                    "user": tok.bot_user_id,
                    "created": int(time.time()),
                    "url_private": f"{self.root_url}/files/{upload.file_id}",
                }
            )
        for channel_id in channel_ids:
            message: JSON = {
                "type": "message",
                "ts": self._next_ts(),
                "user": tok.bot_user_id,
                "bot_id": tok.bot_id,
                "text": ctx.opt("initial_comment") or "",
                "files": copy.deepcopy(shared),
            }
            if ctx.opt("thread_ts"):
                message["thread_ts"] = ctx.opt("thread_ts")
            self._messages.setdefault(channel_id, []).append(message)
        return {"files": shared}

    def _m_oauth_v2_access(self, ctx: _Ctx) -> JSON:
        grant = self._oauth_codes.pop(ctx.arg("code"), None)
        if grant is None:
            raise SlackError("invalid_code")
        tok, installer, scope = grant
        self.add_token(tok.token, tok.team_id, tok.bot_user_id, bot_id=tok.bot_id)
        team = self._teams[tok.team_id]
        return {
            "app_id": "AFAKESLACK",
            "authed_user": {"id": installer},
            "scope": scope,
            "token_type": "bot",
            "access_token": tok.token,
            "bot_user_id": tok.bot_user_id,
            "team": {"id": team.team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    _NO_AUTH = frozenset({"api.test", "oauth.v2.access"})

    def _method(self, name: str) -> Callable[[_Ctx], JSON] | None:
        found = getattr(self, "_m_" + name.replace(".", "_"), None)
        return cast(Callable[[_Ctx], JSON] | None, found)

    # -- request handling ---------------------------------------------------

    def _handle(self, target: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        url = urlsplit(target)
        path = url.path
        if path.startswith("/api/"):
            method, kind = path.removeprefix("/api/"), "api"
        elif path.startswith("/upload/"):
            method, kind = "upload", "upload"
        elif path.startswith("/response/"):
            method, kind = "response_url", "response"
        else:
            return _Reply(404, b"not found", "text/plain")
        content_type = headers.get("content-type", "")
        if kind == "upload":
            args: dict[str, Any] = {"file_id": path.removeprefix("/upload/")}
            token = None
        else:
            try:
                args = _decode_body(content_type, body)
            except ValueError:
                return self._answer_bad_body(method, path)
            args.update(
                (k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in args
            )
            for key in JSON_FIELDS & args.keys():
                if isinstance(args[key], str) and args[key][:1] in ("[", "{"):
                    # a malformed one stays a string and the method rejects it
                    with contextlib.suppress(ValueError):
                        args[key] = json.loads(args[key])
            body_token = _pop_str(args, "token")  # never kept in the recorded args
            token = _bearer(headers.get("authorization", "")) or body_token
        with self._lock:
            self._request_count += 1
            fault = self._take_fault(self._request_count, method, kind)
            tok = self._tokens.get(token or "")
            team_id = tok.team_id if tok else None
            call = Call(method, args, token, time.time(), team_id=team_id, path=path)
            if fault is not None:
                return self._faulted_reply(call, fault)
            ctx = _Ctx(method, args, tok)
            try:
                if kind == "upload":
                    return self._record(call, ctx, *self._upload(args, content_type, body))
                if kind == "response":
                    return self._record(call, ctx, *self._respond(path, ctx))
                status, data = 200, self._dispatch(method, token, ctx)
            except _Faulted as faulted:
                return self._faulted_reply(call, faulted.fault)
            except SlackError as exc:
                status, data = 200, {"ok": False, "error": exc.error, **exc.extra}
            return self._record(call, ctx, status, data)

    def _answer_bad_body(self, method: str, path: str) -> _Reply:
        with self._lock:
            self._request_count += 1
            call = Call(method, {}, None, time.time(), path=path)
            return self._record(call, _Ctx(method, {}, None), 200, _error_body("invalid_json"))

    def _dispatch(self, method: str, token: str | None, ctx: _Ctx) -> JSON:
        if method == "apps.connections.open":  # the one method that takes an app-level token
            if not token:
                raise SlackError("not_authed")
            if token not in self._app_tokens:
                raise SlackError("not_allowed_token_type" if ctx.token else "invalid_auth")
            return {"ok": True, "url": self._app_tokens[token]}
        if token in self._app_tokens:
            raise SlackError("not_allowed_token_type")
        if method not in self._NO_AUTH:
            if not token:
                raise SlackError("not_authed")
            if token in self._revoked:
                raise SlackError("token_revoked")
            if ctx.token is None:
                raise SlackError("invalid_auth")
        stub = self._stubs.get(method)
        if stub is not None:
            data = stub(ctx.args) if callable(stub) else copy.deepcopy(stub)
            return {"ok": True, **data}
        implementation = self._method(method)
        if implementation is None:
            raise SlackError("unknown_method", req_method=method)
        data = implementation(ctx)
        if ctx.warnings:
            data["warning"] = ",".join(ctx.warnings)
            data.setdefault("response_metadata", {})["warnings"] = list(ctx.warnings)
        return {"ok": True, **data}

    def _upload(self, args: dict[str, Any], content_type: str, body: bytes) -> tuple[int, JSON]:
        file_id = str(args["file_id"])
        upload = self._uploads.get(file_id)
        if upload is None or upload.completed:
            return 404, _error_body("file_not_found")
        content = body
        if content_type.startswith("multipart/form-data"):
            parts = _multipart(content_type, body)
            content = next((v for _, v, filename in parts if filename is not None), b"")
            if not content and parts:
                content = parts[0][1]
        upload.content = content
        args["length"] = len(content)
        return 200, {"ok": True, "file_id": file_id, "length": len(content)}

    def _respond(self, path: str, ctx: _Ctx) -> tuple[int, JSON]:
        target = self._response_urls.get(path.removeprefix("/response/"))
        if target is None:
            return 404, _error_body("invalid_url")
        target.uses += 1
        if target.uses > self.response_url_max_uses:
            return 404, _error_body("used_url")
        args = ctx.args
        if _flag(args.get("delete_original")):
            if target.channel_id and target.message_ts:
                messages = self._messages.get(target.channel_id, [])
                self._messages[target.channel_id] = [
                    m for m in messages if m["ts"] != target.message_ts
                ]
            return 200, {"ok": True}
        try:
            self._check_message(ctx)
        except SlackError as exc:
            return 400, {"ok": False, "error": exc.error, **exc.extra}
        fields = self._message_fields(args)
        if _flag(args.get("replace_original")) and target.channel_id and target.message_ts:
            try:
                message = self._find_message(target.channel_id, target.message_ts)
            except SlackError:
                return 404, _error_body("message_not_found")
            for key in ("text", "blocks", "attachments"):
                message.pop(key, None)
            message.update(fields)
        elif args.get("response_type") == "in_channel" and target.channel_id:
            message = {"type": "message", "ts": self._next_ts(), "team": target.team_id, **fields}
            self._messages.setdefault(target.channel_id, []).append(message)
        else:
            self._ephemerals.append(
                {"channel": target.channel_id, "user": target.user_id, "ts": self._next_ts()}
                | fields
            )
        data: JSON = {"ok": True}
        if ctx.warnings:
            data["warning"] = ",".join(ctx.warnings)
        return 200, data

    def _take_fault(self, number: int, method: str, kind: str) -> Fault | None:
        for pending in self._pending:
            if pending.method == method or (pending.method == "*" and kind == "api"):
                pending.remaining -= 1
                if pending.remaining <= 0:
                    self._pending.remove(pending)
                return pending.fault
        return self._plan(number, method) if self._plan is not None else None

    def _faulted_reply(self, call: Call, fault: Fault) -> _Reply:
        data = _error_body(fault.error)
        self._faulted.append(replace(call, response=data, fault=fault))
        self._changed.notify_all()
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.body is not None:
            body, content_type = fault.body.encode(), "text/html; charset=utf-8"
        else:
            body, content_type = json.dumps(data).encode(), "application/json; charset=utf-8"
        return _Reply(fault.status, body, content_type, headers, fault.hold, fault.drop)

    def _record(self, call: Call, ctx: _Ctx, status: int, data: JSON) -> _Reply:
        self._calls.append(replace(call, args=ctx.args, response=data, warnings=list(ctx.warnings)))
        self._changed.notify_all()
        hold = 0.0
        slow = self._delays.get(call.method)
        if slow is not None:
            hold = slow.seconds
            if slow.remaining is not None:
                slow.remaining -= 1
                if slow.remaining <= 0:
                    del self._delays[call.method]
        return _Reply(status, json.dumps(data).encode(), hold=hold)


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


def _bearer(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _pop_str(args: dict[str, Any], key: str) -> str | None:
    value = args.pop(key, None)
    return str(value) if value else None


def _multipart(content_type: str, body: bytes) -> list[tuple[str, bytes, str | None]]:
    """(name, payload, filename) for each part of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: list[tuple[str, bytes, str | None]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        name = part.get_param("name", header="content-disposition")
        parts.append(
            (
                str(name or ""),
                payload if isinstance(payload, bytes) else b"",
                part.get_filename(),
            )
        )
    return parts


def _decode_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Form, JSON or multipart body -> args; raises ValueError on malformed JSON."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
        return data
    if content_type.startswith("multipart/form-data"):
        return {
            name: value.decode("utf-8", "replace")
            for name, value, _ in _multipart(content_type, body)
        }
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Slack's servers do

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = cast(_Server, self.server).fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake._handle(self.path, headers, body)
        if reply.hold:
            fake._stopping.wait(reply.hold)
        if reply.drop:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); Slack would not notice either

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""
