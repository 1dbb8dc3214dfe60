"""Duplicate guard: find leads and contacts a new lead probably is, and merge into one."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmbot.domain import Candidate, InvalidInput, RecordKind, RecordView
from crmbot.parsing import email_domain, fold, parse_ref
from crmbot.service.activity import ActivityService
from crmbot.service.records import FREE_MAIL, UPDATABLE, clean_field
from crmbot.store import queries
from crmbot.store.models import Account, Contact, Lead

PEOPLE = (RecordKind.LEAD, RecordKind.CONTACT)
CLOSE_NAME = 85  # rapidfuzz score (0-100) from which two names count as the same person
MAX_DUPLICATES = 3
_SCAN = 50


def close_names(a: str, b: str) -> bool:
    """Whether two person names are probably the same (typos, word order, accents)."""
    left, right = fold(a), fold(b)
    if not left or not right:
        return False
    return left == right or max(fuzz.ratio(left, right), fuzz.token_sort_ratio(left, right)) >= (
        CLOSE_NAME
    )


def records_with_email(
    session: Session, ws: str, email: str, kinds: Sequence[RecordKind] = PEOPLE
) -> list[Lead | Contact]:
    """Live leads and contacts whose email is `email`, ignoring case, oldest first.

    Found through the search index (the address is in every record's search text), so it
    stays fast in big workspaces; the candidates are then compared exactly.
    """
    wanted = email.strip().lower()
    if not wanted:
        return []
    docs = queries.search(session, ws, wanted, kinds=kinds, limit=_SCAN)
    found = _load(session, docs)
    hits = [r for r in found if (r.email or "").lower() == wanted]
    return sorted(hits, key=lambda r: (r.created_at, r.id))


def _load(session: Session, docs: Iterable[Any]) -> list[Lead | Contact]:
    ids: dict[RecordKind, list[int]] = {RecordKind.LEAD: [], RecordKind.CONTACT: []}
    for doc in docs:
        kind = RecordKind(doc.kind)
        if kind in ids:
            ids[kind].append(doc.record_id)
    rows: list[Lead | Contact] = []
    if ids[RecordKind.LEAD]:
        rows += session.scalars(select(Lead).where(Lead.id.in_(ids[RecordKind.LEAD])))
    if ids[RecordKind.CONTACT]:
        rows += session.scalars(select(Contact).where(Contact.id.in_(ids[RecordKind.CONTACT])))
    return [r for r in rows if r.deleted_at is None]


def _company_of(session: Session, record: Lead | Contact) -> str:
    if isinstance(record, Lead):
        return fold(record.company or "")
    account = session.get(Account, record.account_id) if record.account_id else None
    return fold(account.name) if account else ""


class DuplicateService(ActivityService):
    def find_duplicates(
        self,
        ws: str,
        *,
        name: str | None,
        email: str | None = None,
        company: str | None = None,
    ) -> tuple[Candidate, ...]:
        """Leads and contacts a new lead probably is: the same email, or a close name at the
        same company (same non-free email domain, or the same company name). Best first."""
        clean_name = clean_field("name", name) if name else ""
        clean_email = clean_field("email", email) if email else None
        clean_company = fold(clean_field("company", company) or "") if company else ""
        domain = email_domain(clean_email) if clean_email else ""
        if domain in FREE_MAIL:
            domain = ""
        with self._db.read() as session:
            found: dict[tuple[RecordKind, int], Lead | Contact] = {}
            if clean_email:
                for record in records_with_email(session, ws, clean_email):
                    found.setdefault((queries.kind_of(record), record.id), record)
            if clean_name and (domain or clean_company):
                near: list[Lead | Contact] = []
                if domain:
                    near += _load(session, queries.search(session, ws, "@" + domain, limit=_SCAN))
                if clean_company:
                    near += _load(session, queries.search(session, ws, clean_company, limit=_SCAN))
                    near += _load(session, queries.search(session, ws, clean_name, limit=_SCAN))
                for record in near:
                    same_place = (domain and email_domain(record.email or "") == domain) or (
                        clean_company and _company_of(session, record) == clean_company
                    )
                    if same_place and close_names(clean_name, record.name):
                        found.setdefault((queries.kind_of(record), record.id), record)
            ranked = sorted(
                found.values(),
                key=lambda r: (
                    not (clean_email and (r.email or "").lower() == clean_email.lower()),
                    isinstance(r, Lead),  # a contact is the better record to keep
                    r.id,
                ),
            )
            return tuple(
                Candidate(
                    ref=queries.ref_of(queries.kind_of(r), r.number),
                    kind=queries.kind_of(r),
                    name=r.name,
                    detail=_detail(session, r),
                )
                for r in ranked[:MAX_DUPLICATES]
            )

    def merge_into(self, ws: str, ref: str, *, by: str, **given: str | None) -> RecordView:
        """Fold a would-be new lead into an existing lead or contact: every non-empty field
        given replaces the record's value (fields the record doesn't have are skipped)."""
        kind = _kind_of_ref(ref)
        allowed = UPDATABLE[kind]
        changes = {
            key: value
            for key, value in given.items()
            if key in allowed and value is not None and str(value).strip()
        }
        if not changes:
            return self.show(ws, ref).record
        # Compare cleaned values so merging "ana@ACME.com" into "ana@acme.com" changes nothing.
        current = self.show(ws, ref).record
        changes = {
            key: value
            for key, value in changes.items()
            if _same(key, clean_field(key, value)) != _same(key, getattr(current, key, None))
        }
        if not changes:
            return current
        return self.update(ws, ref, by=by, **changes)


def _same(field: str, value: Any) -> Any:
    """What counts as the same value: emails ignore case."""
    return value.lower() if field == "email" and isinstance(value, str) else value


def _kind_of_ref(ref: str) -> RecordKind:
    parsed = parse_ref(ref)
    if parsed is None or parsed.kind not in PEOPLE:
        raise InvalidInput("record", f'"{ref}" is not a lead or contact reference.', example="L-3")
    return parsed.kind


def _detail(session: Session, record: Lead | Contact) -> str:
    if isinstance(record, Lead):
        parts = [record.company, record.email, record.status]
    else:
        account = session.get(Account, record.account_id) if record.account_id else None
        parts = [record.title, account.name if account else None, record.email]
    return " · ".join(p for p in parts if p)
