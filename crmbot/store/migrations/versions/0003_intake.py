"""intake: tokens, idempotency keys, round-robin pointers, territory rules, assignment log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ['workspace_id'], ['workspace.id'],
        name=op.f(f'fk_{table}_workspace_id_workspace'), ondelete='CASCADE',
    )


def upgrade() -> None:
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('away_until', sa.DateTime(timezone=True), nullable=True))

    op.create_table('intake_token',
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=8), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _workspace_fk('intake_token'),
    sa.PrimaryKeyConstraint('workspace_id', name=op.f('pk_intake_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_intake_token_token_hash'))
    )
    op.create_table('intake_request',
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('answer', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _workspace_fk('intake_request'),
    sa.PrimaryKeyConstraint('workspace_id', 'key', name=op.f('pk_intake_request'))
    )
    op.create_table('assignment_pointer',
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('pool', sa.String(length=64), nullable=False),
    sa.Column('last_user_id', sa.String(length=32), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    _workspace_fk('assignment_pointer'),
    sa.PrimaryKeyConstraint('workspace_id', 'pool', name=op.f('pk_assignment_pointer'))
    )
    op.create_table('territory_rule',
    sa.Column('id', Id, nullable=False),
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('field', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=100), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('reps', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _workspace_fk('territory_rule'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_territory_rule')),
    sa.UniqueConstraint('workspace_id', 'field', 'value', name=op.f('uq_territory_rule_workspace_id_field_value'))
    )
    op.create_table('lead_assignment',
    sa.Column('id', Id, nullable=False),
    sa.Column('workspace_id', sa.String(length=32), nullable=False),
    sa.Column('lead_id', Id, nullable=False),
    sa.Column('owner_id', sa.String(length=32), nullable=True),
    sa.Column('rule', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_lead_assignment_lead_id_lead'), ondelete='CASCADE'),
    _workspace_fk('lead_assignment'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_assignment'))
    )
    with op.batch_alter_table('lead_assignment', schema=None) as batch_op:
        batch_op.create_index('ix_lead_assignment_at', ['workspace_id', 'at'], unique=False)
        batch_op.create_index('ix_lead_assignment_lead', ['lead_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lead_assignment', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_assignment_lead')
        batch_op.drop_index('ix_lead_assignment_at')
    op.drop_table('lead_assignment')
    op.drop_table('territory_rule')
    op.drop_table('assignment_pointer')
    op.drop_table('intake_request')
    op.drop_table('intake_token')
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.drop_column('away_until')
