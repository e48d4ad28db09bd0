"""What the hub started stops with it, whether it is stopped (SIGTERM) or killed (SIGKILL).

A real hub as `jupyterhub -f jupyterhub_config.py` starts it (tests/support/hub.py):
its service starts the default queue's process (and its worker processes), and
an organizer queue's scheduler once an organizer creates the queue.  The queue
processes run in sessions of their own, on purpose (a restart of the service
leaves them alone), so only `hub_extension.lifetime` ties them to the hub.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.support.hub import start_hub

pytestmark = pytest.mark.slow

QUEUE = "lifetime-q"
GONE_WITHIN = 15.0  # seconds after the hub exits


def _under(path: str, home: Path) -> bool:
    return path == str(home) or path.startswith(str(home) + os.sep)


def processes_of(home: Path) -> dict[int, str]:
    """The platform's processes of the hub of `home`, by pid: the service (by its COMPETE_HOME) and the
    queue processes (by their folder, their working directory below the home)."""
    home = home.resolve()
    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info["cmdline"] or ())
        if "hub_extension" not in cmdline and "dask_worker" not in cmdline:
            continue
        if "hub_extension.service.proxy" in cmdline:
            # The proxy outlives its hub by JupyterHub's design, whichever proxy it is: a hub started
            # again finds it by its pid file and keeps users' routes.  Only the platform's own go.
            continue
        try:
            env_home = proc.environ().get("COMPETE_HOME", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if _under(proc.info["cwd"] or "", home) or env_home == str(home):
            found[proc.pid] = cmdline
    return found


def _wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _hub_with_an_organizer_queue(hub) -> dict[int, str]:
    """The hub's processes once the organizer queue's scheduler runs (it starts at the next tick)."""
    organizer = hub.demo_accounts("organizer")[0].username
    created = hub.user_client(organizer).post("api/v1/queues", json={"name": QUEUE})
    assert created.status_code == 201, created.text

    def all_running():
        found = processes_of(hub.home)
        kinds = " ".join(found.values())
        has = all(k in kinds for k in ("hub_extension.service", "hub_extension.default_queue",
                                      "hub_extension.queue_scheduler", "dask_worker"))
        return found if has else None

    return _wait_for("the service, the default queue, its workers and the queue's scheduler", all_running, 90)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_the_service_and_the_queue_processes_stop_with_the_hub(tmp_path, how):
    with start_hub(tmp_path, {"COMPETE_LAB_DOCKER": "0"}) as hub:
        running = _hub_with_an_organizer_queue(hub)
        hub.process.send_signal(how)
        hub.process.wait(60)
        exited = time.monotonic()
        deadline = exited + GONE_WITHIN
        left = processes_of(hub.home)
        while left and time.monotonic() < deadline:
            time.sleep(0.25)
            left = processes_of(hub.home)
        assert not left, (f"still running {time.monotonic() - exited:.0f} s after the hub exited "
                          f"(of {sorted(running.values())}): {left}\n{hub.log_tail()}")
