"""queues and dispatch: organizer queues, dispatch keys, phase-clock markers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 02:18:48.110154
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('queues',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=True),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('host', sa.String(length=300), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('ca_fingerprint', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('queue_states',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('connected', sa.Boolean(), nullable=False),
    sa.Column('workers', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker_data', sa.JSON(), nullable=False, server_default='{}'))

    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('migrated_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('dispatch_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('dispatched_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('dispatch_count', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('worker', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_submissions_dispatch_key'), ['dispatch_key'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submissions_dispatch_key'))
        batch_op.drop_column('worker')
        batch_op.drop_column('dispatch_count')
        batch_op.drop_column('dispatched_at')
        batch_op.drop_column('dispatch_key')
        batch_op.drop_column('queue')

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('worker_data')

    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_column('migrated_at')
        batch_op.drop_column('opened_at')

    op.drop_table('queues')
    op.drop_table('queue_states')
