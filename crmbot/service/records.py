"""Leads, contacts and accounts: capture, update, assign, convert, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crmbot.domain import (
    AccountView,
    ContactView,
    InvalidInput,
    LeadStatus,
    LeadView,
    RecordKind,
    RecordView,
    Role,
)
from crmbot.parsing import clean_text, email_domain, parse_email, parse_phone
from crmbot.service import present
from crmbot.service.workspace import WorkspaceService
from crmbot.store import queries
from crmbot.store.models import Account, Contact, Deal, Lead

NAME_MAX = 200
TEXT_MAX = 200

# Per kind: which fields `update` may change, and how each is cleaned.
UPDATABLE: dict[RecordKind, frozenset[str]] = {
    RecordKind.LEAD: frozenset({"name", "company", "email", "phone", "source", "status", "score"}),
    RecordKind.CONTACT: frozenset({"name", "email", "phone", "title", "source"}),
    RecordKind.ACCOUNT: frozenset({"name", "domain", "industry", "size", "region"}),
    RecordKind.DEAL: frozenset({"name", "close_date", "probability"}),
}


@dataclass(frozen=True)
class Assigned:
    record: RecordView | None
    ref: str
    name: str
    previous_owner: str | None
    owner_id: str


def clean_field(field: str, value: Any) -> Any:
    """Validate and normalize one user-supplied field."""
    if value is None:
        return None
    if field == "name":
        return clean_text(str(value), field="name", max_len=NAME_MAX, required=True)
    if field == "email":
        raw = clean_text(str(value), field="email", max_len=320)
        if not raw:
            return None
        email = parse_email(raw)
        if email is None:
            raise InvalidInput("email", f'"{raw}" is not an email address.', example="ana@acme.com")
        return email
    if field == "phone":
        raw = clean_text(str(value), field="phone", max_len=50)
        if not raw:
            return None
        phone = parse_phone(raw)
        if phone is None:
            raise InvalidInput(
                "phone", f'"{raw}" is not a phone number.', example="+1 415 555 0100"
            )
        return phone
    if field == "domain":
        raw = clean_text(str(value), field="domain", max_len=253).lower()
        raw = (
            raw.removeprefix("https://").removeprefix("http://").removeprefix("www.").split("/")[0]
        )
        if raw and ("." not in raw or " " in raw):
            raise InvalidInput("domain", f'"{raw}" is not a web domain.', example="acme.com")
        return raw or None
    if field == "source":
        return clean_text(str(value), field="source", max_len=50).lower() or None
    if field == "status":
        try:
            return LeadStatus(str(value).strip().lower()).value
        except ValueError:
            names = ", ".join(s.value for s in LeadStatus)
            raise InvalidInput(
                "status", f'"{value}" is not a lead status.', example=names
            ) from None
    if field in ("score", "size", "probability"):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise InvalidInput(field, f"{field} must be a whole number.", example="50") from None
        top = 100 if field in ("score", "probability") else 10_000_000
        if not 0 <= number <= top:
            raise InvalidInput(field, f"{field} must be between 0 and {top}.", example="50")
        return number
    if field == "close_date":
        return value
    return clean_text(str(value), field=field, max_len=TEXT_MAX) or None


class RecordService(WorkspaceService):
    # --- leads --------------------------------------------------------------

    def create_lead(
        self,
        ws: str,
        *,
        by: str,
        name: str,
        company: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        source: str | None = None,
        owner_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> LeadView:
        """Capture a new lead, owned by whoever captured it unless told otherwise."""
        fields = {
            "name": clean_field("name", name),
            "company": clean_field("company", company),
            "email": clean_field("email", email),
            "phone": clean_field("phone", phone),
            "source": clean_field("source", source),
        }
        with self._db.write() as session:
            self.ensure_rep_row(session, ws, by)
            owner = owner_id or by
            self.ensure_rep_row(session, ws, owner)
            now = self._now()
            lead = Lead(
                workspace_id=ws,
                number=queries.next_number(session, ws, RecordKind.LEAD),
                owner_id=owner,
                status=LeadStatus.NEW.value,
                score=0,
                created_at=now,
                updated_at=now,
                extra=extra,
                **fields,
            )
            self._created(session, ws, by, lead)
            return present.lead_view(lead)

    # --- accounts and contacts ---------------------------------------------

    def create_account(
        self,
        ws: str,
        *,
        by: str,
        name: str,
        domain: str | None = None,
        industry: str | None = None,
        size: int | None = None,
        region: str | None = None,
        owner_id: str | None = None,
    ) -> AccountView:
        """Create a company record."""
        with self._db.write() as session:
            account = self._new_account(
                session,
                ws,
                by=by,
                name=name,
                domain=domain,
                industry=industry,
                size=size,
                region=region,
                owner_id=owner_id,
            )
            return present.account_view(account)

    def _new_account(self, session: Session, ws: str, *, by: str, **given: Any) -> Account:
        fields = {key: clean_field(key, value) for key, value in given.items() if key != "owner_id"}
        self.ensure_rep_row(session, ws, by)
        now = self._now()
        account = Account(
            workspace_id=ws,
            number=queries.next_number(session, ws, RecordKind.ACCOUNT),
            owner_id=given.get("owner_id") or by,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self._created(session, ws, by, account)
        return account

    def create_contact(
        self,
        ws: str,
        *,
        by: str,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        title: str | None = None,
        account: str | None = None,
        owner_id: str | None = None,
        source: str | None = None,
    ) -> ContactView:
        """Create a person; `account` is an account reference or name (created if new)."""
        with self._db.write() as session:
            company, _ = self._account_for(session, ws, by=by, name=account, email=None)
            contact = self._new_contact(
                session,
                ws,
                by=by,
                account=company,
                name=name,
                email=email,
                phone=phone,
                title=title,
                source=source,
                owner_id=owner_id,
            )
            return present.contact_view(contact, company)

    def _new_contact(
        self, session: Session, ws: str, *, by: str, account: Account | None, **given: Any
    ) -> Contact:
        fields = {key: clean_field(key, value) for key, value in given.items() if key != "owner_id"}
        self.ensure_rep_row(session, ws, by)
        now = self._now()
        contact = Contact(
            workspace_id=ws,
            number=queries.next_number(session, ws, RecordKind.CONTACT),
            owner_id=given.get("owner_id") or by,
            account_id=account.id if account else None,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self._created(session, ws, by, contact)
        return contact

    def _account_for(
        self, session: Session, ws: str, *, by: str, name: str | None, email: str | None
    ) -> tuple[Account | None, bool]:
        """Find the account by reference, email domain or name; create it when new."""
        domain = email_domain(email) if email else None
        if domain and domain in FREE_MAIL:
            domain = None
        if domain:
            found = queries.account_by_domain(session, ws, domain)
            if found is not None:
                return found, False
        if not name:
            return None, False
        from crmbot.parsing import parse_ref

        ref = parse_ref(name)
        if ref is not None:
            found_ref = queries.resolve(session, ws, name, kinds=(RecordKind.ACCOUNT,))
            assert isinstance(found_ref, Account)
            return found_ref, False
        by_name = queries.account_named(session, ws, name)
        if by_name is not None:
            return by_name, False
        return self._new_account(session, ws, by=by, name=name, domain=domain), True

    # --- any record ---------------------------------------------------------

    def update(self, ws: str, ref: str, *, by: str, **changes: Any) -> RecordView:
        """Change fields of a lead, contact, account or deal."""
        with self._db.write() as session:
            record = queries.resolve(session, ws, ref)
            self._require_can_change(session, ws, by, record, "edit")
            kind = queries.kind_of(record)
            unknown = set(changes) - UPDATABLE[kind]
            if unknown:
                raise InvalidInput(
                    sorted(unknown)[0],
                    f"A {kind.label} has no field {sorted(unknown)[0]!r} to change.",
                    example=", ".join(sorted(UPDATABLE[kind])),
                )
            cleaned = {key: clean_field(key, value) for key, value in changes.items()}
            columns = type(record).__table__.c
            for key, value in cleaned.items():
                if value is None and not columns[key].nullable:
                    label = key.replace("_", " ").capitalize()
                    raise InvalidInput(key, f"{label} can't be empty.")
            before = queries.snapshot(record)
            for key, value in cleaned.items():
                setattr(record, key, value)
            record.updated_at = self._now()
            self._index(session, record)
            self._audit(session, ws, by, "update", record, before)
            return present.record_view(session, record)

    def assign(self, ws: str, ref: str, owner_id: str, *, by: str) -> Assigned:
        """Give a record or follow-up to another owner."""
        with self._db.write() as session:
            self.ensure_rep_row(session, ws, by)
            self.ensure_rep_row(session, ws, owner_id)
            record = (
                queries.resolve(session, ws, ref, kinds=(*queries.SEARCHABLE,))
                if not _is_task(ref)
                else queries.by_ref(session, ws, _task_ref(ref))
            )
            self._require_can_change(session, ws, by, record, "reassign")
            before = queries.snapshot(record)
            previous = record.owner_id
            record.owner_id = owner_id
            kind = queries.kind_of(record)
            if kind is not RecordKind.FOLLOW_UP:
                record.updated_at = self._now()
                queries.touch_search_owner(session, ws, kind, record.id, owner_id)
            name = record.title if kind is RecordKind.FOLLOW_UP else record.name
            self._audit(session, ws, by, "assign", record, before)
            view = None if kind is RecordKind.FOLLOW_UP else present.record_view(session, record)
            return Assigned(view, queries.ref_of(kind, record.number), name, previous, owner_id)

    def delete(self, ws: str, ref: str, *, by: str) -> RecordView:
        """Admins: soft-delete a record (restore brings it back)."""
        return self._set_deleted(ws, ref, by=by, deleted=True)

    def restore(self, ws: str, ref: str, *, by: str) -> RecordView:
        """Admins: bring back a deleted record."""
        return self._set_deleted(ws, ref, by=by, deleted=False)

    def _set_deleted(self, ws: str, ref: str, *, by: str, deleted: bool) -> RecordView:
        from crmbot.parsing import parse_ref

        with self._db.write() as session:
            self._require_role(session, ws, by, Role.ADMIN, "delete or restore records")
            parsed = parse_ref(ref)
            if deleted or parsed is None:
                record = queries.resolve(session, ws, ref)
            else:
                record = queries.by_ref(session, ws, parsed, with_deleted=True)
            before = queries.snapshot(record)
            record.deleted_at = self._now() if deleted else None
            record.updated_at = self._now()
            self._index(session, record)
            self._audit(session, ws, by, "delete" if deleted else "restore", record, before)
            return present.record_view(session, record)

    # --- shared helpers -----------------------------------------------------

    def _created(self, session: Session, ws: str, by: str, record: Any) -> None:
        """Add a new record, index it for search and write its `create` event."""
        session.add(record)
        self._index(session, record)
        queries.add_event(
            session,
            ws=ws,
            at=self._now(),
            actor=by,
            action="create",
            record=record,
            before=None,
            after=queries.snapshot(record),
        )

    def _index(self, session: Session, record: Any) -> None:
        queries.index_record(session, record, detail=_detail(session, record), extra=_extra(record))

    def _audit(
        self, session: Session, ws: str, by: str, action: str, record: Any, before: dict[str, Any]
    ) -> None:
        old, new = queries.diff(before, queries.snapshot(record))
        queries.add_event(
            session,
            ws=ws,
            at=self._now(),
            actor=by,
            action=action,
            record=record,
            before=old,
            after=new,
        )


FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
    }
)


def _is_task(ref: str) -> bool:
    from crmbot.parsing import parse_ref

    parsed = parse_ref(ref)
    return parsed is not None and parsed.kind is RecordKind.FOLLOW_UP


def _task_ref(ref: str) -> Any:
    from crmbot.parsing import parse_ref

    return parse_ref(ref)


def _extra(record: Any, hidden: frozenset[str] = frozenset()) -> list[str | None]:
    """The text search matches besides the name (`hidden`: restricted fields left out)."""
    email = None if "email" in hidden else getattr(record, "email", None)
    phone = None if "phone" in hidden else getattr(record, "phone", None)
    if isinstance(record, Lead):
        return [record.company, email, phone, record.source]
    if isinstance(record, Contact):
        return [email, phone, record.title]
    if isinstance(record, Account):
        return [record.domain, record.industry, record.region]
    return []


def _detail(session: Session, record: Any, hidden: frozenset[str] = frozenset()) -> str:
    """A short second line for pick-lists and search results (`hidden`: fields left out)."""
    email = None if "email" in hidden else getattr(record, "email", None)
    if isinstance(record, Lead):
        parts = [record.company, email, record.status]
    elif isinstance(record, Contact):
        account = session.get(Account, record.account_id) if record.account_id else None
        parts = [record.title, account.name if account else None, email]
    elif isinstance(record, Account):
        parts = [record.domain, record.industry, record.region]
    elif isinstance(record, Deal):
        from crmbot.parsing import format_money
        from crmbot.store.models import Stage

        stage = session.get(Stage, record.stage_id)
        amount = (
            format_money(record.amount, record.currency)
            if record.amount is not None and "amount" not in hidden
            else None
        )
        parts = [
            stage.name if stage else None,
            amount,
            record.status if record.status != "open" else None,
        ]
    else:
        parts = []
    return " · ".join(p for p in parts if p)
