"""One configuration loader for every process: where the file is, and what beats what."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from hub_extension.cli import main
from hub_extension.config import load_config
from hub_extension.db import ALEMBIC_DIR, HEAD_REVISION


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("COMPETE_CONFIG", "COMPETE_HOME", "COMPETE_DB_URL", "COMPETE_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def write_config(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("c = get_config()\n" + "\n".join(lines) + "\n")
    return path


def test_the_file_in_home_beats_the_environment_and_options_beat_the_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    write_config(home / "compete_config.py", "c.Compete.executor = 'process'",
                 f"c.Compete.db_url = 'sqlite:///{tmp_path / 'file.sqlite'}'",
                 "c.Dispatcher.some_setting = 7")
    monkeypatch.setenv("COMPETE_DB_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv("COMPETE_LOG_LEVEL", "DEBUG")

    loaded = load_config(home=home)
    assert loaded.file == (home / "compete_config.py").resolve()
    assert loaded.compete.home == str(home)
    assert loaded.compete.db_url == f"sqlite:///{tmp_path / 'file.sqlite'}"  # the file beats the environment
    assert loaded.compete.executor == "process"
    assert loaded.compete.log_level == "DEBUG"  # the environment beats the built-in default
    assert loaded.config.Dispatcher.some_setting == 7  # other configurables' sections come along
    assert loaded.compete.config.Dispatcher.some_setting == 7  # and reach them from the platform's settings

    cli = load_config(home=home, db_url="sqlite:///cli.sqlite", executor="docker")
    assert cli.compete.db_url == "sqlite:///cli.sqlite" and cli.compete.executor == "docker"


def test_home_from_the_environment_finds_its_file_and_compete_config_names_another(tmp_path, monkeypatch):
    home = tmp_path / "home"
    write_config(home / "compete_config.py", "c.Compete.max_upload_bytes = 111")
    monkeypatch.setenv("COMPETE_HOME", str(home))
    loaded = load_config()
    assert loaded.compete.home == str(home) and loaded.compete.max_upload_bytes == 111

    other = write_config(tmp_path / "elsewhere.py", "c.Compete.max_upload_bytes = 222", "c.Compete.home = '/srv/x'")
    monkeypatch.setenv("COMPETE_CONFIG", str(other))
    loaded = load_config()
    assert loaded.file == other.resolve() and loaded.compete.max_upload_bytes == 222
    assert loaded.compete.home == "/srv/x"  # the file beats $COMPETE_HOME
    assert load_config(home=home).compete.home == str(home)  # --home beats the file

    monkeypatch.setenv("COMPETE_CONFIG", str(tmp_path / "missing.py"))
    with pytest.raises(FileNotFoundError, match="COMPETE_CONFIG"):
        load_config()


def test_no_file_and_no_environment(tmp_path):
    loaded = load_config(home=tmp_path / "fresh")
    assert loaded.file is None and loaded.compete.db_url == "" and loaded.compete.upgrade_db is False
    assert load_config(home_fallback=tmp_path / "fallback").compete.home == str(tmp_path / "fallback")


def test_compete_commands_read_the_file_of_their_home(tmp_path, capsys):
    """`c.Compete.*` of `<home>/compete_config.py` applies to the commands, with --db beating it."""
    home = tmp_path / "home"
    db_file = tmp_path / "configured.sqlite"
    write_config(home / "compete_config.py", f"c.Compete.db_url = 'sqlite:///{db_file}'")
    assert main(["--home", str(home), "competition", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert db_file.is_file() and not (home / "compete.sqlite").exists()

    other = tmp_path / "option.sqlite"
    assert main(["--home", str(home), "--db", f"sqlite:///{other}", "db", "upgrade"]) == 0
    assert str(other) in capsys.readouterr().out and other.is_file()


def test_head_revision_is_the_newest_migration():
    assert ScriptDirectory(str(ALEMBIC_DIR)).get_current_head() == HEAD_REVISION
