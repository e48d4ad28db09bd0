"""Database engine, sessions and the schema's version.

`Database(url)` opens a database and checks its schema (`check_schema`): an
empty database is created at the newest Alembic revision (and stamped with
it); a current one costs a single read of `alembic_version`; one behind it is
refused with `SchemaError`, which names the command that upgrades it
(`compete db upgrade`), unless the `Database` is opened with `upgrade=True`
(`c.Compete.upgrade_db`).  `upgrade_database(url)` is that explicit step:
the service runs it when it starts and `scripts/run.sh` before the hub.
Migrations run under a lock on PostgreSQL, so several processes starting at
once do not race.  SQLite gets WAL mode, a busy timeout and foreign keys, so
that the service, the CLI and Dask callbacks can share one file.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

ALEMBIC_DIR = Path(__file__).with_name("alembic")
# The newest revision in alembic/versions: what `check_schema` compares with, so
# that a current database is recognized without loading Alembic (a test checks
# that it matches the scripts).
HEAD_REVISION = "0011"
UPGRADE_COMMAND = "compete db upgrade"
# Any fixed number: PostgreSQL advisory lock held while migrating.
_MIGRATION_LOCK = 7_311_042


class SchemaError(RuntimeError):
    """The database's schema is not the one this version of the platform uses."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands: its revision (None: no `alembic_version`) and whether it has tables."""

    revision: Optional[str]
    has_tables: bool = True

    @property
    def current(self) -> bool:
        return self.revision == HEAD_REVISION

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.has_tables


def normalize_url(url: str) -> str:
    """Accept `postgresql://` and pick the psycopg 3 driver for it."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def read_schema_state(engine: Engine) -> SchemaState:
    """The database's revision: one query when `alembic_version` exists, a look at its tables otherwise."""
    try:
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return SchemaState(revision)
    except DBAPIError:
        pass
    # No alembic_version table (or an unreadable one): empty, or tables from elsewhere.
    tables = inspect(engine).get_table_names()
    if "alembic_version" in tables:
        raise SchemaError("the database's alembic_version table cannot be read")
    return SchemaState(None, has_tables=bool(tables))


def alembic_config(engine: Engine):
    # Start-up cost: Alembic is loaded only when a schema changes, never to open a current database.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def known_revisions() -> list[str]:
    """Every revision of alembic/versions, oldest first (loads the migration scripts)."""
    # Start-up cost: only a database that is not current needs the scripts.
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(ALEMBIC_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def migrate(engine: Engine) -> None:
    """Upgrade to the newest revision (an empty database gets the whole schema)."""
    # Start-up cost: Alembic is loaded only when a schema changes.
    from alembic import command

    cfg = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
            try:
                command.upgrade(cfg, "head")
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
    else:
        command.upgrade(cfg, "head")


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _refusal(url: str, state: SchemaState) -> Optional[SchemaError]:
    """The error for a database `upgrade_database` cannot bring to head, else None."""
    if state.revision is None:
        return SchemaError(f"the database {_describe(url)} has tables but no schema revision: "
                           "it is not a Jupyter Compete database")
    if state.revision not in known_revisions():
        return SchemaError(f"the database {_describe(url)} is at revision {state.revision}, which this version "
                           f"of Jupyter Compete does not know (newest: {HEAD_REVISION}): it was written by a "
                           "newer version")
    return None


class Database:
    """An engine and its sessions, on a database whose schema is at head.

    `upgrade=False` (the default) creates an empty database and refuses one
    behind head with `SchemaError`; `upgrade=True` upgrades it.
    """

    def __init__(self, url: str, *, upgrade: bool = False):
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        try:
            self.check_schema(upgrade=upgrade)
        except BaseException:
            self.engine.dispose()
            raise
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def check_schema(self, *, upgrade: bool = False) -> SchemaState:
        """Make sure the schema is at head: create an empty one, upgrade one behind only when told."""
        state = read_schema_state(self.engine)
        if state.current:
            return state
        if state.empty:
            migrate(self.engine)
            return read_schema_state(self.engine)
        refused = _refusal(self.url, state)
        if refused:
            raise refused
        if not upgrade:
            raise SchemaError(f"the database {_describe(self.url)} is at schema revision {state.revision}, "
                              f"this version needs {HEAD_REVISION}: run `{UPGRADE_COMMAND}` "
                              "(or set c.Compete.upgrade_db = True)")
        migrate(self.engine)
        return read_schema_state(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessionmaker() as session:
            with session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()


def upgrade_database(url: str) -> str:
    """Bring the database's schema to head; returns one line saying what was done."""
    url = normalize_url(url)
    engine = make_engine(url)
    try:
        before = read_schema_state(engine)
        where = f"database {_describe(url)}"
        if before.current:
            return f"{where}: at revision {HEAD_REVISION} (the newest), nothing to do"
        if not before.empty:
            refused = _refusal(url, before)
            if refused:
                raise refused
        migrate(engine)
        after = read_schema_state(engine)
        if before.empty:
            return f"{where}: created at revision {after.revision}"
        return f"{where}: upgraded from revision {before.revision} to {after.revision}"
    finally:
        engine.dispose()


def open_database(url: str, *, upgrade: bool = False) -> Database:
    return Database(url, upgrade=upgrade)
