"""solutions and baselines: a bundle's example submissions, the phases that list them, baseline submissions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('solutions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('data_key', sa.String(length=64), nullable=False),
    sa.Column('task_indexes', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['data_key'], ['datasets.key']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'index')
    )
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('solution_indexes', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('baseline', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('solution_index', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('solution_index')
        batch_op.drop_column('baseline')
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_column('solution_indexes')
    op.drop_table('solutions')
