"""The store: migrations agree with the models, references never repeat, engines set up right."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, select, text

from crmbot.domain import RecordKind
from crmbot.service import CrmService
from crmbot.store import queries
from crmbot.store.db import Database
from crmbot.store.migrate import downgrade, include_object, upgrade
from crmbot.store.models import Base, Lead


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_downgrade_upgrade_round_trips(db: Database) -> None:
    downgrade(db.url)
    with db.engine.connect() as conn:
        left = {name for name in Base.metadata.tables if conn.dialect.has_table(conn, name)}
    assert left == set()
    upgrade(db.url)
    service = CrmService(db)
    service.create_lead("T1", by="U1", name="Back again")
    assert [h.ref for h in service.find("T1", "back again")] == ["L-1"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: pytest.TempPathFactory) -> None:
    database = Database(f"sqlite:///{tmp_path}/x.db")
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_a_new_sqlite_connection_opens_while_another_process_writes(
    tmp_path: pytest.TempPathFactory,
) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    writer, reader = Database(url), Database(url)  # two engines: two processes' pools
    with writer.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    read_while_writing = threading.Event()

    def read() -> None:
        with reader.read() as session:  # the pool's first connection: the pragmas run
            assert session.execute(text("SELECT n FROM t")).scalar() == 1
        read_while_writing.set()

    with writer.write() as session:  # holds SQLite's write lock until the block ends
        session.execute(text("INSERT INTO t VALUES (2)"))
        thread = threading.Thread(target=read)
        thread.start()
        assert read_while_writing.wait(10)  # not waiting for the writer to finish
    thread.join()
    writer.dispose()
    reader.dispose()


def test_references_never_repeat_with_eight_concurrent_writers(db: Database) -> None:
    service = CrmService(db)
    service.ensure_workspace("T1")
    refs: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def capture(worker: int) -> None:
        try:
            for i in range(15):
                lead = service.create_lead("T1", by="U1", name=f"Lead {worker}-{i}")
                with lock:
                    refs.append(lead.ref)
        except BaseException as exc:  # surfaced below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(refs, key=lambda r: int(r[2:])) == [f"L-{n}" for n in range(1, 121)]


def test_reference_counters_are_per_workspace_and_kind(db: Database) -> None:
    service = CrmService(db)
    service.ensure_workspace("TA")
    service.ensure_workspace("TB")
    with db.write() as session:
        numbers = [
            queries.next_number(session, "TA", RecordKind.DEAL),
            queries.next_number(session, "TA", RecordKind.DEAL),
            queries.next_number(session, "TB", RecordKind.DEAL),
            queries.next_number(session, "TA", RecordKind.LEAD),
        ]
    assert numbers == [1, 2, 1, 1]


def test_searches_take_turns_on_sqlite_and_run_together_on_postgresql(db: Database) -> None:
    first_in, release, second_in = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with db.search():
            first_in.set()
            release.wait(5)

    def second() -> None:
        with db.search():
            second_in.set()

    holder = threading.Thread(target=first)
    holder.start()
    assert first_in.wait(5)
    other = threading.Thread(target=second)
    other.start()
    # SQLite: the second search waits for the first (held until released, so any wait is
    # long enough); PostgreSQL: it runs at once (a generous wait for a busy machine).
    ran_together = second_in.wait(5 if db.dialect == "postgresql" else 0.3)
    release.set()
    holder.join(5)
    other.join(5)
    assert second_in.is_set()
    assert ran_together is (db.dialect == "postgresql")


def test_a_search_inside_a_search_does_not_wait_for_itself(db: Database) -> None:
    done = threading.Event()

    def nested() -> None:
        with db.search(), db.search():
            done.set()

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    assert done.wait(5)


def test_by_ids_takes_what_the_session_holds_and_queries_only_the_rest(db: Database) -> None:
    service = CrmService(db)
    for name in ("Ana", "Bo", "Cy"):
        service.create_lead("T1", by="U1", name=name)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    with db.read() as session:
        ids = sorted(session.scalars(select(Lead.id)))
        held = session.get(Lead, ids[0])  # now in the session
        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            found = queries.by_ids(session, Lead, [*ids, None, ids[0]])
            assert queries.by_ids(session, Lead, [ids[0]]) == {ids[0]: held}
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
    assert sorted(found) == ids
    assert found[ids[0]] is held
    assert sorted(lead.name for lead in found.values()) == ["Ana", "Bo", "Cy"]
    assert len(statements) == 1  # one query for the two it didn't hold; none for the held one
