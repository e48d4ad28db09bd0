"""The processes that run submissions hold no platform secret.

The service holds the hub token, the OAuth secrets and the database URL in its
environment.  The default queue's worker processes must not: a participant's
step (or anything reading the worker's `/proc/<pid>/environ`, which shows the
environment the process was executed with) would otherwise get them.  Real
Dispatcher, real worker processes, the kernel's own view of their environment.
"""
from __future__ import annotations

import os
from pathlib import Path

from hub_extension.app import DEFAULT_QUEUE, Platform
from tests.support.components import child_processes, descendants

SECRETS = {
    "JUPYTERHUB_API_TOKEN": "secret-marker-hub-token",
    "JUPYTERHUB_CLIENT_SECRET": "secret-marker-oauth",
    "JUPYTERHUB_CRYPT_KEY": "secret-marker-crypt",
    "COMPETE_DB_URL": "postgresql://compete:secret-marker-db@db/compete",
    "ANY_SERVICE_PASSWORD": "secret-marker-password",
}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_default_queue_workers_are_executed_without_the_platform_secrets(tmp_path, monkeypatch):
    from hub_extension.dispatch import Dispatcher

    platform = Platform(home=str(tmp_path / "home"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LC_TEST_KEPT", "kept")
    dispatcher = Dispatcher(platform, n_workers=2, threads_per_worker=1)
    try:
        link = dispatcher.link(DEFAULT_QUEUE)
        assert len(link.client.scheduler_info(n_workers=-1)["workers"]) == 2
        queue_pid = dispatcher.default_process.pid
        nanny_pids = child_processes(queue_pid)
        # The nannies, the workers they spawned, and the queue's process itself.
        pids = descendants(queue_pid) + [queue_pid]
        assert len(nanny_pids) == 2 and len(pids) >= 5 and queue_pid != os.getpid(), pids
        for pid in pids:
            env = _environ(pid)
            assert "PATH" in env and env.get("LC_TEST_KEPT") == "kept", sorted(env)  # the view is real
            leaked = {k for k, v in env.items() if "secret-marker" in v or k in SECRETS}
            assert not leaked, f"process {pid} was executed with {sorted(leaked)}"
            assert not any(k.startswith("JUPYTERHUB_") for k in env), sorted(env)
    finally:
        dispatcher.close()
        platform.close()


def test_queue_schedulers_are_executed_without_the_platform_secrets(tmp_path, monkeypatch):
    from hub_extension.app import LOCAL_ADMIN
    from hub_extension.queues import SchedulerSupervisor

    platform = Platform(home=str(tmp_path / "home"))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    supervisor = SchedulerSupervisor(platform)
    try:
        platform.create_queue("envcheck", LOCAL_ADMIN)
        supervisor.ensure("envcheck")
        env = _environ(supervisor.pid("envcheck"))
        assert "PATH" in env
        assert not {k for k, v in env.items() if "secret-marker" in v or k in SECRETS}, sorted(env)
    finally:
        supervisor.stop("envcheck")
        platform.close()
