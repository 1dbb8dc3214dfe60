"""`/crm` through the real HTTP endpoint, signed like Slack, with the Web API faked."""

from __future__ import annotations

import json
import logging
import time

import pytest

from crmbot.handlers.ids import Action
from tests.slackapp import SECRET, TOKEN, SlackSim


def reply_text(call: object) -> str:
    """Everything a reply shows, text and blocks, as one string."""
    args = call.args  # type: ignore[attr-defined]
    return args.get("text", "") + "\n" + json.dumps(args.get("blocks", []), ensure_ascii=False)


def test_a_lead_captured_in_one_line_is_stored_and_confirmed_privately(slack: SlackSim) -> None:
    reply = slack.command("lead Ana Lima at Acme Corp ana@acme.com source:referral")
    assert reply.args["response_type"] == "ephemeral"
    assert "L-1" in reply_text(reply)
    card = slack.crm.show("T1", "L-1")
    assert (card.record.name, card.record.company, card.record.owner_id) == (
        "Ana Lima",
        "Acme Corp",
        "UBOB",
    )


def test_the_first_command_makes_the_user_a_rep_with_their_slack_time_zone(slack: SlackSim) -> None:
    slack.command("help")
    rep = slack.crm.rep("T1", "UBOB")
    assert rep is not None
    assert (rep.name, rep.tz) == ("Bob Rep", "America/Los_Angeles")
    assert len(slack.fake.calls_to("users.info")) == 1
    slack.command("help")
    assert len(slack.fake.calls_to("users.info")) == 1  # cached for a day


def test_a_forged_signature_is_refused_and_nothing_is_written(slack: SlackSim) -> None:
    answer, _, _ = slack.send_command("lead Mallory", secret="not-the-secret")
    assert answer.status == 401
    stale, _, _ = slack.send_command("lead Mallory", timestamp=int(time.time()) - 600)
    assert stale.status == 401
    time.sleep(0.2)
    assert slack.crm.find("T1", "Mallory") == ()


def test_help_lists_the_verbs_and_explains_one(slack: SlackSim) -> None:
    assert "followup" in reply_text(slack.command("help"))
    assert "deal" in reply_text(slack.command("help deal")).lower()


def test_an_unknown_verb_suggests_the_closest_one(slack: SlackSim) -> None:
    assert "find" in reply_text(slack.command("fnid acme"))


def test_find_and_show_render_the_record(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Grace Hopper", company="Navy")
    found = reply_text(slack.command("find grace"))
    assert "L-1" in found
    assert Action.SHOW.value in found
    card = reply_text(slack.command("show L-1"))
    assert "Navy" in card
    assert Action.LOG_CALL.value in card


def test_deals_are_created_moved_and_won(slack: SlackSim) -> None:
    assert "D-1" in reply_text(slack.command("deal Acme renewal 50k proposal"))
    deal = slack.crm.show("T1", "D-1").record
    assert deal.stage == "Proposal"  # type: ignore[union-attr]
    assert "Negotiation" in reply_text(slack.command("move D-1 negot"))
    assert "Won" in reply_text(slack.command("won D-1"))
    assert slack.crm.pipeline("T1").totals == ()


def test_losing_without_a_reason_asks_for_one(slack: SlackSim) -> None:
    slack.command("deal Tiny 1k")
    assert "why" in reply_text(slack.command("lost D-1")).lower()
    assert "competitor" in reply_text(slack.command("lost D-1 went with a competitor"))


def test_assign_tells_the_new_owner_by_dm(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    reply = slack.command("assign L-1 <@UCAROL|carol>")
    assert "UCAROL" in reply_text(reply)
    dm = slack.fake.wait_for("chat.postMessage")[0]
    assert dm.args["channel"] == "DUCAROL"
    assert "L-1" in dm.args["text"]
    assert slack.crm.show("T1", "L-1").record.owner_id == "UCAROL"


def test_a_follow_up_set_for_tomorrow_9am_shows_in_tasks(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Ana Lima")
    reply = slack.command("followup L-1 tomorrow 9am send the proposal")
    assert "T-1" in reply_text(reply)
    tasks = slack.crm.tasks("T1", owner_id="UBOB")
    # Bob is in Los Angeles; the fixed clock is Mon 23 Nov 15:00 UTC (07:00 there).
    assert tasks.upcoming[0].due_at.isoformat() == "2026-11-24T17:00:00+00:00"
    assert "T-1" in reply_text(slack.command("tasks"))


def test_a_follow_up_in_the_past_is_kept_with_a_warning(slack: SlackSim) -> None:
    reply = reply_text(slack.command("followup L-99 yesterday 3pm call"))
    assert "couldn't find" in reply  # unknown record: nothing written
    slack.crm.create_lead("T1", by="UBOB", name="Ana")
    assert "already passed" in reply_text(slack.command("followup L-1 yesterday 3pm call"))


def test_done_button_closes_the_follow_up(slack: SlackSim) -> None:
    slack.crm.create_follow_up("T1", by="UBOB", about=None, when="yesterday", title="call back")
    _, response_url, _ = slack.click(Action.DONE.value, "T-1")
    assert "done" in reply_text(slack.wait_reply(response_url))
    assert slack.crm.tasks("T1").overdue == ()


def test_snooze_button_moves_the_follow_up_out_of_overdue(slack: SlackSim) -> None:
    slack.crm.create_follow_up("T1", by="UBOB", about=None, when="yesterday", title="call back")
    _, response_url, _ = slack.click(Action.SNOOZE_DAY.value, "T-1")
    slack.wait_reply(response_url)
    assert slack.crm.tasks("T1").overdue == ()
    assert len(slack.crm.tasks("T1").upcoming) == 1


def test_user_text_is_escaped_so_nobody_gets_pinged(slack: SlackSim) -> None:
    for hostile in (
        "&lt;!channel&gt;",
        "&lt;!here&gt;",
        "&lt;@U123&gt;",
        "&lt;https://evil.example|bank.example&gt;",
    ):
        text = reply_text(slack.command(f"lead {hostile}"))
        assert "<!channel>" not in text
        assert "<!here>" not in text
        assert "<@U123>" not in text
        assert "<https://evil.example" not in text
    # Stored as the person typed it, once unescaped.
    assert slack.crm.show("T1", "L-1").record.name == "<!channel>"


def test_workspaces_never_see_each_others_records_through_slack(slack: SlackSim) -> None:
    slack.crm.create_lead("T1", by="UBOB", name="Secret Prospect")
    other = reply_text(slack.command("find secret", user="UEVE", team="T2", channel="C2"))
    assert "Secret" not in other.replace("secret", "")
    assert "couldn't find" in reply_text(slack.command("show L-1", user="UEVE", team="T2"))
    _, response_url, _ = slack.click(Action.SHOW.value, "L-1", user="UEVE", team="T2")
    assert "Secret Prospect" not in reply_text(slack.wait_reply(response_url))


def test_app_home_shows_my_overdue_follow_ups_and_pipeline(slack: SlackSim) -> None:
    slack.crm.create_follow_up("T1", by="UBOB", about=None, when="yesterday", title="chase invoice")
    slack.crm.create_deal("T1", by="UBOB", name="Big", amount=None)
    answer = slack.event(
        {"type": "app_home_opened", "user": "UBOB", "channel": "DUBOB", "tab": "home"}
    )
    assert answer.status == 200
    published = slack.fake.wait_for("views.publish")[0]
    shown = json.dumps(published.args["view"])
    assert "chase invoice" in shown
    assert "Prospecting" in shown


def test_health_check_answers_without_revealing_configuration(slack: SlackSim) -> None:
    answer = slack.get("/healthz")
    assert answer.status == 200
    assert answer.json() == {"status": "ok"}


def test_pipeline_and_tasks_for_another_rep_by_mention(slack: SlackSim) -> None:
    slack.crm.create_deal("T1", by="UCAROL", name="Carol's deal", amount=None)
    text = reply_text(slack.command("pipeline <@UCAROL|carol>"))
    assert "1 deal" in text


def test_tokens_and_the_signing_secret_never_reach_the_logs(
    slack: SlackSim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack.command("lead Ana Lima at Acme")
    slack.command("show L-1")
    slack.command("frobnicate")
    slack.send_command("lead Mallory", secret="wrong")
    assert TOKEN not in caplog.text
    assert SECRET not in caplog.text
    assert caplog.records  # the logs were captured at all


def test_a_rep_marks_themselves_away_and_back(slack: SlackSim) -> None:
    slack.crm.upsert_rep("T1", "UCAROL", name="Carol Closer")
    reply = reply_text(slack.command("away until next monday 9am"))
    assert "You're away until" in reply
    assert "UBOB" not in slack.crm.available_reps("T1")
    assert "already passed" in reply_text(slack.command("away until yesterday"))
    # Only managers and admins mark someone else away.
    refused = reply_text(slack.command("away <@UCAROL|carol> in 2 weeks"))
    assert "Only managers and admins" in refused
    assert "UCAROL" in slack.crm.available_reps("T1")
    assert "back" in reply_text(slack.command("away off"))
    assert "UBOB" in slack.crm.available_reps("T1")
