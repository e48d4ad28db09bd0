"""The project installed as a user installs it: the wheel, non-editable, one extra per fresh environment.

The sdist and the wheel are built from a copy of the source tree (`uv build`:
the wheel is built from the sdist, as from an index), then each extra goes
into a virtual environment of its own, from PyPI, with `uv pip install`
(cached under ~/.cache/jupyter-compete/uv, so that reruns on one machine do
not download again):

- `[server]`: `compete demo` runs from the installed package (bundle
  templates, the demo, the process executor), `compete init` copies a bundle
  template, and the service started from the installed package serves its
  pages and static files;
- `[lab]`: the client and the widgets import, and neither SQLAlchemy nor
  JupyterHub is installed;
- `[worker]`: `compete worker --help` answers, and neither SQLAlchemy,
  Alembic nor JupyterHub is installed.

Every command runs outside the checkout, with no PYTHONPATH, so only the
installed package can answer.  uv comes with the `test` extra; with CI=true a
missing uv fails the test instead of skipping it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.components import first_answer, require
from tests.support.paths import REPO

pytestmark = pytest.mark.slow

UV_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyter-compete" / "uv"
SERVER_LIBRARIES = ("sqlalchemy", "alembic", "jupyterhub")
# Left out of the copy the wheel is built from: what a fresh clone does not have.
NOT_SOURCE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".venv",
                                    "compete-home", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints")
INSTALL_TIMEOUT = 1500
# Install times, printed at the end of the session (`-s`) and kept for the report.
TIMINGS: dict[str, float] = {}


def _uv() -> str:
    try:
        import uv

        found = uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
    require(bool(found), "uv is not installed (it comes with the test extra: scripts/test.sh installs it)")
    return str(found)


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would let the checkout answer instead of the install."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
    venv_bin = os.environ.get("COMPETE_VENV")
    if venv_bin:
        # The test environment's own bin (scripts/test.sh puts it first) must not shadow the installed one.
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(venv_bin))
    env.update({"UV_CACHE_DIR": str(UV_CACHE), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"})
    env.update(extra)
    return env


def _run(argv: list, *, cwd: Path, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _clean_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return proc


def _ok(proc: subprocess.CompletedProcess, what: str) -> str:
    assert proc.returncode == 0, f"{what} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n" \
                                 f"--- stderr\n{proc.stderr[-6000:]}"
    return proc.stdout


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from its sdist, from a copy of the source tree."""
    uv = _uv()
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE, symlinks=True)
    started = time.monotonic()
    _ok(_run([uv, "build", "--native-tls", "--out-dir", work / "dist", source], cwd=work, timeout=INSTALL_TIMEOUT),
        "uv build")
    TIMINGS["build sdist + wheel"] = time.monotonic() - started
    wheels = sorted((work / "dist").glob("jupyter_compete-*.whl"))
    assert len(wheels) == 1, list((work / "dist").iterdir())
    return wheels[0]


def _install(tmp_path_factory, wheel: Path, extra: str) -> Path:
    """A fresh virtual environment holding `wheel[extra]` (not editable); returns its folder."""
    uv = _uv()
    venv = tmp_path_factory.mktemp(f"venv-{extra}") / "venv"
    _ok(_run([uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=venv.parent, timeout=120), "uv venv")
    python = venv / "bin" / "python"
    started = time.monotonic()
    _ok(_run([uv, "pip", "install", "--native-tls", "--python", python, f"{wheel}[{extra}]"],
             cwd=venv.parent, timeout=INSTALL_TIMEOUT), f"uv pip install {wheel.name}[{extra}]")
    TIMINGS[f"install [{extra}]"] = time.monotonic() - started
    return venv


def _installed(venv: Path) -> dict[str, str]:
    """name -> version of every distribution in `venv`."""
    listing = _ok(_run([_uv(), "pip", "list", "--python", venv / "bin" / "python", "--format", "json"],
                       cwd=venv.parent, timeout=120), "uv pip list")
    return {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(listing)}


def _package_dir(venv: Path) -> Path:
    out = _ok(_run([venv / "bin" / "python", "-c", "import hub_extension, os; print(os.path.dirname(hub_extension.__file__))"],
                   cwd=venv.parent, timeout=60), "locating hub_extension")
    return Path(out.strip())


@pytest.fixture(scope="session", autouse=True)
def _report_timings():
    yield
    if TIMINGS:
        print("\ninstall timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def lab_venv(tmp_path_factory, wheel) -> Path:
    return _install(tmp_path_factory, wheel, "lab")


@pytest.fixture(scope="module")
def worker_venv(tmp_path_factory, wheel) -> Path:
    return _install(tmp_path_factory, wheel, "worker")


@pytest.fixture(scope="module")
def server_venv(tmp_path_factory, wheel) -> Path:
    return _install(tmp_path_factory, wheel, "server")


# -- the participant side -----------------------------------------------------------------------
def test_lab_imports_the_client_and_widgets_without_the_server(lab_venv):
    package = _package_dir(lab_venv)
    assert lab_venv in package.parents, package  # the installed copy, not the checkout
    code = ("import sys\n"
            "import hub_extension.client, hub_extension.widgets\n"
            "from hub_extension.client import CompeteClient\n"
            "from hub_extension.widgets import Leaderboard, LeaderboardState, Refresher, Submit, SubmitState\n"
            "from hub_extension.widgets.submit import save_script\n"
            "assert 'context.save()' in save_script('t', 1)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'jupyterhub', 'alembic')))\n")
    out = _ok(_run([lab_venv / "bin" / "python", "-c", code], cwd=lab_venv.parent, timeout=120), "importing the widgets")
    assert out.strip().splitlines()[-1] == "[]"
    installed = _installed(lab_venv)
    assert "jupyter-compete" in installed
    assert not [name for name in SERVER_LIBRARIES if name in installed], sorted(installed)
    assert {"ipywidgets", "requests", "jupyterlab"} <= set(installed)


# -- the worker side ----------------------------------------------------------------------------
def test_worker_command_answers_without_the_server(worker_venv):
    out = _ok(_run([worker_venv / "bin" / "compete", "worker", "--help"], cwd=worker_venv.parent, timeout=120),
              "compete worker --help")
    assert "--credentials" in out
    code = ("import sys\nimport dask_workers.attach\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'jupyterhub', 'alembic')))\n")
    out = _ok(_run([worker_venv / "bin" / "python", "-c", code], cwd=worker_venv.parent, timeout=120),
              "importing the worker")
    assert out.strip().splitlines()[-1] == "[]"
    installed = _installed(worker_venv)
    assert not [name for name in SERVER_LIBRARIES if name in installed], sorted(installed)
    assert {"distributed", "docker", "papermill"} <= set(installed)


# -- the server side ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_ships_its_templates_and_notebooks(server_venv, tmp_path):
    package = _package_dir(server_venv)
    assert server_venv in package.parents, package
    code = "from hub_extension import resources; print(resources.templates()); print(resources.notebooks())"
    out = _ok(_run([server_venv / "bin" / "python", "-c", code], cwd=tmp_path, timeout=60), "the resolver")
    templates, notebooks = (Path(line) for line in out.split())
    assert templates == package / "templates" and notebooks == package / "notebooks"
    assert (notebooks / "starting_kit_template.ipynb").is_file()
    for sub in ("service", "demo", "bundles"):
        assert sorted(p.relative_to(templates / sub) for p in (templates / sub).rglob("*") if p.is_file()) == \
            sorted(p.relative_to(REPO / "templates" / sub) for p in (REPO / "templates" / sub).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts), sub
    home = tmp_path / "home"
    out = _ok(_run([server_venv / "bin" / "compete", "--home", home, "init", tmp_path / "new", "--template", "code"],
                   cwd=tmp_path, timeout=120), "compete init")
    assert (tmp_path / "new" / "competition.yaml").is_file() and "wrote a code bundle" in out


def test_server_runs_the_demo_and_serves_its_pages(server_venv, tmp_path):
    home = tmp_path / "home"
    started = time.monotonic()
    demo = _run([server_venv / "bin" / "compete", "--home", home, "--executor", "process", "demo"], cwd=tmp_path,
                timeout=900)
    TIMINGS["compete demo"] = time.monotonic() - started
    out = _ok(demo, "compete demo")
    assert "Traceback" not in out + demo.stderr, out + demo.stderr
    assert out.count(": Finished") == 3, out
    assert "Demo: flower species" in out or "demo" in out.lower()

    port = _free_port()
    (tmp_path / "cfg.py").write_text("c = get_config()\nc.Compete.executor = 'process'\n")
    env = _clean_env(
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
        JUPYTERHUB_SERVICE_PREFIX="/services/competitions/",
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",
        JUPYTERHUB_API_TOKEN="unused",
        JUPYTERHUB_CLIENT_ID="service-competitions",
        JUPYTERHUB_OAUTH_CALLBACK_URL="/services/competitions/oauth_callback",
        COMPETE_HOME=str(home),
        COMPETE_CONFIG=str(tmp_path / "cfg.py"),
    )
    base = f"http://127.0.0.1:{port}/services/competitions/"
    with open(tmp_path / "service.log", "wb") as log:
        proc = subprocess.Popen([str(server_venv / "bin" / "python"), "-m", "hub_extension.service"], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            first_answer(f"{base}api/v1/health", proc, tmp_path / "service.log", timeout=120)
            page = requests.get(base, timeout=30)
            assert page.status_code == 200, page.text[:2000]
            assert "text/html" in page.headers["Content-Type"]
            assert "Demo: flower species" in page.text  # the demo competition, listed by the page template
            style = requests.get(f"{base}static/compete.css", timeout=30)
            assert style.status_code == 200 and style.text.strip()
            missing = requests.get(f"{base}no-such-page", timeout=30)
            assert missing.status_code == 404 and "<html" in missing.text.lower()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = (tmp_path / "service.log").read_text()
    assert "Traceback" not in text and "could not render" not in text, text
