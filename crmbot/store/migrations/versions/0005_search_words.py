"""search: newest-first exact names from the index; an SQLite word index for long terms

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 05:20:00.000000

1. `ix_search_doc_name` gains `updated_at`, so the exact-name tier reads its newest rows
   from the index instead of sorting every namesake ("maria garcia" x 11k: 16 ms -> 0.04 ms).
2. SQLite: `search_words`, an FTS5 index of whole words (unicode61, detail=none) over
   search_doc.body. A search term with whole words inside it (the "rodriguez" and "globex"
   of "juan.rodriguez@globex.com") takes its candidates from those words' short doclists
   instead of intersecting ~25 common trigrams (full emails at 1M rows: 23 ms -> 0.4 ms).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_WORDS = (
    "CREATE VIRTUAL TABLE search_words USING fts5(body, content='search_doc', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0', detail='none')",
    "CREATE TRIGGER search_words_ai AFTER INSERT ON search_doc BEGIN "
    "INSERT INTO search_words(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER search_words_ad AFTER DELETE ON search_doc BEGIN "
    "INSERT INTO search_words(search_words, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER search_words_au AFTER UPDATE OF body ON search_doc BEGIN "
    "INSERT INTO search_words(search_words, rowid, body) VALUES ('delete', old.id, old.body); "
    "INSERT INTO search_words(rowid, body) VALUES (new.id, new.body); END",
    "INSERT INTO search_words(search_words) VALUES ('rebuild')",
)


def upgrade() -> None:
    with op.batch_alter_table("search_doc", schema=None) as batch_op:
        batch_op.drop_index("ix_search_doc_name")
        batch_op.create_index(
            "ix_search_doc_name", ["workspace_id", "folded_name", "updated_at"], unique=False
        )
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_WORDS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("search_words_ai", "search_words_ad", "search_words_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_words")
    with op.batch_alter_table("search_doc", schema=None) as batch_op:
        batch_op.drop_index("ix_search_doc_name")
        batch_op.create_index("ix_search_doc_name", ["workspace_id", "folded_name"], unique=False)
