"""`crmbot export KIND`: every live record of a kind as CSV, with every field.

The headers are the importer's own, so `crmbot import KIND` of an export into an empty
database gives back the same records: same references, owners, times and links (import
accounts, then contacts, leads and deals). Links are written as references (`account_ref`)
and, where a name helps people and other tools, as names too (`account`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from crmbot.csvmap import Kind
from crmbot.domain import RecordKind
from crmbot.service import privacy
from crmbot.store.db import Database
from crmbot.store.models import Account, Contact, Deal, Lead, Stage
from crmbot.store.queries import ref_of

COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.LEADS: (
        "ref",
        "name",
        "company",
        "email",
        "phone",
        "source",
        "status",
        "score",
        "owner",
        "created_at",
        "updated_at",
        "converted_contact",
        "converted_account",
        "converted_deal",
        "extra",
    ),
    Kind.CONTACTS: (
        "ref",
        "name",
        "email",
        "phone",
        "title",
        "account",
        "account_ref",
        "source",
        "owner",
        "created_at",
        "updated_at",
    ),
    Kind.ACCOUNTS: (
        "ref",
        "name",
        "domain",
        "industry",
        "size",
        "region",
        "owner",
        "created_at",
        "updated_at",
    ),
    Kind.DEALS: (
        "ref",
        "name",
        "amount",
        "currency",
        "stage",
        "probability",
        "close_date",
        "status",
        "lost_reason",
        "account",
        "account_ref",
        "contact",
        "contact_ref",
        "lead_ref",
        "owner",
        "created_at",
        "updated_at",
        "closed_at",
    ),
}
PAGE = 5000


def cell(value: Any) -> str:
    """One value as CSV text: ISO times and dates, plain decimals, JSON for dicts."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def _ref(kind: RecordKind, number: int | None) -> str | None:
    return ref_of(kind, number) if number is not None else None


def _rows(session: Session, ws: str, kind: Kind) -> Iterator[dict[str, Any]]:
    stmt: Any
    if kind == Kind.ACCOUNTS:
        for a in _paged(session, select(Account).where(Account.workspace_id == ws), Account):
            yield {
                "ref": ref_of(RecordKind.ACCOUNT, a.number),
                "name": a.name,
                "domain": a.domain,
                "industry": a.industry,
                "size": a.size,
                "region": a.region,
                "owner": a.owner_id,
                "created_at": a.created_at,
                "updated_at": a.updated_at,
            }
    elif kind == Kind.CONTACTS:
        stmt = (
            select(Contact, Account.number, Account.name)
            .outerjoin(Account, Account.id == Contact.account_id)
            .where(Contact.workspace_id == ws)
        )
        for c, account_number, account_name in _paged(session, stmt, Contact):
            yield {
                "ref": ref_of(RecordKind.CONTACT, c.number),
                "name": c.name,
                "email": c.email,
                "phone": c.phone,
                "title": c.title,
                "account": account_name,
                "account_ref": _ref(RecordKind.ACCOUNT, account_number),
                "source": c.source,
                "owner": c.owner_id,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
            }
    elif kind == Kind.LEADS:
        contact, account, deal = aliased(Contact), aliased(Account), aliased(Deal)
        stmt = (
            select(Lead, contact.number, account.number, deal.number)
            .outerjoin(contact, contact.id == Lead.converted_contact_id)
            .outerjoin(account, account.id == Lead.converted_account_id)
            .outerjoin(deal, deal.id == Lead.converted_deal_id)
            .where(Lead.workspace_id == ws)
        )
        for lead, contact_number, account_number, deal_number in _paged(session, stmt, Lead):
            yield {
                "ref": ref_of(RecordKind.LEAD, lead.number),
                "name": lead.name,
                "company": lead.company,
                "email": lead.email,
                "phone": lead.phone,
                "source": lead.source,
                "status": lead.status,
                "score": lead.score,
                "owner": lead.owner_id,
                "created_at": lead.created_at,
                "updated_at": lead.updated_at,
                "converted_contact": _ref(RecordKind.CONTACT, contact_number),
                "converted_account": _ref(RecordKind.ACCOUNT, account_number),
                "converted_deal": _ref(RecordKind.DEAL, deal_number),
                "extra": lead.extra,
            }
    else:
        contact, lead_ = aliased(Contact), aliased(Lead)
        stmt = (
            select(Deal, Stage.name, Account.number, Account.name, contact, lead_.number)
            .join(Stage, Stage.id == Deal.stage_id)
            .outerjoin(Account, Account.id == Deal.account_id)
            .outerjoin(contact, contact.id == Deal.contact_id)
            .outerjoin(lead_, lead_.id == Deal.lead_id)
            .where(Deal.workspace_id == ws)
        )
        for d, stage, account_number, account_name, person, lead_number in _paged(
            session, stmt, Deal
        ):
            yield {
                "ref": ref_of(RecordKind.DEAL, d.number),
                "name": d.name,
                "amount": d.amount,
                "currency": d.currency,
                "stage": stage,
                "probability": d.probability,
                "close_date": d.close_date,
                "status": d.status,
                "lost_reason": d.lost_reason,
                "account": account_name,
                "account_ref": _ref(RecordKind.ACCOUNT, account_number),
                "contact": person.name if person is not None else None,
                "contact_ref": _ref(RecordKind.CONTACT, person.number if person else None),
                "lead_ref": _ref(RecordKind.LEAD, lead_number),
                "owner": d.owner_id,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
                "closed_at": d.closed_at,
            }


def _paged(session: Session, stmt: Any, model: Any) -> Iterator[Any]:
    """Live records in reference order, a page at a time (keyset on the number)."""
    after = 0
    while True:
        page = session.execute(
            stmt.where(model.deleted_at.is_(None), model.number > after)
            .order_by(model.number)
            .limit(PAGE)
        ).all()
        for row in page:
            yield row[0] if len(row) == 1 else row
        if len(page) < PAGE:
            return
        first = page[-1][0]
        after = first.number


RECORD_KIND = {
    Kind.ACCOUNTS: RecordKind.ACCOUNT,
    Kind.CONTACTS: RecordKind.CONTACT,
    Kind.LEADS: RecordKind.LEAD,
    Kind.DEALS: RecordKind.DEAL,
}


def export_csv(
    db: Database, ws: str, kind: Kind, out: TextIO, *, as_user: str | None = None
) -> int:
    """Write the workspace's live records of `kind` to `out`; how many were written.

    The operator's export holds everything. With `as_user` (a Slack user id) it holds what
    that person may read: fields restricted from them are left empty (service/privacy.py).
    Interactions, and so private notes, are never exported."""
    writer = csv.writer(out)
    columns = COLUMNS[kind]
    writer.writerow(columns)
    written = 0
    with db.read() as session:
        who = privacy.viewer(session, ws, as_user)
        for row in _rows(session, ws, kind):
            hidden = who.hidden_fields(RECORD_KIND[kind], row.get("owner"))
            writer.writerow([cell(None if c in hidden else row[c]) for c in columns])
            written += 1
    return written
