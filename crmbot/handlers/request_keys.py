"""Retries and double submits: a request Slack sends twice is carried out once.

A global middleware names each request that could write something twice and claims that
name in the database (`CrmService.claim_request`) before any listener runs:

- Events API deliveries by `event_id` (a retry, with `X-Slack-Retry-Num`, repeats it);
- slash commands by `trigger_id` (a retried HTTP delivery repeats the whole body);
- view submissions by user, view id, view hash and the submitted values (a double click
  sends the same view with the same values twice);
- clicks on the buttons that change something (KEYED_ACTIONS) by user, message or view,
  button and value, for CLICK_TTL only: a double click, not a deliberate click a minute on.

A slash command is claimed right after its ack instead, by the process that does its work
(`LateKeyedAck`): its ack is an empty 200 whether it is the first delivery or a duplicate,
so nothing the person or Slack sees changes, and the web process spends no database write on
the ack path of a command it hands to a worker (handlers/offload.py: the worker claims it).
A duplicate stops at its ack (`DuplicateRequest`) and does nothing more.

A view submission that saves in one step (CLAIMED_BY_SAVE: Log interaction, New deal, ...)
has its key claimed by that save, inside the save's own transaction (`saving`): the key is
held exactly when the submission was saved. Two deliveries of it both check their form; the
second to save waits for the first's transaction at the key (PostgreSQL's unique index,
SQLite's write lock) and, if the first committed, is acked with an empty 200 (the modal
closes) without saving; if the first was refused or failed, nothing holds the key and the
second saves. So a modal is never closed on a submission that was not saved, and the ack
path spends no write transaction of its own. A submission that closes without saving
anything (a question asked) claims its key at its ack, like a command.

Any other duplicate is answered with an empty 200 at once and goes no further. A duplicate of
any other view submission (Settings, which saves in several steps) first waits (up to
VIEW_WAIT) for the original's answer: if the original was refused (field errors) or failed,
its key is free again and the duplicate is handled like a new submission.

The claim is given back when nothing was saved, so the same request can be sent again:
a view refused with field errors or failing before its ack, or any request refused by a
domain error (the service raises those before it commits). An unexpected error after the
ack keeps the key: something may have been saved, and a second record is worse than a
retry that has to be typed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from slack_bolt import Ack, App
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.request.payload_utils import (
    is_block_actions,
    is_event,
    is_slash_command,
    is_view_submission,
)
from slack_bolt.response import BoltResponse

from crmbot.domain import CrmError
from crmbot.handlers.command_text import CommandError
from crmbot.handlers.ids import Action, Modal
from crmbot.service import CrmService
from crmbot.service.request_keys import (
    AlreadyClaimed,
    FirstStep,
    KeyState,
    KeysUnavailable,
    RequestClaim,
)

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(hours=24)  # Slack retries events for minutes; a day is plenty
CLICK_TTL = timedelta(seconds=30)
VIEW_WAIT = 2.0  # seconds a duplicate submission waits for the original (Slack allows 3)
POLL = 0.05

# Buttons whose second press would write again (create, merge, claim, complete, snooze, ...).
# Buttons that only show something or open a modal are not keyed: no write on their ack path.
KEYED_ACTIONS = frozenset(
    {
        Action.DONE,
        Action.SNOOZE_HOUR,
        Action.SNOOZE_DAY,
        Action.SNOOZE_WEEK,
        Action.SNOOZE_MONDAY,
        Action.ACKNOWLEDGE,
        Action.DIGEST_OFF,
        Action.DIGEST_ON,
        Action.CLAIM,
        Action.ROTATE_INTAKE_TOKEN,
        Action.MERGE,
        Action.CREATE_ANYWAY,
    }
)

# View submissions whose work is one save (one service call, one transaction): their key is
# claimed by that save (`saving`). Each of their listeners runs its save through `saving`.
CLAIMED_BY_SAVE = frozenset(
    {
        Modal.LOG,
        Modal.LOG_MESSAGE,
        Modal.NEW_LEAD,
        Modal.NEW_DEAL,
        Modal.MOVE_DEAL,
        Modal.ASSIGN,
        Modal.FOLLOW_UP,
        Modal.CONVERT,
        Modal.RESCHEDULE,
        Modal.LOG_NEXT,
    }
)

T = TypeVar("T")

_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


class Kind(StrEnum):
    EVENT = "event"
    COMMAND = "command"
    VIEW = "view"
    CLICK = "click"


@dataclass(frozen=True)
class RequestKey:
    """What names a Slack request for deduplication, and how long the name is kept."""

    kind: Kind
    key: str
    ttl: timedelta


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _named(kind: Kind, ident: Any, ttl: timedelta = REQUEST_TTL) -> RequestKey | None:
    if not isinstance(ident, str) or not ident:
        return None
    plain = ident if _PLAIN_ID.fullmatch(ident) else _digest(ident)
    return RequestKey(kind, f"{kind.value}:{plain}", ttl)


def key_of(body: dict[str, Any]) -> RequestKey | None:
    """The dedupe key of a Slack request body; None for requests that are not keyed."""
    if is_event(body):
        return _named(Kind.EVENT, body.get("event_id"))
    if is_slash_command(body):
        # A response_url is as unique per invocation, for a payload without a trigger id.
        return _named(Kind.COMMAND, body.get("trigger_id") or body.get("response_url"))
    if is_view_submission(body):
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        user = (body.get("user") or {}).get("id")
        ident = _digest(user, view.get("id"), view.get("hash"), values)
        return RequestKey(Kind.VIEW, f"{Kind.VIEW.value}:{ident}", REQUEST_TTL)
    if is_block_actions(body):
        actions = body.get("actions") or [{}]
        action = actions[0] if isinstance(actions[0], dict) else {}
        if action.get("action_id") not in KEYED_ACTIONS:
            return None
        picked = (action.get("selected_option") or {}).get("value")
        where = body.get("container") or {}
        ident = _digest(
            (body.get("user") or {}).get("id"),
            where.get("message_ts") or where.get("view_id") or where.get("channel_id"),
            action.get("action_id"),
            action.get("block_id"),
            action.get("value") if picked is None else picked,
        )
        return RequestKey(Kind.CLICK, f"{Kind.CLICK.value}:{ident}", CLICK_TTL)
    return None


class KeyedAck(Ack):
    """Bolt's `ack` for a claimed request; settles the claim once the outcome is known.

    A view submission's outcome is its ack: field errors give the claim back, any other
    answer marks it done. Other requests ack before doing the work, so only `failed`
    decides for them (see the module docstring).
    """

    def __init__(
        self, crm: CrmService, claim: RequestClaim | None, *, answer_settles: bool
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.crm = crm
        self.claim: RequestClaim | None = claim
        self.answer_settles = answer_settles
        self.settled = False

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = super().__call__(*args, **kwargs)  # the HTTP answer goes out first
        if self.answer_settles and not self.settled:
            refused = _refused(args, kwargs)
            self._settle(self.crm.release_request if refused else self.crm.finish_request)
        return response

    def failed(self, error: BaseException) -> None:
        """The listener raised `error`: give the claim back when nothing can have been saved."""
        if self.settled:
            return
        if self.answer_settles or isinstance(error, CrmError | CommandError):
            self._settle(self.crm.release_request)
        else:
            self.settled = True

    def _settle(self, how: Callable[[RequestClaim], None]) -> None:
        self.settled = True
        if self.claim is None:  # never claimed (handed over, or keys unavailable)
            return
        try:
            how(self.claim)
        except Exception:  # bookkeeping must not turn an answered request into an error
            log.exception("could not settle request key %s", self.claim.key)


class DuplicateRequest(Exception):
    """Raised by a command's ack when another delivery of the same command holds its key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate Slack request {key}")
        self.key = key


class LateKeyedAck(KeyedAck):
    """A slash command's `ack`: answers first, then claims the command's key.

    The listener calls it first thing, so a duplicate delivery stops there (the ack raises
    `DuplicateRequest`, which `errors.guarded` swallows) before any work. `hand_over` acks
    without claiming: the request goes to a worker process, whose own ack claims it.
    """

    def __init__(self, crm: CrmService, ws: str, keyed: RequestKey) -> None:
        super().__init__(crm, None, answer_settles=False)  # claimed by the first call
        self.ws = ws
        self.keyed = keyed
        self._tried = False

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = Ack.__call__(self, *args, **kwargs)  # the HTTP answer goes out first
        if not self._tried:
            self._tried = True
            _claim_after_answer(self, self.ws, self.keyed)
        return response

    def hand_over(self) -> BoltResponse:
        """Ack without claiming: the process that does the work claims the key."""
        self._tried = self.settled = True
        return Ack.__call__(self)


class SavedKeyAck(KeyedAck):
    """A view submission's `ack` whose key is claimed by the submission's save (`saving`).

    Closing the modal without a save (a question asked instead) claims the key after the
    answer, like a command, so a duplicate stops at its ack (`DuplicateRequest`) and posts
    nothing twice. Field errors claim nothing: nothing was saved.
    """

    def __init__(self, crm: CrmService, ws: str, keyed: RequestKey) -> None:
        super().__init__(crm, None, answer_settles=False)  # claimed by the save, or the ack
        self.ws = ws
        self.keyed = keyed
        self.step: FirstStep | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = Ack.__call__(self, *args, **kwargs)  # the HTTP answer goes out first
        if self.settled:
            return response
        self.settled = True
        refused = _refused(args, kwargs)
        if not refused and (self.step is None or not self.step.done):
            _claim_after_answer(self, self.ws, self.keyed)
        return response


def _refused(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether an ack's arguments answer with field errors (the modal stays open)."""
    whole = args[0] if args and isinstance(args[0], dict) else {}
    return bool((kwargs.get("response_action") or whole.get("response_action")) == "errors")


def _claim_after_answer(ack: KeyedAck, ws: str, keyed: RequestKey) -> None:
    """Claim `keyed` for an ack that has answered already; a duplicate raises
    `DuplicateRequest` (its answer was sent all the same)."""
    try:
        claim = ack.crm.claim_request(ws, keyed.key, ttl=keyed.ttl)
    except Exception:  # a dedupe outage must not take the bot down with it
        log.exception("request keys unavailable; handling %s unkeyed", keyed.key)
        ack.settled = True
        return
    if claim is None:
        raise DuplicateRequest(keyed.key)
    ack.claim = claim


def saving(ack: object, save: Callable[[], T]) -> T:
    """Run a view submission's `save`; its key is claimed inside the save's transaction.

    A duplicate of a submission that was saved is acked with an empty 200 (the modal closes)
    and raises `DuplicateRequest` instead of saving again. Without usable request keys the
    save runs unkeyed (the failed claim rolled its transaction back: nothing was saved)."""
    if not isinstance(ack, SavedKeyAck) or ack.settled or ack.step is not None:
        return save()
    try:
        with ack.crm.claim_with_save(ack.ws, ack.keyed.key, ttl=ack.keyed.ttl) as step:
            ack.step = step
            return save()
    except AlreadyClaimed:
        ack.settled = True
        if ack.response is None:
            Ack.__call__(ack)  # empty: the modal closes, as it did for the original
        raise DuplicateRequest(ack.keyed.key) from None
    except KeysUnavailable:
        log.exception("request keys unavailable; handling %s unkeyed", ack.keyed.key)
        ack.settled = True
        return save()


def hand_over(ack: Ack) -> BoltResponse:
    """Ack a request whose work (and key claim) another process takes over."""
    if isinstance(ack, LateKeyedAck):
        return ack.hand_over()
    return ack()


def failed(ack: object, error: BaseException) -> None:
    """For the error handler: a listener raised; settle its request key if it has one."""
    if isinstance(ack, KeyedAck):
        ack.failed(error)


class RequestKeyMiddleware(Middleware):
    """Claims each keyed request before any listener runs; answers duplicates with an ack."""

    def __init__(
        self, crm: CrmService, *, wait: float = VIEW_WAIT, commands_only: bool = False
    ) -> None:
        self.crm = crm
        self.wait = wait
        self.commands_only = commands_only

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        keyed = key_of(req.body)
        ws = req.context.team_id or req.context.enterprise_id
        if keyed is None or not ws:
            return next()
        if keyed.kind is Kind.COMMAND:  # claimed by its ack, after the answer
            req.context["ack"] = LateKeyedAck(self.crm, ws, keyed)
            return next()
        if self.commands_only:
            return next()
        if keyed.kind is Kind.VIEW and _callback_id(req.body) in CLAIMED_BY_SAVE:
            req.context["ack"] = SavedKeyAck(self.crm, ws, keyed)  # claimed by the save
            return next()
        try:
            claim = self.crm.claim_request(ws, keyed.key, ttl=keyed.ttl)
            if claim is None and keyed.kind is Kind.VIEW:
                claim = self._after_original(ws, keyed)
        except Exception:  # a dedupe outage must not take the bot down with it
            log.exception("request keys unavailable; handling %s unkeyed", keyed.key)
            return next()
        if claim is None:
            log.info("duplicate Slack request %s answered with an empty ack", keyed.key)
            return BoltResponse(status=200, body="")
        req.context["ack"] = KeyedAck(self.crm, claim, answer_settles=keyed.kind is Kind.VIEW)
        return next()

    def _after_original(self, ws: str, keyed: RequestKey) -> RequestClaim | None:
        """Wait for the original submission's answer; its claim if it gave the key back."""
        deadline = time.monotonic() + self.wait
        while True:
            state = self.crm.request_state(ws, keyed.key)
            if state is KeyState.DONE:
                return None
            if state is KeyState.FREE:
                claim = self.crm.claim_request(ws, keyed.key, ttl=keyed.ttl)
                if claim is not None:
                    return claim
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL)


def _callback_id(body: dict[str, Any]) -> str:
    view = body.get("view")
    return str(view.get("callback_id") or "") if isinstance(view, dict) else ""


def install(app: App, crm: CrmService, *, commands_only: bool = False) -> None:
    """Claim every keyed request: commands at their ack, the others before their listener.

    `commands_only`: a worker process's app (handlers/offload.py), which is handed commands
    that nobody has claimed yet, and requests of other kinds the web process has claimed."""
    app.use(RequestKeyMiddleware(crm, commands_only=commands_only))
