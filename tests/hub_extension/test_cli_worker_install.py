"""`compete` on a worker-only install: no SQLAlchemy, Alembic, JupyterHub, tornado or Jinja.

The server libraries are made unimportable in a child process (a meta-path
blocker installed by a `sitecustomize` on PYTHONPATH); `compete worker --help`
and `compete --help` still work, and a server command says what it lacks.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SERVER_LIBRARIES = ("sqlalchemy", "alembic", "jupyterhub", "tornado", "jinja2", "nh3", "markdown_it", "psycopg")
BLOCKER = f'''
import sys

BLOCKED = {set(SERVER_LIBRARIES)!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, Blocker())
'''


@pytest.fixture
def worker_env(tmp_path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env["COMPETE_HOME"] = str(tmp_path / "home")
    return env


def compete(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub_extension.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_blocker_blocks(worker_env):
    result = subprocess.run([sys.executable, "-c", "import tornado"], env=worker_env, capture_output=True, text=True)
    assert result.returncode != 0 and "No module named 'tornado'" in result.stderr


def test_compete_worker_help_runs_without_the_server_libraries(worker_env):
    result = compete(worker_env, "worker", "--help")
    assert result.returncode == 0, result.stderr
    assert "--credentials" in result.stdout
    result = compete(worker_env, "--help")
    assert result.returncode == 0, result.stderr
    assert "worker" in result.stdout and "db" in result.stdout
    script = Path(sys.executable).with_name("compete")
    if script.exists():
        result = subprocess.run([str(script), "worker", "--help"], env=worker_env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_a_server_command_says_what_it_lacks(worker_env):
    result = compete(worker_env, "competition", "list")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "compete worker" in result.stderr


def test_importing_the_cli_loads_no_server_library():
    probe = ("import sys, hub_extension.cli; "
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(SERVER_LIBRARIES)!r}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
