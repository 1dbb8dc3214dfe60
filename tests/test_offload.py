"""Post-ack work in worker processes (handlers/offload.py), through the real HTTP server."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from crmbot.app import create_app
from crmbot.config import Settings
from crmbot.handlers import modals
from crmbot.handlers.offload import Offload, deferrable
from crmbot.service import CrmService
from crmbot.service.request_keys import KeyState
from crmbot.store.db import Database
from crmbot.web import create_wsgi, make_server
from tests.slackapp import SECRET, TOKEN, Answer, SlackSim, build_fake
from tests.test_forms import slack_state
from tests.test_modals import accepted, open_modal, submit
from tests.test_request_keys import _command_fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("find maria", True),
        ("search maria", True),
        ("show C-12", True),
        ("tasks overdue", True),
        ("todo", True),
        ("help", True),
        ("lead Ana Lima at Acme ana@acme.com", True),
        ("LEAD Zoë Ωmega", True),
        ("lead", False),  # opens the New lead modal
        ("lead at Acme", False),  # no name: the modal, prefilled
        ("log call L-1", False),
        ("call L-1", False),
        ("deal Big one 50k", False),
        ("convert L-1", False),
        ("settings", False),
        ("", False),
        ("   ", False),
        ("<!channel> find", False),
        ("lead " + "x" * 5000, False),
        ("frobnicate", False),
    ],
)
def test_which_commands_go_to_a_worker(text: str, expected: bool) -> None:
    assert deferrable(text) is expected


@pytest.fixture
def offloaded(db: Database) -> Iterator[tuple[SlackSim, Offload]]:
    """crmbot behind waitress like `crmbot serve`: one worker process does the post-ack work."""
    fake = build_fake()
    settings = Settings(
        database_url=db.url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=fake.url,
        threads=8,
        scheduler_in_web=False,
    )
    crm = CrmService(db)
    crm.ensure_workspace("T1")
    crm.upsert_rep("T1", "UADMIN", name="Ada Admin", tz="Europe/Berlin")
    offload = Offload(settings, workers=1, queue_size=8, nice=0).start()
    app = create_app(settings, crm, db=db, offload=offload)
    server = make_server(create_wsgi(app, db), host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield SlackSim(f"http://127.0.0.1:{server.effective_port}", fake, crm), offload
    finally:
        server.close()
        offload.close()
        fake.stop()


def worker_pid() -> int:
    """The one worker process this test's Offload started."""
    [worker] = [p for p in multiprocessing.active_children() if p.name == "crmbot-worker-0"]
    return int(worker.pid or 0)


def test_commands_are_answered_by_the_worker(offloaded: tuple[SlackSim, Offload]) -> None:
    slack, offload = offloaded
    lead = slack.command("lead Ana Lima at Acme ana@acme.com")
    assert "L-1" in lead.args["text"]
    found = slack.command("find ana")
    assert "Ana Lima" in str(found.args)
    # The worker wrote it: the web process sees the same database.
    assert slack.crm.show("T1", "L-1").record.name == "Ana Lima"
    # Modal verbs stay in the web process (trigger ids expire after 3 s).
    opened = slack.command("log call L-1")
    assert opened.method == "views.open"
    assert offload.depth == 0


def test_a_submission_is_saved_before_the_ack_in_the_web_process(
    offloaded: tuple[SlackSim, Offload],
) -> None:
    slack, _ = offloaded
    slack.command("lead Ana Lima at Acme")
    view = slack.command("log call L-1").args["view"]
    answer = slack.submit(view, slack_state(view, notes="went well", outcome="ok"))
    assert answer.status == 200
    assert answer.body == ""
    # Saved before the ack (errors must be able to keep the modal open)...
    assert [i.summary for i in slack.crm.show("T1", "L-1").interactions] == ["went well"]
    # ...and confirmed to the person.
    [told] = slack.fake.wait_for("chat.postEphemeral")
    assert "went well" in str(told.args)


def test_a_command_delivered_twice_is_run_once_by_the_workers(
    offloaded: tuple[SlackSim, Offload],
) -> None:
    slack, _ = offloaded
    fields = _command_fields(slack, "lead Ana Lima at Acme ana@acme.com")
    # Both deliveries are acked at once; the web process hands both to the worker...
    assert slack.form(fields) == Answer(200, "")
    assert slack.form(fields) == Answer(200, "")
    reply = slack.wait_reply(fields["response_url"])
    assert "L-1" in reply.args["text"]
    time.sleep(0.5)
    # ...which claims the command's key once: one lead, one reply.
    assert [hit.ref for hit in slack.crm.find("T1", "Ana Lima")] == ["L-1"]
    assert len(slack.fake.calls_to("response_url")) == 1
    assert slack.crm.request_state("T1", f"command:{fields['trigger_id']}") is KeyState.PENDING
    # Typed again, it is a new command.
    again = _command_fields(slack, "lead Ana Lima at Acme ana@acme.com")
    assert slack.form(again).status == 200
    slack.wait_reply(again["response_url"])


def test_a_submissions_dm_and_confirmation_are_posted_by_the_worker(
    offloaded: tuple[SlackSim, Offload],
) -> None:
    slack, _ = offloaded
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    view = open_modal(slack, modals.open_assign, ref="L-1")
    slack.fake.fail_next("conversations.open", "user_not_found")  # Carol's DM is refused...
    answer = submit(slack, view, owner="UCAROL")
    accepted(answer)
    assert slack.crm.show("T1", "L-1").record.owner_id == "UCAROL"  # saved before the ack
    # ...so Bob, who assigned, hears both that it is done and that Carol wasn't told.
    deadline = time.monotonic() + 10
    while len(slack.fake.ephemerals(channel="C1", user="UBOB")) < 2:
        assert time.monotonic() < deadline, slack.fake.calls
        time.sleep(0.05)
    texts = [m["text"] for m in slack.fake.ephemerals(channel="C1", user="UBOB")]
    assert any("UCAROL" in t for t in texts)
    assert any("couldn't send" in t and "user_not_found" in t for t in texts)
    assert slack.fake.dms_to("UCAROL") == []


def test_a_dead_worker_is_replaced_and_the_person_told(
    offloaded: tuple[SlackSim, Offload],
) -> None:
    slack, _ = offloaded
    slack.command("help")
    os.kill(worker_pid(), signal.SIGKILL)
    time.sleep(0.2)
    # Killed while idle: the next job goes to a fresh worker and is answered normally.
    slack.command("lead Ana Lima at Acme")
    assert slack.crm.show("T1", "L-1").record.name == "Ana Lima"
    # Killed while running a job: that person hears about it, and the next job works.
    slack.fake.delay("users.info", 5.0, times=1)  # Carol is new: her profile is fetched
    answer, response_url, _ = slack.send_command("tasks", user="UCAROL")
    assert answer.status == 200
    time.sleep(0.5)
    os.kill(worker_pid(), signal.SIGKILL)
    reply = slack.wait_reply(response_url)
    assert "Something went wrong" in reply.args["text"]
    assert "Ana Lima" in str(slack.command("find ana").args)


def test_a_full_queue_pushes_the_work_back_to_the_web_process() -> None:
    """Back-pressure: when the queue is full the caller does the work itself, nothing dropped."""
    offload = Offload(Settings(), workers=0, queue_size=1)  # nobody takes jobs off the queue
    assert offload.submit("text=find+x", {"content-type": ["application/x-www-form-urlencoded"]})
    assert not offload.submit("text=find+y", {})
    assert offload.depth == 1
    offload.close(timeout=0.1)
    assert not offload.submit("text=find+z", {})  # closed: the web process works in-process
