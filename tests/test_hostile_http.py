"""Hostile input through the real app over signed HTTP, with Slack faked at the wire.

`/crm VERB <anything>`, every modal submitted with anything in its fields (and forged
private_metadata), and `POST /intake/lead` with any body: never an HTTP 5xx; always an answer
that says what was wrong (an ephemeral reply, field errors on the modal, or a 4xx with a
message); a refusal writes nothing; and no user text reaches Slack as live mrkdwn (mentions,
broadcasts or links). These run on SQLite only: the service-level properties
(test_hostile_service.py) cover both engines, and HTTP is the slow part.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmbot.config import Settings
from crmbot.handlers import modal_views as views
from crmbot.handlers import modals
from crmbot.handlers.ids import Action, Modal
from crmbot.handlers.reminder_views import RescheduleMeta, reschedule
from crmbot.scheduler import Sweeper
from crmbot.store.db import Database
from crmbot.store.models import Notification
from tests.hostile import (
    INTAKE_BODY,
    budget,
    changed_tables,
    dumps,
    hostile_text,
    injected,
    snapshot,
)
from tests.slackapp import INTAKE_TOKEN, TOKEN, SlackSim
from tests.test_hostile_parsers import _STATE_KEY, command_text, typed_value
from tests.test_modals import open_modal

SQLITE = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

WENT_WRONG = "Something went wrong"


@pytest.fixture
def world(slack: SlackSim, caplog: pytest.LogCaptureFixture) -> Iterator[SlackSim]:
    """T1 with Bob's records (L-1, A-1, C-1, D-1, T-1), Carol, an intake channel; T2's L-1."""
    crm = slack.crm
    crm.upsert_rep("T1", "UBOB", name="Bob Rep", tz="America/Los_Angeles")
    crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    crm.set_intake_channel("T1", "C1", by="UADMIN")
    crm.create_lead("T1", by="UBOB", name="Ana <!channel>", company="Acme", email="ana@acme.com")
    crm.create_account("T1", by="UBOB", name="Acme", domain="acme.com")
    crm.create_contact("T1", by="UBOB", name="Zoë *Šimić*", email="zoe@acme.com", account="A-1")
    crm.create_deal("T1", by="UBOB", name="Acme `pilot`", amount=Decimal(5000), about="A-1")
    crm.create_follow_up("T1", by="UBOB", about="L-1", when="tomorrow 9am", title="call <@U1>")
    crm.ensure_workspace("T2")
    crm.upsert_rep("T2", "UEVE", name="Eve Other")
    crm.create_lead("T2", by="UEVE", name="Other Ana")
    slack.command("tasks")  # Bob has used the bot: later refusals need no rep refresh
    caplog.set_level(logging.WARNING)
    yield slack
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    bad = [(c.method, s) for c in slack.fake.calls for s in injected(c.args)]
    assert not bad, bad


def _no_injection(slack: SlackSim, since: int) -> None:
    for call in slack.fake.calls[since:]:
        # A refused post may be answered another way (an ephemeral in a forged channel
        # becomes a DM); a malformed one may not.
        problem = str(call.response.get("error") or "")
        assert not problem.startswith(("invalid", "msg_too_long", "too_many")), call
        assert not injected(call.args), (call.method, dumps(call.args))


# --- /crm ---------------------------------------------------------------------------------


def _as_slack_sends(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@SQLITE
@budget("http commands", 400)
@given(text=command_text, markup=st.booleans())
def test_any_command_gets_an_answer_and_a_refusal_writes_nothing(
    world: SlackSim, db: Database, text: str, markup: bool
) -> None:
    # Slack escapes & < > in what was typed; its own markup (<@U…>, links) arrives raw.
    sent = text if markup else _as_slack_sends(text)
    before, since = snapshot(db), world.fake.call_count
    answer, response_url, trigger = world.send_command(sent)
    assert answer.status == 200, answer
    call = world.wait_reply(response_url, trigger)
    if call.method == "views.open":
        assert call.ok, call.response
    else:
        assert call.args.get("text", "").strip(), call.args
        assert WENT_WRONG not in call.args["text"], (sent, call.args["text"])
        if call.args.get("replace_original") is False:  # errors are answered this way
            assert not changed_tables(before, snapshot(db)), (sent, call.args["text"])
    _no_injection(world, since)


# --- modals ---------------------------------------------------------------------------------


def _opened(world: SlackSim) -> list[dict[str, Any]]:
    opened = [
        open_modal(world, modals.open_new_lead),
        open_modal(world, modals.open_log, record="L-1"),
        open_modal(world, modals.open_new_deal),
        open_modal(world, modals.open_move, "D-1"),
        open_modal(world, modals.open_assign, "L-1"),
        open_modal(world, modals.open_follow_up, "C-1"),
        open_modal(world, modals.open_convert, "L-1"),
        open_modal(world, modals.open_settings, user="UADMIN"),
        open_modal(world, modals.open_log_message, "hi &lt;!here&gt;", "https://x.slack.com/p1"),
    ]
    now = world.crm.now()
    meta = RescheduleMeta("T-1", "C1", None)
    again = reschedule(meta, "call", tz="UTC", now=now).to_dict()
    log_next = views.log_interaction("C1", tz="UTC", now=now)
    log_next.callback_id = Modal.LOG_NEXT.value
    log_next.private_metadata = meta.dump()
    return [*opened, again, log_next.to_dict()]


FORGED_METADATA = st.sampled_from(
    [
        json.dumps({"channel": "C1", "ref": "L-1"}),  # Bob's lead in T1, from T2: unknown there
        json.dumps({"ref": "T-1", "channel": "D1", "ts": "1.1"}),
        json.dumps({"ref": ["L-1"], "channel": 5}),
        "null",
        "[]",
        "",
    ]
) | hostile_text.map(lambda t: json.dumps({"ref": t, "channel": t}))


@SQLITE
@budget("http modal submissions", 400)
@given(data=st.data())
def test_any_modal_submission_is_saved_or_answered_with_field_errors_and_no_write(
    world: SlackSim, db: Database, data: st.DataObject
) -> None:
    views_ = getattr(world, "_hostile_views", None)
    if views_ is None:
        views_ = _opened(world)
        world._hostile_views = views_  # type: ignore[attr-defined]
    view = dict(data.draw(st.sampled_from(views_), label="modal"))
    user = "UADMIN" if view["callback_id"] == Modal.SETTINGS else "UBOB"
    if data.draw(st.booleans(), label="forged metadata"):
        view["private_metadata"] = data.draw(FORGED_METADATA)
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    values = {
        block: {
            element["action_id"]: {
                "type": element["type"],
                _STATE_KEY.get(element["type"], "value"): data.draw(typed_value(element)),
            }
        }
        for block, element in inputs.items()
    }
    before, since = snapshot(db), world.fake.call_count
    answer = world.submit(view, values, user=user)
    assert answer.status == 200, (view["callback_id"], answer)
    body = answer.json()
    if body and body.get("response_action") == "errors":
        assert body["errors"], body
        for block, message in body["errors"].items():
            assert block in inputs, body
            assert message.strip(), body
        assert not changed_tables(before, snapshot(db)), (view["callback_id"], body)
    else:
        replies = _replies_since(world, since)
        assert replies, f"{view['callback_id']}: closed without a word"
        assert all(WENT_WRONG not in str(c.args.get("text")) for c in replies), replies
    _no_injection(world, since)


def _replies_since(world: SlackSim, since: int, timeout: float = 3) -> list[Any]:
    """The messages the bot sent since call number `since` (waiting for the first one)."""
    deadline = time.monotonic() + timeout
    while True:
        replies = [
            c
            for c in world.fake.calls[since:]
            if c.method in ("chat.postEphemeral", "chat.postMessage")
        ]
        if replies or time.monotonic() > deadline:
            return replies
        world.fake.wait_calls(world.fake.call_count, 0.05)


@SQLITE
@budget("http type-ahead", 100)
@given(typed=hostile_text)
def test_the_record_picker_answers_any_typing_with_options(world: SlackSim, typed: str) -> None:
    answer = world.options(Action.RECORD_PICKER.value, typed)
    assert answer.status == 200, answer
    options = answer.json()["options"]
    assert all(0 < len(o["text"]["text"]) <= 75 for o in options), options


# --- POST /intake/lead ----------------------------------------------------------------------


def _form_body(fields: dict[str, Any]) -> bytes:
    from urllib.parse import urlencode

    return urlencode({k: v if isinstance(v, str) else dumps(v) for k, v in fields.items()}).encode(
        "utf-8", "surrogatepass"
    )


@SQLITE
@budget("http intake", 400)
@given(
    fields=INTAKE_BODY,
    encoding=st.sampled_from(["json", "json", "form", "raw"]),
    raw=st.binary(max_size=200)
    | st.sampled_from([b"{", b"[]", b'{"name": "\\ud800"}', b"\xff", b"[" * 60000])
    | st.integers(1, 20000).map(lambda n: b'{"name": "Ana", "x": ' * n),
    key=st.none() | hostile_text,
)
def test_any_intake_body_gets_a_json_answer_and_a_refusal_writes_nothing(
    world: SlackSim, db: Database, fields: dict[str, Any], encoding: str, raw: bytes, key: Any
) -> None:
    if encoding == "json":
        body, content_type = dumps(fields).encode("utf-8", "surrogatepass"), "application/json"
    elif encoding == "form":
        body, content_type = _form_body(fields), "application/x-www-form-urlencoded"
    else:
        body, content_type = raw, "application/json"
    headers = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    if key is not None:
        headers["Idempotency-Key"] = key.encode("utf-8", "replace").decode("latin-1")
    before = snapshot(db)
    try:
        answer = world.post(body, content_type, path="/intake/lead", headers=headers)
    except ValueError:  # a header http.client itself refuses to send (e.g. a newline)
        return
    assert answer.status < 500, (fields, answer)
    if not answer.body.startswith("{"):  # waitress refused a malformed header itself
        assert answer.status == 400, answer
        assert answer.body.startswith("Bad Request"), answer
        return
    reply = answer.json()
    if answer.status >= 400:
        assert reply["message"].strip(), reply
        assert not changed_tables(before, snapshot(db)), (fields, reply)
    else:
        assert reply["lead"].startswith("L-"), reply
        # The intake's Slack posts finish in the background (and update their notification
        # rows); let them settle, so the next example's "writes nothing" sees only its own.
        intake_posts_settled(db)


# --- mrkdwn injection, surface by surface ---------------------------------------------------

HOSTILE_NAME = "Eve <!channel> <@UEVIL42> <https://evil.example|bank> *b* `c` &amp; x"


@SQLITE
def test_hostile_names_ping_nobody_and_link_nowhere_on_any_surface(
    world: SlackSim, db: Database
) -> None:
    crm = world.crm
    world.crm.set_intake_channel("T1", "C1", by="UADMIN")
    lead = world.command(f'lead "{_as_slack_sends(HOSTILE_NAME)}" at &lt;!here&gt; Co')
    assert "Lead L-" in lead.args["text"], lead.args
    ref = crm.find("T1", "eve")[0].ref
    crm.create_follow_up(
        "T1", by="UBOB", about=ref, due_at=crm.now() - timedelta(days=5), title=HOSTILE_NAME,
        channel_id="C1",
    )  # fmt: skip
    crm.log_interaction("T1", by="UBOB", kind="call", about=ref, summary=HOSTILE_NAME)
    crm.create_deal("T1", by="UBOB", name=HOSTILE_NAME, amount=Decimal(10), about=ref)
    for text in (
        f"show {ref}", "show D-2", "find eve", "find eve stage:prop", "tasks", "tasks overdue",
        "pipeline", "pipeline team", "report week", f"history {ref}", "history D-2",
        "assign D-2 @carol", f"followup {ref} tomorrow <!here> call", "won D-2", "undo",
    ):  # fmt: skip
        reply = world.command(_as_slack_sends(text) if "<!here>" not in text else text)
        assert WENT_WRONG not in str(reply.args.get("text")), (text, reply.args)
    world.event({"type": "app_home_opened", "user": "UBOB", "tab": "home"})
    world.fake.wait_for("views.publish")
    crm.upsert_rep("T1", "UEVIL42", name="<!channel> Mallory", tz="UTC")  # a hostile Slack name
    crm.assign("T1", ref, "UEVIL42", by="UADMIN")
    sweeper = Sweeper(crm, Settings(slack_bot_token=TOKEN, slack_api_url=world.fake.url))
    assert sweeper.sweep().messages >= 1
    answer = world.post(
        dumps(
            {"name": HOSTILE_NAME, "company": "<!everyone>", "message": "<!here> *now*"}
        ).encode(),
        "application/json",
        path="/intake/lead",
        headers={"Authorization": f"Bearer {INTAKE_TOKEN}"},
    )
    assert answer.status == 201, answer
    world.fake.wait_for("chat.postMessage", count=3)
    shown = dumps([c.args for c in world.fake.calls])
    assert "Eve &lt;!channel&gt; &lt;@UEVIL42&gt;" in shown
    assert "&amp;amp; x" in shown  # what was typed, "&amp;", is shown as typed
    # The fixture's teardown checks every recorded payload for live hostile markup.


def test_the_injection_check_sees_live_markup_only_where_slack_reads_mrkdwn() -> None:
    live = {
        "text": "hi <!channel>",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<@UEVIL42>"}}],
    }
    assert injected(live) == ["hi <!channel>", "<@UEVIL42>"]
    inert = {
        "text": "hi &lt;!channel&gt;",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "<!here>"}}],
        "view": {"blocks": [{"type": "input", "element": {"initial_value": "<!here>"}}]},
    }
    assert injected(inert) == []


def intake_posts_settled(db: Database, timeout: float = 10.0) -> None:
    """Wait until no intake post is still pending (posted, refused or left to a sweep)."""
    deadline = time.monotonic() + timeout
    pending = select(func.count()).where(
        Notification.kind == "intake", Notification.status == "pending"
    )
    while time.monotonic() < deadline:
        with db.read() as session:
            if not session.scalar(pending):
                return
        time.sleep(0.01)
    raise AssertionError("intake posts still pending after 10 s")
