"""integrity: run provenance, reproductions, fair share, probing-resistant boards, similarity

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 02:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('phases') as batch:
        batch.add_column(sa.Column('max_concurrent_submissions', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('allow_reproduce', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('leaderboards') as batch:
        batch.add_column(sa.Column('display_precision', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('ladder', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('ladder_step', sa.Float(), nullable=True))
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('reproduces_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('pinned', sa.JSON(), nullable=False, server_default='{}'))
        batch.create_index('ix_submissions_reproduces_id', ['reproduces_id'], unique=False)
        batch.create_foreign_key('fk_submissions_reproduces_id_submissions', 'submissions',
                                 ['reproduces_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('provenance', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('board_rows') as batch:
        batch.add_column(sa.Column('shown', sa.JSON(), nullable=True))
    op.create_table('similarity_signatures',
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('tokens', sa.Integer(), nullable=False),
    sa.Column('signature', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('computed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('submission_id')
    )
    op.create_index('ix_similarity_signatures_competition', 'similarity_signatures', ['competition_id'],
                    unique=False)
    op.create_table('similarity_pairs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('first_id', sa.Integer(), nullable=False),
    sa.Column('second_id', sa.Integer(), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=False),
    sa.Column('found_at', sa.DateTime(), nullable=False),
    sa.Column('reviewed_by', sa.String(length=200), nullable=True),
    sa.Column('verdict', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['first_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['second_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('first_id', 'second_id')
    )
    op.create_index('ix_similarity_pairs_competition', 'similarity_pairs', ['competition_id', 'similarity'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_similarity_pairs_competition', table_name='similarity_pairs')
    op.drop_table('similarity_pairs')
    op.drop_index('ix_similarity_signatures_competition', table_name='similarity_signatures')
    op.drop_table('similarity_signatures')
    with op.batch_alter_table('board_rows') as batch:
        batch.drop_column('shown')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('provenance')
    with op.batch_alter_table('submissions') as batch:
        batch.drop_constraint('fk_submissions_reproduces_id_submissions', type_='foreignkey')
        batch.drop_index('ix_submissions_reproduces_id')
        batch.drop_column('pinned')
        batch.drop_column('reproduces_id')
    with op.batch_alter_table('leaderboards') as batch:
        batch.drop_column('ladder_step')
        batch.drop_column('ladder')
        batch.drop_column('display_precision')
    with op.batch_alter_table('phases') as batch:
        batch.drop_column('allow_reproduce')
        batch.drop_column('max_concurrent_submissions')
