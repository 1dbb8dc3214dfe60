"""`crmbot forget EMAIL`: a person's data erased everywhere, the erasure itself recorded."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from crmbot import cli
from crmbot.csvmap import Kind
from crmbot.domain import CrmError, InvalidInput, RecordNotFound
from crmbot.exporter import export_csv
from crmbot.service import CrmService
from crmbot.service.erasure import ERASED_NAME
from crmbot.store.db import Database
from crmbot.store.models import Erasure
from tests.slackapp import SlackSim
from tests.test_slack_commands import reply_text

EMAIL = "zoe.quixotewell@example.org"
OLD_EMAIL = "Zoe.Q@Example.org"
PHONE = "+1 415 555 0199"
# Nothing of these may be left in any column of any table once she is forgotten.
TRACES = (
    "quixotewell",
    "zoe.q@example.org",
    EMAIL,
    "zoë quixotewell",
    "zoe quixotewell",
    PHONE,
    "4155550199",
    "zoe-q-secret-campaign",
)


def build_person(crm: CrmService) -> dict[str, str]:
    """Zoë in two workspaces: a converted lead with notes, follow-ups, a deal, an intake."""
    lead = crm.create_lead(
        "T1", by="UBOB", name="Zoë Quixotewell", company="Initech", email=OLD_EMAIL, phone=PHONE
    )
    crm.update("T1", lead.ref, by="UBOB", email=EMAIL)  # the old email stays in the audit trail
    crm.log_interaction(
        "T1",
        by="UBOB",
        kind="call",
        about=lead.ref,
        summary="Zoë says the Quixotewell family office wants 40 seats",
        outcome="Interested",
    )
    crm.create_follow_up(
        "T1", by="UBOB", about=lead.ref, when="tomorrow 9am", title="Call Zoë back"
    )
    converted = crm.convert_lead(
        "T1",
        lead.ref,
        by="UBOB",
        account_name="Initech",
        deal_name="Zoë Quixotewell pilot",
        amount=Decimal("50000"),
    )
    assert converted.deal is not None
    deal = converted.deal.ref
    crm.log_interaction(
        "T1",
        by="UADMIN",
        kind="note",
        about=deal,
        summary=f"Budget signed off by Zoë Quixotewell ({PHONE}); legal next",
    )
    crm.create_follow_up(
        "T1", by="UADMIN", about=deal, when="in 3 days", title="Send Zoë Quixotewell the contract"
    )
    crm.save_segment("T1", "zq", by="UBOB", text="Zoë Quixotewell")  # a saved search
    crm.create_account("T1", by="UBOB", name="Zoë Quixotewell Consulting")  # her one-person firm
    other = crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme", email="ana@acme.com")
    crm.log_interaction("T1", by="UBOB", kind="note", about=other.ref, summary="Met Ana at expo")

    crm.ensure_workspace("T2", name="Other Co")
    crm.upsert_rep("T2", "UEVE", name="Eve Rep", tz="UTC")
    intake = crm.intake_lead(
        "T2",
        {
            "name": "Zoe Quixotewell",
            "email": EMAIL.upper(),
            "message": "Call me about Quixotewell Labs",
            "utm_campaign": "zoe-q-secret-campaign",
        },
        idempotency_key="form-1",
    )
    return {
        "lead": lead.ref,
        "contact": converted.contact.ref,
        "deal": deal,
        "other": other.ref,
        "t2_lead": intake.answer["lead"],
    }


def leftovers(db: Database) -> list[str]:
    """Every table, every column (SQLAlchemy inspection): where a trace of Zoë is still held."""
    found = []
    names = inspect(db.engine).get_table_names()
    with db.engine.connect() as conn:
        for table in names:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for column, value in row._mapping.items():
                    if value is None:
                        continue
                    if isinstance(value, bytes | memoryview):
                        blob = bytes(value).lower()
                        hits = [t for t in TRACES if t.lower().encode() in blob]
                    else:
                        cell = str(value).lower()
                        hits = [t for t in TRACES if t.lower() in cell]
                    found += [f"{table}.{column}: {hit}" for hit in hits]
    return found


def test_forgetting_an_email_leaves_no_trace_in_any_table_and_keeps_the_deal(
    crm: CrmService, db: Database
) -> None:
    refs = build_person(crm)
    assert leftovers(db)  # the scan sees her before

    report = crm.forget(EMAIL.title(), by="cli:dpo")

    assert leftovers(db) == []
    done = {w.workspace_id: w for w in report.workspaces}
    assert set(done) == {"T1", "T2"}
    assert set(done["T1"].records) == {refs["lead"], refs["contact"]}
    assert done["T1"].counts["lead"] == 1
    assert done["T1"].counts["interaction"] >= 2
    assert done["T2"].counts["intake_request"] == 1
    for query in ("Quixotewell", "zoë", EMAIL, "415 555 0199", "Zoe Quixotewell"):
        assert crm.find("T1", query) == ()
        assert crm.find("T2", query) == ()
    with pytest.raises(RecordNotFound):
        crm.show("T1", refs["lead"])
    deal = crm.show("T1", refs["deal"])
    assert "50,000" in str(deal) or "50000" in str(deal)
    assert "[erased] pilot" in str(deal)
    assert [hit.name for hit in crm.find("T1", "consulting")] == ["[erased] Consulting"]
    history = crm.history("T1", refs["lead"])
    assert history[0].action == "erase"
    assert history[0].actor == "crmbot-forget"
    out = io.StringIO()
    for kind in Kind:
        export_csv(db, "T1", kind, out)
    assert "quixotewell" not in out.getvalue().lower()
    assert EMAIL not in out.getvalue()
    # Follow-ups of the deal stay open without her name; one only about her is cancelled.
    tasks = str([crm.tasks("T1", owner_id=user) for user in ("UBOB", "UADMIN")])
    assert "Call [erased] back" in tasks
    assert "Send [erased] the contract" in tasks
    assert "upcoming=()" in str(crm.tasks("T2", owner_id="UEVE"))
    assert "Budget signed off by [erased] ([erased]); legal next" in str(deal)  # the deal's note


def test_other_people_are_untouched(crm: CrmService) -> None:
    refs = build_person(crm)
    crm.forget(EMAIL, by="cli:dpo")
    ana = crm.show("T1", refs["other"])
    assert "Ana Lima" in str(ana)
    assert "ana@acme.com" in str(ana)
    assert "Met Ana at expo" in str(ana)
    assert crm.find("T1", "Ana Lima")


def test_forgetting_twice_is_fine_and_records_one_erasure_per_workspace(
    crm: CrmService, db: Database
) -> None:
    build_person(crm)
    first = crm.forget(EMAIL, by="cli:dpo")
    assert first.rows > 0
    again = crm.forget(EMAIL, by="cli:dpo")
    assert again.workspaces == ()
    assert again.lines() == ["nothing found: no record, note or log holds that email."]
    with db.read() as session:
        rows = list(session.scalars(select(Erasure)))
    assert sorted(r.workspace_id for r in rows) == ["T1", "T2"]
    assert all(r.requested_by == "cli:dpo" and r.rows > 0 for r in rows)
    assert EMAIL not in str([(r.email_hash, r.salt, r.records, r.counts) for r in rows])
    assert [w for w, _, _ in crm.erasures(EMAIL.upper())] == ["T1", "T2"]
    assert crm.erasures("someone@else.org") == []


def test_a_dry_run_counts_what_would_go_and_changes_nothing(crm: CrmService, db: Database) -> None:
    build_person(crm)
    before = sorted(leftovers(db))  # sorted: PostgreSQL may return rows in another order
    dry = crm.forget(EMAIL, by="cli:dpo", dry_run=True)
    assert sorted(leftovers(db)) == before
    assert dry.dry_run
    assert dry.lines()[-1] == "dry run: nothing was changed."
    real = crm.forget(EMAIL, by="cli:dpo")
    assert [(w.workspace_id, w.records, w.counts) for w in dry.workspaces] == [
        (w.workspace_id, w.records, w.counts) for w in real.workspaces
    ]


def test_one_workspace_only_with_team(crm: CrmService) -> None:
    build_person(crm)
    report = crm.forget(EMAIL, by="cli:dpo", team="T2")
    assert [w.workspace_id for w in report.workspaces] == ["T2"]
    assert crm.find("T1", "Quixotewell")  # T1 still has her: only T2 was asked
    assert crm.find("T2", "Quixotewell") == ()


def test_undo_cannot_bring_an_erased_person_back(crm: CrmService) -> None:
    lead = crm.create_lead("T1", by="UBOB", name="Zoë Quixotewell", email=EMAIL)
    crm.update("T1", lead.ref, by="UBOB", phone=PHONE)
    crm.forget(EMAIL, by="cli:dpo")
    with pytest.raises(CrmError):
        crm.undo("T1", by="UBOB")
    crm.restore("T1", lead.ref, by="UADMIN")  # restoring brings back an empty shell only
    card = str(crm.show("T1", lead.ref))
    assert ERASED_NAME in card
    assert "Quixotewell" not in card


@pytest.mark.parametrize("bad", ["", "   ", "not an email", "a@", "\u202eevil@x.io\u0000" * 40])
def test_a_bad_email_is_refused_and_changes_nothing(crm: CrmService, bad: str) -> None:
    with pytest.raises(InvalidInput):
        crm.forget(bad, by="cli:dpo")


def test_the_cli_forgets_reports_and_refuses_what_it_cannot_do(
    crm: CrmService,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refs = build_person(crm)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli.main(["forget", EMAIL, "--team", "T1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"T1: would erase {refs['lead']}, {refs['contact']}" in out
    assert "dry run: nothing was changed." in out
    assert crm.find("T1", "Quixotewell")
    assert cli.main(["forget", EMAIL, "--by", "dpo@corp"]) == 0
    out = capsys.readouterr().out
    assert "T1: erased" in out
    assert "T2: erased" in out
    assert "quixotewell" not in out.lower()
    assert crm.find("T1", "Quixotewell") == ()
    assert cli.main(["forget", "nobody"]) == 2
    assert "email" in capsys.readouterr().err
    assert cli.main(["forget", EMAIL, "--team", "T9"]) == 2
    assert "no workspace" in capsys.readouterr().err


def test_the_sqlite_full_text_indexes_hold_no_entry_for_her(crm: CrmService, db: Database) -> None:
    if db.dialect != "sqlite":
        pytest.skip("SQLite's FTS5 indexes; PostgreSQL indexes search_doc itself")
    build_person(crm)
    crm.forget(EMAIL, by="cli:dpo")
    with db.engine.connect() as conn:
        for index in ("search_fts", "search_words"):
            match = text(f"SELECT count(*) FROM {index} WHERE {index} MATCH :q")
            assert conn.execute(match, {"q": '"quixotewell"'}).scalar() == 0
            data = conn.execute(text(f"SELECT block FROM {index}_data")).scalars().all()
            assert not any(b"quixotewell" in bytes(block) for block in data if block)


def test_her_deal_loses_her_first_name_and_workspace_settings_stay(crm: CrmService) -> None:
    lead = crm.create_lead("T1", by="UBOB", name="Negotiation Quixotewell", email=EMAIL)
    deal = crm.create_deal(
        "T1", by="UBOB", name="Negotiation pilot", amount=Decimal("900"), about=lead.ref
    )
    crm.move_deal("T1", deal.ref, "negotiation", by="UBOB")
    crm.forget(EMAIL, by="cli:dpo")
    card = str(crm.show("T1", deal.ref))
    assert "[erased] pilot" in card
    assert "900" in card
    assert "Negotiation" in [stage.name for stage in crm.stages("T1")]  # settings untouched
    assert "stage='Negotiation'" in card or "Negotiation" in card


def test_slack_shows_no_trace_of_her_after_forget(slack: SlackSim) -> None:
    slack.command(f"lead Zoë Quixotewell at Initech {EMAIL} {PHONE}")
    slack.command("log note L-1 Zoë Quixotewell wants a pilot")
    slack.crm.forget(EMAIL, by="cli:dpo")
    for command in (
        "find quixotewell",
        f"find {EMAIL}",
        "show L-1",
        "history L-1",
        "show Zoë Quixotewell",
        "tasks",
    ):
        typed = command.split(" ", 1)[-1].lower()
        shown = reply_text(slack.command(command)).lower().replace(typed, "")  # not the echo
        assert "quixotewell" not in shown, command
        assert EMAIL not in shown, command
        assert "555 0199" not in shown, command
    assert "erase" in reply_text(slack.command("history L-1"))


@pytest.mark.parametrize(
    "name",
    [
        "Seán O'Brien-Ó Dálaigh",
        "a.b*c+? (Jr.) [x] {2} | \\d %_",
        "<!channel> &amp; <@U123>",
        "山田 太郎",
        "Zoe\u0301 Quixotewell",
        "Ωμέγα Δέλτα",
    ],
)
def test_names_full_of_metacharacters_are_erased_and_nothing_else_is(
    crm: CrmService, db: Database, name: str
) -> None:
    lead = crm.create_lead("T1", by="UBOB", name=name, email="odd@example.org")
    crm.log_interaction("T1", by="UBOB", kind="note", about=lead.ref, summary=f"about {name}")
    deal = crm.create_deal("T1", by="UBOB", name=f"{name} deal", amount=Decimal("1"))
    keep = crm.create_lead("T1", by="UBOB", name="Plain Person", email="plain@example.org")
    crm.forget("odd@example.org", by="cli:dpo")
    with db.engine.connect() as conn:
        for table in ("lead", "deal", "interaction", "event", "search_doc"):
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            assert name not in str([tuple(r) for r in rows]), table
    assert "[erased] deal" in str(crm.show("T1", deal.ref))
    assert "Plain Person" in str(crm.show("T1", keep.ref))
