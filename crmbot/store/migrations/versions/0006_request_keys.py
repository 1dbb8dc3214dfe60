"""request keys: Slack requests claimed once (retries, double submits)

Revision ID: 0006
Revises: 0013
Create Date: 2026-11-23 06:50:38.420346

One row per claimed request (`event:<event_id>`, `command:<trigger_id>`, `view:…`, `click:…`),
unique per workspace; the clock prunes rows after `expires_at`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('request_key',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_key')),
    sa.UniqueConstraint('workspace_id', 'key', name=op.f('uq_request_key_workspace_id_key'))
    )
    with op.batch_alter_table('request_key', schema=None) as batch_op:
        batch_op.create_index('ix_request_key_expires', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_key', schema=None) as batch_op:
        batch_op.drop_index('ix_request_key_expires')
    op.drop_table('request_key')
