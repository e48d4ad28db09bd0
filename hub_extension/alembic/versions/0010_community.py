"""community: teams, forum, messages and mail, profiles, fact sheets, anonymous boards

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('competitions') as batch:
        batch.add_column(sa.Column('allow_teams', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('enable_forum', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('anonymous_leaderboard', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('fact_sheet', sa.JSON(), nullable=True))
    with op.batch_alter_table('leaderboards') as batch:
        batch.add_column(sa.Column('anonymous', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('fact_sheet_columns', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table('teams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('invite_token', sa.String(length=64), nullable=True),
    sa.Column('submission_seq', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'name')
    )
    op.create_table('team_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('invited_by', sa.String(length=200), nullable=True),
    sa.Column('invited_at', sa.DateTime(), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'username')
    )
    op.create_index('ix_team_members_competition_user', 'team_members', ['competition_id', 'username'],
                    unique=False)
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('fact_sheet', sa.JSON(), nullable=False, server_default='{}'))
        batch.create_index('ix_submissions_team_id', ['team_id'], unique=False)
        batch.create_foreign_key('fk_submissions_team_id_teams', 'teams', ['team_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('board_rows') as batch:
        batch.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
    op.create_table('forum_threads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_post_at', sa.DateTime(), nullable=False),
    sa.Column('post_count', sa.Integer(), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('answer_post_id', sa.Integer(), nullable=True),
    sa.Column('submission_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_forum_threads_listing', 'forum_threads', ['competition_id', 'pinned', 'last_post_at'],
                    unique=False)
    op.create_table('forum_posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.Column('edited_by', sa.String(length=200), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['thread_id'], ['forum_threads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_forum_posts_thread_id'), 'forum_posts', ['thread_id'], unique=False)
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('audience', sa.String(length=300), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('sender', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_messages_competition', 'messages', ['competition_id', 'created_at'], unique=False)
    op.create_table('message_recipients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('mail_status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'username')
    )
    op.create_index('ix_message_recipients_user', 'message_recipients', ['username', 'message_id'],
                    unique=False)
    op.create_table('profiles',
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('affiliation', sa.String(length=300), nullable=True),
    sa.Column('email', sa.String(length=300), nullable=True),
    sa.Column('mail', sa.JSON(), nullable=False),
    sa.Column('unsubscribe_token', sa.String(length=64), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('username'),
    sa.UniqueConstraint('unsubscribe_token')
    )


def downgrade() -> None:
    op.drop_table('profiles')
    op.drop_index('ix_message_recipients_user', table_name='message_recipients')
    op.drop_table('message_recipients')
    op.drop_index('ix_messages_competition', table_name='messages')
    op.drop_table('messages')
    op.drop_index(op.f('ix_forum_posts_thread_id'), table_name='forum_posts')
    op.drop_table('forum_posts')
    op.drop_index('ix_forum_threads_listing', table_name='forum_threads')
    op.drop_table('forum_threads')
    with op.batch_alter_table('board_rows') as batch:
        batch.drop_column('team_id')
    with op.batch_alter_table('submissions') as batch:
        batch.drop_constraint('fk_submissions_team_id_teams', type_='foreignkey')
        batch.drop_index('ix_submissions_team_id')
        batch.drop_column('fact_sheet')
        batch.drop_column('team_id')
    op.drop_index('ix_team_members_competition_user', table_name='team_members')
    op.drop_table('team_members')
    op.drop_table('teams')
    with op.batch_alter_table('leaderboards') as batch:
        batch.drop_column('fact_sheet_columns')
        batch.drop_column('anonymous')
    with op.batch_alter_table('competitions') as batch:
        batch.drop_column('fact_sheet')
        batch.drop_column('anonymous_leaderboard')
        batch.drop_column('enable_forum')
        batch.drop_column('allow_teams')
