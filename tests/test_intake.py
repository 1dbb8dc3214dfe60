"""`POST /intake/lead` through the real HTTP server, with Slack faked at the wire."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from crmbot.domain import PermissionDenied
from crmbot.handlers import modals
from crmbot.handlers.ids import Action
from crmbot.store.db import Database
from crmbot.store.models import FollowUp, Interaction, Lead, LeadAssignment
from tests.slackapp import INTAKE_TOKEN, Answer, SlackSim
from tests.test_modals import accepted, errors_of, open_modal, submit, told

ANA = {
    "name": "Ana Lima",
    "email": "ana@acme.com",
    "phone": "+1 415 555 0100",
    "company": "Acme",
    "message": "We need 40 seats.",
    "country": "DE",
}


@pytest.fixture
def team(slack: SlackSim) -> SlackSim:
    """Three reps in T1 (Ada, Bob, Carol) and C1 as the intake channel."""
    slack.crm.upsert_rep("T1", "UBOB", name="Bob Rep", tz="America/Los_Angeles")
    slack.crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    slack.crm.set_intake_channel("T1", "C1", by="UADMIN")
    return slack


def send(
    slack: SlackSim,
    fields: dict[str, Any] | None = None,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    token: str | None = INTAKE_TOKEN,
    key: str | None = None,
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if body is None:
        body = json.dumps(fields if fields is not None else ANA).encode()
    return slack.post(body, content_type, path="/intake/lead", headers=headers)


def count(db: Database, model: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def lead_row(db: Database, number: int) -> Lead:
    with db.read() as session:
        lead = session.scalars(select(Lead).where(Lead.number == number)).one()
        session.expunge(lead)
        return lead


# --- the happy path -------------------------------------------------------------------


def test_a_web_lead_is_saved_assigned_followed_up_announced_and_dmed(
    team: SlackSim, db: Database
) -> None:
    answer = send(team)
    assert answer.status == 201, answer
    body = answer.json()
    assert body == {"lead": "L-1", "owner": body["owner"], "follow_up": "T-1"}
    owner = body["owner"]
    assert owner in ("UADMIN", "UBOB", "UCAROL")
    lead = team.crm.show("T1", "L-1")
    assert (lead.record.name, lead.record.owner_id) == ("Ana Lima", owner)
    assert lead.record.source == "website"  # type: ignore[union-attr]
    assert [i.summary for i in lead.interactions] == ["We need 40 seats."]
    (task,) = lead.follow_ups
    assert task.owner_id == owner
    assert task.due_at > team.crm.now()
    notice = team.fake.wait_for("chat.postMessage", 2)
    posted = {c.args["channel"]: json.dumps(c.args) for c in notice}
    assert "L-1" in posted["C1"]
    for action in (Action.CLAIM, Action.ASSIGN, Action.LOG_CALL):
        assert action.value in posted["C1"]
    assert "L-1" in posted[f"D{owner}"]
    with db.read() as session:
        (entry,) = session.scalars(select(LeadAssignment))
        assert (entry.owner_id, entry.rule) == (owner, "round-robin")


def test_the_first_follow_up_is_due_within_one_working_hour_of_the_owner(
    team: SlackSim,
) -> None:
    # Monday 15:00 UTC: 16:00 in Berlin (Ada), 07:00 in Los Angeles (Bob), 20:30 in Kolkata.
    dues = {}
    for n in range(3):
        body = send(team, {"name": f"P{n}", "email": f"p{n}@x.org"}).json()
        dues[body["owner"]] = team.crm.tasks("T1", owner_id=body["owner"]).upcoming[0].due_at
    assert dues["UADMIN"].isoformat() == "2026-11-23T16:00:00+00:00"  # 17:00 Berlin
    assert dues["UBOB"].isoformat() == "2026-11-23T18:00:00+00:00"  # 10:00 LA
    assert dues["UCAROL"].isoformat() == "2026-11-24T04:30:00+00:00"  # Tue 10:00 Kolkata


def test_a_form_encoded_body_works_and_unknown_fields_are_kept(
    team: SlackSim, db: Database
) -> None:
    form = {
        "first_name": "Li",
        "last_name": "Wei",
        "email": "li@example.cn",
        "utm_campaign": "spring",
        "Budget": "10k",
    }
    answer = send(
        team,
        body=urllib.parse.urlencode(form).encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status == 201, answer
    lead = lead_row(db, 1)
    assert lead.name == "Li Wei"
    assert lead.extra == {"utm_campaign": "spring", "budget": "10k"}


# --- auth ------------------------------------------------------------------------------


def test_a_missing_or_wrong_token_is_refused_with_401_and_nothing_is_written(
    team: SlackSim, db: Database
) -> None:
    for token in (None, "", "wrong", "crmi_not-a-real-token"):
        answer = send(team, token=token)
        assert answer.status == 401, token
        assert answer.json()["error"] == "unauthorized"
    basic = team.post(
        json.dumps(ANA).encode(),
        "application/json",
        path="/intake/lead",
        headers={"Authorization": f"Basic {INTAKE_TOKEN}"},
    )
    assert basic.status == 401
    assert count(db, Lead) == 0


def test_each_workspace_has_its_own_rotatable_token(team: SlackSim, db: Database) -> None:
    team.crm.upsert_rep("T2", "UEVE", name="Eve Other")  # first rep of T2: its admin
    with pytest.raises(PermissionDenied):
        team.crm.rotate_intake_token("T1", by="UBOB")
    first = team.crm.rotate_intake_token("T2", by="UEVE")
    assert send(team, token=first).json()["lead"] == "L-1"
    assert team.crm.find("T2", "Ana Lima")[0].ref == "L-1"
    assert team.crm.find("T1", "Ana Lima") == ()
    second = team.crm.rotate_intake_token("T2", by="UEVE")
    assert send(team, token=first).status == 401
    assert send(team, {"name": "Bo", "email": "bo@x.io"}, token=second).status == 201
    assert team.crm.intake_settings("T2").token_hint == second[-4:]


# --- idempotency and dedupe --------------------------------------------------------------


def test_an_idempotency_key_replays_the_first_answer(team: SlackSim, db: Database) -> None:
    first = send(team, key="form-123")
    again = send(team, key="form-123")
    assert (first.status, again.status) == (201, 201)
    assert first.json() == again.json()
    assert count(db, Lead) == 1
    assert count(db, Interaction) == 1
    other = send(team, {**ANA, "phone": "+1 415 555 0199"}, key="form-123")
    assert other.status == 422
    assert other.json()["field"] == "Idempotency-Key"
    assert send(team, key="x" * 256).json()["field"] == "Idempotency-Key"


def test_a_second_form_with_the_same_email_updates_the_lead(team: SlackSim, db: Database) -> None:
    first = send(team).json()
    second = send(team, {"name": "Ana Lima", "email": "ANA@acme.com", "phone": "+49 30 1234567"})
    assert second.status == 200
    assert second.json() == first  # same lead, same owner, same open follow-up
    assert count(db, Lead) == 1
    assert count(db, FollowUp) == 1
    assert lead_row(db, 1).phone == "+49 30 1234567"
    assert count(db, Interaction) == 2  # both submissions are on the lead's activity


# --- validation --------------------------------------------------------------------------


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"name": "Ana", "email": "not-an-email"}, "email"),
    ({"company": "Acme"}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Ana", "phone": "call me"}, "phone"),
    ({"name": {"first": "Ana"}}, "name"),
    ({"name": "Ana", "message": "m" * 3001}, "message"),
]
BAD_BODIES: list[tuple[bytes, str, int]] = [
    (b"[1, 2]", "application/json", 400),
    (b"{not json", "application/json", 400),
    (b"\xff\xfe", "application/x-www-form-urlencoded", 400),
    (b"name=Ana", "text/plain", 415),
    (b'{"name": "' + b"a" * 70_000 + b'"}', "application/json", 413),
]


def test_a_bad_field_is_a_400_naming_it_and_nothing_is_written(
    team: SlackSim, db: Database
) -> None:
    for fields, field in BAD_FIELDS:
        answer = send(team, fields)
        assert answer.status == 400, answer
        assert answer.json()["field"] == field
    assert count(db, Lead) == count(db, FollowUp) == count(db, Interaction) == 0


def test_unreadable_bodies_get_a_clear_error(team: SlackSim, db: Database) -> None:
    for body, content_type, status in BAD_BODIES:
        answer = send(team, body=body, content_type=content_type)
        assert answer.status == status, answer
        assert answer.json()["message"]
    assert team.get("/intake/lead").status == 405
    assert count(db, Lead) == 0


def test_hostile_text_is_stored_as_typed_and_echoed_escaped(team: SlackSim, db: Database) -> None:
    name = "<!channel> & <script>alert(1)</script>"
    answer = send(team, {"name": name, "email": "evil@example.com", "message": "<@UBOB> hi"})
    assert answer.status == 201
    assert lead_row(db, 1).name == name
    for call in team.fake.wait_for("chat.postMessage", 2):
        shown = json.dumps(call.args)
        assert "<!channel>" not in shown
        assert "&lt;!channel&gt; &amp; &lt;script&gt;" in shown
        assert "<@UBOB> hi" not in shown
    bad = send(team, {"name": "x", "email": "<b>@"})
    assert bad.status == 400
    assert "<" not in bad.body
    assert "\\u003cb\\u003e" in bad.body


# --- assignment under load ----------------------------------------------------------------


def test_ten_parallel_intakes_make_ten_leads_spread_fairly(team: SlackSim, db: Database) -> None:
    answers: list[Answer] = []
    lock = threading.Lock()

    def submit(n: int) -> None:
        answer = send(team, {"name": f"Lead {n}", "email": f"lead{n}@corp{n}.com"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status for a in answers) == [201] * 10
    assert sorted(int(a.json()["lead"][2:]) for a in answers) == list(range(1, 11))
    spread = Counter(a.json()["owner"] for a in answers)
    assert set(spread) == {"UADMIN", "UBOB", "UCAROL"}
    assert max(spread.values()) - min(spread.values()) <= 1
    assert count(db, FollowUp) == 10


def test_parallel_submissions_of_one_email_make_one_lead(team: SlackSim, db: Database) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def submit() -> None:
        answer = send(team, {"name": "Same Person", "email": "same@corp.com"})
        with lock:
            statuses.append(answer.status)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 5 + [201]
    assert count(db, Lead) == 1
    assert count(db, FollowUp) == 1


# --- Slack side ----------------------------------------------------------------------------


def test_slack_being_down_does_not_lose_the_lead(team: SlackSim, db: Database) -> None:
    team.fake.fail_next("chat.postMessage", "internal_error", times=20)
    team.fake.fail_next("conversations.open", "internal_error", times=20)
    answer = send(team)
    assert answer.status == 201
    assert count(db, Lead) == 1


def test_claim_takes_the_lead_and_its_follow_up_and_tells_the_previous_owner(
    team: SlackSim,
) -> None:
    owner = send(team).json()["owner"]
    claimer = next(u for u in ("UBOB", "UCAROL") if u != owner)
    team.fake.wait_for("chat.postMessage", 2)
    _, response_url, _ = team.click(Action.CLAIM.value, "L-1", user=claimer)
    reply = team.wait_reply(response_url)
    assert "You claimed *L-1*" in reply.args["text"]
    assert team.crm.show("T1", "L-1").record.owner_id == claimer
    assert team.crm.tasks("T1", owner_id=claimer).upcoming[0].ref == "T-1"
    team.fake.wait_for("chat.postMessage", 3)
    assert any("claimed" in m["text"] for m in team.fake.dms_to(owner))


def test_admins_rotate_the_token_in_settings_and_see_it_once(team: SlackSim) -> None:
    view = open_modal(team, modals.open_settings, user="UADMIN")
    assert Action.ROTATE_INTAKE_TOKEN.value in json.dumps(view)
    answer, _, _ = team.click(Action.ROTATE_INTAKE_TOKEN.value, "rotate", user="UADMIN", view=view)
    assert answer.status == 200
    (update,) = team.fake.wait_for("views.update")
    shown = json.dumps(update.args["view"])
    token = shown.split("`crmi_", 1)[1].split("`", 1)[0]
    assert send(team, token="crmi_" + token).status == 201


def test_the_intake_channel_is_picked_in_settings(team: SlackSim) -> None:
    view = open_modal(team, modals.open_settings, user="UADMIN")
    payload_view = {**view, "id": view.get("id", "V1")}
    team.interactive(
        {
            "type": "block_actions",
            "team": {"id": "T1", "domain": "t1"},
            "user": {"id": "UADMIN", "team_id": "T1"},
            "api_app_id": "A1",
            "trigger_id": team.fake.issue_trigger_id("UADMIN"),
            "view": payload_view,
            "container": {"type": "view", "view_id": payload_view["id"]},
            "actions": [
                {
                    "action_id": Action.INTAKE_CHANNEL.value,
                    "block_id": "b",
                    "type": "conversations_select",
                    "selected_conversation": "C2",
                    "action_ts": "1",
                }
            ],
        }
    )
    for _ in range(200):
        if team.crm.intake_settings("T1").channel_id == "C2":
            break
        threading.Event().wait(0.01)
    assert team.crm.intake_settings("T1").channel_id == "C2"


def test_admins_set_the_response_time_and_territory_rules_in_settings(team: SlackSim) -> None:
    team.crm.set_territory_rule("T1", "country", "DE", ["UBOB"], by="UADMIN")
    team.crm.set_territory_rule("T1", "industry", "SaaS", ["UCAROL"], by="UADMIN")
    view = open_modal(team, modals.open_settings, user="UADMIN")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["rule|country|DE"]["element"]["initial_users"] == ["UBOB"]
    assert blocks["sla"]["element"]["initial_value"] == "60"
    # Half a new rule, or a response time that isn't one: errors, and nothing saved.
    refused = submit(team, view, user="UADMIN", sla="soon", new_rule_value="EMEA")
    assert set(errors_of(refused)) == {"sla", "new_rule_field", "new_rule_reps"}
    assert team.crm.intake_settings("T1").sla_minutes == 60
    accepted(
        submit(
            team,
            view,
            user="UADMIN",
            sla="30",
            new_rule_field="region",
            new_rule_value="<EMEA>",
            new_rule_reps=["UCAROL", "UBOB"],
            **{"rule|country|DE": ["UBOB", "UCAROL"], "rule|industry|SaaS": []},
        )
    )
    said = told(team, user="UADMIN")
    assert "within 30 working minutes" in said
    assert "region &lt;EMEA&gt; go to <@UCAROL>, <@UBOB>" in said
    assert "industry SaaS is gone" in said
    rules = {(r.field, r.value): r.reps for r in team.crm.territory_rules("T1")}
    assert rules == {
        ("country", "DE"): ("UBOB", "UCAROL"),
        ("region", "<EMEA>"): ("UCAROL", "UBOB"),
    }
    assert team.crm.intake_settings("T1").sla_minutes == 30
    # A rep can't use the admin's form.
    assert "Only admins" in str(errors_of(submit(team, view, user="UBOB", sla="5")))
    assert team.crm.intake_settings("T1").sla_minutes == 30
