"""Alembic environment for crmbot (online mode only)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from crmbot.store.migrate import include_object
from crmbot.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Any) -> None:
    # Keep alembic_version in the schema being migrated (the first on search_path), so a
    # stray version table in `public` can't make another schema look up to date.
    schema = None
    if connection.dialect.name == "postgresql":
        schema = connection.exec_driver_sql("select current_schema()").scalar()
        # Processes starting together (several web dynos, a clock) migrate one at a time:
        # the next one waits here, then finds the schema up to date. Held to commit.
        connection.exec_driver_sql(
            "select pg_advisory_xact_lock(hashtext('crmbot migrate ' || current_schema()))"
        )
    context.configure(
        connection=connection,
        version_table_schema=schema,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
    with engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
