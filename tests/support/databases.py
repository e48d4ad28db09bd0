"""Databases and platforms: SQLite, a real PostgreSQL database per test, a Platform on each.

PostgreSQL comes from `COMPETE_TEST_PG_URL` (set by scripts/test.sh, which
installs and starts the server).  With `CI=true` a test that needs it fails
when it is missing; elsewhere it is skipped with the reason.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
import warnings

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from hub_extension.app import Platform
from hub_extension.db import normalize_url

from .components import IN_CI, require
from .paths import REPO


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get("COMPETE_TEST_PG_URL")
    if not url and IN_CI:
        url = subprocess.run(
            ["bash", str(REPO / "scripts" / "ensure_postgres.sh")], capture_output=True, text=True
        ).stdout.strip()
    require(bool(url), "PostgreSQL is not available: run scripts/test.sh, which starts it")
    return url


@pytest.fixture
def pg_url(pg_server_url: str):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = create_engine(normalize_url(pg_server_url), isolation_level="AUTOCOMMIT")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = pg_server_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _drop(admin, name)
    admin.dispose()


def _drop(admin, name: str) -> None:
    """Drop a test database.  FORCE ends the test's own connections, but not a backend of another role
    (an autovacuum worker that started on the new database): that one is waited for, a few seconds."""
    for attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if "pg_signal_backend" not in str(exc) or attempt == 19:
                warnings.warn(f"test database {name} left on the test server: {exc}")
                return
            time.sleep(0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request, tmp_path):
    """Runs a test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'compete.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def platform(tmp_path):
    """A platform with its own home (SQLite database, local store)."""
    p = Platform(home=str(tmp_path / "home"))
    yield p
    p.close()


@pytest.fixture
def any_platform(tmp_path, any_db_url):
    """A platform on SQLite, then on PostgreSQL."""
    p = Platform(home=str(tmp_path / "home"), db_url=any_db_url)
    yield p
    p.close()
