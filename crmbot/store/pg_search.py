"""PostgreSQL: the substring tier of search (the newest live documents holding every word).

Two statement shapes, each with an index that makes it cheap (migration 0010):

1. A word with whole words inside it (the "rodriguez" and "globex" of
   "juan.rodriguez@globex.com"; `queries.inner_words`) takes its candidates from the GIN
   index of the body's words, `ix_search_doc_words` on regexp_split_to_array(body,
   '[^a-z0-9]+'): every match contains those words, and documents holding all of them are
   few. The trigram index would intersect ~25 posting lists of common trigrams (".co",
   "com", "son"): 22-35 ms at 1M documents, against 0.2-5 ms here. The substrings are then
   checked with strpos(), which no index serves, so the planner can't add the trigram index
   back into the plan.
2. Otherwise one `body LIKE ... ORDER BY id DESC LIMIT n`, left to the planner, which picks
   between walking the workspace's newest documents (`ix_search_doc_newest`, or the primary
   key in a big workspace) until n match, and reading every match from the trigram index
   and sorting. It picks well only if it knows how common the word is: with the default
   statistics (a 100-entry histogram of body) every word under ~1 % looked alike ("globex",
   in 14k documents, was estimated at 120 rows and sorted in full: 30-80 ms); the migration
   raises body's statistics target to 1000.
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
    likes = [_DOC.body.like("%" + _like_escape(w) + "%", escape="\\") for w in words]
    stmt = select(_DOCS).where(*likes, *_live(ws, kinds)).order_by(_DOC.id.desc()).limit(limit)
    return list(session.execute(stmt).all())
