"""PostgreSQL: the substring tier of search (the newest live documents holding every word).

One `body LIKE ... ORDER BY id DESC LIMIT 20` leaves the planner to guess how many rows
match, and it guesses from a 100-entry histogram of body: every word under ~1 % looks alike.
It then either walks the primary key backwards and filters (fast for a common word, the
whole table for a rare one: 0.9-2.4 s for a rare name at 1M documents) or reads every match
from the trigram index and sorts (fast for a rare word, 30-80 ms for "globex", in 14k
documents). So the plan is chosen here, from what the data says, in statements whose cost
is bounded whatever the planner thinks (indexes from migration 0010):

1. A term with whole words inside it (the "rodriguez" and "globex" of
   "juan.rodriguez@globex.com"; `queries.inner_words`) takes its candidates from the GIN
   index of the body's words, `ix_search_doc_words` on regexp_split_to_array(body,
   '[^a-z0-9]+'): every match contains those words, and documents holding all of them are
   few. The trigram index would intersect ~25 posting lists of common trigrams (".co",
   "com", "son": 22-35 ms at 1M documents). The substrings are then checked with
   strpos(), which no index serves, so the planner can't bring the trigram index back.
2. Otherwise the workspace's newest FIRST_PAGE documents are read and filtered (one
   statement; it stops at the 20th match): a common word is answered there. The page also
   tells how common the word is in this workspace, and how much of the table the workspace
   holds; a second page of the size that should fill the answer (up to LAST_PAGE) is read
   if that costs less than fetching the word's matches from the trigram index, and the
   workspace isn't spread thin among others' documents (DENSE).
3. The rest: every older match in this workspace from the trigram index
   (`ix_search_doc_ws_body_trgm`, workspace first), as a materialized set so that no plan
   walks the table instead, sorted, newest first. The pages said they are few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crmbot.domain import RecordKind
from crmbot.store.models import SearchDoc

# The expression of ix_search_doc_words, written out as in the migration (a literal pattern,
# not a bound parameter, so that the planner recognises the indexed expression).
WORD_SPLIT = "[^a-z0-9]+"
MIN_WORD = 3  # shorter inner words ("12" of a phone number) are in too many documents
FIRST_PAGE, LAST_PAGE = 300, 16_000  # newest documents of a workspace read in pages
DENSE = 0.3  # pages for a workspace holding at least this share of the newest documents

_DOC = SearchDoc.__table__.c
_DOCS = SearchDoc.__table__


def body_words() -> Any:
    """regexp_split_to_array(body, '[^a-z0-9]+'): the body's ASCII words, as indexed."""
    return func.regexp_split_to_array(_DOC.body, literal_column(f"'{WORD_SPLIT}'"))


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _live(ws: str, kinds: Sequence[RecordKind]) -> list[Any]:
    return [
        _DOC.workspace_id == ws,
        _DOC.deleted.is_(False),
        _DOC.kind.in_([k.value for k in kinds]),
    ]


def newest_matches(
    session: Session,
    ws: str,
    words: Sequence[str],
    inner: Sequence[str],
    kinds: Sequence[RecordKind],
    limit: int,
) -> list[Any]:
    """Live documents of `ws` and `kinds` whose body contains every word, newest first.

    `inner`: whole words (MIN_WORD+ characters) that every such body contains as words."""
    if inner:
        has_words = body_words().op("@>")(cast(bindparam("inner", list(inner)), ARRAY(Text)))
        holds = [func.strpos(_DOC.body, w) > 0 for w in words]
        hits = (
            select(_DOC.id)
            .where(has_words, *holds, *_live(ws, kinds))
            .cte("hits")
            .prefix_with("MATERIALIZED")
        )
        top = select(hits.c.id).order_by(hits.c.id.desc()).limit(limit).subquery()
        stmt = select(_DOCS).join(top, _DOC.id == top.c.id).order_by(_DOC.id.desc())
        return list(session.execute(stmt).all())
    found = _page(session, ws, words, kinds, None, FIRST_PAGE, limit)
    if len(found) >= limit:
        return found
    before = None
    if found:  # (with none, the page's bounds don't matter: the index has every match)
        low, high, seen = found[0].page_low, found[0].page_high, found[0].page_seen
        if seen < FIRST_PAGE:  # that was the whole workspace
            return found
        before = low
        # The first page tells how common the word is here and how much of the table is
        # this workspace's. Read a second page if that is cheaper than the word's matches
        # from the trigram index (by workspace): a page reads its documents' table pages in
        # order (~30 rows each), the index one page per match. A workspace spread thin among
        # others' documents (under DENSE) always goes to the index.
        share = len(found) / FIRST_PAGE
        density = seen / max(1, high - low + 1)
        size = int((limit - len(found)) / share * 1.5) + 1
        cheaper = size / density / 30 <= share * density * high
        if density >= DENSE and size <= LAST_PAGE and cheaper:
            more = _page(session, ws, words, kinds, low, size, limit - len(found))
            found += more
            if len(found) >= limit or (more and more[0].page_seen < size):
                return found
            before = more[0].page_low if more else _bounds(session, ws, low, size)[0]
    # Older matches, all of them from the trigram index (a materialized set: no plan walks
    # the table instead), newest first. The pages say they are few.
    hits = (
        select(_DOC.id)
        .where(
            *_like_all(words), *_live(ws, kinds), *([] if before is None else [_DOC.id < before])
        )
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    top = select(hits.c.id).order_by(hits.c.id.desc()).limit(limit - len(found)).subquery()
    older = select(_DOCS).join(top, _DOC.id == top.c.id).order_by(_DOC.id.desc())
    return found + list(session.execute(older).all())


def _page(
    session: Session,
    ws: str,
    words: Sequence[str],
    kinds: Sequence[RecordKind],
    before: int | None,
    size: int,
    want: int,
) -> list[Any]:
    """Matches (at most `want`: the scan stops there) among the workspace's `size` newest
    documents below `before`. Each row also carries the page's lowest and highest id and
    its number of documents (`page_low`, `page_high`, `page_seen`), read once from the
    workspace's index."""
    page = select(_DOCS).where(_DOC.workspace_id == ws)
    ids = select(_DOC.id).where(_DOC.workspace_id == ws)
    if before is not None:
        page, ids = page.where(_DOC.id < before), ids.where(_DOC.id < before)
    newest = page.order_by(_DOC.id.desc()).limit(size).subquery("page")
    span = ids.order_by(_DOC.id.desc()).limit(size).subquery("span")
    bounds = [
        select(func.min(span.c.id)).scalar_subquery().label("page_low"),
        select(func.max(span.c.id)).scalar_subquery().label("page_high"),
        select(func.count()).select_from(span).scalar_subquery().label("page_seen"),
    ]
    c = newest.c
    likes = [c.body.like("%" + _like_escape(w) + "%", escape="\\") for w in words]
    live = [c.deleted.is_(False), c.kind.in_([k.value for k in kinds])]
    stmt = select(newest, *bounds).where(*likes, *live).order_by(c.id.desc()).limit(want)
    return list(session.execute(stmt).all())


def _bounds(session: Session, ws: str, before: int | None, size: int) -> tuple[int, int, int]:
    """The lowest and highest id of that page and its number of documents, from the
    workspace's index alone."""
    ids = select(_DOC.id).where(_DOC.workspace_id == ws)
    if before is not None:
        ids = ids.where(_DOC.id < before)
    span = ids.order_by(_DOC.id.desc()).limit(size).subquery("span")
    low, high, seen = session.execute(
        select(func.min(span.c.id), func.max(span.c.id), func.count())
    ).one()
    return low or 0, high or 0, seen


def _like_all(words: Sequence[str]) -> list[Any]:
    return [_DOC.body.like("%" + _like_escape(w) + "%", escape="\\") for w in words]
