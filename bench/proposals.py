"""What the proposed schema changes would buy: `python -m bench.proposals [--contacts N]`.

A prototype, not the implementation. On a copy of the SQLite data set it adds
1. `ix_search_doc_name_updated (workspace_id, folded_name, updated_at)`: the exact-name tier
   reads its 20 newest rows from the index instead of sorting every namesake, and
2. `search_words`, an FTS5 word index (unicode61, detail=none) over the same bodies: a query
   word with whole words inside it (the "rodriguez" and "globex" of
   "juan.rodriguez@globex.com") takes its candidates from those words' short doclists and
   checks the full substring on them, instead of intersecting ~25 common trigrams,
then patches `queries._fts_newest` accordingly and measures the same workload as bench.find.
`--check` first compares the prototype's results with the shipped search on 800 queries.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import literal_column, select, text
from sqlalchemy.orm import Session

from bench import datagen, find
from crmbot.domain import RecordKind
from crmbot.store import queries
from crmbot.store.db import Database
from crmbot.store.models import SearchDoc

SCHEMA = (
    "CREATE INDEX ix_search_doc_name_updated ON search_doc (workspace_id, folded_name, updated_at)",
    "CREATE VIRTUAL TABLE search_words USING fts5(body, content='search_doc', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0', detail='none')",
    "INSERT INTO search_words(search_words) VALUES('rebuild')",
)
_WORD = re.compile(r"[a-z0-9]+")
shipped = queries._fts_newest


def _separator(char: str) -> bool:
    return char.isascii() and not char.isalnum()  # unicode61 always splits there


def inner_words(word: str) -> list[str]:
    """Words with a separator on both sides inside `word`: any body containing `word`
    contains each of them as a whole word, so the word index finds every match."""
    inner = []
    for found in _WORD.finditer(word):
        start, end = found.span()
        if start > 0 and end < len(word) and _separator(word[start - 1]) and _separator(word[end]):
            inner.append(found[0])
    return inner


def fts_newest(
    session: Session, ws: str, words: Sequence[str], kinds: Sequence[RecordKind], limit: int
) -> list[SearchDoc]:
    """`queries._fts_newest`, taking candidates from the word index when it can."""
    inner = [w for word in words for w in inner_words(word)]
    if not inner:
        return shipped(session, ws, words, kinds, limit)
    match = " AND ".join(f'"{w}"' for w in inner)
    wanted = {k.value for k in kinds}
    found: list[int] = []
    before, size = 2**63 - 1, 4 * limit
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
            {"match": match, "before": before},
        ).all()
        live = (r for r in rows if r.workspace_id == ws and r.kind in wanted and not r.deleted)
        found += sorted((r.id for r in live if all(w in r.body for w in words)), reverse=True)
        if len(rows) < size:
            break
        before, size = min(r.id for r in rows), size * 4
    docs = session.scalars(select(SearchDoc).where(SearchDoc.id.in_(found[:limit])))
    return sorted(docs, key=lambda doc: -doc.id)


def check(url: str) -> None:
    """The prototype finds exactly what the shipped search finds."""
    db = Database(url)
    terms = [*find.selective_terms(db, 400, random.Random(5)), "a.b", "gmail.com", "@globex."]
    with db.read() as session:
        for ws in datagen.WORKSPACES:
            for term in terms:
                queries._fts_newest = shipped
                before = [d.id for d in queries.search(session, ws, term)]
                queries._fts_newest = fts_newest
                assert [d.id for d in queries.search(session, ws, term)] == before, term
    db.dispose()
    print(f"same results for {2 * len(terms)} queries", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proposals", description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per class")
    parser.add_argument("--check", action="store_true", help="compare results first")
    parser.add_argument("--no-record", action="store_true", help="don't append to RESULTS.md")
    args = parser.parse_args(argv)
    datagen.ensure("sqlite", args.contacts)
    copy = datagen.sqlite_path(args.contacts).with_name(f"proposals-{args.contacts}.db")
    shutil.copy(datagen.sqlite_path(args.contacts), copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    for statement in SCHEMA:
        conn.execute(statement)
    conn.close()
    url = f"sqlite:///{copy}"
    if args.check:
        check(url)
    notes = {"with the proposed name index": shipped, "with both proposals": fts_newest}
    for note, implementation in notes.items():
        queries._fts_newest = implementation
        result = find.measure(url, "sqlite", args.contacts, args.queries, None, like=False)
        print(json.dumps({"bench": "proposals", "note": note, **result}), flush=True)
        if not args.no_record:
            command = " ".join(["python -m bench.proposals", *(argv or sys.argv[1:])])
            find.record(find.markdown(result, command, datetime.now(UTC), f" · {note}"))
    copy.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
