"""maintained boards: each phase's leaderboards as ready rows, with a version counter per board

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('board_states',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('leaderboard_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('definition', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('built_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['leaderboard_id'], ['leaderboards.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'leaderboard_id')
    )
    op.create_table('board_rows',
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('leaderboard_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('baseline', sa.Boolean(), nullable=False),
    sa.Column('solution_index', sa.Integer(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('ranks', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['leaderboard_id'], ['leaderboards.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('phase_id', 'leaderboard_id', 'position')
    )
    op.create_index('ix_board_rows_username', 'board_rows', ['phase_id', 'leaderboard_id', 'username', 'position'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_board_rows_username', table_name='board_rows')
    op.drop_table('board_rows')
    op.drop_table('board_states')
