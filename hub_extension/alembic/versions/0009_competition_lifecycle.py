"""competition lifecycle (draft, published, private, archived) and each run's program

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Competitions that exist were public: they stay published.
    with op.batch_alter_table('competitions') as batch:
        batch.add_column(sa.Column('status', sa.String(length=20), nullable=False,
                                   server_default='published'))
        batch.add_column(sa.Column('status_changed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('secret', sa.String(length=64), nullable=True))
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('program_key', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('program_key')
    with op.batch_alter_table('competitions') as batch:
        batch.drop_column('secret')
        batch.drop_column('status_changed_at')
        batch.drop_column('status')
