"""ORM rows -> frozen views, with related rows loaded in bulk (no lazy loads)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from crmbot.domain import (
    AccountView,
    ContactView,
    DealStatus,
    DealView,
    FollowUpStatus,
    FollowUpView,
    InteractionKind,
    InteractionView,
    LeadStatus,
    LeadView,
    Money,
    RecordKind,
    RecordView,
)
from crmbot.service.privacy import Viewer, redact_interaction
from crmbot.store import queries
from crmbot.store.models import Account, Contact, Deal, FollowUp, Interaction, Lead, Stage
from crmbot.store.queries import ref_of


def lead_view(lead: Lead, session: Session | None = None) -> LeadView:
    converted: list[str] = []
    if session is not None:
        targets: list[tuple[RecordKind, Contact | Account | Deal | None]] = [
            (RecordKind.CONTACT, _get(session, Contact, lead.converted_contact_id)),
            (RecordKind.ACCOUNT, _get(session, Account, lead.converted_account_id)),
            (RecordKind.DEAL, _get(session, Deal, lead.converted_deal_id)),
        ]
        converted = [ref_of(kind, row.number) for kind, row in targets if row is not None]
    return LeadView(
        ref=ref_of(RecordKind.LEAD, lead.number),
        name=lead.name,
        company=lead.company,
        email=lead.email,
        phone=lead.phone,
        source=lead.source,
        status=LeadStatus(lead.status),
        score=lead.score,
        owner_id=lead.owner_id,
        created_at=lead.created_at,
        converted_to=tuple(converted),
    )


M = TypeVar("M", Contact, Account, Deal)


def _get(session: Session, model: type[M], key: int | None) -> M | None:
    return session.get(model, key) if key is not None else None


def account_view(account: Account) -> AccountView:
    return AccountView(
        ref=ref_of(RecordKind.ACCOUNT, account.number),
        name=account.name,
        domain=account.domain,
        industry=account.industry,
        size=account.size,
        region=account.region,
        owner_id=account.owner_id,
        created_at=account.created_at,
    )


def contact_view(contact: Contact, account: Account | None) -> ContactView:
    return ContactView(
        ref=ref_of(RecordKind.CONTACT, contact.number),
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        title=contact.title,
        account_ref=ref_of(RecordKind.ACCOUNT, account.number) if account else None,
        account_name=account.name if account else None,
        owner_id=contact.owner_id,
        source=contact.source,
        created_at=contact.created_at,
    )


def deal_view(
    deal: Deal, stage: Stage, account: Account | None, contact: Contact | None
) -> DealView:
    amount = Money(deal.amount, deal.currency) if deal.amount is not None else None
    return DealView(
        ref=ref_of(RecordKind.DEAL, deal.number),
        name=deal.name,
        amount=amount,
        stage=stage.name,
        probability=deal.probability if deal.probability is not None else stage.probability,
        close_date=deal.close_date,
        owner_id=deal.owner_id,
        status=DealStatus(deal.status),
        account_ref=ref_of(RecordKind.ACCOUNT, account.number) if account else None,
        account_name=account.name if account else None,
        contact_ref=ref_of(RecordKind.CONTACT, contact.number) if contact else None,
        contact_name=contact.name if contact else None,
        lost_reason=deal.lost_reason,
        created_at=deal.created_at,
    )


def record_view(session: Session, record: object) -> RecordView:
    """The view of any lead, contact, account or deal."""
    if isinstance(record, Lead):
        return lead_view(record, session)
    if isinstance(record, Account):
        return account_view(record)
    if isinstance(record, Contact):
        account = session.get(Account, record.account_id) if record.account_id else None
        return contact_view(record, account)
    if isinstance(record, Deal):
        stage = session.get(Stage, record.stage_id)
        assert stage is not None
        return deal_view(
            record,
            stage,
            session.get(Account, record.account_id) if record.account_id else None,
            session.get(Contact, record.contact_id) if record.contact_id else None,
        )
    raise TypeError(f"not a record: {record!r}")


class Related:
    """Refs and names of the records that interactions and follow-ups point at."""

    def __init__(self, session: Session, rows: Sequence[Interaction | FollowUp]) -> None:
        self.leads = queries.by_ids(session, Lead, (r.lead_id for r in rows))
        self.contacts = queries.by_ids(session, Contact, (r.contact_id for r in rows))
        self.accounts = queries.by_ids(session, Account, (r.account_id for r in rows))
        self.deals = queries.by_ids(session, Deal, (r.deal_id for r in rows))

    def about(self, row: Interaction | FollowUp) -> list[tuple[str, str]]:
        """(ref, name) of each related record, most specific first."""
        out: list[tuple[str, str]] = []
        for kind, table, key in (
            (RecordKind.DEAL, self.deals, row.deal_id),
            (RecordKind.CONTACT, self.contacts, row.contact_id),
            (RecordKind.ACCOUNT, self.accounts, row.account_id),
            (RecordKind.LEAD, self.leads, row.lead_id),
        ):
            found = table.get(key) if key is not None else None
            if found is not None:
                out.append((ref_of(kind, found.number), found.name))
        return out

    def owner(self, row: Interaction | FollowUp) -> str | None:
        """The owner of the most specific related record (deal, contact, account, lead)."""
        for table, key in (
            (self.deals, row.deal_id),
            (self.contacts, row.contact_id),
            (self.accounts, row.account_id),
            (self.leads, row.lead_id),
        ):
            found = table.get(key) if key is not None else None
            if found is not None:
                return found.owner_id
        return None


def interaction_views(
    session: Session, rows: Sequence[Interaction], viewer: Viewer | None = None
) -> list[InteractionView]:
    """Interactions as `viewer` may read them (private ones redacted); None: everything."""
    related = Related(session, rows)
    views = [
        InteractionView(
            id=row.id,
            kind=InteractionKind(row.kind),
            occurred_at=row.occurred_at,
            logged_by=row.logged_by,
            summary=row.summary,
            outcome=row.outcome,
            duration_minutes=row.duration_minutes,
            about=tuple(ref for ref, _ in related.about(row)),
            permalink=row.permalink,
            private=bool(row.private),
        )
        for row in rows
    ]
    if viewer is None:
        return views
    return [
        redact_interaction(view, viewer, owner_id=related.owner(row))
        for view, row in zip(views, rows, strict=True)
    ]


def follow_up_views(
    session: Session, rows: Sequence[FollowUp], now: datetime
) -> list[FollowUpView]:
    related = Related(session, rows)
    views = []
    for row in rows:
        about = related.about(row)
        views.append(
            FollowUpView(
                ref=ref_of(RecordKind.FOLLOW_UP, row.number),
                title=row.title,
                due_at=row.due_at,
                remind_at=row.remind_at,
                owner_id=row.owner_id,
                status=FollowUpStatus(row.status),
                about_ref=about[0][0] if about else None,
                about_name=about[0][1] if about else None,
                channel_id=row.channel_id,
                overdue=row.status == FollowUpStatus.OPEN and row.due_at <= now,
            )
        )
    return views
