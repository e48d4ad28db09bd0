"""queue schedulers: where each queue's scheduler runs, and which scheduler holds each sent run

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('queue_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduler_address', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('scheduler_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('scheduler_host', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('scheduler_pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('scheduler_folder', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('scheduler_started_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatch_scheduler', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('dispatch_scheduler')
    with op.batch_alter_table('queue_states', schema=None) as batch_op:
        for name in ('scheduler_started_at', 'scheduler_folder', 'scheduler_pid', 'scheduler_host',
                     'scheduler_id', 'scheduler_address'):
            batch_op.drop_column(name)
