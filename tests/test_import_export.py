"""CSV import and export: real-world export shapes, nasty files, dry runs, lossless round trips."""

from __future__ import annotations

import csv
import io
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crmbot import cli
from crmbot.csvmap import Kind, header_key, lead_status, map_headers
from crmbot.domain import ContactView, DealView, LeadView
from crmbot.exporter import export_csv
from crmbot.importer import CsvProblem, Importer, ImportSummary, import_csv
from crmbot.service import CrmService
from crmbot.service.records import _detail, _extra
from crmbot.store import queries
from crmbot.store.db import Database
from crmbot.store.models import (
    Account,
    Base,
    Contact,
    Deal,
    Event,
    Lead,
    SearchDoc,
)
from tests.conftest import Clock

DATA = Path(__file__).parent / "data"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The fixture CSVs, copied so that rejected-rows files land in a temporary folder."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def team(crm: CrmService) -> CrmService:
    crm.upsert_rep("T1", "UBOB", name="Bob Rep", tz="America/Los_Angeles", email="bob@example.com")
    return crm


def run(
    db: Database, clock: Clock, kind: Kind, path: Path, ws: str = "T1", **kwargs: Any
) -> ImportSummary:
    return import_csv(db, ws, kind, path, clock=clock, **kwargs)


def counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {
            table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


def record(crm: CrmService, ref: str) -> Any:
    return crm.show("T1", ref).record


def rejected_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- the shapes of real exports ---------------------------------------------------------


def test_a_salesforce_leads_export_imports_with_exact_counts(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    summary = run(db, clock, Kind.LEADS, files / "salesforce_leads.csv")
    assert summary.line() == "imported 4, updated 0, duplicates 1, rejected 1"
    ana, bjoern, tanaka, zoe = (record(team, f"L-{n}") for n in range(1, 5))
    assert isinstance(ana, LeadView)
    assert (ana.name, ana.company, ana.owner_id, ana.status.value) == (
        "Ana Lima",
        "Acme Corp",
        "UADMIN",
        "new",
    )
    assert (bjoern.name, bjoern.owner_id, bjoern.status.value) == (
        "Björn Müller",
        "UBOB",
        "working",
    )
    assert (tanaka.name, tanaka.status.value, tanaka.owner_id) == ("Tanaka", "disqualified", None)
    assert zoe.status.value == "converted"
    assert zoe.created_at.isoformat() == "2025-05-05T10:00:00+00:00"
    assert team.find("T1", "mueller-soehne")[0].ref == "L-2"  # searchable at once
    (reject,) = rejected_rows(files / "salesforce_leads.rejected.csv")
    assert (reject["line"], reject["Email"]) == ("5", "chidi@initech")
    assert reject["reason"].startswith("email:")
    with db.read() as session:
        lead = session.scalars(select(Lead).where(Lead.number == 1)).one()
        assert lead.extra == {
            "Lead ID": "00Q5e000001AbC1",
            "Title": "CTO",
            "Industry": "Software",
            "Country": "US",
        }


def test_importing_the_same_file_again_adds_nothing(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    run(db, clock, Kind.LEADS, files / "salesforce_leads.csv")
    before = counts(db)
    again = run(db, clock, Kind.LEADS, files / "salesforce_leads.csv")
    assert again.line() == "imported 0, updated 0, duplicates 5, rejected 1"
    assert counts(db) == before


def test_hubspot_contacts_then_pipedrive_persons_update_the_same_people(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    hubspot = run(db, clock, Kind.CONTACTS, files / "hubspot_contacts.csv")
    assert hubspot.line() == "imported 4, updated 0, duplicates 1, rejected 1"
    assert hubspot.accounts_created == 2  # US Navy, Bletchley Park
    assert hubspot.ignored_columns == ["Record ID", "Lifecycle Stage"]
    grace = record(team, "C-1")
    assert isinstance(grace, ContactView)
    assert (grace.title, grace.account_name, grace.owner_id) == (
        "Rear Admiral",
        "US Navy",
        "UADMIN",
    )
    assert record(team, "C-3").name == "ada@analytical.engine"  # no name: the email stands in
    pipedrive = run(db, clock, Kind.CONTACTS, files / "pipedrive_persons.csv")
    assert pipedrive.line() == "imported 1, updated 1, duplicates 0, rejected 0"
    assert record(team, "C-1").phone == "+1 202 555 0199"
    assert team.history("T1", "C-1")[0].actor == "csv-import"


def test_a_salesforce_accounts_export_maps_websites_and_employee_counts(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    summary = run(db, clock, Kind.ACCOUNTS, files / "salesforce_accounts.csv")
    assert summary.line() == "imported 4, updated 0, duplicates 1, rejected 1"
    assert [(a.name, a.domain, a.size) for a in (record(team, f"A-{n}") for n in range(1, 5))] == [
        ("Acme Corp", "acme.com", 250),
        ("Globex", "globex.com", 1200),
        ("Initech", "initech.com", 200),
        ("hooli.com", "hooli.com", None),
    ]


def test_pipedrive_deals_map_stages_statuses_and_money(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    run(db, clock, Kind.CONTACTS, files / "hubspot_contacts.csv")
    summary = run(db, clock, Kind.DEALS, files / "pipedrive_deals.csv")
    assert summary.line() == "imported 3, updated 0, duplicates 1, rejected 3"
    renewal, pilot, expansion = (record(team, f"D-{n}") for n in range(1, 4))
    assert isinstance(renewal, DealView)
    assert renewal.amount is not None
    assert (renewal.amount.amount, renewal.amount.currency, renewal.stage) == (
        Decimal("12500.00"),
        "EUR",
        "Proposal",
    )
    assert (renewal.contact_name, str(renewal.close_date)) == ("Grace Hopper", "2026-12-31")
    assert (pilot.stage, pilot.status.value, pilot.owner_id) == ("Won", "won", "UBOB")
    assert (expansion.status.value, expansion.lost_reason) == ("lost", "Went with a competitor")
    reasons = [
        r["reason"].split(":")[0] for r in rejected_rows(files / "pipedrive_deals.rejected.csv")
    ]
    assert reasons == ["amount", "stage", "status"]
    assert [s.count for s in team.pipeline("T1").stages if s.stage == "Proposal"] == [1]


def test_a_deal_row_without_a_name_is_rejected_with_the_reason(
    team: CrmService, db: Database, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "deals.csv"
    path.write_text("amount,name\n50k,\n60k,Good deal\n", encoding="utf-8")
    assert (
        run(db, clock, Kind.DEALS, path).line() == "imported 1, updated 0, duplicates 0, rejected 1"
    )
    (row,) = rejected_rows(tmp_path / "deals.rejected.csv")
    assert row["reason"] == "name: A deal needs a name."


# --- nasty files ---------------------------------------------------------------------------


def test_a_nasty_file_bom_crlf_quoted_newlines_bad_rows_and_huge_fields(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    summary = run(db, clock, Kind.CONTACTS, files / "nasty_contacts.csv")
    assert summary.line() == "imported 6, updated 0, duplicates 1, rejected 3"
    assert summary.ignored_columns == ["Notes"]
    names = [record(team, f"C-{n}").name for n in range(1, 7)]
    assert names == [
        "Multi Line Name",
        "empty@example.com",
        "<script>alert(1)</script> & <!channel>",  # stored as typed
        "Dup Person",
        "Long Notes",
        'Quote "Q" Person',
    ]
    assert record(team, "C-1").account_name == "Acme Corp"
    rejects = rejected_rows(files / "nasty_contacts.rejected.csv")
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        ("6", "name"),
        ("7", "email"),
        ("12", "name"),
    ]
    assert len(rejects[2]["Name"]) == 100_000  # the row comes back whole


def test_a_latin1_file_needs_its_encoding_named(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    with pytest.raises(CsvProblem, match=r"not UTF-8.*line 2.*--encoding latin-1"):
        run(db, clock, Kind.CONTACTS, files / "latin1_contacts.csv")
    summary = run(db, clock, Kind.CONTACTS, files / "latin1_contacts.csv", encoding="latin-1")
    assert summary.line() == "imported 2, updated 0, duplicates 0, rejected 0"
    assert record(team, "C-1").name == "José Müller"


def test_a_file_without_a_name_column_is_refused_whole(
    team: CrmService, db: Database, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("Colour,Size\nred,10\n")
    with pytest.raises(CsvProblem, match="No column names the contacts"):
        run(db, clock, Kind.CONTACTS, path)


def test_a_dry_run_counts_the_same_and_writes_nothing(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    before = counts(db)
    dry = run(db, clock, Kind.CONTACTS, files / "hubspot_contacts.csv", dry_run=True)
    assert dry.line() == "imported 4, updated 0, duplicates 1, rejected 1"
    assert dry.accounts_created == 2
    assert counts(db) == before
    assert not (files / "hubspot_contacts.rejected.csv").exists()
    assert dry.first_rejects[0][0] == 5
    run(db, clock, Kind.CONTACTS, files / "hubspot_contacts.csv")
    again = run(db, clock, Kind.CONTACTS, files / "pipedrive_persons.csv", dry_run=True)
    assert again.line() == "imported 1, updated 1, duplicates 0, rejected 0"


def test_a_failing_batch_leaves_nothing_half_written(
    team: CrmService, db: Database, clock: Clock, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Importer._insert_records
    calls = {"n": 0}

    def flaky(self: Importer, session: Any, kind: Kind, records: list[dict[str, Any]]) -> Any:
        calls["n"] += 1
        ids = real(self, session, kind, records)
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return ids

    monkeypatch.setattr(Importer, "_insert_records", flaky)
    with pytest.raises(RuntimeError):
        run(db, clock, Kind.ACCOUNTS, files / "salesforce_accounts.csv", batch=2)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 2
        assert session.scalar(select(func.count()).select_from(SearchDoc)) == 2
    monkeypatch.setattr(Importer, "_insert_records", real)
    rest = run(db, clock, Kind.ACCOUNTS, files / "salesforce_accounts.csv", batch=2)
    assert rest.line() == "imported 2, updated 0, duplicates 3, rejected 1"


def test_imported_records_get_the_search_documents_the_service_would_write(
    team: CrmService, db: Database, clock: Clock, files: Path
) -> None:
    run(db, clock, Kind.CONTACTS, files / "hubspot_contacts.csv")
    run(db, clock, Kind.LEADS, files / "salesforce_leads.csv")
    run(db, clock, Kind.DEALS, files / "pipedrive_deals.csv")
    run(db, clock, Kind.ACCOUNTS, files / "salesforce_accounts.csv")
    columns = ("ref", "name", "folded_name", "body", "detail", "owner_id", "deleted")
    with db.write() as session:
        docs = session.scalars(select(SearchDoc).order_by(SearchDoc.id)).all()
        imported = [tuple(getattr(d, c) for c in columns) for d in docs]
        for model in (Lead, Contact, Account, Deal):
            for row in session.scalars(select(model)):
                queries.index_record(session, row, detail=_detail(session, row), extra=_extra(row))
        rewritten = [tuple(getattr(d, c) for c in columns) for d in docs]
        session.rollback()
    assert imported == rewritten
    # 4 contacts + their 2 accounts, 4 leads, 3 deals + their 3 accounts, 1 more account (the
    # other 3 accounts of the accounts file matched the deals' ones by name and updated them).
    assert len(imported) == 4 + 2 + 4 + 3 + 3 + 1
    if db.dialect == "sqlite":  # the FTS indexes, filled in bulk, agree with search_doc
        with db.engine.begin() as conn:
            tables = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%fts5%'"
            ).scalars()
            for table in list(tables):
                conn.exec_driver_sql(
                    f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)"
                )
        assert team.find("T1", "grace@navy.mil")[0].ref == "C-1"
    with db.read() as session:  # each created record is in exactly one import batch event
        batches = session.scalars(select(Event).where(Event.action == "import")).all()
        assert all(e.actor == "csv-import" and e.before is None for e in batches)
        for model in (Lead, Contact, Account, Deal):
            for row in session.scalars(select(model)):
                kind = queries.kind_of(row)
                covering = [
                    e
                    for e in batches
                    if e.kind == kind.value
                    and any(lo <= row.id <= hi for lo, hi in e.after["_ids"])
                ]
                assert len(covering) == 1, row.name
                assert covering[0].after["file"].endswith(".csv")
                # ... which the record's history shows as its creation
                entries = team.history("T1", queries.ref_of(kind, row.number))
                assert (entries[-1].actor, entries[-1].action) == ("csv-import", "import")
                trail = team.record_history("T1", queries.ref_of(kind, row.number)).entries
                assert (trail[-1].actor, trail[-1].action) == ("csv-import", "import")
        # one event per batch and kind, not one per record
        assert len(batches) < len(imported)


# --- export and the round trip --------------------------------------------------------------


def make_records(crm: CrmService) -> None:
    """A workspace with one of everything export has to carry."""
    crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    crm.create_account("T1", by="UADMIN", name="Acme, Inc.", domain="acme.com", size=250)
    crm.create_account("T1", by="UBOB", name="Ümlaut GmbH", industry="Software", region="EMEA")
    crm.create_contact("T1", by="UBOB", name='Ana "Nana" Lima', email="ana@acme.com", account="A-1")
    crm.create_contact("T1", by="UCAROL", name="<!channel> & co", title="CEO\u200b")
    crm.create_contact("T1", by="UBOB", name="Gone Person", email="gone@acme.com")
    crm.delete("T1", "C-3", by="UADMIN")
    crm.create_lead("T1", by="UBOB", name="Li Wei", company="Dragon Ltd", email="li@dragon.cn")
    crm.intake_lead("T1", {"name": "Web Person", "email": "web@x.io", "utm": "spring, 2026"})
    crm.create_lead(
        "T1", by="UCAROL", name="Zoë Durand", company="Lumière", phone="+33 1 23 45 67 89"
    )
    crm.convert_lead("T1", "L-1", by="UBOB", deal_name="Dragon pilot", amount=Decimal("5000"))
    crm.create_deal(
        "T1",
        by="UBOB",
        name="Acme renewal",
        amount=Decimal("1234.56"),
        currency="EUR",
        stage="Negotiation",
        about="C-1",
        probability=90,
    )
    crm.create_deal("T1", by="UADMIN", name="Small win", amount=Decimal("99.99"), about="A-2")
    crm.close_deal("T1", "D-3", by="UADMIN", won=True)
    crm.create_deal("T1", by="UCAROL", name="Lost one", about="L-3")
    crm.close_deal("T1", "D-4", by="UCAROL", won=False, reason="Budget, cut")


def exported(db: Database, ws: str) -> dict[Kind, str]:
    out = {}
    for kind in Kind:
        buffer = io.StringIO()
        export_csv(db, ws, kind, buffer)
        out[kind] = buffer.getvalue()
    return out


def test_export_writes_every_field_of_live_records(crm: CrmService, db: Database) -> None:
    make_records(crm)
    files = exported(db, "T1")
    contacts = list(csv.DictReader(io.StringIO(files[Kind.CONTACTS])))
    assert [c["ref"] for c in contacts] == ["C-1", "C-2", "C-4"]  # C-3 is deleted
    assert contacts[0]["account_ref"] == "A-1"
    assert contacts[0]["name"] == 'Ana "Nana" Lima'
    deals = {d["ref"]: d for d in csv.DictReader(io.StringIO(files[Kind.DEALS]))}
    assert (deals["D-2"]["amount"], deals["D-2"]["currency"], deals["D-2"]["probability"]) == (
        "1234.56",
        "EUR",
        "90",
    )
    assert deals["D-1"]["lead_ref"] == "L-1"
    leads = {row["ref"]: row for row in csv.DictReader(io.StringIO(files[Kind.LEADS]))}
    assert leads["L-1"]["converted_deal"] == "D-1"
    assert leads["L-2"]["extra"] == '{"utm":"spring, 2026"}'


def test_importing_an_export_into_an_empty_workspace_gives_the_same_records(
    crm: CrmService, db: Database, clock: Clock, tmp_path: Path
) -> None:
    make_records(crm)
    first = exported(db, "T1")
    for kind in (Kind.ACCOUNTS, Kind.CONTACTS, Kind.LEADS, Kind.DEALS):
        path = tmp_path / f"{kind.value}.csv"
        path.write_text(first[kind], encoding="utf-8", newline="")
        summary = run(db, clock, kind, path, ws="T2")
        assert summary.rejected == summary.duplicates == summary.updated == 0, summary
    second = exported(db, "T2")
    for kind in Kind:
        assert second[kind] == first[kind], kind
    for kind in (Kind.ACCOUNTS, Kind.CONTACTS, Kind.LEADS, Kind.DEALS):
        again = run(db, clock, kind, tmp_path / f"{kind.value}.csv", ws="T2")
        assert (again.imported, again.updated, again.rejected) == (0, 0, 0)
    assert exported(db, "T2") == first
    # New records continue the numbering after the imported references.
    assert crm.create_lead("T2", by="UADMIN", name="Next").ref == "L-4"


def test_the_cli_exports_and_imports_into_a_fresh_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    clock: Clock,
) -> None:
    source = tmp_path / "a.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{source}")
    monkeypatch.chdir(tmp_path)
    leads = shutil.copy(DATA / "salesforce_leads.csv", tmp_path / "leads.csv")
    assert cli.main(["import", "leads", str(leads), "--team", "T1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "imported 4, updated 0, duplicates 1, rejected 1"
    )
    assert cli.main(["export", "leads", "-o", str(tmp_path / "out.csv")]) == 0
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    assert cli.main(["import", "leads", str(tmp_path / "out.csv")]) == 2  # which workspace?
    assert "--team" in capsys.readouterr().err
    assert (
        cli.main(["import", "leads", str(tmp_path / "out.csv"), "--team", "T1", "--dry-run"]) == 0
    )
    assert capsys.readouterr().out.strip() == "imported 4, updated 0, duplicates 0, rejected 0"
    assert cli.main(["import", "leads", str(tmp_path / "out.csv"), "--team", "T1"]) == 0
    capsys.readouterr()
    assert cli.main(["export", "leads", "-o", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "out.csv").read_text()


# --- header mapping ----------------------------------------------------------------------------


def test_headers_of_salesforce_hubspot_and_pipedrive_map_to_fields() -> None:
    assert header_key("Person - Email - Work") == "person email work"
    deals = ["Deal - Title", "Deal - Value", "Deal - Expected close date", "Opportunity Owner"]
    assert list(map_headers(Kind.DEALS, deals).values()) == [
        "name",
        "amount",
        "close_date",
        "owner",
    ]
    people = ["First Name", "Last Name", "Email Address", "Mobile Phone", "Associated Company"]
    assert list(map_headers(Kind.CONTACTS, people).values()) == [
        "first_name",
        "last_name",
        "email",
        "phone",
        "account",
    ]
    assert map_headers(Kind.ACCOUNTS, ["Company Domain Name", "Number of Employees"]) == {
        0: "domain",
        1: "size",
    }
    assert [lead_status(s) for s in ("Open - Not Contacted", "IN_PROGRESS", "UNQUALIFIED")] == [
        "new",
        "working",
        "disqualified",
    ]
