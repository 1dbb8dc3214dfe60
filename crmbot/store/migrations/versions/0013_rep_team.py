"""rep team: a manager with a team acts on that team's records

Revision ID: 0013
Revises: 0005
Create Date: 2026-11-23 07:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('rep', schema=None) as batch_op:
        batch_op.drop_column('team')
