"""Writing an import's rows: new records in bulk with their reference numbers, search
documents and audit events; matched records updated through the ORM (diffed, audited).
Mixed into the Importer, which owns the state declared here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmbot.csvfile import ImportSummary
from crmbot.csvmap import Kind
from crmbot.import_rows import RECORD_KIND, Known, Row
from crmbot.parsing import format_money
from crmbot.service.base import Clock
from crmbot.service.records import _detail, _extra
from crmbot.service.workspace import WorkspaceService
from crmbot.store import queries
from crmbot.store.bulk import (
    bulk_insert,
    fast_fold,
    insert_search_docs,
    new_ids,
    reserve_numbers,
    search_body,
)
from crmbot.store.db import Database
from crmbot.store.import_events import IMPORT_ACTOR, import_event
from crmbot.store.models import (
    Account,
    Contact,
    Deal,
    Event,
    Lead,
    Stage,
    StageHistory,
)

WAL_PAGES = 25_000  # checkpoint the WAL every ~100 MB while importing, not every 4 MB
CACHE_KIB = 256 * 1024  # SQLite page cache while importing: 256 MB, not 2 MB
MODEL: dict[Kind, type[Lead | Contact | Account | Deal]] = {
    Kind.LEADS: Lead,
    Kind.CONTACTS: Contact,
    Kind.ACCOUNTS: Account,
    Kind.DEALS: Deal,
}
# Fields compared and copied when a row matches an existing record.
UPDATED: dict[Kind, tuple[str, ...]] = {
    Kind.LEADS: (
        "name",
        "company",
        "email",
        "phone",
        "source",
        "status",
        "score",
        "owner_id",
        "converted_contact_id",
        "converted_account_id",
        "converted_deal_id",
    ),
    Kind.CONTACTS: ("name", "email", "phone", "title", "source", "account_id", "owner_id"),
    Kind.ACCOUNTS: ("name", "domain", "industry", "size", "region", "owner_id"),
    Kind.DEALS: (
        "name",
        "amount",
        "currency",
        "probability",
        "close_date",
        "lost_reason",
        "account_id",
        "contact_id",
        "owner_id",
    ),
}


# --- the import ------------------------------------------------------------------------------


class RecordWriting:
    """Writes batches of checked rows (the Importer declares and fills this state)."""

    db: Database
    ws: str
    kind: Kind
    clock: Clock
    now: Any
    dry_run: bool
    summary: ImportSummary
    known: Known
    accounts: Known
    account_names: dict[str, int]
    new_accounts: set[str]
    taken: set[int]
    stages: list[tuple[int, str, int, str]]
    _stage_ids: dict[int, int]
    source: str  # the file's name, for the audit trail
    _docs: list[dict[str, Any]]  # the batch's new search documents

    def _write(self, rows: list[Row]) -> None:
        inserts = [r for r in rows if r.links["existing"] is None]
        updates = [r for r in rows if r.links["existing"] is not None]
        if self.dry_run:
            self._count_new_accounts(rows)
            with self.db.read() as session:
                changed = self._update(session, updates, apply=False)
        else:
            with self.db.write() as session:
                if session.get_bind().dialect.name == "sqlite":
                    # Fewer checkpoints (each one syncs to disk), and a page cache that holds a
                    # batch's index pages (the default 2 MB spills them to the WAL mid-batch):
                    # this connection only (the CLI's own).
                    connection = session.connection()
                    connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
                    connection.exec_driver_sql(f"PRAGMA cache_size=-{CACHE_KIB}")
                WorkspaceService(self.db, self.clock)._ensure_workspace(session, self.ws)
                if self.stages and self.stages[0][0] < 0:
                    self._reload_stages(session)
                self._docs = []
                self._link_accounts(session, rows)
                self._insert(session, inserts)
                # The batch's new accounts and records: one FTS fill for all of them.
                insert_search_docs(session, self._docs)
                changed = self._update(session, updates, apply=True)
        self.summary.imported += len(inserts)
        self.summary.updated += changed
        self.summary.duplicates += len(updates) - changed

    def _count_new_accounts(self, rows: list[Row]) -> None:
        for row in rows:
            if row.account_name and not row.links.get("account_id"):
                key = row.account_key
                if key not in self.account_names and key not in self.new_accounts:
                    self.new_accounts.add(key)
                    self.summary.accounts_created += 1

    def _reload_stages(self, session: Session) -> None:
        by_name = {
            s.name: s for s in session.scalars(select(Stage).where(Stage.workspace_id == self.ws))
        }
        # Rows cleaned before the workspace existed carry placeholder stage ids.
        self._stage_ids = {s[0]: by_name[s[1]].id for s in self.stages if s[1] in by_name}
        self.stages = [(by_name[n].id, n, p, k) for _, n, p, k in self.stages if n in by_name]

    def _link_accounts(self, session: Session, rows: list[Row]) -> None:
        """Contacts' and deals' accounts: found by name, made when new (in this batch)."""
        if self.kind not in (Kind.CONTACTS, Kind.DEALS):
            return
        wanted: dict[str, str] = {}
        for row in rows:
            new = row.account_key not in self.account_names
            if row.account_name and not row.links.get("account_id") and new:
                wanted.setdefault(row.account_key, row.account_name)
        if wanted:
            records: list[dict[str, Any]] = [
                {
                    "workspace_id": self.ws,
                    "name": name,
                    "owner_id": None,
                    "created_at": self.now,
                    "updated_at": self.now,
                }
                for name in wanted.values()
            ]
            ids = self._insert_records(session, Kind.ACCOUNTS, records)
            for key, record_id, record in zip(wanted, ids, records, strict=True):
                self.account_names[key] = record_id
                self.accounts.add(record_id, record["number"], record["name"], [])
            self.summary.accounts_created += len(ids)
        for row in rows:
            if row.account_name and not row.links.get("account_id"):
                row.links["account_id"] = self.account_names[row.account_key]

    def _insert(self, session: Session, rows: list[Row]) -> None:
        if not rows:
            return
        records = []
        for row in rows:
            record = {"workspace_id": self.ws, **row.values}
            if row.number is not None and row.number not in self.taken:
                record["number"] = row.number
            for key in ("account_id", "contact_id", "lead_id"):
                if key in row.links:
                    record[key] = row.links[key]
            if "stage_id" in record and record["stage_id"] < 0:
                record["stage_id"] = self._stage_ids[record["stage_id"]]
            records.append(record)
        # Later rows that match these are in-file duplicates: `known` needn't learn them.
        ids = self._insert_records(session, self.kind, records)
        if self.kind == Kind.DEALS:
            bulk_insert(
                session,
                StageHistory.__table__,
                [
                    {
                        "workspace_id": self.ws,
                        "deal_id": record_id,
                        "from_stage_id": None,
                        "to_stage_id": record["stage_id"],
                        "at": record["created_at"],
                        "by": IMPORT_ACTOR,
                    }
                    for record_id, record in zip(ids, records, strict=True)
                ],
            )
            self._restore_conversions(session, ids, records)

    def _insert_records(
        self, session: Session, kind: Kind, records: list[dict[str, Any]]
    ) -> list[int]:
        """Insert rows of one kind with their reference numbers, search documents and events."""
        record_kind = RECORD_KIND[kind]
        fresh = [r for r in records if "number" not in r]
        if fresh:
            top = reserve_numbers(session, self.ws, record_kind, len(fresh))
            for offset, record in enumerate(fresh):
                record["number"] = top - len(fresh) + 1 + offset
        model = MODEL[kind]
        ids = new_ids(session, model, len(records))
        for record_id, record in zip(ids, records, strict=True):
            record["id"] = record_id
        bulk_insert(session, model.__table__, records)
        details = self._details(session, kind, records)
        docs = []
        for record_id, record, (detail, extra) in zip(ids, records, details, strict=True):
            ref = queries.ref_of(record_kind, record["number"])
            name = record["name"]
            docs.append(
                {
                    "workspace_id": self.ws,
                    "kind": record_kind.value,
                    "record_id": record_id,
                    "ref": ref,
                    "name": name,
                    "folded_name": fast_fold(name)[:300],
                    "body": search_body(ref, name, *extra),
                    "detail": detail[:500],
                    "owner_id": record.get("owner_id"),
                    "updated_at": record["updated_at"],
                    "deleted": False,
                }
            )
        self._docs.extend(docs)  # written by `_write`, with the rest of the batch's
        # One audit event for the batch, not one per record (see import_events).
        bulk_insert(
            session,
            Event.__table__,
            [
                import_event(
                    self.ws,
                    record_kind,
                    self.now,
                    self.source,
                    ids,
                    [record["number"] for record in records],
                )
            ],
        )
        return ids

    def _details(
        self, session: Session, kind: Kind, records: list[dict[str, Any]]
    ) -> list[tuple[str, list[str | None]]]:
        """Each record's search detail line and extra search text, as the service makes them
        (`records._detail` / `records._extra`), from plain values."""
        out: list[tuple[str, list[str | None]]] = []
        names: dict[Any, str] = {}
        if kind == Kind.CONTACTS:
            names = self._names(session, Account, {r.get("account_id") for r in records})
        stage_names = {s[0]: s[1] for s in self.stages}
        for r in records:
            if kind == Kind.LEADS:
                parts = [r.get("company"), r.get("email"), r.get("status")]
                extra = [r.get("company"), r.get("email"), r.get("phone"), r.get("source")]
            elif kind == Kind.CONTACTS:
                parts = [r.get("title"), names.get(r.get("account_id")), r.get("email")]
                extra = [r.get("email"), r.get("phone"), r.get("title")]
            elif kind == Kind.ACCOUNTS:
                parts = [r.get("domain"), r.get("industry"), r.get("region")]
                extra = list(parts)
            else:
                amount = r.get("amount")
                parts = [
                    stage_names.get(r["stage_id"]),
                    format_money(amount, r["currency"]) if amount is not None else None,
                    r["status"] if r["status"] != "open" else None,
                ]
                extra = []
            out.append((" · ".join(p for p in parts if p), extra))
        return out

    def _names(self, session: Session, model: Any, ids: set[Any]) -> dict[Any, str]:
        wanted = [i for i in ids if i is not None]
        if not wanted:
            return {}
        rows = session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
        return {row.id: row.name for row in rows}

    def _restore_conversions(
        self, session: Session, ids: list[int], records: list[dict[str, Any]]
    ) -> None:
        """A deal made by converting a lead points back at it: the lead's `converted_deal`."""
        for deal_id, record in zip(ids, records, strict=True):
            if record.get("lead_id") is None or record.get("contact_id") is None:
                continue
            lead = session.get(Lead, record["lead_id"])
            if (
                lead is not None
                and lead.status == "converted"
                and lead.converted_deal_id is None
                and lead.converted_contact_id == record["contact_id"]
            ):
                lead.converted_deal_id = deal_id

    def _update(self, session: Session, rows: list[Row], *, apply: bool) -> int:
        """Copy new non-empty values onto matched records (unless `apply` is False: a dry
        run); the number of records that change."""
        if not rows:
            return 0
        model: Any = MODEL[self.kind]
        found: dict[int, Any] = {
            r.id: r
            for r in session.scalars(
                select(model).where(model.id.in_([row.links["existing"] for row in rows]))
            )
        }
        changed = 0
        for row in rows:
            record = found.get(row.links["existing"])
            if record is None:
                continue
            given = {
                **row.values,
                **{k: v for k, v in row.links.items() if k in UPDATED[self.kind]},
            }
            changes = {
                key: given[key]
                for key in UPDATED[self.kind]
                if given.get(key) not in (None, "") and getattr(record, key) != given[key]
            }
            if self.kind == Kind.LEADS and row.values.get("extra"):
                merged = {**(record.extra or {}), **row.values["extra"]}
                if merged != (record.extra or {}):
                    changes["extra"] = merged
            if not changes:
                continue
            changed += 1
            if not apply:
                continue
            before = queries.snapshot(record)
            for key, value in changes.items():
                setattr(record, key, value)
            record.updated_at = self.now
            queries.index_record(
                session, record, detail=_detail(session, record), extra=_extra(record)
            )
            old, new = queries.diff(before, queries.snapshot(record))
            queries.add_event(
                session,
                ws=self.ws,
                at=self.now,
                actor=IMPORT_ACTOR,
                action="update",
                record=record,
                before=old,
                after=new,
            )
        return changed
