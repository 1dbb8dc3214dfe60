"""Deterministic bulk data for the benchmarks, in the real, migrated schema.

`python -m bench.datagen [--engine sqlite|postgresql|both] [--quick | --contacts N]` builds the
full data set (two workspaces: N contacts, N/5 accounts, 0.3 N leads, 0.1 N deals, 2 N
interactions, N open follow-ups of which 1 % overdue in 50 channels; N = 1M, or 20k with
--quick), reusing a complete one, and prints one JSON line and appends the time it took to
RESULTS.md. Benchmarks get one through `ensure(engine, contacts, full=True)`; bench.find
uses the contacts-and-accounts set (`full=False`) unless given --full.

Rows go straight in (executemany on SQLite, COPY on PostgreSQL) together with the search
document the app itself would write for each record (`queries.index_record` fed by the
service's `_extra`/`_detail`), so search runs over the documents it sees in production.
A database is complete once its `ref_counter` rows exist: they are written last.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crmbot.parsing import fold, format_money
from crmbot.service import CrmService
from crmbot.store import queries
from crmbot.store.db import Database, normalize_url
from crmbot.store.migrate import upgrade

Row = dict[str, Any]
Log = Callable[[str], None]

SEED = 20261123
HERE = Path(__file__).parent
DATA = HERE / "data"
PG_URL = os.environ.get("CRMBOT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "crmbot_bench"  # + "_<contacts>": sizes (and quick runs) never overwrite each other
WORKSPACES = ("TBENCH1", "TBENCH2")  # the second one gets SMALL_SHARE of the rows
SMALL_SHARE = 0.05
REPS = {"TBENCH1": 12, "TBENCH2": 4}
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)  # records were created over the three years before NOW
BATCH = 50_000  # contacts per transaction
GIANT_SHARE = 0.15  # of contacts work at one of the GIANTS (the first accounts of a workspace)
RARE_SHARE = 0.001  # of contacts have one of the rare family names
FREE_MAIL_SHARE = 0.10  # of contacts write from a free-mail address
DELETED_SHARE = 0.01  # of contacts are soft-deleted
KINDS = ("account", "contact", "lead", "deal", "follow_up")  # the tables with ref numbers
# The full data set, per contact: leads, deals, interactions and follow-ups (all open).
PER_CONTACT = {"lead": (3, 10), "deal": (1, 10), "interaction": (2, 1), "follow_up": (1, 1)}
OVERDUE_EVERY = 100  # 1 % of the follow-ups are overdue (10k of 1M) ...
CHANNELS = 50  # ... in these many channels

GIANTS = (
    ("Globex Corporation", "globex.com"),
    ("Initech", "initech.com"),
    ("Umbrella Group", "umbrella-group.com"),
    ("Hooli", "hooli.com"),
    ("Stark Industries", "starkindustries.com"),
    ("Müller & Söhne GmbH", "mueller-soehne.de"),
    ("Société Lumière", "lumiere.fr"),
    ("Soylent Corp", "soylent.com"),
    ("Tyrell Corporation", "tyrell.com"),
    ("Wayne Enterprises", "wayne-enterprises.com"),
)


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


COMPANY_LEFT = _words(
    "North South Blue Red Silver Golden Iron Bright Clear Swift Green Black White High Deep "
    "Star Sun Moon River Stone Oak Pine Cedar Maple Eagle Falcon Wolf Bear Fox Lion Nova Terra "
    "Aqua Ultra Prime Alpha Omni Meta Quantum Vertex Apex Summit Crest Harbor Bay Lake Ocean Sky"
)
COMPANY_RIGHT = _words("wind stone field bridge gate point wave light works path line forge mark")
SECTORS = _words(
    "Logistics Foods Software Energy Health Capital Media Robotics Textiles Pharma Retail "
    "Analytics Consulting Motors Labs Systems Networks Solutions Partners Studios Bau Café "
    "Électrique Ingeniería Tecnología Médical"
)
LEGAL_FORMS = {  # legal form -> top-level domain
    "": "com",
    " Inc": "com",
    " Ltd": "co.uk",
    " GmbH": "de",
    " AG": "ch",
    " SA": "es",
    " SAS": "fr",
    " AB": "se",
    " AS": "no",
    " BV": "nl",
    " Oy": "fi",
    " Sp. z o.o.": "pl",
}
INDUSTRIES = _words("saas retail manufacturing finance healthcare logistics media energy")
REGIONS = _words("EMEA|North America|LATAM|APAC|DACH|Nordics|UK & Ireland|Iberia|Benelux", "|")
TITLES = _words(
    "Head of Sales|VP Sales|Sales Manager|Account Executive|CEO|CTO|CFO|COO|Buyer|"
    "Procurement Manager|Office Manager|Marketing Director|Product Manager|Software Engineer|"
    "Operations Lead|IT Director|Founder|Partner|Consultant|Geschäftsführer|"
    "Directrice commerciale|Jefe de compras|Responsable achats|Einkaufsleiter|Analyst",
    "|",
)
FREE_MAIL = _words("gmail.com outlook.com yahoo.com hotmail.com gmx.de web.de qq.com")
PHONES = (  # country prefix and digit groups
    ("+1", (3, 3, 4)),
    ("+44 20", (4, 4)),
    ("+49 30", (7,)),
    ("+33 1", (2, 2, 2, 2)),
    ("+34 91", (3, 2, 2)),
    ("+47", (8,)),
    ("+86 10", (4, 4)),
    ("+81 3", (4, 4)),
    ("+91 22", (4, 4)),
)
LEAD_STATUSES = (("new", 40), ("working", 35), ("qualified", 15), ("disqualified", 10))
SOURCES = ("web", "referral", "event", "csv", "intake", "outbound", "partner")
CURRENCIES = (("USD", 60), ("EUR", 25), ("GBP", 10), ("CHF", 5))
INTERACTION_KINDS = (("call", 40), ("email", 30), ("meeting", 15), ("note", 10), ("message", 5))
SUMMARIES = _words(
    "Intro call, wants a pilot|Sent the proposal|Demo went well; next: security review|"
    "Pricing questions, send the deck|Left a voicemail|Rückruf vereinbart, Angebot folgt|"
    "Réunion avec la directrice commerciale|Llamada de seguimiento, presupuesto en marzo|"
    "Budget frozen until Q2 😕|Signed NDA ✅|讨论价格|Asked for references",
    "|",
)
FOLLOW_UP_TITLES = _words(
    "Send the proposal|Call back about pricing|Check in after the demo|Send the contract|"
    "Angebot nachfassen|Relancer pour le devis|Confirmar la reunión|Book the QBR|"
    "Follow up on the pilot 🚀|回电确认订单",
    "|",
)
Name = tuple[str, str]  # as written, as spelled in an email address
StageRow = tuple[int, str, int, str]  # a pipeline stage: id, name, probability, kind


@dataclass(frozen=True)
class Culture:
    weight: int
    template: str  # how a full name is written: "{g} {f}", "{f}{g}", ...
    given: tuple[Name, ...]
    family: tuple[Name, ...]


def _names(line: str) -> tuple[Name, ...]:
    out = []
    for entry in line.split():
        name, _, latin = entry.partition("=")
        out.append((name, latin or "".join(c for c in fold(name) if c.isalnum())))
    return tuple(out)


def load_cultures() -> tuple[list[Culture], tuple[Name, ...]]:
    """The cultures of names.txt, and the rare family names."""
    lines = [ln for ln in (HERE / "names.txt").read_text().splitlines() if not ln.startswith("#")]
    cultures = []
    for block in "\n".join(lines).strip().split("\n\n"):
        head, given, family = block.splitlines()
        weight, template = head.split(maxsplit=1)
        cultures.append(Culture(int(weight), template, _names(given), _names(family)))
    rare = cultures.pop()
    return cultures, rare.family


@lru_cache(maxsize=100_000)
def _fold_cached(part: str) -> str:
    return fold(part)


def fast_fold(part: str) -> str:
    """`fold`, quick for ASCII: NFKC leaves ASCII alone and casefold is lower() there."""
    return " ".join(part.lower().split()) if part.isascii() else _fold_cached(part)


def _zipf(n: int) -> list[float]:
    """Cumulative weights where the k-th item is k times rarer than the first."""
    return list(accumulate(1 / rank for rank in range(1, n + 1)))


class Generator:
    """Rows batch by batch. The same seed and size give the same rows.

    With `stages` (each workspace's pipeline: id, name, probability, kind) it makes the full
    data set: besides N contacts and N/5 accounts, 0.3 N leads, 0.1 N deals, 2 N interactions
    and N open follow-ups (1 % overdue, in CHANNELS channels), in creation order.
    """

    def __init__(
        self, contacts: int, seed: int = SEED, stages: dict[str, list[StageRow]] | None = None
    ) -> None:
        self.contacts = contacts
        self.stages = stages
        self.full = stages is not None
        self.docs_total = contacts * (1.6 if self.full else 1.2)
        self.rng = random.Random(seed)
        self.cultures, self.rare = load_cultures()
        self.culture_cum = list(accumulate(c.weight for c in self.cultures))
        self.cums = {c: (_zipf(len(c.given)), _zipf(len(c.family))) for c in self.cultures}
        self.accounts: dict[str, list[tuple[int, str, str]]] = {ws: [] for ws in WORKSPACES}
        self.numbers = {(ws, kind): 0 for ws in WORKSPACES for kind in KINDS}
        self.ids = dict.fromkeys((*KINDS, "search_doc", "interaction"), 0)
        self.people: dict[str, list[int]] = {ws: [] for ws in WORKSPACES}  # contact ids
        self.leads_of: dict[str, list[int]] = {ws: [] for ws in WORKSPACES}
        self.deals_of: dict[str, list[int]] = {ws: [] for ws in WORKSPACES}
        self.seen: dict[str, int] = {}  # email addresses and domains handed out
        self.done = 0

    def batches(self) -> Iterator[dict[str, list[Row]]]:
        """Rows per table; each batch makes its share of accounts (N/5), then its contacts."""
        while self.done < self.contacts:
            size = min(BATCH, self.contacts - self.done)
            tables = (
                "account",
                "contact",
                "lead",
                "deal",
                "interaction",
                "follow_up",
                "search_doc",
            )
            rows: dict[str, list[Row]] = {table: [] for table in tables}
            accounts_due = self.contacts // 5 * (self.done + size) // self.contacts
            while self.ids["account"] < accounts_due:
                self._account(rows)
            for i in range(self.done, self.done + size):
                self._contact(rows)
                if self.full:
                    self._more(rows, i)
            self.done += size
            yield {table: batch for table, batch in rows.items() if batch}

    def counters(self) -> list[Row]:
        """The ref_counter rows, so that records made later continue the numbering."""
        return [
            {"workspace_id": ws, "kind": k, "value": v} for (ws, k), v in self.numbers.items() if v
        ]

    def _new(self, table: str) -> Row:
        ws = WORKSPACES[1] if self.rng.random() < SMALL_SHARE else WORKSPACES[0]
        self.ids[table] += 1
        self.numbers[ws, table] += 1
        progress = min(1.0, self.ids["search_doc"] / self.docs_total)
        created = NOW - SPAN * (1 - progress) - timedelta(seconds=self.rng.random() * 3600)
        return {
            "id": self.ids[table],
            "workspace_id": ws,
            "number": self.numbers[ws, table],
            "owner_id": rep_id(ws, self.rng.randrange(REPS[ws])),
            "created_at": created,
            "updated_at": min(NOW, created + timedelta(days=60 * self.rng.random() ** 4)),
            "deleted_at": None,
        }

    def _unique(self, key: str) -> int:
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key]

    def _account(self, rows: dict[str, list[Row]]) -> None:
        rng, row = self.rng, self._new("account")
        if row["number"] <= len(GIANTS):
            name, domain = GIANTS[row["number"] - 1]
        else:
            form = rng.choice(list(LEGAL_FORMS))
            company = f"{rng.choice(COMPANY_LEFT)}{rng.choice(COMPANY_RIGHT)} {rng.choice(SECTORS)}"
            name, slug = company + form, "".join(c for c in fold(company) if c.isalnum())
            seen = self._unique(slug)
            domain = f"{slug}{seen if seen > 1 else ''}.{LEGAL_FORMS[form]}"
        industry, region = rng.choice(INDUSTRIES), rng.choice(REGIONS)
        row |= {"name": name, "domain": domain, "industry": industry, "region": region}
        row["size"] = rng.choice((10, 50, 200, 1000, 5000))
        rows["account"].append(row)
        self.accounts[row["workspace_id"]].append((row["id"], name, domain))
        extra = (domain, industry, region)
        self._doc(rows, "account", row, extra, detail=extra)

    def _person(self) -> tuple[str, str]:
        """A full name and its email local part."""
        rng = self.rng
        culture = rng.choices(self.cultures, cum_weights=self.culture_cum)[0]
        given_cum, family_cum = self.cums[culture]
        given = rng.choices(culture.given, cum_weights=given_cum)[0]
        family = rng.choices(culture.family, cum_weights=family_cum)[0]
        if rng.random() < RARE_SHARE:
            family = rng.choice(self.rare)
        name = culture.template.format(g=given[0], f=family[0])
        return name, f"{given[1]}.{family[1]}".lower()

    def _contact(self, rows: dict[str, list[Row]]) -> None:
        rng, row = self.rng, self._new("contact")
        name, local = self._person()
        accounts = self.accounts[row["workspace_id"]]
        account = None
        if accounts and rng.random() < GIANT_SHARE:
            account = accounts[rng.randrange(min(len(GIANTS), len(accounts)))]
        elif accounts and rng.random() < 0.95:
            account = rng.choice(accounts)
        domain = account[2] if account and rng.random() > FREE_MAIL_SHARE else None
        domain = domain or rng.choice(FREE_MAIL)
        seen = self._unique(f"{local}@{domain}")
        email = f"{local}{seen if seen > 1 else ''}@{domain}"
        phone = _phone(rng) if rng.random() < 0.9 else None
        title = rng.choice(TITLES) if rng.random() < 0.85 else None
        row |= {"name": name, "email": email, "phone": phone, "title": title}
        row |= {"account_id": account[0] if account else None, "source": rng.choice(("web", "csv"))}
        if rng.random() < DELETED_SHARE:
            row["deleted_at"] = row["updated_at"]
        rows["contact"].append(row)
        self.people[row["workspace_id"]].append(row["id"])
        detail = (title, account[1] if account else None, email)
        self._doc(rows, "contact", row, (email, phone, title), detail=detail)

    def _doc(
        self,
        rows: dict[str, list[Row]],
        kind: str,
        record: Row,
        extra: tuple[str | None, ...],
        *,
        detail: tuple[str | None, ...],
    ) -> None:
        """The search document `queries.index_record` writes for the record."""
        self.ids["search_doc"] += 1
        ref, name = f"{kind[0].upper()}-{record['number']}", record["name"]
        doc = {
            "id": self.ids["search_doc"],
            "workspace_id": record["workspace_id"],
            "kind": kind,
            "record_id": record["id"],
            "ref": ref,
            "name": name,
            "folded_name": fast_fold(name)[:300],
            "body": " | ".join(fast_fold(p) for p in (ref, name, *extra) if p),
            "detail": " · ".join(p for p in detail if p)[:500],
            "owner_id": record["owner_id"],
            "updated_at": record["updated_at"],
            "deleted": record["deleted_at"] is not None,
        }
        if doc["id"] <= 5000:  # the quick fold builds exactly what the app builds
            assert doc["folded_name"] == fold(name)[:300], name
            assert doc["body"] == queries.search_body(ref, name, *extra), name
        rows["search_doc"].append(doc)

    # --- the full data set ---------------------------------------------------------------

    def _more(self, rows: dict[str, list[Row]], i: int) -> None:
        """What comes with the i-th contact in the full data set: exactly PER_CONTACT."""
        for table, (per, every) in PER_CONTACT.items():
            for _ in range((i + 1) * per // every - i * per // every):
                getattr(self, "_" + table)(rows)

    def _pick(self, choices: tuple[tuple[str, int], ...]) -> str:
        return self.rng.choices([c for c, _ in choices], [w for _, w in choices])[0]

    def _lead(self, rows: dict[str, list[Row]]) -> None:
        rng, row = self.rng, self._new("lead")
        name, local = self._person()
        company = f"{rng.choice(COMPANY_LEFT)}{rng.choice(COMPANY_RIGHT)} {rng.choice(SECTORS)}"
        slug = "".join(c for c in fold(company) if c.isalnum())
        domain = rng.choice(FREE_MAIL) if rng.random() < FREE_MAIL_SHARE else f"{slug}.com"
        seen = self._unique(f"{local}@{domain}")
        email = f"{local}{seen if seen > 1 else ''}@{domain}" if rng.random() < 0.9 else None
        phone = _phone(rng) if rng.random() < 0.7 else None
        status, source = self._pick(LEAD_STATUSES), rng.choice(SOURCES)
        row |= {"name": name, "company": company, "email": email, "phone": phone}
        row |= {"source": source, "status": status, "score": rng.randrange(101)}
        rows["lead"].append(row)
        self.leads_of[row["workspace_id"]].append(row["id"])
        self._doc(
            rows, "lead", row, (company, email, phone, source), detail=(company, email, status)
        )

    def _deal(self, rows: dict[str, list[Row]]) -> None:
        rng, row = self.rng, self._new("deal")
        ws = row["workspace_id"]
        account = rng.choice(self.accounts[ws]) if self.accounts[ws] else None
        contact = rng.choice(self.people[ws]) if self.people[ws] and rng.random() < 0.8 else None
        stage_id, stage, probability, kind = rng.choice((self.stages or {})[ws])
        amount = Decimal(rng.choice((5, 12, 25, 40, 75, 120, 250, 900)) * 1000 + rng.randrange(999))
        currency = self._pick(CURRENCIES)
        closed = row["updated_at"] if kind != "open" else None
        what = rng.choice(("pilot", "expansion", "renewal", "licences", "rollout"))
        name = f"{account[1] if account else 'New business'} · {what}"
        row |= {"name": name, "account_id": account[0] if account else None}
        row |= {"contact_id": contact, "amount": amount, "currency": currency}
        row |= {"stage_id": stage_id, "probability": probability, "status": kind}
        row |= {"close_date": (row["created_at"] + timedelta(days=rng.randrange(15, 180))).date()}
        row["closed_at"] = closed
        rows["deal"].append(row)
        self.deals_of[ws].append(row["id"])
        detail = (stage, format_money(amount, currency), kind if kind != "open" else None)
        self._doc(rows, "deal", row, (), detail=detail)

    def _interaction(self, rows: dict[str, list[Row]]) -> None:
        rng = self.rng
        ws = WORKSPACES[1] if rng.random() < SMALL_SHARE else WORKSPACES[0]
        self.ids["interaction"] += 1
        progress = min(1.0, self.ids["search_doc"] / self.docs_total)
        at = min(NOW, NOW - SPAN * (1 - progress) + timedelta(days=30 * rng.random()))
        about = self._about(ws)
        kind = self._pick(INTERACTION_KINDS)
        rows["interaction"].append(
            {
                "id": self.ids["interaction"],
                "workspace_id": ws,
                "kind": kind,
                "occurred_at": at,
                "logged_by": rep_id(ws, rng.randrange(REPS[ws])),
                "summary": rng.choice(SUMMARIES),
                "outcome": rng.choice((None, "connected", "no answer", "positive")),
                "duration_minutes": rng.randrange(5, 60) if kind in ("call", "meeting") else None,
                **about,
                "private": False,
                "created_at": at,
            }
        )

    def _about(self, ws: str) -> dict[str, int | None]:
        """The record a follow-up or interaction is about: mostly a contact."""
        about: dict[str, int | None] = dict.fromkeys(("lead_id", "contact_id", "deal_id"))
        pick = self.rng.random()
        if pick < 0.15 and self.deals_of[ws]:
            about["deal_id"] = self.rng.choice(self.deals_of[ws])
        elif pick < 0.35 and self.leads_of[ws]:
            about["lead_id"] = self.rng.choice(self.leads_of[ws])
        elif self.people[ws]:
            about["contact_id"] = self.rng.choice(self.people[ws])
        return about

    def _follow_up(self, rows: dict[str, list[Row]]) -> None:
        rng, row = self.rng, self._new("follow_up")
        ws, n = row["workspace_id"], self.ids["follow_up"]
        if n % OVERDUE_EVERY == 0:  # overdue by 1 h .. 10 days, posted to one of the channels
            due = NOW - timedelta(hours=1 + rng.randrange(240))
            channel: str | None = channel_id(n // OVERDUE_EVERY % CHANNELS)
        else:  # due in the next 90 days
            due = NOW + timedelta(minutes=60 + rng.randrange(90 * 24 * 60))
            channel = channel_id(rng.randrange(CHANNELS)) if rng.random() < 0.3 else None
        owner = row.pop("owner_id")
        for key in ("name", "updated_at", "deleted_at"):
            row.pop(key, None)
        row |= {"title": rng.choice(FOLLOW_UP_TITLES), "due_at": due, "remind_at": due}
        row |= {"owner_id": owner, "created_by": owner, "channel_id": channel, "status": "open"}
        row |= {"remind_attempts": 0, **self._about(ws)}
        rows["follow_up"].append(row)


def channel_id(n: int) -> str:
    return f"CBENCH{n:02d}"


def _phone(rng: random.Random) -> str:
    prefix, groups = rng.choice(PHONES)
    return " ".join([prefix, *(str(rng.randrange(10**g)).zfill(g) for g in groups)])


def rep_id(ws: str, index: int) -> str:
    return f"U{ws[-1]}R{index:02d}"


# --- where the data lives ----------------------------------------------------


def _name(contacts: int, full: bool) -> str:
    return f"{'full' if full else 'find'}-{contacts}"


def sqlite_path(contacts: int, full: bool = False) -> Path:
    return DATA / f"{_name(contacts, full)}.db"


def pg_schema(contacts: int, full: bool = False) -> str:
    """One schema per data set and size: quick runs never overwrite a full-size one."""
    return f"{PG_SCHEMA}_full_{contacts}" if full else f"{PG_SCHEMA}_{contacts}"


def pg_url(contacts: int, full: bool = False) -> str:
    """The bench URL: everything lives in its own schema."""
    sep = "&" if "?" in PG_URL else "?"
    path = f"-csearch_path={pg_schema(contacts, full)},public"
    return f"{PG_URL}{sep}options={quote(path)}"


def url_for(engine: str, contacts: int, full: bool = False) -> str:
    if engine == "sqlite":
        return f"sqlite:///{sqlite_path(contacts, full)}"
    return pg_url(contacts, full)


def expected_counts(contacts: int, full: bool = False) -> dict[str, int]:
    """The ref_counter totals of a complete data set."""
    counts = {"account": contacts // 5, "contact": contacts}
    if full:
        for kind in ("lead", "deal", "follow_up"):
            per, every = PER_CONTACT[kind]
            counts[kind] = contacts * per // every
    return counts


def is_complete(url: str, contacts: int, full: bool = False) -> bool:
    """True when the database holds exactly this data set, fully written."""
    if url.startswith("sqlite") and not Path(make_url(url).database or "").exists():
        return False
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            counts = conn.execute(text("SELECT kind, sum(value) FROM ref_counter GROUP BY kind"))
            return dict(counts.tuples().all()) == expected_counts(contacts, full)
    except Exception:  # no schema or no table yet: not complete
        return False
    finally:
        engine.dispose()


def size_bytes(url: str) -> int:
    """The database's size on disk: the SQLite files, or the bench schema's relations."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        size = conn.execute(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            ),
        ).scalar_one()
    engine.dispose()
    return int(size)


def table_rows(url: str) -> dict[str, int]:
    """Rows per bench table."""
    engine = create_engine(normalize_url(url))
    tables = ("account", "contact", "lead", "deal", "interaction", "follow_up", "search_doc")
    with engine.connect() as conn:
        counts = {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables
        }
    engine.dispose()
    return counts


def ensure(
    engine: str, contacts: int, log: Log = print, *, full: bool = False
) -> tuple[str, float | None]:
    """The URL of a complete database of this size (made if missing), and the seconds
    spent making it (None when an existing one was reused). `full`: the full data set
    (leads, deals, interactions and follow-ups too), kept apart from find's."""
    url = url_for(engine, contacts, full)
    if is_complete(url, contacts, full):
        upgrade(url)  # migrations added since it was made, as a deployment would run them
        return url, None
    what = "the full data set" if full else "contacts and accounts"
    log(f"generating {what} for {contacts:,} contacts on {engine} ...")
    started = time.perf_counter()
    (generate_sqlite if engine == "sqlite" else generate_pg)(contacts, log, full=full)
    seconds = time.perf_counter() - started
    log(f"generated in {seconds:.0f} s")
    return url, seconds


def _setup(url: str) -> dict[str, list[StageRow]]:
    """Migrate, then make the workspaces (with their pipelines) and reps through the service.
    Returns each workspace's pipeline."""
    upgrade(url)
    db = Database(url)
    crm = CrmService(db, lambda: NOW - SPAN)
    for ws in WORKSPACES:
        crm.ensure_workspace(ws, name=f"Bench {ws}")
        for i in range(REPS[ws]):
            crm.upsert_rep(ws, rep_id(ws, i), name=f"Rep {i}")
    pipelines: dict[str, list[StageRow]] = {}
    with db.read() as session:
        for ws in WORKSPACES:
            pipelines[ws] = [
                (s.id, s.name, s.probability, s.kind) for s in queries.stages(session, ws)
            ]
    db.dispose()
    return pipelines


def _sqlite_value(value: Any) -> Any:
    """Values as SQLAlchemy stores them in SQLite: naive UTC timestamps, 0/1 booleans,
    decimals and dates as text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, Decimal | date):
        return str(value)
    return value


def generate_sqlite(contacts: int, log: Log = print, *, full: bool = False) -> None:
    """Write bench/data/<find|full>-N.db: built under a temporary name, renamed when complete."""
    final = sqlite_path(contacts, full)
    partial = final.with_name(final.name + ".partial")
    DATA.mkdir(exist_ok=True)
    for stale in (*DATA.glob(final.name + "*"), *DATA.glob(partial.name + "*")):
        stale.unlink()
    pipelines = _setup(f"sqlite:///{partial}")
    conn = sqlite3.connect(partial, isolation_level=None)
    for pragma in ("synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
        conn.execute(f"PRAGMA {pragma}")

    def put(table: str, rows: list[Row]) -> None:
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        conn.executemany(sql, ([_sqlite_value(row[c]) for c in columns] for row in rows))

    gen = Generator(contacts, stages=pipelines if full else None)
    for batch in gen.batches():
        conn.execute("BEGIN")
        for table, rows in batch.items():
            put(table, rows)
        conn.execute("COMMIT")
        log(f"  {gen.done:,} contacts")
    if full:
        conn.execute("ANALYZE")
    put("ref_counter", gen.counters())
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    partial.rename(final)


def generate_pg(contacts: int, log: Log = print, *, full: bool = False) -> None:
    """Fill a fresh schema in one transaction: COPY with the GIN indexes dropped, then build
    them (one pass each instead of 1M insertions), VACUUM ANALYZE."""
    schema = pg_schema(contacts, full)
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    url = pg_url(contacts, full)
    pipelines = _setup(url)
    engine = create_engine(normalize_url(url))
    gen = Generator(contacts, stages=pipelines if full else None)
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        gin_indexes = cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE %s",
            (schema, "% USING gin %"),
        ).fetchall()
        for name, _ in gin_indexes:
            cur.execute(f"DROP INDEX {name}")

        def put(table: str, rows: list[Row]) -> None:
            columns = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])

        for batch in gen.batches():
            for table, rows in batch.items():
                put(table, rows)
            log(f"  {gen.done:,} contacts")
        log("  building the GIN indexes")
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for _, definition in gin_indexes:
            cur.execute(definition)
        for table, count in gen.ids.items():
            if count:
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                cur.execute(f"SELECT setval({sequence}, max(id)) FROM {table}")
        put("ref_counter", gen.counters())
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        tables = [t for t, count in gen.ids.items() if count]
        conn.execute(text(f"VACUUM ANALYZE {', '.join(tables)}"))
    engine.dispose()


# --- the command -------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import sys

    from bench.machine import machine

    parser = argparse.ArgumentParser(prog="python -m bench.datagen", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 contacts")
    parser.add_argument("--engine", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument("--no-record", action="store_true", help="don't append to RESULTS.md")
    args = parser.parse_args(argv)
    contacts = 20_000 if args.quick else args.contacts
    command = " ".join(["python -m bench.datagen", *(argv if argv is not None else sys.argv[1:])])
    engines = ("sqlite", "postgresql") if args.engine == "both" else (args.engine,)
    failed = 0
    for engine in engines:
        where = machine()

        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        try:
            if args.force:
                started = time.perf_counter()
                (generate_sqlite if engine == "sqlite" else generate_pg)(contacts, log, full=True)
                url, seconds = url_for(engine, contacts, True), time.perf_counter() - started
            else:
                url, seconds = ensure(engine, contacts, log, full=True)
        except Exception as exc:  # e.g. PostgreSQL not running: say so, go on
            print(f"{engine}: skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed = 1
            continue
        rows = table_rows(url)
        result = {
            "bench": "datagen",
            "engine": engine,
            "contacts": contacts,
            "seconds": None if seconds is None else round(seconds, 1),
            "rows": rows,
            "rows_per_s": None if not seconds else round(sum(rows.values()) / seconds),
            "size_mb": round(size_bytes(url) / 1e6),
        }
        print(json.dumps(result), flush=True)
        if args.no_record:
            continue
        made = "reused a complete data set" if seconds is None else f"built in {seconds:.0f} s"
        table = " · ".join(f"{t} {n:,}" for t, n in rows.items())
        section = (
            f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · bench.datagen · {engine} · "
            f"{contacts:,} contacts, full data set\n\n"
            f"- command: `{command}`\n- machine: {where} (before the run)\n"
            f"- {made}"
            + (f" ({result['rows_per_s']:,} rows/s)" if result["rows_per_s"] else "")
            + f"; {result['size_mb']:,} MB on disk\n- rows: {table}\n"
        )
        with (HERE / "RESULTS.md").open("a") as out:
            out.write(section)
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
