"""Retries and double submits: what Slack sends twice is carried out once, in every process."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, text

from crmbot.app import create_app
from crmbot.config import Settings
from crmbot.domain import InvalidInput
from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from crmbot.handlers.request_keys import (
    CLICK_TTL,
    DuplicateRequest,
    KeyedAck,
    Kind,
    LateKeyedAck,
    RequestKey,
    SavedKeyAck,
    failed,
    hand_over,
    key_of,
    saving,
)
from crmbot.scheduler import Sweeper
from crmbot.service import CrmService
from crmbot.service.request_keys import AlreadyClaimed, KeyState
from crmbot.store.db import Database
from crmbot.store.models import Interaction
from crmbot.store.models import RequestKey as RequestKeyRow
from crmbot.web import create_wsgi, make_server
from tests.conftest import Clock
from tests.slackapp import SECRET, TOKEN, Answer, SlackSim, build_fake
from tests.test_duplicates import buttons
from tests.test_forms import slack_state
from tests.test_modals import errors_of, open_modal

# --- the store: claim, release, finish, expire -------------------------------------------


def test_a_key_is_claimed_once_until_it_is_released(crm: CrmService) -> None:
    first = crm.claim_request("T1", "command:t1", ttl=timedelta(hours=1))
    assert first is not None
    assert crm.claim_request("T1", "command:t1", ttl=timedelta(hours=1)) is None
    assert crm.claim_request("T2", "command:t1", ttl=timedelta(hours=1)) is not None  # per ws
    assert crm.request_state("T1", "command:t1") is KeyState.PENDING
    crm.release_request(first)
    assert crm.request_state("T1", "command:t1") is KeyState.FREE
    again = crm.claim_request("T1", "command:t1", ttl=timedelta(hours=1))
    assert again is not None
    crm.finish_request(again)
    assert crm.request_state("T1", "command:t1") is KeyState.DONE
    crm.release_request(first)  # a stale claimer can't give away the new claim
    assert crm.request_state("T1", "command:t1") is KeyState.DONE


def test_an_expired_key_can_be_claimed_again_and_is_pruned(crm: CrmService, clock: Clock) -> None:
    assert crm.claim_request("T1", "click:a", ttl=timedelta(seconds=30)) is not None
    assert crm.claim_request("T1", "event:b", ttl=timedelta(hours=24)) is not None
    clock.advance(seconds=31)
    assert crm.request_state("T1", "click:a") is KeyState.FREE
    assert crm.claim_request("T1", "click:a", ttl=timedelta(seconds=30)) is not None
    assert crm.claim_request("T1", "click:a", ttl=timedelta(seconds=30)) is None
    clock.advance(hours=25)
    assert crm.claim_request("T1", "event:c", ttl=timedelta(hours=24)) is not None
    assert crm.prune_request_keys(limit=1) == 1  # bounded
    assert crm.prune_request_keys() == 1
    assert crm.prune_request_keys() == 0
    assert crm.request_state("T1", "event:c") is KeyState.PENDING


def test_many_threads_claiming_one_key_at_once_get_one_claim(db: Database, clock: Clock) -> None:
    crms = [CrmService(Database(db.url), clock) for _ in range(2)]  # two "processes"
    start = threading.Barrier(8)
    won: list[object] = []

    def claim(n: int) -> None:
        start.wait()
        claim = crms[n % 2].claim_request("T1", "view:same", ttl=timedelta(hours=1))
        if claim is not None:
            won.append(claim)

    for round_ in range(5):
        won.clear()
        threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, round_
        crms[0].release_request(won[0])  # type: ignore[arg-type]
    for crm in crms:
        crm._db.dispose()


# --- which requests are keyed ----------------------------------------------------------


def _view_body(values: dict[str, Any], *, view_id: str = "V1", user: str = "UBOB") -> Any:
    return {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user},
        "view": {
            "id": view_id,
            "callback_id": "new_deal",
            "hash": "1.a",
            "state": {"values": values},
        },
    }


def _click(action_id: str, value: str = "T-1") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "UBOB"},
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
        "actions": [{"action_id": action_id, "block_id": "b", "value": value}],
    }


def test_keys_name_the_request_not_the_delivery() -> None:
    event = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_home_opened"}}
    assert key_of(event) is not None
    assert key_of(event).key == "event:Ev1"  # type: ignore[union-attr]
    command = {"command": "/crm", "text": "x", "trigger_id": "123.456.abc"}
    assert key_of(command).key == "command:123.456.abc"  # type: ignore[union-attr]
    by_url = key_of({"command": "/crm", "response_url": "https://hooks.slack.com/commands/1/2"})
    assert by_url is not None
    assert by_url.kind is Kind.COMMAND
    odd = key_of({"command": "/crm", "trigger_id": "x" * 500})
    assert odd is not None
    assert len(odd.key) < 100
    values = {"name": {"name": {"type": "plain_text_input", "value": "Ana"}}}
    other = {"name": {"name": {"type": "plain_text_input", "value": "Ana L"}}}
    assert key_of(_view_body(values)) == key_of(_view_body(values))
    assert key_of(_view_body(values)) != key_of(_view_body(other))
    assert key_of(_view_body(values)) != key_of(_view_body(values, view_id="V2"))
    assert key_of(_view_body(values)) != key_of(_view_body(values, user="UADMIN"))
    done = key_of(_click(Action.DONE.value))
    assert done is not None
    assert (done.kind, done.ttl) == (Kind.CLICK, CLICK_TTL)
    assert done == key_of(_click(Action.DONE.value))
    assert done != key_of(_click(Action.DONE.value, "T-2"))
    assert done != key_of(_click(Action.SNOOZE_HOUR.value))
    # Showing a card or opening a modal writes nothing: no claim on their ack path.
    assert key_of(_click(Action.SHOW.value)) is None
    assert key_of(_click(Action.LOG_CALL.value)) is None
    assert key_of({"type": "block_suggestion", "value": "ana"}) is None
    assert key_of({"type": "event_callback", "event": {}}) is None


# --- through the real app ---------------------------------------------------------------


def _deals(slack: SlackSim) -> list[str]:
    return sorted(hit.ref for hit in slack.crm.find("T1", "Renewal"))


def _submit(slack: SlackSim, view: dict[str, Any], values: dict[str, Any]) -> Answer:
    answer = slack.submit(view, values)
    assert answer.status == 200, answer
    return answer


def _at_once(*senders: Callable[[], Answer]) -> list[Answer]:
    """Run the senders in threads that start together; their answers."""
    start = threading.Barrier(len(senders))
    answers: list[Answer] = []

    def run(send: Callable[[], Answer]) -> None:
        start.wait()
        answers.append(send())

    threads = [threading.Thread(target=run, args=(send,)) for send in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _closed(answer: Answer) -> bool:
    return not answer.body or answer.json().get("response_action") != "errors"


def test_a_modal_submitted_twice_saves_one_deal(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_deal)
    values = slack_state(view, name="Renewal", amount="50k")
    assert _closed(_submit(slack, view, values))
    second = _submit(slack, view, values)
    assert second.body == ""  # the duplicate is acked: the modal closes
    assert _deals(slack) == ["D-1"]
    assert slack.fake.wait_for("chat.postEphemeral")
    time.sleep(0.2)
    assert len(slack.fake.calls_to("chat.postEphemeral")) == 1  # told once


def test_a_modal_double_clicked_from_two_threads_saves_one_deal(slack: SlackSim) -> None:
    for round_ in range(3):
        view = open_modal(slack, modals.open_new_deal)
        values = slack_state(view, name="Renewal", amount=str(round_ + 1))
        answers = _at_once(*[partial(_submit, slack, view, values)] * 2)
        assert len(answers) == 2
        assert all(_closed(answer) for answer in answers)
        assert len(_deals(slack)) == round_ + 1


def test_a_refused_double_click_shows_the_errors_and_closes_nothing(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_deal)
    refused = slack_state(view, name="Renewal", stage="Won")
    answers = _at_once(*[partial(_submit, slack, view, refused)] * 2)
    # The second waited for the first, found its key given back, and ran itself.
    assert [set(errors_of(answer)) for answer in answers] == [{"stage"}, {"stage"}]
    assert _deals(slack) == []


def test_a_refused_submission_keeps_no_key(slack: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_deal)
    bad = slack_state(view, name="Renewal", amount="lots")
    assert set(errors_of(_submit(slack, view, bad))) == {"amount"}
    assert set(errors_of(_submit(slack, view, bad))) == {"amount"}  # the same: same answer
    refused = slack_state(view, name="Renewal", stage="Won")  # refused by the service
    assert set(errors_of(_submit(slack, view, refused))) == {"stage"}
    assert set(errors_of(_submit(slack, view, refused))) == {"stage"}
    assert _deals(slack) == []
    good = slack_state(view, name="Renewal", amount="50k")
    assert _closed(_submit(slack, view, good))
    assert _closed(_submit(slack, view, good))
    assert _deals(slack) == ["D-1"]


def _command_fields(slack: SlackSim, text: str) -> dict[str, str]:
    return {
        "token": "legacy",
        "team_id": "T1",
        "team_domain": "t1",
        "channel_id": "C1",
        "channel_name": "sales",
        "user_id": "UBOB",
        "user_name": "bob",
        "command": "/crm",
        "text": text,
        "response_url": slack.fake.response_url("T1", channel_id="C1", user_id="UBOB"),
        "trigger_id": slack.fake.issue_trigger_id("UBOB"),
        "api_app_id": "A1",
    }


def test_a_slash_command_delivered_twice_creates_one_deal(slack: SlackSim) -> None:
    fields = _command_fields(slack, "deal Renewal 50k")
    assert slack.form(fields) == Answer(200, "")
    assert slack.form(fields) == Answer(200, "")
    reply = slack.wait_reply(fields["response_url"])
    assert "D-1" in reply.args["text"]
    time.sleep(0.3)
    assert _deals(slack) == ["D-1"]
    assert len(slack.fake.calls_to("response_url")) == 1
    other = _command_fields(slack, "deal Renewal 50k")  # typed again: a new request
    assert slack.form(other).status == 200
    slack.wait_reply(other["response_url"])
    assert len(_deals(slack)) == 2


def test_a_retried_event_is_processed_once(
    slack: SlackSim, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(
        {
            "token": "legacy",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": "Ev0RETRY1",
            "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": "UBOB", "channel": "DUBOB", "tab": "home"},
        }
    ).encode()
    assert slack.post(body, "application/json").status == 200
    assert slack.fake.wait_for("views.publish")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    with caplog.at_level(logging.INFO, logger="crmbot.handlers.request_keys"):
        assert slack.post(body, "application/json", headers=retry) == Answer(200, "")
    assert "duplicate Slack request event:Ev0RETRY1" in caplog.text
    time.sleep(0.3)
    assert len(slack.fake.calls_to("views.publish")) == 1


def test_create_anyway_clicked_twice_creates_one_lead(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    reply = slack.command("lead Ana Lima ana@acme.com")
    (value,) = buttons(reply.args["blocks"])[Action.CREATE_ANYWAY.value]
    first, response_url, _ = slack.click(Action.CREATE_ANYWAY.value, value)
    second, _, _ = slack.click(Action.CREATE_ANYWAY.value, value)
    assert (first.status, second.status) == (200, 200)
    assert "L-2" in slack.wait_reply(response_url).args["text"]
    time.sleep(0.3)
    assert sorted(hit.ref for hit in slack.crm.find("T1", "Ana Lima")) == ["L-1", "L-2"]


# --- two processes on one database -------------------------------------------------------


@pytest.fixture
def other_app(slack: SlackSim, db: Database, clock: Clock) -> Iterator[SlackSim]:
    """A second crmbot (own engine, own Bolt app, own server) on the same database."""
    settings = Settings(
        database_url=db.url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=slack.fake.url,
        threads=4,
    )
    db2 = Database(db.url)
    crm2 = CrmService(db2, clock)
    wsgi = create_wsgi(create_app(settings, crm2, db=db2), db2)
    server = make_server(wsgi, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield SlackSim(f"http://127.0.0.1:{server.effective_port}", slack.fake, crm2)
    finally:
        server.close()
        db2.dispose()


def test_two_app_processes_on_one_database_agree(slack: SlackSim, other_app: SlackSim) -> None:
    view = open_modal(slack, modals.open_new_deal)
    values = slack_state(view, name="Renewal", amount="50k")
    assert _closed(_submit(slack, view, values))
    assert _submit(other_app, view, values).body == ""
    assert _deals(slack) == ["D-1"]

    fields = _command_fields(slack, "deal Renewal 60k")
    answers = _at_once(partial(slack.form, fields), partial(other_app.form, fields))
    assert answers == [Answer(200, ""), Answer(200, "")]
    slack.wait_reply(fields["response_url"])
    time.sleep(0.3)
    assert _deals(slack) == ["D-1", "D-2"]


def test_the_reminder_sweep_forgets_expired_keys(
    crm: CrmService, clock: Clock, db: Database
) -> None:
    def keys() -> list[str]:
        with db.read() as session:
            return sorted(session.scalars(select(RequestKeyRow.key)))

    fake = build_fake()
    try:
        assert crm.claim_request("T1", "event:old", ttl=timedelta(hours=24)) is not None
        clock.advance(hours=24, seconds=1)
        assert crm.claim_request("T1", "event:new", ttl=timedelta(hours=24)) is not None
        assert keys() == ["event:new", "event:old"]
        Sweeper(crm, Settings(slack_bot_token=TOKEN, slack_api_url=fake.url)).sweep()
        assert keys() == ["event:new"]
    finally:
        fake.stop()


# --- when a claim is given back ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_settles", "outcome", "state"),
    [
        (True, "ack", KeyState.DONE),  # a view saved and closed
        (True, "ack errors", KeyState.FREE),  # a view refused: may be sent again
        (True, "crash", KeyState.FREE),  # a view failing before its answer saved nothing
        (True, "ack then crash", KeyState.DONE),  # after the answer: it was saved
        (False, "ack", KeyState.PENDING),  # a command: its work follows the ack
        (False, "ack then refused", KeyState.FREE),  # refused by the service: nothing saved
        (False, "ack then crash", KeyState.PENDING),  # something may have been saved
    ],
)
def test_a_claim_is_given_back_only_when_nothing_was_saved(
    crm: CrmService, answer_settles: bool, outcome: str, state: KeyState
) -> None:
    claim = crm.claim_request("T1", "k", ttl=timedelta(hours=1))
    assert claim is not None
    ack = KeyedAck(crm, claim, answer_settles=answer_settles)
    if outcome.startswith("ack errors"):
        ack(response_action="errors", errors={"name": "Needs a name."})
    elif outcome.startswith("ack"):
        ack()
    if outcome.endswith("crash"):
        failed(ack, RuntimeError("boom"))
    if outcome.endswith("refused"):
        failed(ack, InvalidInput("stage", "No such stage."))
    ack()  # the error handler's own ack settles nothing more
    assert crm.request_state("T1", "k") is state


def test_a_command_is_claimed_by_its_ack_after_the_answer(crm: CrmService) -> None:
    keyed = RequestKey(Kind.COMMAND, "command:t1", timedelta(hours=1))
    first = LateKeyedAck(crm, "T1", keyed)
    assert crm.request_state("T1", keyed.key) is KeyState.FREE  # nothing before the ack
    assert first().status == 200
    assert crm.request_state("T1", keyed.key) is KeyState.PENDING
    second = LateKeyedAck(crm, "T1", keyed)
    with pytest.raises(DuplicateRequest):
        second()
    assert second.response is not None  # the duplicate was acked all the same
    failed(first, InvalidInput("stage", "No such stage."))  # refused: may run again
    assert crm.request_state("T1", keyed.key) is KeyState.FREE


def test_a_command_handed_to_a_worker_is_not_claimed_by_the_web_process(crm: CrmService) -> None:
    keyed = RequestKey(Kind.COMMAND, "command:t2", timedelta(hours=1))
    ack = LateKeyedAck(crm, "T1", keyed)
    assert hand_over(ack).status == 200
    ack()  # an error handler's later ack claims nothing either
    failed(ack, RuntimeError("boom"))
    assert crm.request_state("T1", keyed.key) is KeyState.FREE
    worker = LateKeyedAck(crm, "T1", keyed)  # the worker's own ack claims it
    worker()
    assert crm.request_state("T1", keyed.key) is KeyState.PENDING


# --- a submission's key claimed by its own save ---------------------------------------------


def _saved_ack(crm: CrmService, key: str = "view:log1") -> SavedKeyAck:
    return SavedKeyAck(crm, "T1", RequestKey(Kind.VIEW, key, timedelta(hours=1)))


def _log(crm: CrmService, notes: str) -> Callable[[], object]:
    return lambda: crm.log_interaction("T1", by="UBOB", kind="call", about=None, summary=notes)


def _interactions(db: Database) -> int:
    with db.read() as session:
        return len(session.scalars(select(Interaction.id)).all())


def test_a_saved_submission_holds_its_key_exactly_when_its_save_committed(
    crm: CrmService, db: Database
) -> None:
    refused = _saved_ack(crm)
    with pytest.raises(InvalidInput):  # refused inside the save's transaction
        saving(refused, _log(crm, ""))
    assert crm.request_state("T1", "view:log1") is KeyState.FREE
    first = _saved_ack(crm)
    saving(first, _log(crm, "called Ana"))
    assert crm.request_state("T1", "view:log1") is KeyState.DONE  # committed with the save
    assert first().status == 200  # closing the modal writes nothing more
    duplicate = _saved_ack(crm)
    with pytest.raises(DuplicateRequest):
        saving(duplicate, _log(crm, "called Ana"))
    assert duplicate.response is not None
    assert (duplicate.response.status, duplicate.response.body) == (200, "")  # it closes
    assert _interactions(db) == 1


@pytest.mark.parametrize("original_commits", [True, False])
def test_a_duplicate_waits_for_the_save_in_flight(
    db: Database, clock: Clock, original_commits: bool
) -> None:
    """Two processes: the second delivery's save waits at the key for the first's
    transaction, then stops (the first committed) or saves (the first rolled back)."""
    crms = [CrmService(Database(db.url), clock) for _ in range(2)]
    inside, go_on = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def original() -> None:
        try:
            with (
                crms[0].claim_with_save("T1", "view:slow", ttl=timedelta(hours=1)),
                crms[0]._db.write(),  # the save, its key claimed first
            ):
                inside.set()
                assert go_on.wait(10)
                if not original_commits:
                    raise RuntimeError("the original's save failed")
        except RuntimeError:
            outcome["original"] = "rolled back"

    def duplicate() -> None:
        try:
            with crms[1].claim_with_save("T1", "view:slow", ttl=timedelta(hours=1)):
                crms[1].log_interaction("T1", by="UBOB", kind="call", about=None, summary="b")
            outcome["duplicate"] = "saved"
        except AlreadyClaimed:
            outcome["duplicate"] = "stopped"

    first = threading.Thread(target=original)
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=duplicate)
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waiting for the original's transaction
    go_on.set()
    first.join(10)
    second.join(10)
    assert outcome["duplicate"] == ("stopped" if original_commits else "saved")
    assert _interactions(db) == (0 if original_commits else 1)
    assert crms[0].request_state("T1", "view:slow") is KeyState.DONE
    for crm in crms:
        crm._db.dispose()


def test_a_submission_closed_without_a_save_is_answered_once(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima", email="ana@acme.com")
    view = open_modal(slack, modals.open_new_lead)
    values = slack_state(view, name="Ana Lima", email="ana@acme.com")
    answers = _at_once(*[partial(_submit, slack, view, values)] * 2)
    assert all(_closed(answer) for answer in answers)
    (asked,) = slack.fake.wait_for("chat.postEphemeral")
    assert "Ana Lima" in json.dumps(asked.args)
    time.sleep(0.3)
    assert len(slack.fake.calls_to("chat.postEphemeral")) == 1  # the question, asked once
    assert sorted(hit.ref for hit in slack.crm.find("T1", "Ana Lima")) == ["L-1"]


def test_settings_submitted_twice_at_once_are_saved_once(slack: SlackSim) -> None:
    """Settings save in several steps: a duplicate waits for the original's answer."""
    view = open_modal(slack, modals.open_settings, user="UADMIN")
    refused = slack_state(view, digest_time="25:99")
    answers = _at_once(*[partial(slack.submit, view, refused, user="UADMIN")] * 2)
    assert [set(errors_of(answer)) for answer in answers] == [{"digest_time"}] * 2
    values = slack_state(view, digest_time="07:45")
    answers = _at_once(*[partial(slack.submit, view, values, user="UADMIN")] * 2)
    assert all(_closed(answer) for answer in answers)
    (told,) = slack.fake.wait_for("chat.postEphemeral")
    assert "07:45" in json.dumps(told.args)
    time.sleep(0.3)
    assert len(slack.fake.calls_to("chat.postEphemeral")) == 1
    assert slack.crm.reminder_settings("T1").digest_time == "07:45"


def test_a_command_refused_by_the_service_can_be_delivered_again(slack: SlackSim) -> None:
    fields = _command_fields(slack, "move D-99 won")
    for _ in range(2):
        assert slack.form(fields) == Answer(200, "")
        reply = slack.wait_reply(fields["response_url"])
        assert "D-99" in reply.args["text"]
        slack.fake.clear_calls()


def test_without_its_key_table_the_bot_still_answers(slack: SlackSim, db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE request_key RENAME TO request_key_away"))
    try:
        reply = slack.command("deal Renewal 50k")
        assert "D-1" in reply.args["text"]
        view = open_modal(slack, modals.open_new_deal)
        assert _closed(_submit(slack, view, slack_state(view, name="Renewal", amount="1")))
        assert _deals(slack) == ["D-1", "D-2"]
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE request_key_away RENAME TO request_key"))
