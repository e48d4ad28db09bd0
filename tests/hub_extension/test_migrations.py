"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub_extension.db import Database
from hub_extension.models import Base


def test_migrations_match_models(any_db_url):
    db = Database(any_db_url)
    try:
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        tables = set(inspect(db.engine).get_table_names())
        for name in ("competitions", "pages", "phases", "tasks", "datasets", "leaderboards", "columns",
                     "participants", "submissions", "runs", "scores", "status_changes", "board_states", "board_rows"):
            assert name in tables
    finally:
        db.dispose()


def test_opening_twice_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    Database(url).dispose()
    Database(url).dispose()
