"""`/crm find` with filters, and saved segments (`save:NAME`, then `/crm find @NAME`).

Filters: `kind: industry: region: size: owner: stage: source: status: sort:`, combinable with
free text. Each filter narrows the kinds of record it applies to (stage: only deals, industry:
accounts and the contacts and deals of those accounts, ...) and becomes an indexed condition;
free text goes through the search index. Typed values match the stored ones by their folded
form ("saas" finds "SaaS"), looked up among the workspace's distinct values first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, literal_column, or_, select, text
from sqlalchemy.orm import Session

from crmbot.domain import (
    Conflict,
    DealStatus,
    InvalidInput,
    LeadStatus,
    PermissionDenied,
    RecordKind,
)
from crmbot.parsing import clean_text, fold
from crmbot.reporting import FindResult, FoundRecord, SegmentView
from crmbot.service import privacy
from crmbot.service.activity import ActivityService
from crmbot.service.base import optional_user
from crmbot.service.privacy import Viewer
from crmbot.service.private_search import visible_details
from crmbot.store import queries
from crmbot.store.models import Account, Contact, Deal, Lead, SearchDoc, Segment

FIND_LIMIT = 20
SEGMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
SORTS = ("newest", "oldest", "name", "score", "amount")
KIND_WORDS = {
    **{k.value: k for k in queries.SEARCHABLE},
    **{k.value + "s": k for k in queries.SEARCHABLE},
    "company": RecordKind.ACCOUNT,
    "companies": RecordKind.ACCOUNT,
    "person": RecordKind.CONTACT,
    "people": RecordKind.CONTACT,
}
# Which kinds each filter can apply to.
APPLIES: dict[str, frozenset[RecordKind]] = {
    "industry": frozenset({RecordKind.ACCOUNT, RecordKind.CONTACT, RecordKind.DEAL}),
    "region": frozenset({RecordKind.ACCOUNT, RecordKind.CONTACT, RecordKind.DEAL}),
    "size": frozenset({RecordKind.ACCOUNT, RecordKind.CONTACT, RecordKind.DEAL}),
    "stage": frozenset({RecordKind.DEAL}),
    "source": frozenset({RecordKind.LEAD, RecordKind.CONTACT, RecordKind.DEAL}),
}
_SIZE = re.compile(
    r"(?P<op>>=|<=|>|<|=)?\s*(?P<a>\d[\d,_]*)"
    r"(?:\s*(?:-|\.\.)\s*(?P<b>\d[\d,_]*))?(?P<plus>\+)?"
)


@dataclass
class Criteria:
    """The filters of one search, checked and resolved to values the database holds."""

    kinds: set[RecordKind] = field(default_factory=lambda: set(queries.SEARCHABLE))
    text: str = ""
    owner_id: str | None = None
    industry: list[str] | None = None
    region: list[str] | None = None
    size: tuple[int | None, int | None] | None = None
    stage_ids: list[int] | None = None
    sources: list[str] | None = None
    lead_statuses: list[str] | None = None
    deal_statuses: list[str] | None = None
    sort: str = "newest"
    notes: list[str] = field(default_factory=list)


def _size(value: str) -> tuple[int | None, int | None]:
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise InvalidInput("size", f'"{value}" is not a company size.', example="size:>50")
    a = int(match["a"].replace(",", "").replace("_", ""))
    if match["b"]:
        b = int(match["b"].replace(",", "").replace("_", ""))
        return min(a, b), max(a, b)
    if match["plus"]:
        return a, None
    op = match["op"] or "="
    return {
        ">": (a + 1, None),
        ">=": (a, None),
        "<": (None, a - 1),
        "<=": (None, a),
        "=": (a, a),
    }[op]


class SegmentService(ActivityService):
    def find_records(
        self,
        ws: str,
        *,
        by: str,
        text: str = "",
        filters: Sequence[tuple[str, str]] = (),
        owner_id: str | None = None,
        limit: int = FIND_LIMIT,
    ) -> FindResult:
        """Records matching free text and filters; `save:NAME` also saves the search,
        `@NAME` in the text runs a saved one (further filters narrow it)."""
        owner_id = optional_user(owner_id)
        save = [v for k, v in filters if k == "save"]
        filters = [(k, v) for k, v in filters if k != "save"]
        words = clean_text(text or "", field="query", max_len=200).split()
        names = [w[1:] for w in words if w.startswith("@") and len(w) > 1]
        rest = " ".join(w for w in words if not (w.startswith("@") and len(w) > 1))
        segment: SegmentView | None = None
        if names:
            if len(names) > 1:
                raise InvalidInput("segment", "One saved segment at a time.", example="@hot-emea")
            segment = self.segment(ws, names[0])
            rest = " ".join(p for p in (segment.text, rest) if p)
            filters = [*segment.filters, *filters]
            owner_id = owner_id or segment.owner_id
        if not rest and not filters and owner_id is None:
            raise InvalidInput(
                "query", "What should I look for?", example="/crm find stage:proposal"
            )
        saved: str | None = None
        if save:
            saved = self.save_segment(
                ws, save[-1], by=by, text=rest, filters=filters, owner_id=owner_id
            ).name
        with self._db.read() as session:
            criteria = self._criteria(session, ws, rest, filters, owner_id)
            who = privacy.viewer(session, ws, by)
            if criteria.sort == "amount" and who.masks_amounts is not None:
                raise PermissionDenied(
                    "Deal amounts are visible to managers and admins only in this workspace, "
                    "so only they can sort by amount."
                )
            hits, more = self._run(session, ws, criteria, limit, who)
        return FindResult(
            query=SegmentView("", rest, tuple(filters), owner_id, by).query,
            owner_id=owner_id,
            hits=hits,
            more=more,
            segment=segment.name if segment else None,
            saved=saved,
            note=" ".join(criteria.notes) or None,
        )

    # --- saved segments ---------------------------------------------------------------

    def save_segment(
        self,
        ws: str,
        name: str,
        *,
        by: str,
        text: str = "",
        filters: Sequence[tuple[str, str]] = (),
        owner_id: str | None = None,
    ) -> SegmentView:
        """Save (or, for its creator, replace) a named search."""
        owner_id = optional_user(owner_id)
        key = name.strip().lstrip("@").lower()
        if not SEGMENT_NAME.fullmatch(key):
            raise InvalidInput(
                "save",
                f'"{name}" can\'t name a segment: use letters, digits, - and _ (up to 40).',
                example="save:hot-emea",
            )
        if not text and not filters and owner_id is None:
            raise InvalidInput("save", "Save which filters?", example="industry:saas save:saas")
        now = self._now()
        with self._db.write() as session:
            self.ensure_rep_row(session, ws, by)
            row = session.scalars(
                select(Segment).where(Segment.workspace_id == ws, Segment.name == key)
            ).one_or_none()
            if row is not None and row.created_by != by:
                raise Conflict(f"@{key} is someone else's segment; pick another name.")
            if row is None:
                row = Segment(workspace_id=ws, name=key, created_by=by, created_at=now)
                session.add(row)
            row.text = text[:300]
            row.filters = [[k, v] for k, v in filters]
            row.owner_id = owner_id
            row.updated_at = now
            return _segment_view(row)

    def segment(self, ws: str, name: str) -> SegmentView:
        """A saved segment by name; the error lists the saved ones."""
        key = name.strip().lstrip("@").lower()
        with self._db.read() as session:
            row = session.scalars(
                select(Segment).where(Segment.workspace_id == ws, Segment.name == key)
            ).one_or_none()
            if row is not None:
                return _segment_view(row)
            known = session.scalars(
                select(Segment.name).where(Segment.workspace_id == ws).order_by(Segment.name)
            ).all()
        listed = ", ".join(f"@{n}" for n in known[:10])
        raise InvalidInput(
            "segment",
            f"There is no saved segment @{key}."
            + (f" Saved: {listed}." if listed else " Save one with save:NAME."),
            example="/crm find industry:saas region:emea save:hot-emea",
        )

    def segments(self, ws: str) -> tuple[SegmentView, ...]:
        """The workspace's saved segments, by name."""
        with self._db.read() as session:
            rows = session.scalars(
                select(Segment).where(Segment.workspace_id == ws).order_by(Segment.name)
            )
            return tuple(_segment_view(r) for r in rows)

    # --- filters ---------------------------------------------------------------------

    def _criteria(
        self,
        session: Session,
        ws: str,
        words: str,
        filters: Sequence[tuple[str, str]],
        owner_id: str | None,
    ) -> Criteria:
        c = Criteria(text=words, owner_id=owner_id)
        for key, raw in filters:
            value = raw.strip()
            if key == "kind":
                kind = KIND_WORDS.get(value.lower())
                if kind is None:
                    raise InvalidInput(
                        "kind", f'"{value}" is not a kind of record.', example="lead, deal"
                    )
                c.kinds &= {kind}
            elif key in ("industry", "region"):
                column = Account.industry if key == "industry" else Account.region
                setattr(c, key, self._known_values(session, ws, column, value, key, c.notes))
                c.kinds &= APPLIES[key]
            elif key == "size":
                c.size = _size(value)
                c.kinds &= APPLIES[key]
            elif key == "stage":
                stage = queries.stage_named(session, ws, value)
                c.stage_ids = [*(c.stage_ids or []), stage.id]
                c.kinds &= APPLIES[key]
            elif key == "source":
                c.sources = [*(c.sources or []), value.lower()]
                c.kinds &= APPLIES[key]
            elif key == "status":
                self._status(c, value)
            elif key == "sort":
                c.sort = value.lower()
                if c.sort not in SORTS:
                    raise InvalidInput("sort", f'I can\'t sort by "{value}".', example="score")
                if c.sort == "score":
                    c.kinds &= {RecordKind.LEAD}
                elif c.sort == "amount":
                    c.kinds &= {RecordKind.DEAL}
        if not c.kinds:
            c.notes.append("No kind of record has all of those filters together.")
        return c

    @staticmethod
    def _status(c: Criteria, value: str) -> None:
        word = value.lower()
        if word in {s.value for s in LeadStatus}:
            c.lead_statuses = [*(c.lead_statuses or []), word]
            c.kinds &= {RecordKind.LEAD}
        elif word in {s.value for s in DealStatus}:
            c.deal_statuses = [*(c.deal_statuses or []), word]
            c.kinds &= {RecordKind.DEAL}
        else:
            names = ", ".join([*(s.value for s in LeadStatus), *(s.value for s in DealStatus)])
            raise InvalidInput("status", f'"{value}" is not a status.', example=names)

    @staticmethod
    def _known_values(
        session: Session, ws: str, column: Any, typed: str, label: str, notes: list[str]
    ) -> list[str]:
        """The stored spellings that `typed` means (same folded form, else same start)."""
        known = session.scalars(
            select(column).where(Account.workspace_id == ws, column.is_not(None)).distinct()
        ).all()
        want = fold(typed)
        exact = [v for v in known if fold(v) == want]
        if exact:
            return exact
        starts = [v for v in known if fold(v).startswith(want)]
        if not starts:
            examples = ", ".join(sorted(known, key=str.casefold)[:8])
            notes.append(
                f'No account has {label} "{typed}".' + (f" Known: {examples}." if examples else "")
            )
        return starts

    # --- the query --------------------------------------------------------------------

    def _run(
        self, session: Session, ws: str, c: Criteria, limit: int, who: Viewer = privacy.OPERATOR
    ) -> tuple[tuple[FoundRecord, ...], bool]:
        rows: list[tuple[Any, RecordKind, Any]] = []
        for kind in sorted(c.kinds, key=lambda k: k.value):
            stmt = self._query(session, ws, kind, c)
            if stmt is None:
                continue
            for row in session.execute(stmt.limit(limit + 1)):
                rows.append((self._sort_key(c.sort, row), kind, row))
        rows.sort(key=lambda item: item[0])
        more = len(rows) > limit
        rows = rows[:limit]
        details: dict[tuple[str, int], str] = {}
        for kind in {k for _, k, _ in rows}:
            ids = [r.id for _, k, r in rows if k is kind]
            for record_id, detail in session.execute(
                select(SearchDoc.record_id, SearchDoc.detail).where(
                    SearchDoc.workspace_id == ws,
                    SearchDoc.kind == kind.value,
                    SearchDoc.record_id.in_(ids),
                )
            ):
                details[(kind.value, record_id)] = detail
        shown = visible_details(
            session,
            who,
            c.text,
            [(k, r.id, r.owner_id, details.get((k.value, r.id), "")) for _, k, r in rows],
        )
        hits = tuple(
            FoundRecord(
                ref=queries.ref_of(kind, row.number),
                kind=kind,
                name=row.name,
                detail=detail,
                owner_id=row.owner_id,
                score=row.score if kind is RecordKind.LEAD else None,
            )
            for (_, kind, row), detail in zip(rows, shown, strict=True)
            if detail is not None
        )
        return hits, more

    @staticmethod
    def _sort_key(sort: str, row: Any) -> tuple[Any, ...]:
        updated = row.updated_at.timestamp()
        if sort == "oldest":
            return (updated, row.id)
        if sort == "name":
            return (fold(row.name), row.id)
        if sort == "score":
            return (-row.score, -updated)
        if sort == "amount":
            return (-(row.amount or 0), -updated)
        return (-updated, -row.id)

    def _query(
        self, session: Session, ws: str, kind: RecordKind, c: Criteria
    ) -> Select[Any] | None:
        model: Any = queries.MODEL[kind]
        extra: list[Any] = []
        if kind is RecordKind.LEAD:
            extra = [Lead.score]
        elif kind is RecordKind.DEAL:
            extra = [Deal.amount]
        where: list[ColumnElement[bool]] = [model.workspace_id == ws, model.deleted_at.is_(None)]
        if c.owner_id:
            where.append(model.owner_id == c.owner_id)
        account_where = self._account_filter(c)
        if account_where is not None:
            if kind is RecordKind.ACCOUNT:
                where.append(account_where)
            else:
                accounts = select(Account.id).where(Account.workspace_id == ws, account_where)
                where.append(model.account_id.in_(accounts))
        if c.stage_ids is not None:
            where.append(Deal.stage_id.in_(c.stage_ids))
        if c.sources is not None:
            where.append(self._source_filter(ws, kind, c.sources))
        if c.lead_statuses is not None:
            where.append(Lead.status.in_(c.lead_statuses))
        if c.deal_statuses is not None:
            where.append(Deal.status.in_(c.deal_statuses))
        if c.text:
            where.append(model.id.in_(self._text_ids(session, ws, kind, c.text)))
        order = {
            "oldest": (model.updated_at.asc(), model.id.asc()),
            "name": (model.name.asc(), model.id.asc()),
            "score": (Lead.score.desc(), Lead.updated_at.desc()),
            "amount": (Deal.amount.desc(), Deal.updated_at.desc()),
        }.get(c.sort, (model.updated_at.desc(), model.id.desc()))
        return (
            select(model.id, model.number, model.name, model.owner_id, model.updated_at, *extra)
            .where(*where)
            .order_by(*order)
        )

    @staticmethod
    def _account_filter(c: Criteria) -> ColumnElement[bool] | None:
        parts: list[ColumnElement[bool]] = []
        if c.industry is not None:
            parts.append(Account.industry.in_(c.industry) if c.industry else false())
        if c.region is not None:
            parts.append(Account.region.in_(c.region) if c.region else false())
        if c.size is not None:
            low, high = c.size
            if low is not None:
                parts.append(Account.size >= low)
            if high is not None:
                parts.append(Account.size <= high)
        return and_(*parts) if parts else None

    @staticmethod
    def _source_filter(ws: str, kind: RecordKind, sources: list[str]) -> ColumnElement[bool]:
        if kind is RecordKind.LEAD:
            return Lead.source.in_(sources)
        if kind is RecordKind.CONTACT:
            return Contact.source.in_(sources)
        # A deal's source is its contact's or the lead it came from.
        contacts = select(Contact.id).where(Contact.workspace_id == ws, Contact.source.in_(sources))
        leads = select(Lead.id).where(Lead.workspace_id == ws, Lead.source.in_(sources))
        return or_(Deal.contact_id.in_(contacts), Deal.lead_id.in_(leads))

    @staticmethod
    def _text_ids(session: Session, ws: str, kind: RecordKind, words: str) -> Select[Any]:
        """Record ids whose search document holds every word."""
        folded = fold(words).split()
        docs = select(SearchDoc.record_id).where(
            SearchDoc.workspace_id == ws,
            SearchDoc.kind == kind.value,
            SearchDoc.deleted.is_(False),
        )
        long_words = [w for w in folded if len(w) >= 3]
        if long_words and session.get_bind().dialect.name == "sqlite":
            match = " AND ".join('"' + w.replace('"', '""') + '"' for w in long_words)
            fts: Select[Any] = (
                select(literal_column("rowid"))
                .select_from(text("search_fts"))
                .where(text("search_fts MATCH :match").bindparams(match=match))
            )
            docs = docs.where(SearchDoc.id.in_(fts))
            folded = [w for w in folded if len(w) < 3]
        for word in folded:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            docs = docs.where(SearchDoc.body.like(f"%{escaped}%", escape="\\"))
        return docs


def _segment_view(row: Segment) -> SegmentView:
    return SegmentView(
        name=row.name,
        text=row.text,
        filters=tuple((str(k), str(v)) for k, v in row.filters),
        owner_id=row.owner_id,
        created_by=row.created_by,
    )
