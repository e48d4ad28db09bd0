"""The database upgrade is an explicit step: `compete db upgrade`; the platform refuses a database behind it."""
from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from sqlalchemy import text

from hub_extension.app import Platform
from hub_extension.cli import main
from hub_extension.db import HEAD_REVISION, Database, SchemaError, alembic_config, make_engine


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("COMPETE_CONFIG", "COMPETE_HOME", "COMPETE_DB_URL"):
        monkeypatch.delenv(name, raising=False)


def database_at(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        engine.dispose()


def revision_of(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_a_database_behind_head_is_refused_until_compete_db_upgrade(any_db_url, tmp_path, capsys):
    home = tmp_path / "home"
    database_at(any_db_url, "0002")

    with pytest.raises(SchemaError) as refused:
        Platform(home=str(home), db_url=any_db_url)
    message = str(refused.value)
    assert "\n" not in message and "`compete db upgrade`" in message and "0002" in message

    # The commands say the same in one line, without a traceback.
    assert main(["--home", str(home), "--db", any_db_url, "competition", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "compete db upgrade" in err and "Traceback" not in err

    assert main(["--home", str(home), "--db", any_db_url, "db", "upgrade"]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and f"upgraded from revision 0002 to {HEAD_REVISION}" in out
    assert revision_of(any_db_url) == HEAD_REVISION

    platform = Platform(home=str(home), db_url=any_db_url)
    try:
        assert platform.list_competitions() == []
    finally:
        platform.close()
    assert main(["--home", str(home), "--db", any_db_url, "db", "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_upgrade_when_opening_is_an_explicit_choice(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite'}"
    database_at(url, "0001")
    Database(url, upgrade=True).dispose()
    assert revision_of(url) == HEAD_REVISION


def test_a_fresh_home_is_created_at_head_and_db_upgrade_has_nothing_to_do(tmp_path, capsys):
    home = tmp_path / "fresh"
    assert main(["--home", str(home), "competition", "list"]) == 0
    capsys.readouterr()
    assert revision_of(f"sqlite:///{home / 'compete.sqlite'}") == HEAD_REVISION
    assert main(["--home", str(home), "db", "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out

    other = tmp_path / "other"
    assert main(["--home", str(other), "db", "upgrade"]) == 0
    assert f"created at revision {HEAD_REVISION}" in capsys.readouterr().out


def test_opening_a_current_database_does_not_load_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'current.sqlite'}"
    Database(url).dispose()
    probe = ("import sys; from hub_extension.db import Database; "
             f"Database({url!r}).dispose(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_database_of_a_newer_version_is_refused(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'newer.sqlite'}"
    Database(url).dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaError, match="newer version"):
        Database(url)
    assert main(["--db", url, "--home", str(tmp_path), "db", "upgrade"]) == 1
    assert "9999" in capsys.readouterr().err
