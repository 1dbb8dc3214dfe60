"""One CSV row into a record's values: the checks the service makes (`clean_field`), the
formats other CRMs export (statuses, stages, dates, employee ranges), owners by name, email or
user id, and the keys rows are matched by. Mixed into the Importer, which loads the lookups.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from rapidfuzz import fuzz

from crmbot.csvfile import ImportSummary, Rejected
from crmbot.csvmap import (
    STAGE_ALIASES,
    Kind,
    header_key,
    is_user_id,
    lead_status,
    parse_date,
    parse_size,
    parse_time,
)
from crmbot.domain import DealStatus, InvalidInput, RecordKind, StageKind
from crmbot.parsing import clean_text, parse_money, parse_ref
from crmbot.service.records import clean_field
from crmbot.store.bulk import fast_fold

RECORD_KIND = {
    Kind.LEADS: RecordKind.LEAD,
    Kind.CONTACTS: RecordKind.CONTACT,
    Kind.ACCOUNTS: RecordKind.ACCOUNT,
    Kind.DEALS: RecordKind.DEAL,
}
Stage = tuple[int, str, int, str]  # id, name, probability, kind


@dataclass
class Known:
    """Existing records of one kind: id by reference number and by match key."""

    by_number: dict[int, int] = field(default_factory=dict)
    name_of: dict[int, str] = field(default_factory=dict)  # id -> folded name
    by_key: dict[tuple[str, ...], int] = field(default_factory=dict)
    keyless: set[int] = field(default_factory=set)  # ids without email/domain (name matches)

    def add(self, record_id: int, number: int, name: str, keys: list[tuple[str, ...]]) -> None:
        self.by_number[number] = record_id
        self.name_of[record_id] = fast_fold(name)
        for key in keys:
            self.by_key.setdefault(key, record_id)


def email_key(email: str | None) -> tuple[str, ...] | None:
    return ("email", email.lower()) if email else None


@dataclass
class Row:
    """One row, cleaned: the record's column values plus what it links to."""

    line: int
    cells: list[str]
    values: dict[str, Any]
    number: int | None = None  # an explicit crmbot reference
    keys: list[tuple[str, ...]] = field(default_factory=list)  # strongest first
    strong: bool = True  # keys[0] is an email/domain (not a name)
    account_name: str | None = None
    account_key: str = ""  # the account name folded: how accounts are found by name
    links: dict[str, Any] = field(default_factory=dict)


def _whole(text: str | None) -> str | None:
    """ "12.0" (how spreadsheets write whole numbers) as "12"; anything else unchanged."""
    if text is None:
        return None
    value = text.strip()
    whole, dot, zeros = value.partition(".")
    return whole if dot and whole.isdigit() and set(zeros) <= {"0"} else value


class RowCleaning:
    """Checks rows against the lookups the Importer loaded (declared here)."""

    kind: Kind
    now: datetime
    currency: str
    summary: ImportSummary
    owners: dict[str, str]
    accounts: Known
    contacts: Known
    contact_emails: dict[str, int]
    contact_names: dict[str, list[int]]
    lead_numbers: dict[int, int]
    deal_numbers: dict[int, int]
    stages: list[Stage]

    def _ref_number(self, cells: list[str], columns: dict[int, str]) -> int | None:
        for index, name in columns.items():
            if name == "ref" and index < len(cells):
                ref = parse_ref(cells[index])
                if ref is not None and ref.kind is RECORD_KIND[self.kind]:
                    return ref.number
        return None

    def _clean(
        self, line: int, cells: list[str], header: list[str], columns: dict[int, str]
    ) -> Row:
        raw: dict[str, str] = {}
        extra: dict[str, str] = {}
        for index, cell in enumerate(cells):
            name = columns.get(index)
            value = cell.strip()
            if name is None:
                if value and index < len(header) and header[index]:
                    extra[header[index]] = cell
            elif value and not raw.get(name):
                raw[name] = cell
        try:
            row = Row(line, cells, {})
            row.number = self._ref_number(cells, columns) if "ref" in raw else None
            self._common(row, raw)
            {
                Kind.LEADS: self._lead,
                Kind.CONTACTS: self._contact,
                Kind.ACCOUNTS: self._account,
                Kind.DEALS: self._deal,
            }[self.kind](row, raw, extra)
        except InvalidInput as error:
            raise Rejected(f"{error.field}: {error.message}") from None
        return row

    def _common(self, row: Row, raw: dict[str, str]) -> None:
        values = row.values
        owner = raw.get("owner", "").strip()
        values["owner_id"] = self._owner(owner) if owner else None
        created = parse_time(raw.get("created_at", ""))
        values["created_at"] = created or self.now
        values["updated_at"] = parse_time(raw.get("updated_at", "")) or created or self.now

    def _owner(self, text: str) -> str | None:
        if is_user_id(text):
            return text
        found = self.owners.get(text.lower()) or self.owners.get(fast_fold(text))
        if found is None:
            self.summary.unknown_owners.add(text[:80])
        return found

    def _person(self, raw: dict[str, str]) -> tuple[str, str | None]:
        email = clean_field("email", raw.get("email"))
        name = raw.get("name") or " ".join(
            p.strip() for p in (raw.get("first_name"), raw.get("last_name")) if p and p.strip()
        )
        if not clean_text(name, field="name", max_len=10**9) and email:
            name = email
        return clean_field("name", name), email

    def _lead(self, row: Row, raw: dict[str, str], extra: dict[str, str]) -> None:
        name, email = self._person(raw)
        company = clean_field("company", raw.get("company"))
        values = row.values
        values.update(
            name=name,
            email=email,
            company=company,
            phone=clean_field("phone", raw.get("phone")),
            source=clean_field("source", raw.get("source")),
            status=lead_status(raw["status"]) if raw.get("status") else "new",
            score=clean_field("score", _whole(raw.get("score"))) or 0,
        )
        stored = {k: v for k, v in extra.items() if v.strip()}
        if raw.get("extra"):
            try:
                given = json.loads(raw["extra"])
            except ValueError:
                raise InvalidInput("extra", "extra is not JSON.") from None
            if not isinstance(given, dict):
                raise InvalidInput("extra", "extra must be a JSON object.")
            stored = {**given, **stored}
        values["extra"] = stored or None
        for name_, numbers, key in (
            ("converted_contact", self.contacts.by_number, "converted_contact_id"),
            ("converted_account", self.accounts.by_number, "converted_account_id"),
            ("converted_deal", self.deal_numbers, "converted_deal_id"),
        ):
            ref = parse_ref(raw.get(name_, ""))
            values[key] = numbers.get(ref.number) if ref is not None else None
        row.keys = [k for k in (email_key(email),) if k]
        row.strong = bool(email)
        row.keys.append(("name", fast_fold(name), fast_fold(company or "")))

    def _contact(self, row: Row, raw: dict[str, str], extra: dict[str, str]) -> None:
        name, email = self._person(raw)
        account = clean_field("name", raw["account"]) if raw.get("account") else None
        row.values.update(
            name=name,
            email=email,
            phone=clean_field("phone", raw.get("phone")),
            title=clean_field("title", raw.get("title")),
            source=clean_field("source", raw.get("source")),
        )
        ref = parse_ref(raw.get("account_ref", ""))
        row.links["account_id"] = self.accounts.by_number.get(ref.number) if ref else None
        row.account_name = account
        row.account_key = fast_fold(account) if account else ""
        row.keys = [k for k in (email_key(email),) if k]
        row.strong = bool(email)
        row.keys.append(("name", fast_fold(name), row.account_key))

    def _account(self, row: Row, raw: dict[str, str], extra: dict[str, str]) -> None:
        domain = clean_field("domain", raw.get("domain"))
        name = clean_field("name", raw.get("name") or domain or "")
        size = parse_size(raw["size"]) if raw.get("size") else None
        row.values.update(
            name=name,
            domain=domain,
            industry=clean_field("industry", raw.get("industry")),
            size=clean_field("size", size),
            region=clean_field("region", raw.get("region")),
        )
        row.keys = [("domain", domain)] if domain else []
        row.strong = bool(domain)
        row.keys.append(("name", fast_fold(name)))

    def _deal(self, row: Row, raw: dict[str, str], extra: dict[str, str]) -> None:
        values = row.values
        name = clean_field("name", raw.get("name"))
        if not name:
            raise InvalidInput("name", "A deal needs a name.")
        currency = (raw.get("currency") or "").strip().upper() or None
        if currency is not None and (len(currency) != 3 or not currency.isalpha()):
            raise InvalidInput("currency", f'"{currency}" is not a currency code.')
        amount: Decimal | None = None
        if raw.get("amount"):
            amount, parsed = parse_money(raw["amount"], currency or self.currency)
            currency = currency or parsed
        stage_id, stage_kind, status = self._stage_and_status(raw)
        probability = raw.get("probability", "").strip().rstrip("%").strip()
        account = clean_field("name", raw["account"]) if raw.get("account") else None
        closed = parse_time(raw.get("closed_at", ""))
        values.update(
            name=name,
            amount=amount,
            currency=currency or self.currency,
            stage_id=stage_id,
            probability=clean_field("probability", _whole(probability)) if probability else None,
            close_date=parse_date(raw["close_date"], "close_date")
            if raw.get("close_date")
            else None,
            status=status,
            lost_reason=clean_text(raw.get("lost_reason", ""), field="lost_reason", max_len=500)
            or None,
            closed_at=(closed or values["updated_at"]) if status != DealStatus.OPEN.value else None,
        )
        row.links["stage_kind"] = stage_kind
        account_ref = parse_ref(raw.get("account_ref", ""))
        row.links["account_id"] = (
            self.accounts.by_number.get(account_ref.number) if account_ref else None
        )
        row.account_name = account
        row.account_key = fast_fold(account) if account else ""
        row.links["contact_id"] = self._contact_for(raw)
        lead_ref = parse_ref(raw.get("lead_ref", ""))
        row.links["lead_id"] = self.lead_numbers.get(lead_ref.number) if lead_ref else None
        row.keys = [("name", fast_fold(name), row.account_key)]
        row.strong = False

    def _contact_for(self, raw: dict[str, str]) -> int | None:
        ref = parse_ref(raw.get("contact_ref", ""))
        if ref is not None and ref.number in self.contacts.by_number:
            return self.contacts.by_number[ref.number]
        text = raw.get("contact", "").strip()
        if not text:
            return None
        if "@" in text:
            return self.contact_emails.get(text.lower())
        ids = self.contact_names.get(fast_fold(text), [])
        return ids[0] if len(ids) == 1 else None  # two people of that name: leave it open

    def _stage_and_status(self, raw: dict[str, str]) -> tuple[int, str, str]:
        """The deal's stage and status. A won or lost deal (Pipedrive's status column) goes
        to the workspace's Won or Lost stage whatever stage it was in; an open deal needs an
        open stage (the first one when none is given)."""
        status = fast_fold(raw.get("status", "")) or None
        if status not in (None, "open", "won", "lost"):
            raise InvalidInput("status", f'"{raw["status"][:40]}" is not open, won or lost.')
        if status in ("won", "lost"):
            stage = next(s for s in self.stages if s[3] == status)
        elif raw.get("stage"):
            stage = self._stage(raw["stage"])
            if status == "open" and stage[3] != StageKind.OPEN.value:
                raise InvalidInput("stage", f"{stage[1]} is a closed stage but the deal is open.")
        else:
            stage = next(s for s in self.stages if s[3] == StageKind.OPEN.value)
        return stage[0], stage[3], stage[3]

    def _stage(self, text: str) -> tuple[int, str, int, str]:
        term = fast_fold(text)
        for hits in (
            [s for s in self.stages if fast_fold(s[1]) == term],
            [s for s in self.stages if fast_fold(s[1]).startswith(term)],
        ):
            if len(hits) == 1:
                return hits[0]
        alias = STAGE_ALIASES.get(header_key(text))
        if alias is not None:
            for stage in self.stages:
                if fast_fold(stage[1]) == fast_fold(alias):
                    return stage
        scored = sorted(
            ((fuzz.ratio(term, fast_fold(s[1])), s) for s in self.stages), key=lambda p: -p[0]
        )
        if (
            scored
            and scored[0][0] >= 70
            and (len(scored) == 1 or scored[0][0] - scored[1][0] >= 10)
        ):
            return scored[0][1]
        names = ", ".join(s[1] for s in self.stages)
        raise InvalidInput("stage", f'There is no stage "{text[:60]}" (stages: {names}).')
