"""`crmbot import KIND FILE.csv`: leads, contacts, accounts or deals from a spreadsheet.

Every row goes through the service's own checks (`clean_field`: names, emails, phones,
domains, sizes) and gets the search document and audit event the service would write.
Rows are matched, inside the file and against the database, by email (people), web domain
(accounts) or name (+ company / account), and by crmbot reference when the file has a `ref`
column. A match with new non-empty values updates the record; one without is a duplicate.
Writes go in batches, one transaction each: a failure never leaves half a batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmbot.csvfile import (
    SHOWN_REJECTS,
    CsvProblem,
    ImportSummary,
    Progress,
    Rejected,
    decode,
    read_rows,
    terminal_progress,
    write_rejects,
)
from crmbot.csvmap import Kind, map_headers
from crmbot.import_rows import RECORD_KIND, Known, Row, RowCleaning, email_key
from crmbot.import_writes import MODEL, RecordWriting
from crmbot.service.base import Clock, utcnow
from crmbot.service.workspace import DEFAULT_STAGES, WorkspaceService
from crmbot.store.bulk import (
    fast_fold,
    raise_counter,
)
from crmbot.store.db import Database
from crmbot.store.models import (
    Account,
    Contact,
    Deal,
    Lead,
    Rep,
    Stage,
    Workspace,
)

__all__ = ["CsvProblem", "ImportSummary", "Importer", "import_csv", "terminal_progress"]

BATCH = 10_000  # rows per transaction: about half a second of SQLite's write lock


class Importer(RowCleaning, RecordWriting):
    """One import of one file into one workspace."""

    def __init__(
        self,
        db: Database,
        ws: str,
        kind: Kind,
        *,
        clock: Clock = utcnow,
        dry_run: bool = False,
        batch: int = BATCH,
        progress: Progress | None = None,
    ) -> None:
        self.db, self.ws, self.kind = db, ws, kind
        self.clock, self.dry_run, self.batch = clock, dry_run, batch
        self.progress = progress
        self.summary = ImportSummary(kind, dry_run=dry_run)
        self.now = clock()
        self.known = Known()
        self.accounts = Known()
        self.contacts = Known()
        self.account_names: dict[str, int] = {}  # folded account name -> id
        self.contact_emails: dict[str, int] = {}
        self.contact_names: dict[str, list[int]] = {}
        self.lead_numbers: dict[int, int] = {}
        self.deal_numbers: dict[int, int] = {}
        self.owners: dict[str, str] = {}  # folded name / lowercased email -> user id
        self.stages: list[tuple[int, str, int, str]] = []  # id, name, probability, kind
        self.currency = "USD"
        self.seen_numbers: set[int] = set()
        self.seen_keys: set[tuple[str, ...]] = set()
        self.new_accounts: set[str] = set()  # dry run: folded names of accounts it would make
        self.taken: set[int] = set()  # reference numbers in use before the import
        self._stage_ids: dict[int, int] = {}  # placeholder -> real, once the workspace exists
        self.rejects: list[tuple[int, list[str], str]] = []
        self.source = ""

    # --- entry point -------------------------------------------------------------------

    def run(self, path: Path, *, encoding: str | None = None) -> ImportSummary:
        self.source = path.name
        header, rows = read_rows(decode(path, encoding))
        columns = map_headers(self.kind, header)
        self._check_columns(header, columns)
        self.summary.ignored_columns = [
            h for i, h in enumerate(header) if i not in columns and h and self.kind != Kind.LEADS
        ]
        self._load()
        has_refs = "ref" in columns.values()
        explicit = [n for _, row in rows if has_refs and (n := self._ref_number(row, columns))]
        if explicit and not self.dry_run:
            self._raise_counter(max(explicit))
        # (Writing batches on a second thread while checking the next was measured: slower,
        # SQLite releases and retakes the GIL around every row step.)
        pending: list[Row] = []
        for done, (line, cells) in enumerate(rows, 1):
            try:
                row = self._clean(line, cells, header, columns)
            except Rejected as reason:
                self._reject(line, cells, str(reason))
            else:
                if self._classify(row):
                    pending.append(row)
            if len(pending) >= self.batch:
                self._write(pending)
                pending = []
            if self.progress and (done % self.batch == 0 or done == len(rows)):
                self.progress(done, len(rows))
        if pending:
            self._write(pending)
        if self.rejects and not self.dry_run:
            self.summary.rejects_path = write_rejects(path, header, self.rejects)
        return self.summary

    def _check_columns(self, header: list[str], columns: dict[int, str]) -> None:
        fields = set(columns.values())
        needed = {"name", "first_name", "last_name", "email"}
        if self.kind == Kind.ACCOUNTS:
            needed = {"name", "domain"}
        elif self.kind == Kind.DEALS:
            needed = {"name"}
        if not fields & needed:
            shown = ", ".join(h for h in header if h) or "none"
            raise CsvProblem(
                f"No column names the {self.kind.value} (found: {shown[:300]}). Expected a "
                f"header such as {', '.join(sorted(needed))}; see `crmbot import --help`."
            )

    # --- loading what exists -----------------------------------------------------------

    def _load(self) -> None:
        with self.db.read() as session:
            workspace = session.get(Workspace, self.ws)
            self.currency = workspace.default_currency if workspace else "USD"
            stages = list(
                session.execute(
                    select(Stage.id, Stage.name, Stage.probability, Stage.kind)
                    .where(Stage.workspace_id == self.ws)
                    .order_by(Stage.position)
                )
            )
            self.stages = [(s.id, s.name, s.probability, s.kind) for s in stages] or [
                (-i - 1, name, p, k.value) for i, (name, p, k, _) in enumerate(DEFAULT_STAGES)
            ]
            for rep in session.execute(
                select(Rep.user_id, Rep.name, Rep.email).where(Rep.workspace_id == self.ws)
            ):
                self.owners.setdefault(fast_fold(rep.name), rep.user_id)
                if rep.email:
                    self.owners.setdefault(rep.email.lower(), rep.user_id)
            live = Account.deleted_at.is_(None)
            for a in session.execute(
                select(Account.id, Account.number, Account.name, Account.domain).where(
                    Account.workspace_id == self.ws, live
                )
            ):
                keys: list[tuple[str, ...]] = [("domain", a.domain)] if a.domain else []
                self.accounts.add(a.id, a.number, a.name, [*keys, ("name", fast_fold(a.name))])
                self.account_names.setdefault(fast_fold(a.name), a.id)
                if not a.domain:
                    self.accounts.keyless.add(a.id)
            if self.kind in (Kind.CONTACTS, Kind.DEALS, Kind.LEADS):
                names = dict(self._account_name_rows(session))
                for c in session.execute(
                    select(
                        Contact.id, Contact.number, Contact.name, Contact.email, Contact.account_id
                    ).where(Contact.workspace_id == self.ws, Contact.deleted_at.is_(None))
                ):
                    company = names.get(c.account_id, "")
                    keys = [k for k in (email_key(c.email),) if k]
                    self.contacts.add(
                        c.id, c.number, c.name, [*keys, ("name", fast_fold(c.name), company)]
                    )
                    if c.email:
                        self.contact_emails.setdefault(c.email.lower(), c.id)
                    else:
                        self.contacts.keyless.add(c.id)
                    self.contact_names.setdefault(fast_fold(c.name), []).append(c.id)
            if self.kind in (Kind.LEADS, Kind.DEALS):
                for n in session.execute(
                    select(Lead.id, Lead.number, Lead.name, Lead.email, Lead.company).where(
                        Lead.workspace_id == self.ws, Lead.deleted_at.is_(None)
                    )
                ):
                    self.lead_numbers[n.number] = n.id
                    if self.kind == Kind.LEADS:
                        keys = [k for k in (email_key(n.email),) if k]
                        name_key = ("name", fast_fold(n.name), fast_fold(n.company or ""))
                        self.known.add(n.id, n.number, n.name, [*keys, name_key])
                        if not n.email:
                            self.known.keyless.add(n.id)
            if self.kind in (Kind.LEADS, Kind.DEALS):
                names = dict(self._account_name_rows(session))
                for d in session.execute(
                    select(Deal.id, Deal.number, Deal.name, Deal.account_id).where(
                        Deal.workspace_id == self.ws, Deal.deleted_at.is_(None)
                    )
                ):
                    self.deal_numbers[d.number] = d.id
                    if self.kind == Kind.DEALS:
                        key = ("name", fast_fold(d.name), names.get(d.account_id, ""))
                        self.known.add(d.id, d.number, d.name, [key])
                        self.known.keyless.add(d.id)
        if self.kind == Kind.ACCOUNTS:
            self.known = self.accounts
        elif self.kind == Kind.CONTACTS:
            self.known = self.contacts
        with self.db.read() as session:
            model = MODEL[self.kind]
            # Deleted records keep their numbers too.
            self.taken = set(
                session.scalars(select(model.number).where(model.workspace_id == self.ws))
            )

    def _account_name_rows(self, session: Session) -> Iterator[tuple[int, str]]:
        for a in session.execute(
            select(Account.id, Account.name).where(Account.workspace_id == self.ws)
        ):
            yield a.id, fast_fold(a.name)

    def _raise_counter(self, at_least: int) -> None:
        """Fresh numbers start above every reference in the file, so none collide."""
        with self.db.write() as session:
            WorkspaceService(self.db, self.clock)._ensure_workspace(session, self.ws)
            raise_counter(session, self.ws, RECORD_KIND[self.kind], at_least)

    def _classify(self, row: Row) -> bool:
        """Count in-file duplicates now; True when the row goes on to be written."""
        if (row.number is not None and row.number in self.seen_numbers) or (
            row.number is None and any(k in self.seen_keys for k in row.keys[:1])
        ):
            self.summary.duplicates += 1
            return False
        if row.number is not None:
            self.seen_numbers.add(row.number)
        self.seen_keys.update(row.keys[:1])
        row.links["existing"] = self._existing(row)
        return True

    def _existing(self, row: Row) -> int | None:
        known = self.known
        if row.number is not None and row.number in known.by_number:
            found = known.by_number[row.number]
            if known.name_of.get(found) == fast_fold(row.values["name"]) or (
                row.keys and known.by_key.get(row.keys[0]) == found
            ):
                return found
        if not row.keys:
            return None
        found_id = known.by_key.get(row.keys[0])
        if found_id is not None or not row.strong:
            return found_id
        # A row with an email/domain also matches a record with the same name that has none.
        fallback = known.by_key.get(row.keys[-1])
        return fallback if fallback in known.keyless else None

    # --- rejects ---------------------------------------------------------------------

    def _reject(self, line: int, cells: list[str], reason: str) -> None:
        self.summary.rejected += 1
        self.rejects.append((line, cells, reason))
        if len(self.summary.first_rejects) < SHOWN_REJECTS:
            self.summary.first_rejects.append((line, reason))


def import_csv(
    db: Database,
    ws: str,
    kind: Kind,
    path: Path,
    *,
    dry_run: bool = False,
    encoding: str | None = None,
    clock: Clock = utcnow,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one CSV file of `kind` into workspace `ws`."""
    importer = Importer(db, ws, kind, clock=clock, dry_run=dry_run, batch=batch, progress=progress)
    return importer.run(path, encoding=encoding)
