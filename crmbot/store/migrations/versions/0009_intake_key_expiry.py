"""intake: an index on intake_request.created_at, so expired Idempotency-Keys are found cheaply

Revision ID: 0009
Revises: 0008 (re-chained after main's 0013 -> 0006 when main was merged in)
Create Date: 2026-11-23 07:20:00.000000

Intake Idempotency-Keys expire after 7 days (service/intake.py `KEY_TTL`); the reminder sweep
deletes expired ones in bounded batches, oldest first, through this index.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_intake_request_created", "intake_request", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_request_created", table_name="intake_request")
