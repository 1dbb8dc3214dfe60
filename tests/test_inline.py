"""Submissions and type-ahead run in the request's thread, taking turns in arrival order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from crmbot.handlers import modals
from crmbot.handlers.ids import Modal
from crmbot.handlers.inline import (
    FifoGate,
    InlineExecutor,
    Mark,
    answered_in_listener,
    gate_slots,
    in_background,
)
from tests.slackapp import SlackSim
from tests.test_forms import slack_state
from tests.test_modals import open_modal

VIEWS = {Modal.LOG.value}


def _submission(callback_id: str) -> dict[str, Any]:
    return {"type": "view_submission", "view": {"callback_id": callback_id, "state": {}}}


def test_which_requests_are_answered_by_their_listener() -> None:
    assert answered_in_listener(_submission("log_interaction"), VIEWS)
    assert not answered_in_listener(_submission("reschedule_follow_up"), VIEWS)
    suggestion = {"type": "block_suggestion", "action_id": "record_picker", "value": "ana"}
    assert answered_in_listener(suggestion, VIEWS)
    assert not answered_in_listener({"command": "/crm", "text": "find ana"}, VIEWS)
    assert not answered_in_listener({"type": "block_actions", "actions": []}, VIEWS)
    assert not answered_in_listener({"type": "view_submission", "view": "?"}, VIEWS)
    # Every modal registered by handlers/modals.py answers from its listener.
    assert {Modal.LOG, Modal.SETTINGS} <= modals.ANSWERED_BY_LISTENER
    assert Modal.RESCHEDULE not in modals.ANSWERED_BY_LISTENER  # posts to Slack first


def test_one_slot_on_sqlite_more_on_postgresql() -> None:
    assert gate_slots(True) == 1
    assert gate_slots(False) > 1


def _marked(executor: InlineExecutor, body: dict[str, Any]) -> threading.Thread:
    """Dispatch `body` as Bolt does: the middleware, then the listener's submit; the thread
    the listener ran in."""
    ran_in: list[threading.Thread] = []

    def go_on() -> BoltResponse:
        future = executor.submit(lambda: ran_in.append(threading.current_thread()))
        future.result(5)
        return BoltResponse(status=200)

    request = BoltRequest(body="", mode="socket_mode")
    request.body = body
    Mark(VIEWS).process(req=request, resp=BoltResponse(status=200), next=go_on)
    return ran_in[0]


def test_a_marked_listener_runs_in_the_request_thread_and_others_in_the_pool() -> None:
    with ThreadPoolExecutor(2) as pool:
        executor = InlineExecutor(pool, FifoGate(1))
        assert _marked(executor, _submission("log_interaction")) is threading.current_thread()
        assert _marked(executor, {"command": "/crm"}) is not threading.current_thread()
        assert _marked(executor, _submission("other")) is not threading.current_thread()
        # What an inline listener submits itself goes to the pool.
        assert executor.submit(threading.current_thread).result(5) is not threading.current_thread()


def test_an_inline_listener_error_reaches_the_future() -> None:
    with ThreadPoolExecutor(1) as pool:
        executor = InlineExecutor(pool, FifoGate(1))
        request = BoltRequest(body="", mode="socket_mode")
        request.body = _submission("log_interaction")
        futures = []

        def go_on() -> BoltResponse:
            futures.append(executor.submit(lambda: 1 / 0))
            return BoltResponse(status=200)

        Mark(VIEWS).process(req=request, resp=BoltResponse(status=200), next=go_on)
        assert isinstance(futures[0].exception(0), ZeroDivisionError)
        assert executor.gate.enter(0)  # the slot was given back


def test_the_gate_gives_turns_in_arrival_order() -> None:
    gate = FifoGate(1)
    assert gate.enter(1)
    order: list[int] = []
    threads = []
    for n in range(5):
        thread = threading.Thread(target=lambda n=n: (gate.enter(10), order.append(n)))
        thread.start()
        threads.append(thread)
        while gate.waiting < n + 1:  # each one queued before the next arrives
            time.sleep(0.001)
    for _ in range(5):
        gate.leave()
        while len(order) < 5 - gate.waiting:
            time.sleep(0.001)
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4]


def test_the_gate_holds_at_most_its_slots_and_a_late_waiter_goes_without_one() -> None:
    gate = FifoGate(2)
    assert gate.enter(0)
    assert gate.enter(0)
    assert not gate.enter(0.01)  # waited, gave up, holds nothing
    assert gate.waiting == 0
    gate.leave()
    assert gate.enter(0)
    with pytest.raises(ValueError, match="at least one slot"):
        FifoGate(0)


def test_a_stuck_listener_delays_the_next_by_the_wait_at_most() -> None:
    release = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        executor = InlineExecutor(pool, FifoGate(1), wait=0.05)
        stuck = threading.Thread(
            target=_marked_call, args=(executor, lambda: release.wait(10)), daemon=True
        )
        stuck.start()
        while executor.gate.enter(0):  # until the stuck one holds the slot
            executor.gate.leave()
            time.sleep(0.001)
        done = _marked_call(executor, lambda: "ran")
        assert done == "ran"
        assert stuck.is_alive()  # it ran while the first one still held the only slot
        release.set()
        stuck.join(5)
        assert executor.gate.enter(0)  # the slot came back; the late one held none


def _marked_call(executor: InlineExecutor, work: Any) -> Any:
    results: list[Any] = []

    def go_on() -> BoltResponse:
        results.append(executor.submit(work).result(15))
        return BoltResponse(status=200)

    request = BoltRequest(body="", mode="socket_mode")
    request.body = _submission("log_interaction")
    Mark(VIEWS).process(req=request, resp=BoltResponse(status=200), next=go_on)
    return results[0]


def test_background_work_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    with ThreadPoolExecutor(1) as pool:
        in_background(pool, lambda: None, "nothing")
        in_background(pool, lambda: [][0], "a confirmation")
    assert "a confirmation failed" in caplog.text


def test_a_submission_is_confirmed_after_its_answer(slack: SlackSim) -> None:
    """Without worker processes the confirmation is posted by a background thread."""
    view = open_modal(slack, modals.open_log)
    answer = slack.submit(view, slack_state(view, notes="called Ana"))
    assert (answer.status, answer.body) == (200, "")
    (told,) = slack.fake.wait_for("chat.postEphemeral")
    assert "called Ana" in str(told.args)
