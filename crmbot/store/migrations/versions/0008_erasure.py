"""privacy: the erasure log; room for encrypted Slack tokens on PostgreSQL

Revision ID: 0008
Revises: 0010
Create Date: 2026-11-23 07:00:00.000000

1. `erasure`: one row per workspace per `crmbot forget` that erased something (when, who
   asked, the erased references, rows changed per table, a salted hash of the email).
2. slack-sdk creates `slack_installations` / `slack_bots` with VARCHAR(200) token columns; a
   Fernet-sealed token is longer than that on PostgreSQL, so those columns become TEXT when
   the tables already exist (crmbot creates them as TEXT itself from now on; SQLite doesn't
   enforce lengths).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SECRET_COLUMNS = {
    "slack_installations": (
        "bot_token",
        "bot_refresh_token",
        "user_token",
        "user_refresh_token",
        "incoming_webhook_url",
    ),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def upgrade() -> None:
    op.create_table(
        "erasure",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_erasure_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure")),
    )
    op.create_index("ix_erasure_at", "erasure", ["workspace_id", "at"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    existing = set(sa.inspect(bind).get_table_names())
    for table, columns in SECRET_COLUMNS.items():
        if table in existing:
            for column in columns:
                op.alter_column(table, column, type_=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    # The token columns stay TEXT: shortening them could cut encrypted tokens.
    op.drop_index("ix_erasure_at", table_name="erasure")
    op.drop_table("erasure")
