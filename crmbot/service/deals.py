"""Deals: create, move through the pipeline, close; lead conversion; the pipeline summary."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, literal, select, update
from sqlalchemy.orm import Session

from crmbot.domain import (
    ConversionView,
    DealStatus,
    DealView,
    InvalidInput,
    LeadStatus,
    Money,
    PipelineView,
    RecordKind,
    StageKind,
    StageSummary,
)
from crmbot.parsing import clean_text
from crmbot.service import present, privacy
from crmbot.service.base import optional_user
from crmbot.service.records import RecordService, clean_field
from crmbot.store import queries
from crmbot.store.models import (
    Account,
    Contact,
    Deal,
    FollowUp,
    Interaction,
    Lead,
    Stage,
    StageHistory,
    Workspace,
)

CURRENCY_EXAMPLE = "USD, EUR, GBP"


def _currency(value: str | None, default: str) -> str:
    code = (value or default).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise InvalidInput(
            "currency", f'"{value}" is not a currency code.', example=CURRENCY_EXAMPLE
        )
    return code


def _amount(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, Decimal):
        raise InvalidInput("amount", "The amount must be a number.", example="50k")
    if value < 0 or value > Decimal(10) ** 13:
        raise InvalidInput("amount", "The amount must be between 0 and 10 trillion.", example="50k")
    return value.quantize(Decimal("0.01"))


class DealService(RecordService):
    def create_deal(
        self,
        ws: str,
        *,
        by: str,
        name: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        stage: str | None = None,
        about: str | None = None,
        close_date: date | None = None,
        owner_id: str | None = None,
        probability: int | None = None,
    ) -> DealView:
        """Open a deal, optionally for a contact, account or lead (`about`: reference or name)."""
        with self._db.write() as session:
            account: Account | None = None
            contact: Contact | None = None
            lead: Lead | None = None
            if about:
                record = queries.resolve(session, ws, about)
                if isinstance(record, Deal):
                    raise InvalidInput(
                        "for", "A deal can't be for another deal.", example="for C-7"
                    )
                if isinstance(record, Contact):
                    contact = record
                    account = session.get(Account, record.account_id) if record.account_id else None
                elif isinstance(record, Account):
                    account = record
                elif isinstance(record, Lead):
                    lead = record
            deal = self._new_deal(
                session,
                ws,
                by=by,
                name=name,
                amount=amount,
                currency=currency,
                stage=stage,
                account=account,
                contact=contact,
                lead=lead,
                owner_id=owner_id,
                close_date=close_date,
                probability=probability,
            )
            return self._deal_view(session, deal)

    def _new_deal(
        self,
        session: Session,
        ws: str,
        *,
        by: str,
        name: str,
        amount: Decimal | None,
        currency: str | None,
        stage: str | None,
        account: Account | None,
        contact: Contact | None,
        lead: Lead | None,
        owner_id: str | None,
        close_date: date | None = None,
        probability: int | None = None,
    ) -> Deal:
        self.ensure_rep_row(session, ws, by)
        workspace = session.get(Workspace, ws)
        assert workspace is not None
        target = (
            queries.stage_named(session, ws, stage) if stage else queries.stages(session, ws)[0]
        )
        if target.kind != StageKind.OPEN.value:
            raise InvalidInput(
                "stage", "A new deal starts in an open stage.", example="Prospecting"
            )
        now = self._now()
        deal = Deal(
            workspace_id=ws,
            number=queries.next_number(session, ws, RecordKind.DEAL),
            name=clean_field("name", name),
            amount=_amount(amount),
            currency=_currency(currency, workspace.default_currency),
            stage_id=target.id,
            probability=clean_field("probability", probability),
            close_date=close_date,
            owner_id=owner_id or by,
            status=DealStatus.OPEN.value,
            account_id=account.id if account else None,
            contact_id=contact.id if contact else None,
            lead_id=lead.id if lead else None,
            created_at=now,
            updated_at=now,
        )
        self._created(session, ws, by, deal)
        session.add(
            StageHistory(
                workspace_id=ws,
                deal_id=deal.id,
                from_stage_id=None,
                to_stage_id=target.id,
                at=now,
                by=by,
            )
        )
        return deal

    def _deal_view(self, session: Session, deal: Deal) -> DealView:
        view = present.record_view(session, deal)
        assert isinstance(view, DealView)
        return view

    def move_deal(
        self, ws: str, ref: str, stage: str, *, by: str, reason: str | None = None
    ) -> DealView:
        """Move a deal to a stage (fuzzy name); moving to Won or Lost closes it."""
        with self._db.write() as session:
            deal = queries.resolve(session, ws, ref, kinds=(RecordKind.DEAL,))
            self._require_can_change(session, ws, by, deal, "move")
            target = queries.stage_named(session, ws, stage)
            self._move(session, ws, deal, target, by=by, reason=reason)
            return self._deal_view(session, deal)

    def close_deal(
        self, ws: str, ref: str, *, by: str, won: bool, reason: str | None = None
    ) -> DealView:
        """Close a deal won, or lost with a reason."""
        with self._db.write() as session:
            deal = queries.resolve(session, ws, ref, kinds=(RecordKind.DEAL,))
            self._require_can_change(session, ws, by, deal, "close")
            kind = StageKind.WON if won else StageKind.LOST
            target = next(s for s in queries.stages(session, ws) if s.kind == kind.value)
            self._move(session, ws, deal, target, by=by, reason=reason)
            return self._deal_view(session, deal)

    def _move(
        self, session: Session, ws: str, deal: Deal, target: Stage, *, by: str, reason: str | None
    ) -> None:
        ref = queries.ref_of(RecordKind.DEAL, deal.number)
        if deal.stage_id == target.id:
            raise InvalidInput("stage", f"{ref} is already in {target.name}.")
        before = queries.snapshot(deal)
        now = self._now()
        if target.kind == StageKind.LOST.value:
            why = clean_text(reason or "", field="reason", max_len=500)
            if not why:
                raise InvalidInput(
                    "reason",
                    f"Say why {ref} was lost.",
                    example=f"/crm lost {ref} went with a competitor",
                )
            deal.lost_reason = why
        else:
            deal.lost_reason = None
        deal.status = (
            DealStatus.WON
            if target.kind == StageKind.WON.value
            else DealStatus.LOST
            if target.kind == StageKind.LOST.value
            else DealStatus.OPEN
        ).value
        deal.closed_at = now if deal.status != DealStatus.OPEN.value else None
        session.add(
            StageHistory(
                workspace_id=ws,
                deal_id=deal.id,
                from_stage_id=deal.stage_id,
                to_stage_id=target.id,
                at=now,
                by=by,
            )
        )
        deal.stage_id = target.id
        deal.updated_at = now
        self._index(session, deal)
        action = {"won": "won", "lost": "lost"}.get(deal.status, "move")
        self._audit(session, ws, by, action, deal, before)

    def pipeline(
        self, ws: str, *, owner_id: str | None = None, by: str | None = None
    ) -> PipelineView:
        """Open deals by stage: count, amount and weighted amount, per currency; amounts
        restricted from `by` (deals they don't own) are counted but not summed."""
        owner_id = optional_user(owner_id)
        with self._db.read() as session:
            pipeline = [s for s in queries.stages(session, ws) if s.kind == StageKind.OPEN.value]
            probability = func.coalesce(Deal.probability, Stage.probability)
            mask = privacy.viewer(session, ws, by).masks_amounts
            amount: Any = Deal.amount
            hidden: Any = literal(0)
            if mask is not None:
                amount = case((Deal.owner_id == mask, Deal.amount), else_=None)
                hidden = case((and_(Deal.amount.is_not(None), amount.is_(None)), 1), else_=0)
            stmt = (
                select(
                    Deal.stage_id,
                    Deal.currency,
                    func.count(),
                    func.sum(amount),
                    func.sum(amount * probability),
                    func.sum(hidden),
                )
                .join(Stage, Stage.id == Deal.stage_id)
                .where(
                    Deal.workspace_id == ws,
                    Deal.status == DealStatus.OPEN.value,
                    Deal.deleted_at.is_(None),
                )
                .group_by(Deal.stage_id, Deal.currency)
            )
            if owner_id:
                stmt = stmt.where(Deal.owner_id == owner_id)
            counts: dict[int, int] = defaultdict(int)
            amounts: dict[int, dict[str, Decimal]] = defaultdict(dict)
            weighted: dict[int, dict[str, Decimal]] = defaultdict(dict)
            left_out = 0
            for stage_id, currency, count, total, weighted_sum, masked in session.execute(stmt):
                counts[stage_id] += int(count)
                left_out += int(masked or 0)
                if total is not None:
                    amounts[stage_id][currency] = Decimal(total).quantize(Decimal("0.01"))
                    weighted[stage_id][currency] = (Decimal(weighted_sum) / 100).quantize(
                        Decimal("0.01")
                    )
            rows = tuple(
                StageSummary(
                    stage=s.name,
                    probability=s.probability,
                    count=counts.get(s.id, 0),
                    amounts=_monies(amounts.get(s.id, {})),
                    weighted=_monies(weighted.get(s.id, {})),
                )
                for s in pipeline
            )
            return PipelineView(
                owner_id=owner_id,
                stages=rows,
                totals=_sum_monies(r.amounts for r in rows),
                weighted_totals=_sum_monies(r.weighted for r in rows),
                hidden_amounts=left_out,
            )

    # --- conversion ---------------------------------------------------------

    def convert_lead(
        self,
        ws: str,
        ref: str,
        *,
        by: str,
        account_name: str | None = None,
        deal_name: str | None = None,
        amount: Decimal | None = None,
        currency: str | None = None,
        stage: str | None = None,
        into_contact: str | None = None,
    ) -> ConversionView:
        """Turn a lead into a contact (+ account found or created, + optional deal).

        With `into_contact` (a contact's reference: the duplicate guard's Merge), the lead
        becomes that existing contact instead of a new one: the contact keeps its values and
        takes the lead's where it has none; its account is kept unless another is named."""
        with self._db.write() as session:
            lead = queries.resolve(session, ws, ref, kinds=(RecordKind.LEAD,))
            assert isinstance(lead, Lead)
            self._require_can_change(session, ws, by, lead, "convert")
            if lead.status == LeadStatus.CONVERTED.value:
                raise InvalidInput(
                    "lead", f"{queries.ref_of(RecordKind.LEAD, lead.number)} is already converted."
                )
            existing: Contact | None = None
            if into_contact:
                found = queries.resolve(session, ws, into_contact, kinds=(RecordKind.CONTACT,))
                assert isinstance(found, Contact)
                self._require_can_change(session, ws, by, found, "edit")
                existing = found
            before = queries.snapshot(lead)
            company = account_name or lead.company
            if existing is not None and existing.account_id and not account_name:
                account, account_created = session.get(Account, existing.account_id), False
            else:
                account, account_created = self._account_for(
                    session, ws, by=by, name=company, email=lead.email
                )
            if existing is not None:
                contact = existing
                self._merge_lead_into(session, ws, by, lead, contact, account)
            else:
                contact = self._new_contact(
                    session,
                    ws,
                    by=by,
                    account=account,
                    name=lead.name,
                    email=lead.email,
                    phone=lead.phone,
                    title=None,
                    source=lead.source,
                    owner_id=lead.owner_id,
                )
            deal: Deal | None = None
            if deal_name:
                deal = self._new_deal(
                    session,
                    ws,
                    by=by,
                    name=deal_name,
                    amount=amount,
                    currency=currency,
                    stage=stage,
                    account=account,
                    contact=contact,
                    lead=lead,
                    owner_id=lead.owner_id,
                )
            # Everything logged on the lead follows it to what it became.
            moved = {
                "contact_id": contact.id,
                "account_id": account.id if account else None,
            }
            if deal is not None:
                moved["deal_id"] = deal.id
            for model in (Interaction, FollowUp):
                session.execute(
                    update(model)
                    .where(model.workspace_id == ws, model.lead_id == lead.id)
                    .values(**{k: v for k, v in moved.items() if v is not None})
                )
            lead.status = LeadStatus.CONVERTED.value
            lead.converted_contact_id = contact.id
            lead.converted_account_id = account.id if account else None
            lead.converted_deal_id = deal.id if deal else None
            lead.updated_at = self._now()
            self._index(session, lead)
            self._audit(session, ws, by, "convert", lead, before)
            contact_account = account  # a merged contact may keep another account
            if contact.account_id != (account.id if account else None):
                contact_account = session.get(Account, contact.account_id)
            deal_view: DealView | None = None
            if deal is not None:
                deal_view = self._deal_view(session, deal)
            return ConversionView(
                lead=present.lead_view(lead, session),
                contact=present.contact_view(contact, contact_account),
                account=present.account_view(account) if account else None,
                deal=deal_view,
                account_created=account_created,
            )

    def _merge_lead_into(
        self,
        session: Session,
        ws: str,
        by: str,
        lead: Lead,
        contact: Contact,
        account: Account | None,
    ) -> None:
        """The existing contact takes the lead's details it lacks (an audited update)."""
        before = queries.snapshot(contact)
        for key in ("email", "phone", "source"):
            if not getattr(contact, key) and getattr(lead, key):
                setattr(contact, key, getattr(lead, key))
        if contact.account_id is None and account is not None:
            contact.account_id = account.id
        if queries.snapshot(contact) != before:
            contact.updated_at = self._now()
            self._index(session, contact)
            self._audit(session, ws, by, "update", contact, before)


def _monies(by_currency: dict[str, Decimal]) -> tuple[Money, ...]:
    return tuple(Money(amount, currency) for currency, amount in sorted(by_currency.items()))


def _sum_monies(groups: Any) -> tuple[Money, ...]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for group in groups:
        for money in group:
            totals[money.currency] += money.amount
    return _monies(dict(totals))
