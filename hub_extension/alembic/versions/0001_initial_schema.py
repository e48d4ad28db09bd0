"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-30 01:48:33.031955
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('competitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('dialect', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('logo_key', sa.String(length=64), nullable=True),
    sa.Column('docker_image', sa.String(length=300), nullable=True),
    sa.Column('queue', sa.String(length=100), nullable=True),
    sa.Column('registration_auto_approve', sa.Boolean(), nullable=False),
    sa.Column('enable_detailed_results', sa.Boolean(), nullable=False),
    sa.Column('terms', sa.Text(), nullable=True),
    sa.Column('contact_email', sa.String(length=300), nullable=True),
    sa.Column('admin_names', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('datasets',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('leaderboards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('submission_rule', sa.String(length=40), nullable=False),
    sa.Column('primary_key', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'key')
    )
    op.create_table('pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('format', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('submission_seq', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'username')
    )
    op.create_table('phases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('start', sa.DateTime(), nullable=True),
    sa.Column('end', sa.DateTime(), nullable=True),
    sa.Column('task_indexes', sa.JSON(), nullable=False),
    sa.Column('max_submissions', sa.Integer(), nullable=True),
    sa.Column('max_submissions_per_day', sa.Integer(), nullable=True),
    sa.Column('execution_time_limit', sa.Integer(), nullable=False),
    sa.Column('auto_migrate', sa.Boolean(), nullable=False),
    sa.Column('hide_results', sa.Boolean(), nullable=False),
    sa.Column('hide_output', sa.Boolean(), nullable=False),
    sa.Column('hide_prediction_output', sa.Boolean(), nullable=False),
    sa.Column('hide_score_output', sa.Boolean(), nullable=False),
    sa.Column('results_only', sa.Boolean(), nullable=False),
    sa.Column('submission_rule', sa.String(length=40), nullable=True),
    sa.Column('starting_kit_key', sa.String(length=64), nullable=True),
    sa.Column('public_data_key', sa.String(length=64), nullable=True),
    sa.Column('color', sa.String(length=40), nullable=True),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('allow_network', sa.Boolean(), nullable=False),
    sa.Column('queue', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['public_data_key'], ['datasets.key'], ),
    sa.ForeignKeyConstraint(['starting_kit_key'], ['datasets.key'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'index')
    )
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('scoring_program_key', sa.String(length=64), nullable=True),
    sa.Column('ingestion_program_key', sa.String(length=64), nullable=True),
    sa.Column('reference_data_key', sa.String(length=64), nullable=True),
    sa.Column('input_data_key', sa.String(length=64), nullable=True),
    sa.Column('ingestion_only_during_scoring', sa.Boolean(), nullable=False),
    sa.Column('scoring_docker_image', sa.String(length=300), nullable=True),
    sa.Column('ingestion_docker_image', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ingestion_program_key'], ['datasets.key'], ),
    sa.ForeignKeyConstraint(['input_data_key'], ['datasets.key'], ),
    sa.ForeignKeyConstraint(['reference_data_key'], ['datasets.key'], ),
    sa.ForeignKeyConstraint(['scoring_program_key'], ['datasets.key'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'index')
    )
    op.create_table('columns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('leaderboard_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('sorting', sa.String(length=4), nullable=False),
    sa.Column('precision', sa.Integer(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('computation', sa.String(length=20), nullable=True),
    sa.Column('source_keys', sa.JSON(), nullable=False),
    sa.Column('weights', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['leaderboard_id'], ['leaderboards.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('leaderboard_id', 'key')
    )
    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('file_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('selected', sa.Boolean(), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('artifacts', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['submissions.id'], ),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_phase_participant', ['phase_id', 'participant_id'], unique=False)
        batch_op.create_index('ix_submissions_status', ['status'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('task_index', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('worker', sa.String(length=300), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('elapsed', sa.Float(), nullable=True),
    sa.Column('image', sa.String(length=300), nullable=True),
    sa.Column('image_digest', sa.String(length=300), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('log_path', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_submission_id'), ['submission_id'], unique=False)

    op.create_table('scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('submission_id', 'key')
    )
    op.create_table('status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_changes_submission_id'), ['submission_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_changes_submission_id'))

    op.drop_table('status_changes')
    op.drop_table('scores')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_submission_id'))

    op.drop_table('runs')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_status')
        batch_op.drop_index('ix_submissions_phase_participant')

    op.drop_table('submissions')
    op.drop_table('columns')
    op.drop_table('tasks')
    op.drop_table('phases')
    op.drop_table('participants')
    op.drop_table('pages')
    op.drop_table('leaderboards')
    op.drop_table('datasets')
    op.drop_table('competitions')
