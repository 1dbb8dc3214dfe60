"""`forget`: erase a person's personal data everywhere, and keep only that it happened.

The person is every lead and contact whose email matches (any case), plus the records a
conversion linked to them. What goes:

- on those records: name (becomes "Erased person"), email, phone, title, company and the
  intake form's extra fields; the records are soft-deleted, so they leave lists and search;
- interactions on them: summary, outcome and Slack permalink (kind, time, duration and who
  logged it stay, so activity reports still add up) — except interactions that also belong
  to a deal, which keep their text with every part of her name, her email and phone cut
  out; follow-ups on them lose her name from their titles, and the open ones are cancelled
  unless they belong to a deal;
- the audit trail of those records: the personal fields of every before/after payload;
- deals linked to them stay (amount, stage, owner) but lose any part of her name from
  their name and lost reason;
- anywhere else in the workspace (deal names, other notes, follow-up titles, audit payloads,
  saved searches, reminder logs: every free-text or JSON column of every table that carries
  a workspace, except settings and Slack users): every occurrence, as a whole word, of the
  person's full name, email or phone number (any formatting of its digits), including old
  values found in their audit trail;
- the search index (rebuilt for every record touched; SQLite's full-text indexes are then
  merged so no deleted entry lingers) and the intake replay answers for their leads.

Deals stay (amounts are business data), as do the erased records' numbers, owners, status
and source, so references, reports and pipelines still add up. Reps (Slack users) are not
touched. One `erasure` row per workspace records when, who asked, which references and how
many rows per table, with the email only as a salted PBKDF2 hash.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, String, Table, Text, cast, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from crmbot.domain import InvalidInput, RecordKind
from crmbot.parsing import clean_text, fold, parse_email
from crmbot.service.activity import ActivityService
from crmbot.service.records import _detail, _extra
from crmbot.store import queries
from crmbot.store.intake_queries import INTAKE_KIND
from crmbot.store.models import (
    Account,
    Base,
    Contact,
    Deal,
    Erasure,
    Event,
    FollowUp,
    IntakeRequest,
    Interaction,
    Lead,
    Notification,
    SearchDoc,
    Workspace,
)

ERASED_NAME = "Erased person"
REDACTED = "[erased]"
ACTOR = "crmbot-forget"  # not a Slack user: history shows it as is, undo never takes it for one
# Fields of a lead's or contact's audit payload that describe the person.
PERSONAL_KEYS = frozenset({"name", "email", "phone", "title", "company", "extra"})
# Tables the sweep leaves alone: the workspace, Slack users, the erasure log, and settings
# that hold no one's personal data (a person named like a stage must not rename the stage).
NOT_SWEPT = frozenset(
    {
        "workspace",
        "rep",
        "erasure",
        "stage",
        "ref_counter",
        "intake_token",
        "assignment_pointer",
        "territory_rule",
        "score_model",
    }
)
# Text columns this short hold ids and codes (user and channel ids, kinds, statuses,
# references, currencies), never what someone wrote.
CODE_LENGTH = 32
HASH_ROUNDS = 200_000
FTS_MERGE_PAGES = 2_000  # leaf pages merged per write transaction (SQLite)


@dataclass(frozen=True)
class WorkspaceErasure:
    """What was (or would be) erased in one workspace."""

    workspace_id: str
    records: tuple[str, ...]
    counts: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ErasureReport:
    """The outcome of `forget`, per workspace where anything was found."""

    dry_run: bool
    workspaces: tuple[WorkspaceErasure, ...]

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.workspaces)

    def lines(self) -> list[str]:
        """Human-readable summary lines (no personal data in them)."""
        verb = "would erase" if self.dry_run else "erased"
        if not self.workspaces:
            return ["nothing found: no record, note or log holds that email."]
        lines = []
        for done in self.workspaces:
            tables = ", ".join(f"{table} {n}" for table, n in sorted(done.counts.items()))
            refs = ", ".join(done.records) or "no records, only mentions"
            lines.append(f"{done.workspace_id}: {verb} {refs} — {done.rows} rows ({tables})")
        if self.dry_run:
            lines.append("dry run: nothing was changed.")
        else:
            lines.append("the erasure is recorded (when, who, how many rows; not the data).")
        return lines


class _DryRun(Exception):
    def __init__(self, result: WorkspaceErasure) -> None:
        self.result = result


@dataclass
class _Needles:
    """What identifies the person in free text: full values, and name parts (for rows that
    are about them anyway)."""

    full: set[str] = field(default_factory=set)
    parts: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)  # digits only

    def add(self, value: object, *, kind: str) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if not value or value in (ERASED_NAME, REDACTED) or len(value) < 3:
            return
        self.full.add(value)
        folded = fold(value)
        if len(folded) >= 3:
            self.full.add(folded)
        if kind == "name":
            for part in re.split(r"[\s,.;:()\"'/]+", value):
                if len(part) >= 2:
                    self.parts.add(part)
                    self.parts.add(fold(part))
        elif kind == "phone":
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 7:
                self.phones.add(digits)

    def pattern(self, *, with_parts: bool) -> re.Pattern[str] | None:
        words = self.full | (self.parts if with_parts else set())
        alternatives = [re.escape(w) for w in sorted(words, key=len, reverse=True)]
        alternatives += [r"\+?" + r"[\s().\-/]{0,3}".join(d) for d in sorted(self.phones)]
        if not alternatives:
            return None
        return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)

    def like_terms(self) -> list[str]:
        """Substrings a SQL prefilter looks for (the pattern then decides), as few as can be:
        every LIKE costs a pass over every row's text.

        A needle with ASCII in it is looked for by its longest ASCII run, which LIKE/ILIKE
        compare ignoring case and which JSON stores unescaped; one without is looked for in
        its case variants, raw and JSON-escaped. A term containing another is dropped."""
        terms: set[str] = set()
        for word in self.full:
            runs = [run.strip() for run in _ASCII_RUN.findall(word)]
            runs = [run for run in runs if len(run) >= 3]
            if runs:
                terms.add(max(runs, key=len).lower())
                continue
            for variant in (word, word.lower(), word.upper(), word.title()):
                terms.add(variant)
                terms.add(json.dumps(variant)[1:-1])  # as it sits inside stored JSON
        terms |= {digits[-4:] for digits in self.phones}
        # Compared as SQLite's LIKE compares: only ASCII letters ignore case (so "Ω…" and
        # "ω…" both stay; PostgreSQL's ILIKE would have been content with either).
        kept: list[str] = []
        for term in sorted(terms, key=lambda t: (len(t), t)):
            if not any(_ascii_lower(shorter) in _ascii_lower(term) for shorter in kept):
                kept.append(term)
        return kept


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


# Printable ASCII except the two characters JSON escapes (" and \).
_ASCII_RUN = re.compile(r"[ !#-\[\]-~]+")


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    return value


def _clip(value: Any, column: Any) -> Any:
    length = getattr(column.type, "length", None)
    return value[:length] if isinstance(value, str) and length else value


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def email_hash(email: str, salt: bytes) -> str:
    """The salted, slow hash an erasure keeps instead of the email (lowercased)."""
    digest = hashlib.pbkdf2_hmac("sha256", email.lower().encode(), salt, HASH_ROUNDS)
    return digest.hex()


class ErasureService(ActivityService):
    def forget(
        self, email: str, *, by: str, team: str | None = None, dry_run: bool = False
    ) -> ErasureReport:
        """Erase everything that identifies the person with this email (every workspace, or
        `team`), and record that it happened. Running it again finds nothing more."""
        raw = clean_text(email, field="email", max_len=320)
        address = parse_email(raw) if raw else None
        if address is None:
            raise InvalidInput("email", "Give the email address of the person to forget.")
        who = clean_text(by, field="by", max_len=100) or "unknown"
        with self._db.read() as session:
            known = list(session.scalars(select(Workspace.id).order_by(Workspace.id)))
        if team is not None and team not in known:
            raise InvalidInput("team", f"There is no workspace {team[:40]!r} in this database.")
        results = []
        for ws in [team] if team else known:
            try:
                with self._db.write() as session:
                    result = self._erase(session, ws, address, who)
                    if dry_run:
                        raise _DryRun(result)  # rolls the transaction back
            except _DryRun as dry:
                result = dry.result
            if result.rows:
                results.append(result)
        if results and not dry_run and self._db.dialect == "sqlite":
            self._compact_sqlite_fts()
            self._flush_sqlite_wal()
        return ErasureReport(dry_run, tuple(results))

    # --- one workspace, one transaction ----------------------------------------------

    def _erase(self, session: Session, ws: str, email: str, by: str) -> WorkspaceErasure:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if not sqlite:
            return self._erase_in(session, ws, email, by)
        # SQLite: pages this transaction frees are zeroed, not left holding the old rows.
        session.execute(text("PRAGMA secure_delete = ON"))
        try:
            return self._erase_in(session, ws, email, by)
        finally:
            session.execute(text("PRAGMA secure_delete = OFF"))

    def _erase_in(self, session: Session, ws: str, email: str, by: str) -> WorkspaceErasure:
        """Everything `forget` does in one workspace, in the caller's transaction."""
        counts: Counter[str] = Counter()
        now = self._now()
        leads, contacts = self._people(session, ws, email)
        needles = _Needles()
        needles.add(email, kind="email")
        people: list[Lead | Contact] = [*leads, *contacts]
        for person in people:
            needles.add(person.name, kind="name")
            needles.add(person.email, kind="email")
            needles.add(person.phone, kind="phone")
        person_events = self._events_of(session, ws, leads, contacts)
        for event in person_events:  # old names, emails and phones they once had
            for payload in (event.before or {}, event.after or {}):
                for key in ("name", "email", "phone"):
                    needles.add(payload.get(key), kind=key)
        about = needles.pattern(with_parts=True)
        touched: set[tuple[RecordKind, int]] = set()

        for lead in leads:
            if _erase_lead(lead, now):
                counts["lead"] += 1
            touched.add((RecordKind.LEAD, lead.id))
        for contact in contacts:
            if _erase_contact(contact, now):
                counts["contact"] += 1
            touched.add((RecordKind.CONTACT, contact.id))
        lead_ids = [lead.id for lead in leads]
        contact_ids = [contact.id for contact in contacts]
        if lead_ids or contact_ids:
            for row in self._linked(session, Interaction, lead_ids, contact_ids):
                if _erase_interaction(row, about):
                    counts["interaction"] += 1
            follow_ups = self._linked(session, FollowUp, lead_ids, contact_ids)
            for task in follow_ups:
                if _erase_follow_up(task, about, now):
                    counts["follow_up"] += 1
                    touched.add((RecordKind.FOLLOW_UP, task.id))
            person_events += self._events_of(session, ws, [], [], follow_ups=follow_ups)
            for deal in self._linked(session, Deal, lead_ids, contact_ids):
                if _erase_deal_text(deal, about):
                    counts["deal"] += 1
                    touched.add((RecordKind.DEAL, deal.id))
        for event in person_events:
            if _erase_payloads(event, about):
                counts["event"] += 1
                # Its record gets an `erase` event too, so undo never writes "[erased]" back.
                touched.add((RecordKind(event.kind), event.record_id))
        session.flush()

        everywhere = needles.pattern(with_parts=False)
        if everywhere is not None:
            terms = needles.like_terms()
            for table in Base.metadata.sorted_tables:
                if table.name in NOT_SWEPT or table.name == "search_doc":
                    continue
                if "workspace_id" in table.c:
                    self._sweep(session, table, ws, terms, everywhere, counts, touched)
        session.expire_all()
        counts["intake_request"] += self._forget_replays(session, ws, leads)
        counts["notification"] += self._forget_intake_posts(session, ws, leads)
        counts["search_doc"] += self._reindex(session, touched)
        if everywhere is not None:  # anything the rebuilt documents still mention
            search = SearchDoc.__table__
            assert isinstance(search, Table)
            self._sweep(session, search, ws, needles.like_terms(), everywhere, counts, set())
        refs = [queries.ref_of(RecordKind.LEAD, r.number) for r in leads]
        refs += [queries.ref_of(RecordKind.CONTACT, r.number) for r in contacts]
        counts = Counter({table: n for table, n in counts.items() if n})
        if counts:
            self._record(session, ws, by, email, refs, counts, touched, now)
        return WorkspaceErasure(ws, tuple(refs), dict(counts))

    # --- finding -----------------------------------------------------------------------

    def _people(self, session: Session, ws: str, email: str) -> tuple[list[Lead], list[Contact]]:
        """Leads and contacts with the email (deleted ones too), and what conversion linked."""
        wanted = email.lower()
        leads = {
            r.id: r
            for r in session.scalars(
                select(Lead).where(Lead.workspace_id == ws, func.lower(Lead.email) == wanted)
            )
        }
        contacts = {
            r.id: r
            for r in session.scalars(
                select(Contact).where(
                    Contact.workspace_id == ws, func.lower(Contact.email) == wanted
                )
            )
        }
        converted = {lead.converted_contact_id for lead in leads.values()} - {None} - set(contacts)
        if converted:
            contacts.update(
                (r.id, r) for r in session.scalars(select(Contact).where(Contact.id.in_(converted)))
            )
        if contacts:
            sources = select(Lead).where(
                Lead.workspace_id == ws, Lead.converted_contact_id.in_(list(contacts))
            )
            leads.update((r.id, r) for r in session.scalars(sources))
        return sorted(leads.values(), key=lambda r: r.id), sorted(
            contacts.values(), key=lambda r: r.id
        )

    def _events_of(
        self,
        session: Session,
        ws: str,
        leads: Sequence[Lead],
        contacts: Sequence[Contact],
        *,
        follow_ups: Sequence[FollowUp] = (),
    ) -> list[Event]:
        wanted = [
            (RecordKind.LEAD, [r.id for r in leads]),
            (RecordKind.CONTACT, [r.id for r in contacts]),
            (RecordKind.FOLLOW_UP, [r.id for r in follow_ups]),
        ]
        clauses = [
            (Event.kind == kind.value) & Event.record_id.in_(ids) for kind, ids in wanted if ids
        ]
        if not clauses:
            return []
        return list(session.scalars(select(Event).where(Event.workspace_id == ws, or_(*clauses))))

    def _linked(
        self,
        session: Session,
        model: type[Interaction] | type[FollowUp] | type[Deal],
        lead_ids: Sequence[int],
        contact_ids: Sequence[int],
    ) -> list[Any]:
        clauses = []
        if lead_ids:
            clauses.append(model.lead_id.in_(lead_ids))
        if contact_ids:
            clauses.append(model.contact_id.in_(contact_ids))
        return list(session.scalars(select(model).where(or_(*clauses))))

    # --- the sweep over every table -----------------------------------------------------

    def _sweep(
        self,
        session: Session,
        table: Table,
        ws: str,
        terms: Sequence[str],
        pattern: re.Pattern[str],
        counts: Counter[str],
        touched: set[tuple[RecordKind, int]],
    ) -> None:
        """Cut every mention out of the table's text and JSON columns in this workspace."""
        columns = [
            c
            for c in table.c
            if not c.primary_key
            and c.name != "workspace_id"
            and (
                isinstance(c.type, JSON)
                or (isinstance(c.type, String) and (c.type.length or 10**6) > CODE_LENGTH)
            )
        ]
        if not columns:
            return
        likes = [
            cast(column, Text).ilike("%" + _like_escape(term) + "%", escape="\\")
            for column in columns
            for term in terms
        ]
        keys = list(table.primary_key.columns)
        rows = session.execute(
            select(*keys, *columns).where(table.c.workspace_id == ws, or_(*likes))
        ).all()
        kind = _RECORD_TABLES.get(table.name)
        for row in rows:
            changes = {}
            for column in columns:
                old = getattr(row, column.name)
                new = _clip(_scrub(old, pattern), column)
                if new != old:
                    changes[column.name] = new
            if not changes:
                continue
            where = [key == getattr(row, key.name) for key in keys]
            session.execute(update(table).where(*where).values(**changes))
            counts[table.name] += 1
            if kind is not None:
                touched.add((kind, row.id))
            elif table.name == "event":
                event = session.get(Event, row.id)
                if event is not None and event.kind in _KINDS:
                    touched.add((RecordKind(event.kind), event.record_id))

    def _forget_replays(self, session: Session, ws: str, leads: Sequence[Lead]) -> int:
        """Intake Idempotency-Key rows that answered with one of these leads (their
        fingerprint is a hash of the form the person sent)."""
        refs = {queries.ref_of(RecordKind.LEAD, lead.number) for lead in leads}
        if not refs:
            return 0
        answer = cast(IntakeRequest.answer, Text)
        candidates = session.execute(
            select(IntakeRequest.key, IntakeRequest.answer).where(
                IntakeRequest.workspace_id == ws,
                or_(*(answer.like(f"%{ref}%") for ref in refs)),
            )
        ).all()
        keys = [row.key for row in candidates if (row.answer or {}).get("lead") in refs]
        if keys:
            session.execute(
                delete(IntakeRequest).where(
                    IntakeRequest.workspace_id == ws, IntakeRequest.key.in_(keys)
                )
            )
        return len(keys)

    def _forget_intake_posts(self, session: Session, ws: str, leads: Sequence[Lead]) -> int:
        """The intake's Slack posts about these leads (service/intake_posts.py): their rows
        carry the web form's message and fields. Sent ones are only a delivery log; pending
        ones must not go out any more, so both are deleted."""
        if not leads:
            return 0
        prefixes = [f"i:{ws}:{lead.id}:%" for lead in leads]
        gone = session.execute(
            delete(Notification).where(
                Notification.workspace_id == ws,
                Notification.kind == INTAKE_KIND,
                or_(*(Notification.dedupe_key.like(prefix) for prefix in prefixes)),
            )
        )
        return int(getattr(gone, "rowcount", 0) or 0)

    # --- afterwards ---------------------------------------------------------------------

    def _reindex(self, session: Session, touched: set[tuple[RecordKind, int]]) -> int:
        """Rebuild the search document of every record the erasure changed; how many."""
        rebuilt = 0
        for kind, record_id in sorted(touched, key=lambda pair: (pair[0].value, pair[1])):
            if kind not in queries.SEARCHABLE:
                continue
            record = session.get(queries.MODEL[kind], record_id)
            if isinstance(record, Lead | Contact | Account | Deal):
                queries.index_record(
                    session, record, detail=_detail(session, record), extra=_extra(record)
                )
                rebuilt += 1
        return rebuilt

    def _record(
        self,
        session: Session,
        ws: str,
        by: str,
        email: str,
        refs: list[str],
        counts: Counter[str],
        touched: set[tuple[RecordKind, int]],
        now: Any,
    ) -> None:
        """One `erase` event per record touched (history says so; undo won't go past it)
        and the workspace's erasure row."""
        for kind, record_id in sorted(touched, key=lambda pair: (pair[0].value, pair[1])):
            record = session.get(queries.MODEL[kind], record_id)
            if record is not None:
                queries.add_event(
                    session,
                    ws=ws,
                    at=now,
                    actor=ACTOR,
                    action="erase",
                    record=record,
                    before=None,
                    after=None,
                )
        salt = secrets.token_bytes(16)
        session.add(
            Erasure(
                workspace_id=ws,
                at=now,
                requested_by=by,
                email_hash=email_hash(email, salt),
                salt=salt.hex(),
                records=refs,
                counts=dict(sorted(counts.items())),
                rows=sum(counts.values()),
            )
        )

    def _compact_sqlite_fts(self) -> None:
        """SQLite: merge each FTS5 index into one segment, so the erased terms leave its
        older segments (where they stay, only marked deleted, until a merge reaches them).

        A negative 'merge' merges across levels like 'optimize' does, but a bounded amount of
        work per call: one short write transaction each, so Slack requests in other threads
        and processes get the lock in between."""
        for index in ("search_fts", "search_words"):
            while True:
                with self._db.write() as session:
                    session.execute(text("PRAGMA secure_delete = ON"))
                    raw = session.connection().connection.driver_connection
                    assert raw is not None
                    before = raw.total_changes
                    session.execute(
                        text(f"INSERT INTO {index}({index}, rank) VALUES ('merge', :pages)"),
                        {"pages": -FTS_MERGE_PAGES},
                    )
                    # Fewer than two changes: the merge found nothing left to do.
                    done = raw.total_changes - before < 2
                    session.execute(text("PRAGMA secure_delete = OFF"))
                if done:
                    break

    def _flush_sqlite_wal(self) -> None:
        """SQLite: copy the write-ahead log into the database and empty it, so the old page
        images it held are gone too."""
        if self._db.dialect != "sqlite":
            return
        with self._db.engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def erasures(self, email: str) -> list[tuple[str, Any, str]]:
        """(workspace, when, requested by) of every erasure recorded for this email."""
        address = (parse_email(email.strip()) or email.strip()).lower()
        found = []
        with self._db.read() as session:
            for row in session.scalars(select(Erasure).order_by(Erasure.at)):
                if secrets.compare_digest(
                    email_hash(address, bytes.fromhex(row.salt)), row.email_hash
                ):
                    found.append((row.workspace_id, row.at, row.requested_by))
        return found


_RECORD_TABLES = {
    "lead": RecordKind.LEAD,
    "contact": RecordKind.CONTACT,
    "account": RecordKind.ACCOUNT,
    "deal": RecordKind.DEAL,
    "follow_up": RecordKind.FOLLOW_UP,
}
_KINDS = frozenset(kind.value for kind in _RECORD_TABLES.values())


def _erase_lead(lead: Lead, now: Any) -> bool:
    before = (lead.name, lead.company, lead.email, lead.phone, lead.extra, lead.deleted_at)
    lead.name, lead.company, lead.email, lead.phone, lead.extra = (
        ERASED_NAME,
        None,
        None,
        None,
        None,
    )
    lead.deleted_at = lead.deleted_at or now
    changed = before != (lead.name, None, None, None, None, lead.deleted_at)
    if changed:
        lead.updated_at = now
    return changed


def _erase_contact(contact: Contact, now: Any) -> bool:
    before = (contact.name, contact.email, contact.phone, contact.title, contact.deleted_at)
    contact.name, contact.email, contact.phone, contact.title = ERASED_NAME, None, None, None
    contact.deleted_at = contact.deleted_at or now
    changed = before != (contact.name, None, None, None, contact.deleted_at)
    if changed:
        contact.updated_at = now
    return changed


def _erase_interaction(row: Interaction, about: re.Pattern[str] | None) -> bool:
    before = (row.summary, row.outcome, row.permalink)
    if row.deal_id is not None and about is not None:
        # Also the deal's history: keep the business, cut out who she is.
        row.summary = about.sub(REDACTED, row.summary)
        row.outcome = about.sub(REDACTED, row.outcome)[:200] if row.outcome else row.outcome
    else:  # only about the person: nothing of it is kept
        row.summary = REDACTED if row.summary else row.summary
        row.outcome, row.permalink = None, None
    return before != (row.summary, row.outcome, row.permalink)


def _erase_follow_up(task: FollowUp, about: re.Pattern[str] | None, now: Any) -> bool:
    before = (task.title, task.status)
    if about is not None:
        task.title = about.sub(REDACTED, task.title)[:500]
    if task.status == "open" and task.deal_id is None:
        # Nobody is chased to call someone who asked to be forgotten; a deal's tasks stay.
        task.status, task.completed_at = "cancelled", now
    return before != (task.title, task.status)


def _erase_deal_text(deal: Deal, about: re.Pattern[str] | None) -> bool:
    """A deal of hers stays, amount and all; any part of her name leaves its name."""
    if about is None:
        return False
    before = (deal.name, deal.lost_reason)
    deal.name = about.sub(REDACTED, deal.name)[:300]
    if deal.lost_reason:
        deal.lost_reason = about.sub(REDACTED, deal.lost_reason)[:500]
    return before != (deal.name, deal.lost_reason)


def _erase_payloads(event: Event, about: re.Pattern[str] | None) -> bool:
    changed = False
    for name in ("before", "after"):
        payload = getattr(event, name)
        if not payload:
            continue
        new = {
            key: REDACTED
            if key in PERSONAL_KEYS and value not in (None, "", REDACTED, ERASED_NAME)
            else (_scrub(value, about) if about is not None else value)
            for key, value in payload.items()
        }
        if new != payload:
            setattr(event, name, new)
            changed = True
    return changed
