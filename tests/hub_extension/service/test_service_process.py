"""The service process: configuration from the environment, the executor warning,
periodic tasks that survive their failures, and `python -m hub_extension.service`."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from hub_extension.config import load_config
from hub_extension.service import __main__ as service_main
from tests.support.components import first_answer
from tests.support.paths import REPO


def run_loop(main) -> None:
    """asyncio.run(main()) in a thread of its own (the test process may hold a running loop)."""
    import threading

    errors = []

    def target():
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


def test_config_comes_from_the_environment(tmp_path, monkeypatch):
    config_file = tmp_path / "compete_config.py"
    config_file.write_text("c = get_config()\nc.Compete.max_upload_bytes = 1234\nc.Compete.executor = 'process'\n")
    monkeypatch.setenv("COMPETE_CONFIG", str(config_file))
    monkeypatch.setenv("COMPETE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COMPETE_DB_URL", f"sqlite:///{tmp_path / 'other.sqlite'}")
    config = load_config().compete
    assert config.max_upload_bytes == 1234 and config.executor == "process"
    assert config.home == str(tmp_path / "home")
    assert config.resolved_db_url() == f"sqlite:///{tmp_path / 'other.sqlite'}"


def test_the_executor_warning(monkeypatch):
    import dask_workers.executors as executors

    config = type("C", (), {})()
    config.executor = "process"
    assert service_main.resolve_executor(config) == service_main.PROCESS_WARNING
    config.executor = "docker"
    assert service_main.resolve_executor(config) is None
    monkeypatch.setattr(executors, "docker_available", lambda: False)
    config.executor = "auto"
    assert service_main.resolve_executor(config) == service_main.FALLBACK_WARNING
    assert config.executor == "process"
    monkeypatch.setattr(executors, "docker_available", lambda: True)
    config.executor = "auto"
    assert service_main.resolve_executor(config) is None and config.executor == "docker"


def test_a_failing_tick_is_logged_once_and_retried(caplog):
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise RuntimeError("the database is away")

    async def run():
        ticker = service_main.Ticker("test", flaky, 0.02)
        ticker.start()
        await asyncio.sleep(0.5)
        ticker.stop()

    with caplog.at_level(logging.ERROR, logger="compete.service"):
        run_loop(run)
    assert len(calls) > 4  # it kept going after the failures
    failures = [r for r in caplog.records if "test tick failed" in r.getMessage()]
    assert len(failures) == 1  # the same error is not logged again and again


def test_a_slow_tick_is_not_doubled():
    running = []
    overlaps = []

    def slow():
        if running:
            overlaps.append(1)
        running.append(1)
        time.sleep(0.1)
        running.pop()

    async def run():
        ticker = service_main.Ticker("slow", slow, 0.01)
        ticker.start()
        await asyncio.sleep(0.4)
        ticker.stop()

    run_loop(run)
    assert overlaps == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_service_runs_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    home = tmp_path / "home"
    (tmp_path / "cfg.py").write_text("c = get_config()\nc.Compete.executor = 'process'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
    env.update({
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/competitions/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "JUPYTERHUB_API_TOKEN": "unused",
        "JUPYTERHUB_CLIENT_ID": "service-competitions",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/competitions/oauth_callback",
        "COMPETE_HOME": str(home),
        "COMPETE_CONFIG": str(tmp_path / "cfg.py"),
    })
    log = open(tmp_path / "service.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "hub_extension.service"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        resp = first_answer(f"http://127.0.0.1:{port}/services/competitions/api/v1/health", proc,
                            tmp_path / "service.log", timeout=90)
        assert resp.status_code == 200 and resp.json()["status"] == "ok"
        # The cookie key is kept for the next start, readable by its owner only.
        secret = home / "service_cookie_secret"
        assert secret.is_file() and secret.stat().st_mode & 0o077 == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    text = (tmp_path / "service.log").read_text()
    assert "does not isolate them" in text and "Traceback" not in text, text
