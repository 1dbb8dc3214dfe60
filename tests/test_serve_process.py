"""A rep's whole day against `crmbot serve` as a real process, with Slack faked at the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbot.service import CrmService
from crmbot.store.db import Database
from tests.slackapp import SECRET, TOKEN, SlackSim, build_fake
from tests.test_forms import slack_state


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "crmbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("crmbot listening on port "):
            return process, int(line.rsplit(" ", 1)[1])
    process.wait(5)
    raise AssertionError("crmbot serve did not start")


@pytest.fixture
def served(db: Database, tmp_path: Path) -> Iterator[SlackSim]:
    fake = build_fake()
    env = {
        **os.environ,
        "DATABASE_URL": db.url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "CRMBOT_WEB_SCHEDULER": "false",
    }
    env.pop("SLACK_CLIENT_ID", None)
    process, port = start_serve(env)
    try:
        yield SlackSim(f"http://127.0.0.1:{port}", fake, CrmService(db))
    finally:
        process.terminate()
        process.wait(10)
        fake.stop()


def shown(call: object) -> str:
    args = call.args  # type: ignore[attr-defined]
    return args.get("text", "") + json.dumps(args.get("blocks", []), ensure_ascii=False)


def test_a_reps_whole_day_through_crmbot_serve(served: SlackSim) -> None:
    slack = served
    # Capture a lead in one line, then find it.
    assert "L-1" in shown(slack.command("lead Ana Lima at Acme Corp ana@acme.com"))
    assert "L-1" in shown(slack.command("find ana"))
    # Log a call in the modal.
    log_view = slack.command("log call L-1").response["view"]
    answer = slack.submit(
        log_view, slack_state(log_view, notes="Intro call, wants a pilot", duration="20")
    )
    assert answer.status == 200
    assert "errors" not in answer.body
    slack.fake.wait_for("chat.postEphemeral")
    # Convert it, with a deal.
    convert_view = slack.command("convert L-1").response["view"]
    answer = slack.submit(
        convert_view, slack_state(convert_view, deal_name="Acme pilot", amount="50k")
    )
    assert "errors" not in answer.body
    slack.fake.wait_for("chat.postEphemeral", 2)
    # Create and move a deal; assign it (the owner gets a DM).
    assert "D-2" in shown(slack.command("deal Acme expansion 120k for Acme Corp"))
    assert "Proposal" in shown(slack.command("move D-2 proposal"))
    assert "UCAROL" in shown(slack.command("assign D-2 <@UCAROL|carol>"))
    assert any(
        m["channel"] == "DUCAROL" for m in (c.args for c in slack.fake.calls_to("chat.postMessage"))
    )
    # A follow-up for tomorrow 9am shows in tasks and on App Home.
    assert "T-1" in shown(slack.command("followup C-1 tomorrow 9am send the proposal"))
    assert "T-1" in shown(slack.command("tasks"))
    slack.event({"type": "app_home_opened", "user": "UBOB", "channel": "DUBOB", "tab": "home"})
    home = slack.fake.wait_for("views.publish")[0]
    assert "Acme pilot" in json.dumps(home.args["view"]) or "Prospecting" in json.dumps(
        home.args["view"]
    )
    # Close the deal won.
    assert "Won" in shown(slack.command("won D-1"))
    card = slack.crm.show("T1", "D-1").record
    assert card.status.value == "won"  # type: ignore[union-attr]
    # The conversion kept the call on the contact.
    assert [i.summary for i in slack.crm.show("T1", "C-1").interactions] == [
        "Intro call, wants a pilot"
    ]


def test_serve_without_slack_settings_explains_what_to_set_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CRMBOT_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/x.db"
    result = subprocess.run(
        [sys.executable, "-m", "crmbot.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_health_check_of_the_real_server(served: SlackSim) -> None:
    answer = served.get("/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})
