"""The demo workspace: three reps in three time zones and a small, lived-in CRM.

Everything is created through CrmService's verbs (so the audit trail, references and search
index are the real thing), relative to the current time: two follow-ups are already overdue,
so the first reminder sweep posts a digest into #sales.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from crmbot.demo.fakeslack import FakeSlack
from crmbot.domain import InteractionKind, Role
from crmbot.service import CrmService

TEAM = "T0DEMO"
TEAM_NAME = "Acme Sales (demo)"
BOT_USER = "U0CRMBOT"


@dataclass(frozen=True)
class DemoRep:
    user_id: str
    handle: str
    name: str
    tz: str
    role: Role

    @property
    def email(self) -> str:
        return f"{self.handle}@acme-sales.example"


ADA = DemoRep("U01ADA", "ada", "Ada Berger", "Europe/Berlin", Role.ADMIN)
BOB = DemoRep("U02BOB", "bob", "Bob Miller", "America/New_York", Role.REP)
PRIYA = DemoRep("U03PRIYA", "priya", "Priya Nair", "Asia/Kolkata", Role.MANAGER)
REPS = (ADA, BOB, PRIYA)

SALES = "C01SALES"
LEADS = "C02LEADS"
GENERAL = "C03GENERAL"
CHANNELS = {SALES: "sales", LEADS: "leads", GENERAL: "general"}


def register_slack(fake: FakeSlack, token: str) -> None:
    """The demo workspace as Slack knows it: the bot, the reps (with time zones), channels."""
    fake.add_team(TEAM, name=TEAM_NAME, domain="acme-sales-demo")
    fake.add_token(token, TEAM, bot_user_id=BOT_USER, bot_name="crmbot")
    for rep in REPS:
        fake.add_user(
            TEAM,
            rep.user_id,
            rep.handle,
            real_name=rep.name,
            tz=rep.tz,
            email=rep.email,
            is_admin=rep.role is Role.ADMIN,
        )
    for channel_id, name in CHANNELS.items():
        fake.add_channel(TEAM, channel_id, name)


def is_seeded(crm: CrmService) -> bool:
    """Whether this database already holds the demo workspace."""
    return crm.rep(TEAM, ADA.user_id) is not None


def _at(now: datetime, tz: str, days: int, hour: int, minute: int = 0) -> datetime:
    """`hour:minute` local time `days` from today in `tz`, as aware UTC."""
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(now.tzinfo)


def seed(crm: CrmService) -> None:
    """Create the demo workspace's reps, accounts, contacts, leads, deals and activity."""
    ws, now = TEAM, crm.now()
    crm.ensure_workspace(ws, name=TEAM_NAME)
    for rep in REPS:  # the first rep of a workspace is its admin
        crm.upsert_rep(ws, rep.user_id, name=rep.name, tz=rep.tz, email=rep.email)
    crm.set_role(ws, PRIYA.user_id, Role.MANAGER, by=ADA.user_id)
    crm.set_intake_channel(ws, LEADS, by=ADA.user_id)  # web-form leads are announced in #leads

    a, b, p = ADA.user_id, BOB.user_id, PRIYA.user_id
    crm.create_account(
        ws,
        by=a,
        name="Globex",
        domain="globex.com",
        industry="Manufacturing",
        size=1200,
        region="EMEA",
        owner_id=a,
    )
    crm.create_account(
        ws,
        by=b,
        name="Initech",
        domain="initech.io",
        industry="SaaS",
        size=300,
        region="North America",
        owner_id=b,
    )
    crm.create_account(
        ws,
        by=p,
        name="Umbrella Health",
        domain="umbrella.health",
        industry="Healthcare",
        size=5000,
        region="APAC",
        owner_id=p,
    )

    crm.create_contact(
        ws,
        by=a,
        name="Hank Scorpio",
        title="CEO",
        account="A-1",
        email="hank@globex.com",
        phone="+49 30 5550 1000",
        owner_id=a,
    )
    crm.create_contact(
        ws,
        by=b,
        name="Peter Gibbons",
        title="Engineering manager",
        account="A-2",
        email="peter@initech.io",
        owner_id=b,
    )
    crm.create_contact(
        ws,
        by=p,
        name="Meera Iyer",
        title="Head of IT",
        account="A-3",
        email="meera@umbrella.health",
        phone="+91 80 5550 2000",
        owner_id=p,
    )

    crm.create_lead(
        ws,
        by=b,
        name="Sanjay Patel",
        company="Wayne Enterprises",
        email="sanjay@wayne.example",
        source="referral",
    )
    crm.create_lead(
        ws,
        by=a,
        name="Lena Fischer",
        company="Soylent",
        email="lena@soylent.example",
        source="trade show",
    )
    crm.create_lead(
        ws,
        by=b,
        name="Tom Baker",
        company="Vandelay Imports",
        phone="+1 212 555 0199",
        source="website",
    )
    crm.create_lead(
        ws, by=p, name="Aiko Tanaka", company="Hooli", email="aiko@hooli.example", source="partner"
    )

    close = now.date() + timedelta(days=30)
    crm.create_deal(
        ws,
        by=a,
        name="Globex expansion",
        amount=Decimal(120_000),
        currency="EUR",
        stage="Negotiation",
        about="A-1",
        close_date=close,
    )
    crm.create_deal(
        ws,
        by=b,
        name="Initech renewal",
        amount=Decimal(45_000),
        currency="USD",
        stage="Proposal",
        about="C-2",
    )
    crm.create_deal(
        ws,
        by=p,
        name="Umbrella pilot",
        amount=Decimal(30_000),
        currency="USD",
        stage="Qualification",
        about="A-3",
    )
    crm.create_deal(
        ws,
        by=b,
        name="Wayne security suite",
        amount=Decimal(250_000),
        currency="USD",
        stage="Prospecting",
        about="L-1",
    )
    crm.create_deal(
        ws,
        by=b,
        name="Initech support add-on",
        amount=Decimal(8_000),
        currency="USD",
        stage="Proposal",
        about="A-2",
    )
    crm.close_deal(ws, "D-5", by=b, won=True)
    crm.create_deal(
        ws,
        by=a,
        name="Globex analytics",
        amount=Decimal(60_000),
        currency="EUR",
        stage="Proposal",
        about="A-1",
    )
    crm.close_deal(ws, "D-6", by=a, won=False, reason="went with an in-house tool")

    crm.log_interaction(
        ws,
        by=b,
        kind=InteractionKind.CALL,
        about="C-2",
        summary="Walked Peter through the renewal quote.",
        outcome="Wants 10% off for two years",
        duration_minutes=25,
        occurred_at=_at(now, BOB.tz, -2, 11),
    )
    crm.log_interaction(
        ws,
        by=a,
        kind=InteractionKind.MEETING,
        about="D-1",
        summary="On-site with Hank: scope agreed, legal review next.",
        duration_minutes=60,
        occurred_at=_at(now, ADA.tz, -3, 14),
    )
    crm.log_interaction(
        ws,
        by=b,
        kind=InteractionKind.EMAIL,
        about="L-1",
        summary="Sent the intro deck and two case studies.",
        occurred_at=_at(now, BOB.tz, -1, 9, 30),
    )
    crm.log_interaction(
        ws,
        by=p,
        kind=InteractionKind.NOTE,
        about="A-3",
        summary="Budget for the pilot is approved; procurement takes ~2 weeks.",
        occurred_at=_at(now, PRIYA.tz, -4, 16),
    )

    # Two follow-ups already overdue (the first reminder sweep posts them to #sales) ...
    crm.create_follow_up(
        ws,
        by=b,
        about="L-1",
        title="Call Sanjay about the security review",
        due_at=_at(now, BOB.tz, -1, 10),
        channel_id=SALES,
    )
    crm.create_follow_up(
        ws,
        by=p,
        about="D-3",
        title="Send the pilot proposal",
        due_at=now - timedelta(hours=3),
        channel_id=SALES,
    )
    # ... and two still to come.
    crm.create_follow_up(
        ws,
        by=a,
        about="D-1",
        title="Prepare the negotiation call",
        due_at=_at(now, ADA.tz, 1, 10),
        channel_id=SALES,
    )
    crm.create_follow_up(
        ws,
        by=b,
        about="C-2",
        title="Check in on the renewal",
        due_at=_at(now, BOB.tz, 3, 9),
        channel_id=SALES,
    )
