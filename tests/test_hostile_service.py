"""Every service verb with hostile arguments, on SQLite and PostgreSQL: it either succeeds or
raises a CrmError with a message for the person, and then the database is exactly as before.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from crmbot.csvmap import Kind
from crmbot.domain import CrmError, InteractionKind, RecordView, Role
from crmbot.importer import CsvProblem, import_csv
from crmbot.parsing import clean_text
from crmbot.service import CrmService
from crmbot.store.db import Database
from crmbot.store.models import Account, Contact, Deal, Lead
from tests.hostile import INTAKE_BODY, budget, changed_tables, hostile_text, optional_text, snapshot

USERS = st.sampled_from(["UADMIN", "UBOB", "UCAROL", "UEVE"]) | hostile_text
REFS = st.sampled_from(["L-1", "L-2", "D-1", "C-1", "A-1", "T-1", "D-9", "L-0"]) | hostile_text
STAGES = st.sampled_from(["proposal", "Won", "lost", "Negotiation", "prop"]) | hostile_text
WHEN = st.sampled_from(["tomorrow 9am", "in 3 days", "yesterday", "3/12"]) | hostile_text
AWARE = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - bounds; hypothesis adds the zone
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, None]),
)
AMOUNTS = st.none() | st.decimals(allow_nan=True, allow_infinity=True) | st.just(Decimal(10**14))
INTS = st.none() | st.integers(-(2**40), 2**40)
FIELDS = st.sampled_from(
    [
        *("name", "company", "email", "phone", "source", "status", "score", "title", "domain"),
        *("industry", "size", "region", "close_date", "probability", "owner_id", "workspace_id"),
    ]
)
VALUES: st.SearchStrategy[Any] = optional_text | INTS | st.dates() | st.booleans()

SQLITE = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
Verb = Callable[[CrmService, st.DataObject], object]


def _d(data: st.DataObject, strategy: st.SearchStrategy[Any]) -> Any:
    return data.draw(strategy)


VERBS: dict[str, Verb] = {
    "create_lead": lambda crm, d: crm.create_lead(
        "T1",
        by=_d(d, USERS),
        name=_d(d, hostile_text),
        company=_d(d, optional_text),
        email=_d(d, optional_text),
        phone=_d(d, optional_text),
        source=_d(d, optional_text),
        owner_id=_d(d, st.none() | USERS),
    ),
    "create_account": lambda crm, d: crm.create_account(
        "T1",
        by=_d(d, USERS),
        name=_d(d, hostile_text),
        domain=_d(d, optional_text),
        industry=_d(d, optional_text),
        size=_d(d, INTS),
        region=_d(d, optional_text),
    ),
    "create_contact": lambda crm, d: crm.create_contact(
        "T1",
        by=_d(d, USERS),
        name=_d(d, hostile_text),
        email=_d(d, optional_text),
        phone=_d(d, optional_text),
        title=_d(d, optional_text),
        account=_d(d, st.none() | REFS),
        source=_d(d, optional_text),
    ),
    "update": lambda crm, d: crm.update(
        "T1",
        _d(d, REFS),
        by=_d(d, USERS),
        **_d(d, st.dictionaries(FIELDS, VALUES, min_size=1, max_size=3)),
    ),
    "assign": lambda crm, d: crm.assign("T1", _d(d, REFS), _d(d, USERS), by=_d(d, USERS)),
    "delete": lambda crm, d: crm.delete("T1", _d(d, REFS), by=_d(d, USERS)),
    "restore": lambda crm, d: crm.restore("T1", _d(d, REFS), by=_d(d, USERS)),
    "create_deal": lambda crm, d: crm.create_deal(
        "T1",
        by=_d(d, USERS),
        name=_d(d, hostile_text),
        amount=_d(d, AMOUNTS),
        currency=_d(d, st.none() | st.sampled_from(["EUR", "usd", "XXX", "€"]) | hostile_text),
        stage=_d(d, st.none() | STAGES),
        about=_d(d, st.none() | REFS),
        close_date=_d(d, st.none() | st.dates()),
        probability=_d(d, INTS),
    ),
    "move_deal": lambda crm, d: crm.move_deal(
        "T1", _d(d, REFS), _d(d, STAGES), by=_d(d, USERS), reason=_d(d, optional_text)
    ),
    "close_deal": lambda crm, d: crm.close_deal(
        "T1", _d(d, REFS), by=_d(d, USERS), won=_d(d, st.booleans()), reason=_d(d, optional_text)
    ),
    "convert_lead": lambda crm, d: crm.convert_lead(
        "T1",
        _d(d, REFS),
        by=_d(d, USERS),
        account_name=_d(d, optional_text),
        deal_name=_d(d, optional_text),
        amount=_d(d, AMOUNTS),
        currency=_d(d, st.none() | hostile_text),
        stage=_d(d, st.none() | STAGES),
    ),
    "log_interaction": lambda crm, d: crm.log_interaction(
        "T1",
        by=_d(d, USERS),
        kind=_d(d, st.sampled_from(list(InteractionKind)) | hostile_text),
        about=_d(d, st.none() | REFS),
        summary=_d(d, hostile_text),
        occurred_at=_d(d, st.none() | AWARE),
        outcome=_d(d, optional_text),
        duration_minutes=_d(d, INTS),
        permalink=_d(d, st.none() | st.just("https://x.slack.com/archives/C1/p1") | hostile_text),
    ),
    "create_follow_up": lambda crm, d: crm.create_follow_up(
        "T1",
        by=_d(d, USERS),
        about=_d(d, st.none() | REFS),
        when=_d(d, st.none() | WHEN),
        due_at=_d(d, st.none() | AWARE),
        title=_d(d, hostile_text),
        owner_id=_d(d, st.none() | USERS),
        channel_id=_d(d, st.none() | st.just("C1") | hostile_text),
        tz=_d(d, st.none() | st.sampled_from(["Europe/Berlin", "Mars/Olympus", ""]) | hostile_text),
    ),
    "complete_follow_up": lambda crm, d: crm.complete_follow_up("T1", _d(d, REFS), by=_d(d, USERS)),
    "cancel_follow_up": lambda crm, d: crm.cancel_follow_up("T1", _d(d, REFS), by=_d(d, USERS)),
    "snooze_follow_up": lambda crm, d: crm.snooze_follow_up(
        "T1",
        _d(d, REFS),
        by=_d(d, USERS),
        until=_d(d, st.none() | AWARE),
        when=_d(d, st.none() | WHEN),
        tz=_d(d, st.none() | hostile_text),
    ),
    "find": lambda crm, d: crm.find("T1", _d(d, hostile_text)),
    "find_records": lambda crm, d: crm.find_records(
        "T1",
        by=_d(d, USERS),
        text=_d(d, hostile_text),
        filters=_d(
            d,
            st.lists(
                st.tuples(st.sampled_from(["stage", "size", "kind", "sort", "x"]), hostile_text),
                max_size=3,
            ),
        ),
    ),
    "save_segment": lambda crm, d: crm.save_segment(
        "T1", _d(d, hostile_text), by=_d(d, USERS), text=_d(d, hostile_text)
    ),
    "show": lambda crm, d: crm.show("T1", _d(d, REFS)),
    "history": lambda crm, d: crm.record_history("T1", _d(d, REFS)),
    "undo": lambda crm, d: crm.undo("T1", by=_d(d, USERS)),
    "merge_into": lambda crm, d: crm.merge_into(
        "T1",
        _d(d, REFS),
        by=_d(d, USERS),
        **_d(d, st.dictionaries(st.sampled_from(["name", "email", "phone", "company"]), VALUES)),
    ),
    "claim_lead": lambda crm, d: crm.claim_lead("T1", _d(d, REFS), by=_d(d, USERS)),
    "set_role": lambda crm, d: crm.set_role(
        "T1", _d(d, USERS), _d(d, st.sampled_from(list(Role))), by=_d(d, USERS)
    ),
    "tasks": lambda crm, d: crm.tasks("T1", owner_id=_d(d, st.none() | USERS)),
    "pipeline_report": lambda crm, d: crm.pipeline_report(
        "T1",
        owner_id=_d(d, st.none() | USERS),
        team=_d(d, st.booleans()),
        tz=_d(d, st.sampled_from(["UTC", "Asia/Kolkata", "America", "../etc"]) | hostile_text),
    ),
    "rep_named": lambda crm, d: crm.rep_named("T1", _d(d, hostile_text)),
    "find_duplicates": lambda crm, d: crm.find_duplicates(
        "T1", name=_d(d, optional_text), email=_d(d, optional_text), company=_d(d, optional_text)
    ),
    "set_territory_rule": lambda crm, d: crm.set_territory_rule(
        "T1",
        _d(d, st.sampled_from(["country", "region", "planet"]) | hostile_text),
        _d(d, hostile_text),
        _d(d, st.lists(USERS, max_size=3)),
        by=_d(d, USERS),
    ),
    "activity_report": lambda crm, d: crm.activity_report(
        "T1",
        _d(d, st.sampled_from(["week", "month", "quarter"]) | hostile_text),
        owner_id=_d(d, st.none() | USERS),
    ),
    "lead_score": lambda crm, d: crm.lead_score("T1", _d(d, REFS)),
    "intake_lead": lambda crm, d: crm.intake_lead(
        "T1", _d(d, INTAKE_BODY), idempotency_key=_d(d, st.none() | hostile_text)
    ),
}


@pytest.fixture
def seeded(crm: CrmService) -> CrmService:
    """Bob's lead, contact, account, deal and follow-up in T1, and T2's own lead L-1."""
    crm.upsert_rep("T1", "UCAROL", name="Carol Closer", tz="Asia/Kolkata")
    crm.create_lead("T1", by="UBOB", name="Ana Lima", company="Acme", email="ana@acme.com")
    crm.create_account("T1", by="UBOB", name="Acme", domain="acme.com")
    crm.create_contact("T1", by="UBOB", name="Zoë Šimić", email="zoe@acme.com", account="A-1")
    crm.create_deal("T1", by="UBOB", name="Acme pilot", amount=Decimal(5000), about="A-1")
    crm.create_follow_up("T1", by="UBOB", about="L-1", when="tomorrow 9am", title="call Ana")
    crm.ensure_workspace("T2")
    crm.upsert_rep("T2", "UEVE", name="Eve Other")
    crm.create_lead("T2", by="UEVE", name="Other Ana")
    return crm


@budget("service verbs", 500, engines=2)
@given(data=st.data())
def test_every_verb_either_succeeds_or_refuses_with_a_message_and_writes_nothing(
    seeded: CrmService, db: Database, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(VERBS)), label="verb")
    before = snapshot(db)
    refused: CrmError | None = None
    try:
        result = VERBS[name](seeded, data)
    except CrmError as error:
        refused = error
    if refused is None:
        assert not isinstance(result, RecordView) or result.name.strip()
        return
    assert refused.message.strip(), f"{name} refused without saying why"
    changed = changed_tables(before, snapshot(db))
    assert not changed, f"{name} refused ({refused.message}) but changed {changed}"


def test_sql_metacharacters_are_stored_and_found_as_plain_text(seeded: CrmService) -> None:
    nasty = 'Robert\'); DROP TABLE lead;-- 100% _x_ \\ "q"'
    lead = seeded.create_lead("T1", by="UBOB", name=nasty, company="O'Brien & Co")
    assert seeded.show("T1", lead.ref).record.name == nasty
    assert [hit.ref for hit in seeded.find("T1", "DROP TABLE")] == [lead.ref]
    for wildcard in ("%", "_", "\\", "'", "%_%"):
        hits = seeded.find("T1", wildcard)
        assert all(wildcard in hit.name for hit in hits), (wildcard, hits)
    assert seeded.find("T1", "' OR '1'='1") == ()
    assert seeded.show("T1", "L-1").record.name == "Ana Lima"


# --- CSV import: the same cleaning as every other way in ----------------------------------

IMPORT_COLUMNS = {
    "leads": ["name", "company", "email", "phone", "source", "status", "score", "owner"],
    "contacts": ["name", "email", "phone", "title", "account"],
    "accounts": ["name", "domain", "industry", "size", "region"],
    "deals": ["name", "amount", "currency", "stage", "account", "close date", "probability"],
}
CELL = hostile_text.map(lambda t: t[:300]) | st.sampled_from(["", "50k", "2026-12-01", "12"])


@SQLITE
@budget("csv import", 300)
@given(data=st.data())
def test_any_csv_row_is_imported_clean_or_rejected_with_a_reason(
    seeded: CrmService, db: Database, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(sorted(IMPORT_COLUMNS)), label="kind")
    header = data.draw(st.lists(st.sampled_from(IMPORT_COLUMNS[kind]), min_size=1, unique=True))
    rows = data.draw(
        st.lists(st.lists(CELL, min_size=len(header), max_size=len(header)), max_size=4)
    )
    path = tmp_path_factory.mktemp("csv") / f"{kind}.csv"
    with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    before = snapshot(db)
    problem: CsvProblem | None = None
    try:
        summary = import_csv(db, "T1", Kind(kind), path)
    except CsvProblem as error:  # a file-level problem: said, and nothing written
        problem = error
    if problem is not None:
        assert str(problem).strip()
        assert not changed_tables(before, snapshot(db))
        return
    # Blank rows are skipped; every other row is counted once.
    assert summary.imported + summary.updated + summary.duplicates + summary.rejected <= len(rows)
    assert all(reason.strip() for _, reason in summary.first_rejects)
    for (name,) in _names(db):
        assert name == clean_text(name, field="name", max_len=len(name) + 1), repr(name)


def _names(db: Database) -> list[tuple[str]]:
    with db.read() as session:
        return [
            (name,)
            for model in (Lead, Contact, Account, Deal)
            for name in session.scalars(select(model.name))
        ]


@pytest.mark.parametrize("by", ["\x00", "U" * 40, "bob", ""])
def test_an_actor_that_is_not_a_slack_user_is_refused_before_any_query(
    seeded: CrmService, db: Database, by: str
) -> None:
    before = snapshot(db)
    for verb in (
        lambda: seeded.undo("T1", by=by),
        lambda: seeded.create_lead("T1", by=by, name="Ana"),
        lambda: seeded.tasks("T1", owner_id=by),
        lambda: seeded.find_records("T1", by="UBOB", text="ana", owner_id=by),
    ):
        with pytest.raises(CrmError):
            verb()
    assert not changed_tables(before, snapshot(db))
