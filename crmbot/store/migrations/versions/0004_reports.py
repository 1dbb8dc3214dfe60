"""reports: saved segments, learned lead scores, indexes for reports and find filters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

INDEXES = (
    ('ix_account_industry', 'account', ['workspace_id', 'industry']),
    ('ix_account_region', 'account', ['workspace_id', 'region']),
    ('ix_lead_score', 'lead', ['workspace_id', 'status', 'score']),
    ('ix_lead_created', 'lead', ['workspace_id', 'created_at']),
    ('ix_deal_closed', 'deal', ['workspace_id', 'status', 'closed_at']),
    ('ix_stage_history_workspace', 'stage_history', ['workspace_id', 'deal_id', 'at', 'to_stage_id']),
    ('ix_interaction_workspace', 'interaction', ['workspace_id', 'occurred_at', 'logged_by', 'kind']),
    ('ix_event_action', 'event', ['workspace_id', 'kind', 'action', 'at']),
)


def upgrade() -> None:
    op.create_table('segment',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('text', sa.String(length=300), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=True),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_segment_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segment')),
    sa.UniqueConstraint('workspace_id', 'name', name=op.f('uq_segment_workspace_id_name'))
    )
    op.create_table('score_model',
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('trained_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_score_model_workspace_id_workspace'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_score_model'))
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table('score_model')
    op.drop_table('segment')
