"""Requests answered by their listener run in the request's own thread, a few at a time.

A modal submission's answer is its listener's outcome (saved and closed, or field errors),
and type-ahead answers with the options it found: Slack waits for the listener either way.
Bolt's default runs every listener on its executor while the request's thread polls for the
ack in 10 ms sleeps: one more thread hand-off, wake-ups, and up to 10 ms of waiting for an
answer that was ready. Those requests (`answered_in_listener`) run their listener right in
the request's thread instead (`InlineExecutor`, Bolt's `listener_executor`, told by the
`Mark` middleware which requests are which). Everything else (commands, buttons, events)
still acks first and works on the executor.

They also run a few at a time (`gate_slots`), in arrival order (`FifoGate`). The web
process has one interpreter lock: ten submissions at once each get a tenth of it and all
finish late, and which thread gets the lock next is up to the OS, so some wait much longer
than others (ack p99 at concurrency 10 was twice the median). Taking turns in order, each
waits for the ones ahead and no more. A request that waited `GATE_WAIT` (something ahead is
stuck, say on a slow Slack call) goes ahead without a turn rather than wait longer.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.request.payload_utils import is_options, is_view_submission
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

GATE_WAIT = 0.25  # seconds a request waits for its turn at most


def gate_slots(database_in_process: bool) -> int:
    """Listeners running at once. One on SQLite: the work (the database's too) is CPU in
    this process, and a second one at the same time only splits the interpreter lock.
    Four on PostgreSQL: a save waits on the network, and others can use the CPU meanwhile."""
    return 1 if database_in_process else 4


P = ParamSpec("P")
T = TypeVar("T")

# Whether the request this thread is dispatching runs its listener inline (set by `mark`).
_inline: ContextVar[bool] = ContextVar("crmbot_inline", default=False)


def answered_in_listener(body: dict[str, Any], views: Collection[str]) -> bool:
    """A type-ahead request, or the submission of a modal in `views` (by callback id)."""
    if is_options(body):
        return True
    if not is_view_submission(body):
        return False
    view = body.get("view")
    return isinstance(view, dict) and view.get("callback_id") in views


class Mark(Middleware):
    """Tells `InlineExecutor` whether the request being dispatched runs inline. Installed
    first; it runs on every request, in the thread that then runs (or hands off) its
    listener, so the flag is always this request's."""

    def __init__(self, views: Collection[str]) -> None:
        self.views = frozenset(views)

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],
    ) -> BoltResponse | None:
        _inline.set(answered_in_listener(req.body, self.views))
        return next()


class FifoGate:
    """At most `slots` holders at a time; waiters get their turn in arrival order."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._free = slots
        self._lock = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()

    def enter(self, timeout: float) -> bool:
        """Take a slot (True), or give up after `timeout` seconds (False: no slot held)."""
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=timeout):
            return True  # `leave` handed its slot to us
        with self._lock:
            try:
                self._waiting.remove(turn)
            except ValueError:  # handed a slot between the timeout and here: it is ours
                return True
        return False

    def leave(self) -> None:
        """Give the slot back: straight to the longest waiter, if any."""
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._free += 1

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class InlineExecutor(Executor):
    """Bolt's listener executor: a thread pool, except for requests `Mark` flagged, whose
    listener runs at once in the calling (request) thread, its turn taken at `gate`."""

    def __init__(self, pool: ThreadPoolExecutor, gate: FifoGate, wait: float = GATE_WAIT):
        self.pool = pool
        self.gate = gate
        self.wait = wait

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if not _inline.get():
            return self.pool.submit(fn, *args, **kwargs)
        _inline.set(False)  # one listener per request; anything it submits goes to the pool
        future: Future[T] = Future()
        turn = self.gate.enter(self.wait)
        if not turn:
            waiting = self.gate.waiting
            log.warning("no turn after %.2f s (%d waiting): running anyway", self.wait, waiting)
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # Bolt's runner catches listener errors itself
            future.set_exception(error)
        finally:
            if turn:
                self.gate.leave()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def in_background(pool: Executor, work: Callable[[], None], what: str) -> None:
    """Run `work` on the pool (after an inline listener answered); its errors are logged."""

    def run() -> None:
        try:
            work()
        except Exception:  # nobody is waiting for this any more: the log keeps it
            log.exception("%s failed", what)

    pool.submit(run)
