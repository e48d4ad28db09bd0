"""parallel phases: a phase's aggregation task (a CodaLab 1.8 parent's own scoring program), each task's own scores

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('aggregation_task', sa.Integer(), nullable=True))
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_scores', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_column('task_scores')
    with op.batch_alter_table('phases', schema=None) as batch_op:
        batch_op.drop_column('aggregation_task')
