"""Small query functions taking a Session. Every one filters by workspace."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from rapidfuzz import fuzz
from sqlalchemy import Table, bindparam, func, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from crmbot.domain import (
    AmbiguousName,
    Candidate,
    RecordKind,
    RecordNotFound,
)
from crmbot.parsing import Ref, clean_text, fold, parse_ref
from crmbot.store import pg_search
from crmbot.store.models import (
    Account,
    Base,
    Contact,
    Deal,
    Event,
    FollowUp,
    Lead,
    RefCounter,
    SearchDoc,
    Stage,
)

Record = Lead | Contact | Account | Deal
MODEL: dict[RecordKind, type[Lead | Contact | Account | Deal | FollowUp]] = {
    RecordKind.LEAD: Lead,
    RecordKind.CONTACT: Contact,
    RecordKind.ACCOUNT: Account,
    RecordKind.DEAL: Deal,
    RecordKind.FOLLOW_UP: FollowUp,
}
SEARCHABLE = (RecordKind.LEAD, RecordKind.CONTACT, RecordKind.ACCOUNT, RecordKind.DEAL)
MAX_CANDIDATES = 5
_TOP = "\U0010ffff"  # sorts after every character: the upper bound of a prefix range

T = TypeVar("T", bound=Base)


def ref_of(kind: RecordKind, number: int) -> str:
    """The short reference people type, e.g. D-21."""
    return f"{kind.prefix}-{number}"


def kind_of(obj: object) -> RecordKind:
    """The record kind of a model instance."""
    for kind, model in MODEL.items():
        if isinstance(obj, model):
            return kind
    raise TypeError(f"not a record: {obj!r}")


# --- references ------------------------------------------------------------


def next_number(session: Session, ws: str, kind: RecordKind) -> int:
    """Hand out the next reference number; one atomic upsert, safe under concurrency."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    upsert = (
        insert(RefCounter)
        .values(workspace_id=ws, kind=kind.value, value=1)
        .on_conflict_do_update(
            index_elements=[RefCounter.workspace_id, RefCounter.kind],
            set_={"value": RefCounter.value + 1},
        )
        .returning(RefCounter.value)
    )
    return int(session.execute(upsert).scalar_one())


def by_number(
    session: Session, ws: str, kind: RecordKind, number: int, *, with_deleted: bool = False
) -> Any:
    """The record with this reference number in this workspace, or None."""
    stmt = _BY_NUMBER.get((kind, with_deleted))
    if stmt is None:  # built once per kind: building it cost more than running it
        model = MODEL[kind]
        stmt = select(model).where(
            model.workspace_id == bindparam("ws"), model.number == bindparam("number")
        )
        if not with_deleted and kind is not RecordKind.FOLLOW_UP:
            stmt = stmt.where(model.deleted_at.is_(None))  # type: ignore[union-attr]
        _BY_NUMBER[(kind, with_deleted)] = stmt
    return session.scalars(stmt, {"ws": ws, "number": number}).one_or_none()


_BY_NUMBER: dict[tuple[RecordKind, bool], Any] = {}


def by_ref(session: Session, ws: str, ref: Ref, *, with_deleted: bool = False) -> Any:
    """Load a record by its parsed reference or raise RecordNotFound."""
    found = by_number(session, ws, ref.kind, ref.number, with_deleted=with_deleted)
    if found is None:
        raise RecordNotFound(str(ref))
    return found


def by_ids(session: Session, model: type[T], ids: Iterable[int | None]) -> dict[int, T]:
    """Load several rows by primary key: those the session holds already from it, the rest
    in one query (a call just logged on a contact needs no query to name the contact)."""
    wanted = {i for i in ids if i is not None}
    found: dict[int, T] = {}
    for ident in wanted:
        held = session.identity_map.get(identity_key(model, ident))
        if held is not None:
            found[ident] = held
    missing = wanted - found.keys()
    if missing:
        rows = session.scalars(select(model).where(model.id.in_(missing)))  # type: ignore[attr-defined]
        found.update({row.id: row for row in rows})  # type: ignore[attr-defined]
    return found


# --- search ----------------------------------------------------------------


def search_body(*parts: str | None) -> str:
    """The folded text that search matches substrings in."""
    return " | ".join(fold(p) for p in parts if p)


def index_record(
    session: Session, record: Record, *, detail: str, extra: Sequence[str | None]
) -> None:
    """Insert or refresh the record's search document (call after every write)."""
    kind = kind_of(record)
    session.flush()
    ref = ref_of(kind, record.number)
    values: dict[str, Any] = {
        "ref": ref,
        "name": record.name,
        "folded_name": fold(record.name)[:300],
        "body": search_body(ref, record.name, *extra),
        "detail": detail[:500],
        "owner_id": record.owner_id,
        "updated_at": record.updated_at,
        "deleted": record.deleted_at is not None,
    }
    existing = session.scalars(
        select(SearchDoc).where(
            SearchDoc.workspace_id == record.workspace_id,
            SearchDoc.kind == kind.value,
            SearchDoc.record_id == record.id,
        )
    ).one_or_none()
    if existing is None:
        session.add(
            SearchDoc(
                workspace_id=record.workspace_id, kind=kind.value, record_id=record.id, **values
            )
        )
    else:
        for key, value in values.items():
            setattr(existing, key, value)
    session.flush()


def touch_search_doc(session: Session, record: Record) -> bool:
    """Move the record's search document's `updated_at` to the record's (newest first in
    search) when nothing it shows changed; False when the record has no document yet."""
    kind = kind_of(record)
    table = cast(Table, SearchDoc.__table__)
    moved = session.connection().execute(
        update(table)
        .where(
            table.c.workspace_id == record.workspace_id,
            table.c.kind == kind.value,
            table.c.record_id == record.id,
        )
        .values(updated_at=record.updated_at)
    )
    return bool(moved.rowcount)


# Search reads search_doc through Core: rows with SearchDoc's attributes (`DocRow`), not ORM
# objects, which cost more to build than the query does to run on a hot path like /crm find.
_DOC = SearchDoc.__table__.c
DocRow = Any  # a sqlalchemy Row of every search_doc column, read by attribute like SearchDoc


def _live_rows(ws: str, kinds: Sequence[RecordKind]) -> list[Any]:
    return [
        _DOC.workspace_id == ws,
        _DOC.deleted.is_(False),
        _DOC.kind.in_([k.value for k in kinds]),
    ]


def _doc_rows(session: Session, stmt: Any, params: dict[str, Any] | None = None) -> list[DocRow]:
    return list(session.execute(stmt, params or {}).all())


def _live(ws: str, kinds: Sequence[RecordKind]) -> list[Any]:
    return [
        SearchDoc.workspace_id == ws,
        SearchDoc.deleted.is_(False),
        SearchDoc.kind.in_([k.value for k in kinds]),
    ]


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _substring_ids(
    session: Session, ws: str, words: Sequence[str], kinds: Sequence[RecordKind], limit: int
) -> list[DocRow]:
    """Documents containing every word (3+ characters each), newest first."""
    if session.get_bind().dialect.name == "sqlite":
        return _fts_newest(session, ws, words, kinds, limit)
    inner = [w for word in words for w in inner_words(word) if len(w) >= pg_search.MIN_WORD]
    return pg_search.newest_matches(session, ws, words, inner, kinds, limit)


def _fts_newest(
    session: Session, ws: str, words: Sequence[str], kinds: Sequence[RecordKind], limit: int
) -> list[DocRow]:
    """SQLite: the newest live matches, without sorting every match of a common word.

    First a few growing pages of the trigram index, newest first, joined to search_doc by
    rowid, with workspace, kind and deleted checked here: given those in its WHERE clause
    SQLite walks the workspace's whole index instead. A word that is common but rare in this
    workspace or these kinds doesn't fill the pages; the rest then comes from that index.
    """
    inner = [w for word in words for w in inner_words(word)]
    if inner:
        return _words_newest(session, ws, words, inner, kinds, limit)
    match = "search_fts MATCH :match AND rowid < :before"
    params = {"match": " AND ".join(_fts_phrase(w) for w in words), "before": 2**63 - 1}
    wanted = {k.value for k in kinds}
    found: list[int] = []
    for size in (4 * limit, 16 * limit, 64 * limit):
        page = (
            select(literal_column("rowid").label("id"))
            .select_from(text("search_fts"))
            .where(text(match))
            .order_by(text("rowid DESC"))
            .limit(size)
            .subquery()
        )
        columns = (SearchDoc.id, SearchDoc.workspace_id, SearchDoc.kind, SearchDoc.deleted)
        rows = session.execute(
            select(*columns).join_from(page, SearchDoc, SearchDoc.id == page.c.id), params
        ).all()
        live = (r.id for r in rows if r.workspace_id == ws and r.kind in wanted and not r.deleted)
        found += sorted(live, reverse=True)
        if len(found) >= limit or len(rows) < size:
            break
        params["before"] = min(r.id for r in rows)
    else:  # three full pages and still short: the older matches through the workspace index
        rest = select(text("rowid")).select_from(text("search_fts")).where(text(match))
        older = select(SearchDoc.id).where(SearchDoc.id.in_(rest), *_live(ws, kinds))
        found += session.scalars(older.order_by(SearchDoc.id.desc()).limit(limit), params)
    docs = _doc_rows(session, select(SearchDoc.__table__).where(_DOC.id.in_(found[:limit])))
    return sorted(docs, key=lambda doc: -doc.id)


_WORD = re.compile(r"[a-z0-9]+")


def _separator(char: str) -> bool:
    return char.isascii() and not char.isalnum()  # FTS5's unicode61 always splits there


def inner_words(word: str) -> list[str]:
    """Whole words inside `word` (a separator on both sides): any body containing `word`
    contains each of them as a word, so the word index finds every match."""
    inner = []
    for found in _WORD.finditer(word):
        start, end = found.span()
        if start > 0 and end < len(word) and _separator(word[start - 1]) and _separator(word[end]):
            inner.append(found[0])
    return inner


def _words_newest(
    session: Session,
    ws: str,
    words: Sequence[str],
    inner: Sequence[str],
    kinds: Sequence[RecordKind],
    limit: int,
) -> list[DocRow]:
    """SQLite: candidates from the word index (short doclists), newest first, in growing
    pages, each checked for the full substrings; exact, since `inner_words` never misses."""
    params: dict[str, Any] = {"match": " AND ".join(_fts_phrase(w) for w in inner)}
    params["before"] = 2**63 - 1
    wanted = {k.value for k in kinds}
    found: list[int] = []
    size = 4 * limit
    while len(found) < limit:
        page = (
            select(literal_column("rowid").label("id"))
            .select_from(text("search_words"))
            .where(text("search_words MATCH :match AND rowid < :before"))
            .order_by(text("rowid DESC"))
            .limit(size)
            .subquery()
        )
        columns = (SearchDoc.id, SearchDoc.workspace_id, SearchDoc.kind, SearchDoc.deleted)
        rows = session.execute(
            select(*columns, SearchDoc.body).join_from(page, SearchDoc, SearchDoc.id == page.c.id),
            params,
        ).all()
        live = (r for r in rows if r.workspace_id == ws and r.kind in wanted and not r.deleted)
        found += sorted((r.id for r in live if all(w in r.body for w in words)), reverse=True)
        if len(rows) < size:
            break
        params["before"], size = min(r.id for r in rows), size * 4
    docs = _doc_rows(session, select(SearchDoc.__table__).where(_DOC.id.in_(found[:limit])))
    return sorted(docs, key=lambda doc: -doc.id)


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(
    session: Session,
    ws: str,
    query: str,
    *,
    kinds: Sequence[RecordKind] = SEARCHABLE,
    limit: int = 20,
) -> list[DocRow]:
    """Ranked search: exact name, then name prefix, then substring anywhere (newest first).

    The documents come as rows with SearchDoc's attributes (see `DocRow`)."""
    term = fold(query)
    if not term:
        return []
    found: dict[int, DocRow] = {}
    docs = SearchDoc.__table__

    def take(rows: Iterable[DocRow]) -> None:
        for row in rows:
            if len(found) < limit:
                found.setdefault(row.id, row)

    ref = parse_ref(query)
    if ref is not None and ref.kind in kinds:
        # Through the record's (workspace, number) key: search_doc.ref has no index.
        model = MODEL[ref.kind]
        record = select(model.id).where(model.workspace_id == ws, model.number == ref.number)
        by_key = (_DOC.kind == ref.kind.value, _DOC.record_id.in_(record))
        take(_doc_rows(session, select(docs).where(*by_key, *_live_rows(ws, kinds))))
    exact, prefix = _name_statements(tuple(kinds), limit)
    take(_doc_rows(session, exact, {"ws": ws, "term": term}))
    if len(found) < limit:
        take(_doc_rows(session, prefix, {"ws": ws, "term": term, "top": term + _TOP}))
    words = [w for w in term.split() if len(w) >= 3]
    if len(found) < limit and words:
        take(_substring_ids(session, ws, words, kinds, limit))
    return list(found.values())


_NAME_STATEMENTS: dict[tuple[tuple[RecordKind, ...], int], tuple[Any, Any]] = {}


def _name_statements(kinds: tuple[RecordKind, ...], limit: int) -> tuple[Any, Any]:
    """search()'s exact-name and name-prefix statements, built once per (kinds, limit)."""
    found = _NAME_STATEMENTS.get((kinds, limit))
    if found is None:
        docs = SearchDoc.__table__
        live = _live_rows(bindparam("ws"), kinds)  # type: ignore[arg-type]
        exact = (
            select(docs)
            .where(_DOC.folded_name == bindparam("term"), *live)
            .order_by(_DOC.updated_at.desc())
            .limit(limit)
        )
        prefix = (
            select(docs)
            .where(_DOC.folded_name > bindparam("term"), _DOC.folded_name < bindparam("top"))
            .where(*live)
            .order_by(_DOC.folded_name)
            .limit(limit)
        )
        found = _NAME_STATEMENTS[(kinds, limit)] = (exact, prefix)
    return found


def _fuzzy_candidates(
    session: Session, ws: str, term: str, kinds: Sequence[RecordKind]
) -> list[tuple[float, SearchDoc]]:
    """Names close to `term` (typos), best first, with a 0-100 score."""
    if len(term) < 3:
        return []
    if session.get_bind().dialect.name == "sqlite":
        grams = {term[i : i + 3] for i in range(len(term) - 2)}
        match = " OR ".join(_fts_phrase(g) for g in sorted(grams))
        fts = text("search_fts MATCH :match").bindparams(match=match)
        ids = (
            select(text("rowid"))
            .select_from(text("search_fts"))
            .where(fts)
            .order_by(text("rank"))
            .limit(200)
        )
        rows = session.scalars(select(SearchDoc).where(SearchDoc.id.in_(ids), *_live(ws, kinds)))
    else:
        # The default threshold (0.3) misses two-typo names; the GIN index still applies.
        session.execute(text("SET LOCAL pg_trgm.similarity_threshold = 0.15"))
        rows = session.scalars(
            select(SearchDoc)
            .where(SearchDoc.folded_name.op("%")(term), *_live(ws, kinds))
            .order_by(func.similarity(SearchDoc.folded_name, term).desc())
            .limit(50)
        )
    scored = [(float(fuzz.ratio(term, row.folded_name)), row) for row in rows]
    return sorted(scored, key=lambda pair: -pair[0])


def candidate(doc: SearchDoc) -> Candidate:
    """A pick-list entry for a search document."""
    return Candidate(ref=doc.ref, kind=RecordKind(doc.kind), name=doc.name, detail=doc.detail)


def resolve(
    session: Session, ws: str, text_: str, *, kinds: Sequence[RecordKind] = SEARCHABLE
) -> Any:
    """The one record a reference or name means; AmbiguousName or RecordNotFound otherwise."""
    # Cleaned like every stored name (no control or disguising characters), so a stray NUL
    # or bidi override can neither break the full-text query nor be echoed back.
    wanted = clean_text(text_, field="record", max_len=len(text_))
    label = " or ".join(k.label for k in kinds) if len(kinds) < len(SEARCHABLE) else "a record"
    if not wanted:
        raise RecordNotFound(f"{label} with no name")
    ref = parse_ref(wanted)
    if ref is not None:
        if ref.kind not in kinds:
            raise RecordNotFound(f"{ref} (expected {label})")
        return by_ref(session, ws, ref)
    term = fold(wanted)
    exact = list(
        session.scalars(
            select(SearchDoc)
            .where(SearchDoc.folded_name == term, *_live(ws, kinds))
            .order_by(SearchDoc.updated_at.desc())
            .limit(MAX_CANDIDATES + 1)
        )
    )
    docs = exact or search(session, ws, wanted, kinds=kinds, limit=MAX_CANDIDATES + 1)
    if not docs:
        scored = _fuzzy_candidates(session, ws, term, kinds)
        close = [(score, doc) for score, doc in scored if score >= 85]
        if close and (len(close) == 1 or close[0][0] - close[1][0] >= 5):
            docs = [close[0][1]]
        elif close:
            raise AmbiguousName(wanted, [candidate(d) for _, d in close[:MAX_CANDIDATES]])
        else:
            hints = [f"{d.ref} {d.name}" for score, d in scored[:3] if score >= 60]
            raise RecordNotFound(f'{label} named "{wanted}"', did_you_mean=hints)
    if len(docs) > 1:
        raise AmbiguousName(wanted, [candidate(d) for d in docs[:MAX_CANDIDATES]])
    doc = docs[0]
    return by_number(session, ws, RecordKind(doc.kind), int(doc.ref.split("-")[1]))


def account_by_domain(session: Session, ws: str, domain: str) -> Account | None:
    """The oldest live account with this web domain."""
    return session.scalars(
        select(Account)
        .where(Account.workspace_id == ws, Account.domain == domain, Account.deleted_at.is_(None))
        .order_by(Account.id)
        .limit(1)
    ).first()


def account_named(session: Session, ws: str, name: str) -> Account | None:
    """The oldest live account whose name folds to the same key."""
    ids = select(SearchDoc.record_id).where(
        *_live(ws, (RecordKind.ACCOUNT,)), SearchDoc.folded_name == fold(name)
    )
    return session.scalars(
        select(Account)
        .where(Account.workspace_id == ws, Account.id.in_(ids))
        .order_by(Account.id)
        .limit(1)
    ).first()


# --- stages ----------------------------------------------------------------


def stages(session: Session, ws: str) -> list[Stage]:
    """The workspace's pipeline, in order."""
    return list(
        session.scalars(select(Stage).where(Stage.workspace_id == ws).order_by(Stage.position))
    )


def stage_named(session: Session, ws: str, name: str) -> Stage:
    """The stage a (fuzzy) name means: exact, then prefix, then closest spelling."""
    from crmbot.domain import InvalidInput

    pipeline = stages(session, ws)
    term = fold(name)
    names = ", ".join(s.name for s in pipeline)
    if not term:
        raise InvalidInput("stage", "Which stage?", example=names)
    for hits in (
        [s for s in pipeline if fold(s.name) == term],
        [s for s in pipeline if fold(s.name).startswith(term)],
    ):
        if len(hits) == 1:
            return hits[0]
    scored = sorted(((fuzz.ratio(term, fold(s.name)), s) for s in pipeline), key=lambda p: -p[0])
    if scored and scored[0][0] >= 70 and (len(scored) == 1 or scored[0][0] - scored[1][0] >= 10):
        return scored[0][1]
    raise InvalidInput("stage", f'There is no stage "{name}".', example=f"one of {names}")


# --- audit -----------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a column value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


SKIP_IN_SNAPSHOT = frozenset({"id", "workspace_id", "created_at", "updated_at", "number"})


def snapshot(obj: Base) -> dict[str, Any]:
    """The record's fields as a JSON-safe dict, for the audit trail."""
    return {
        column.key: jsonable(getattr(obj, column.key))
        for column in obj.__table__.columns
        if column.key not in SKIP_IN_SNAPSHOT
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that changed, before and after."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def add_event(
    session: Session,
    *,
    ws: str,
    at: datetime,
    actor: str,
    action: str,
    record: Base,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Append one audit event for a record."""
    session.flush()
    kind = kind_of(record)
    session.add(
        Event(
            workspace_id=ws,
            at=at,
            actor=actor,
            action=action,
            kind=kind.value,
            record_id=record.id,  # type: ignore[attr-defined]
            ref=ref_of(kind, record.number),  # type: ignore[attr-defined]
            before=before,
            after=after,
        )
    )


def events_for(
    session: Session, ws: str, kind: RecordKind, record_id: int, limit: int = 50
) -> list[Event]:
    """A record's audit trail, newest first."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.workspace_id == ws, Event.kind == kind.value, Event.record_id == record_id)
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(limit)
        )
    )


def touch_search_owner(
    session: Session, ws: str, kind: RecordKind, record_id: int, owner: str | None
) -> None:
    """Keep the search document's owner in step after an assignment."""
    session.execute(
        update(SearchDoc)
        .where(
            SearchDoc.workspace_id == ws,
            SearchDoc.kind == kind.value,
            SearchDoc.record_id == record_id,
        )
        .values(owner_id=owner)
    )
