"""Post-ack work of `/crm` in worker processes, so acks never wait behind it.

The web process verifies the request and acks through Bolt exactly as before; for verbs
that never open a modal it then hands the signed request (raw body and headers) to a small
pool of worker processes instead of doing the work itself. Each worker runs the same Bolt
app (`create_app(..., process_before_response=True)`), so the same listener parses, calls
the service, renders and answers through `response_url`, at a lower OS priority (`nice`)
than the process that acks.

- **Bounded, with back-pressure.** Jobs wait in one in-memory queue of `queue_size`; when
  it is full the web process does the work itself, as it did before (slower acks, nothing
  dropped).
- **A worker that dies** (killed, out of memory) loses the one job it was running: that
  person is told through the job's `response_url` that something went wrong (with an error
  id in the log), the job is not retried (it may have half-run), and the worker is
  restarted for the next job. Jobs still queued are kept.
- **The web process dying** loses the jobs still queued in it (at most `queue_size`), as
  the threads that did this work in-process lost theirs. The workers finish their current
  job and exit when they see the web process gone.
- A job the worker no longer accepts as Slack's (its signature is older than Bolt's five
  minutes) is answered with the same "something went wrong" reply.
"""

from __future__ import annotations

import inspect
import json
import logging
import multiprocessing
import os
import pickle
import queue
import threading
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import BoltRequest

from crmbot.config import Settings
from crmbot.handlers import command_text as ct
from crmbot.handlers import request_keys

log = logging.getLogger("crmbot.offload")

Headers = dict[str, Sequence[str]]
Listener = Callable[..., Any]

# Verbs whose work never opens a modal (trigger ids die after 3 s, so those stay here).
DEFERRABLE_VERBS = frozenset(
    {
        "help",
        "find",
        "show",
        "tasks",
        "pipeline",
        "report",
        "history",
        "followup",
        "move",
        "won",
        "lost",
        "assign",
        "undo",
        "delete",
        "restore",
    }
)


def deferrable(text: str) -> bool:
    """Whether `/crm text` can be answered by a worker (no modal, whatever the outcome)."""
    words = text.split(maxsplit=1)
    if not words:
        return False
    verb = ct.canonical_verb(words[0])
    if verb in DEFERRABLE_VERBS:
        return True
    if verb != "lead" or len(text) > ct.MAX_TEXT:
        return False
    try:  # `lead` with a name creates it; without one it opens the New lead modal
        parsed = ct.parse_command(text)
    except ct.CommandError:
        return False
    return isinstance(parsed, ct.NewLead) and parsed.name is not None


@dataclass(frozen=True)
class Job:
    """A signed request whose listener runs in a worker (its ack was sent already)."""

    body: str
    headers: Headers


Payload = dict[str, Any]  # a message's text and blocks, as Slack's API takes them


@dataclass(frozen=True)
class Notice:
    """The Slack posts that follow a modal submission's ack, made by a worker
    (`handlers.modals.deliver`): the confirmation to the person, maybe a DM to another."""

    token: str  # the bot token the submission came with (one per workspace in OAuth mode)
    user_id: str
    channel_id: str | None
    reply: Payload
    dm_to: str | None = None
    dm: Payload | None = None


class Offload:
    """A bounded queue feeding `workers` worker processes, one job at a time each."""

    def __init__(
        self, settings: Settings, *, workers: int = 2, queue_size: int = 256, nice: int = 10
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.nice = nice
        self._queue: queue.Queue[Job | Notice | None] = queue.Queue(maxsize=queue_size)
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._feeders: list[threading.Thread] = []
        self._closed = False

    def start(self) -> Offload:
        for n in range(self.workers):
            slot = _Slot(self, n)
            slot.spawn()
            feeder = threading.Thread(
                target=self._feed, args=(slot,), name=f"crmbot-offload-{n}", daemon=True
            )
            feeder.start()
            self._feeders.append(feeder)
        return self

    def submit(self, body: str, headers: Mapping[str, Sequence[str]]) -> bool:
        """Queue one signed request; False when full or closed (then do the work here)."""
        return self._put(Job(body, {k: list(v) for k, v in headers.items()}))

    def notify(self, notice: Notice) -> bool:
        """Queue a submission's Slack posts; False when full or closed (then post them here)."""
        return self._put(notice)

    def _put(self, job: Job | Notice) -> bool:
        if self._closed:
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            log.warning("offload queue full (%d jobs): working in the web process", self.depth)
            return False
        return True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def wrap(self, listener: Listener) -> Listener:
        """The `/crm` listener: ack and hand deferrable commands over, else run `listener`."""
        names = _arg_names(listener)

        def offloaded(ack: Any, request: BoltRequest) -> Any:
            body = request.body
            if deferrable(str(body.get("text") or "")) and self.submit(
                request.raw_body, request.headers
            ):
                request_keys.hand_over(ack)  # the worker claims the command's key
                return None
            context = request.context
            available = {
                "ack": ack,
                "body": body,
                "command": body,
                "context": context,
                "client": context.client,
                "respond": context.respond,
                "request": request,
                "logger": log,
            }
            return listener(**{name: available[name] for name in names if name in available})

        return offloaded

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued (up to `timeout`), then stop the workers."""
        self._closed = True
        for _ in self._feeders:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                break
        for feeder in self._feeders:
            feeder.join(timeout)

    # --- the web process's side of each worker ----------------------------------

    def _feed(self, slot: _Slot) -> None:
        try:
            while (job := self._queue.get()) is not None:
                try:
                    self._run(slot, job)
                except Exception:  # anything unforeseen costs this job only, not the feeder
                    log.exception("offload job failed in the web process")
        finally:
            slot.stop()

    def _run(self, slot: _Slot, job: Job | Notice) -> None:
        try:
            try:
                slot.conn.send_bytes(_packed(job))
            except OSError:  # the worker had died before the job reached it: restart, resend
                log.error("offload worker %d had died; restarting", slot.number)
                slot.spawn()
                slot.conn.send_bytes(_packed(job))
            status = slot.conn.recv()
        except (EOFError, OSError) as error:  # it died running the job
            slot.process.join(1)
            error_id = uuid.uuid4().hex[:8]
            log.error(
                "offload worker %d died (exit code %s) running a job; error id %s; restarting",
                slot.number,
                slot.process.exitcode,
                error_id,
                exc_info=error,
            )
            _tell_failed(job, error_id)
            slot.spawn()
            return
        if status != 200:
            error_id = uuid.uuid4().hex[:8]
            log.error("offload worker answered HTTP %s; error id %s", status, error_id)
            _tell_failed(job, error_id)


class _Slot:
    """One worker process and the pipe to it."""

    def __init__(self, owner: Offload, number: int) -> None:
        self.owner = owner
        self.number = number
        self.conn: Connection
        self.process: Any = None

    def spawn(self) -> None:
        if self.process is not None:
            self.stop()
        ours, theirs = self.owner._context.Pipe()
        self.process = self.owner._context.Process(
            target=worker_main,
            args=(self.owner.settings, theirs, self.owner.nice),
            name=f"crmbot-worker-{self.number}",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.conn = ours

    def stop(self) -> None:
        self.conn.close()  # the worker sees EOF and exits after its current job
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def _packed(job: Job | Notice) -> bytes:
    """A job for the pipe. Plain pickle: `Connection.send` builds a ForkingPickler (copying
    its dispatch table) per message, which cost the web process ~5 % of its CPU under load."""
    return pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)


def _arg_names(listener: Listener) -> list[str]:
    """The keyword arguments Bolt would pass `listener` (as Bolt finds them)."""
    return inspect.getfullargspec(inspect.unwrap(listener)).args


def _tell_failed(job: Job | Notice, error_id: str) -> None:
    """Tell the person their command was lost, through its response_url."""
    if isinstance(job, Notice):  # its record was saved; only the confirmation is lost
        log.error("a confirmation to %s was not posted (error id %s)", job.user_id, error_id)
        return
    urls = parse_qs(job.body).get("response_url") or []
    if not urls or not urls[0].startswith(("https://", "http://")):
        return
    text = f"Something went wrong on our side (error id `{error_id}`). Please try again."
    data = json.dumps({"response_type": "ephemeral", "text": text}).encode()
    request = urllib.request.Request(
        urls[0], data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
    except OSError:
        log.exception("could not tell the user about a lost job (error id %s)", error_id)


def worker_main(settings: Settings, conn: Connection, nice: int) -> None:
    """A worker process: run each handed-over request through crmbot's own Bolt app."""
    from crmbot.app import create_app, web_client
    from crmbot.handlers.modals import deliver
    from crmbot.service import CrmService
    from crmbot.store.db import Database

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if nice:
        os.nice(nice)
    db = Database(settings.database_url, pool_size=2)
    app = create_app(settings, CrmService(db), db=db, process_before_response=True)
    clients: dict[str, Any] = {}  # one WebClient per bot token

    def post(notice: Notice) -> int:
        if notice.token not in clients:
            if len(clients) > 1000:
                clients.clear()
            clients[notice.token] = web_client(settings, notice.token)
        try:
            deliver(clients[notice.token], notice)
        except Exception:  # Slack said no after the client's own retries
            log.exception("could not post a confirmation to %s", notice.user_id)
            return 500
        return 200

    try:
        while True:
            try:
                job = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                return  # the web process closed the pipe or is gone
            status = post(job) if isinstance(job, Notice) else _dispatch(app, job.body, job.headers)
            try:
                conn.send(status)
            except OSError:
                return
    finally:
        db.dispose()


def _dispatch(app: Any, body: str, headers: Headers) -> int:
    try:
        response = app.dispatch(BoltRequest(body=body, headers=dict(headers)))
    except Exception:  # Bolt answers listener errors itself; this is anything else
        log.exception("offloaded request failed")
        return 500
    return int(response.status)


__all__ = ["Notice", "Offload", "Payload", "deferrable", "worker_main"]
