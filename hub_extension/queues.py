"""Organizer queues on disk and as processes: their keys and credentials, their schedulers.

A queue is a Dask cluster of its own: a scheduler this platform runs (one
process per queue, `hub_extension.queue_scheduler`), a CA of its own, a client
certificate for the platform and a worker certificate that the organizer
downloads in one credentials file and hands to `compete worker`.  The default
queue is the platform's own cluster and has no files here.  The use cases
(create a queue, rotate its credentials, see it, and who may) are
`hub_extension.app.queues`, reached through `Platform`.

Files of queue NAME live in `home/queues/NAME/` (directory 0700, keys 0600):
`ca.pem ca.key scheduler.pem scheduler.key client.pem client.key
scheduler.json worker-credentials.json scheduler.pid scheduler.log`.

`platform` below is anything with the platform's `config` (a `Platform`, or
the context its parts share).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from dask_workers.environment import process_environment
from dask_workers.executors.base import process_alive

from . import tls
from .errors import PlatformError
from .lifetime import owner_environment

CREDENTIALS_FORMAT = "jupyter-compete-worker-credentials/1"
QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A worker whose last heartbeat is older than this is shown as silent (the default of
# `c.Dispatcher.silent_after`).
SILENT_AFTER = 30.0


def silent_after(platform: Any) -> float:
    """`c.Dispatcher.silent_after`, read from the platform's configuration (the pages run without a dispatcher)."""
    section = getattr(platform.config, "config", {}).get("Dispatcher") or {}
    return float(section.get("silent_after", SILENT_AFTER))


def queues_root(platform: Any) -> Path:
    return Path(platform.config.home) / "queues"


def queue_dir(platform: Any, name: str) -> Path:
    if not QUEUE_NAME.match(name):
        raise PlatformError(f"invalid queue name {name!r}")
    return queues_root(platform) / name


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return s.getsockname()[1]


def write_key_material(folder: Path, name: str, host: str, listen_host: str, port: int) -> str:
    """A new CA for the queue, its certificates and the workers' credentials; returns the CA fingerprint.

    Each file is replaced whole (written aside, then renamed), so a reader never
    sees half a key.
    """
    ca = tls.make_ca(name)
    hosts = tuple(dict.fromkeys(h for h in (host, listen_host, "127.0.0.1", "localhost") if h and h != "0.0.0.0"))
    scheduler = tls.issue(ca, name, "scheduler", hosts)
    client = tls.issue(ca, name, "client")
    worker = tls.issue(ca, name, "worker")
    credentials = {
        "format": CREDENTIALS_FORMAT,
        "queue": name,
        "scheduler": f"tls://{host}:{port}",
        "ca": ca.cert_pem,
        "cert": worker.cert_pem,
        "key": worker.key_pem,
    }
    files = {
        "ca.pem": ca.cert_pem, "ca.key": ca.key_pem,
        "scheduler.pem": scheduler.cert_pem, "scheduler.key": scheduler.key_pem,
        "client.pem": client.cert_pem, "client.key": client.key_pem,
        "worker-credentials.json": json.dumps(credentials, indent=2),
    }
    for filename, text in files.items():
        partial = folder / f".{filename}.new"
        _write_private(partial, text)
        os.replace(partial, folder / filename)
    return tls.fingerprint(ca.cert_pem)


def attach_command(name: str) -> str:
    return f"compete worker --credentials {name}-credentials.json --nthreads 1 --name $(hostname)"


def client_security(platform: Any, name: str):
    """Dask security of the platform's own client of queue `name`."""
    from distributed.security import Security  # distributed is slow to import; only the dispatcher needs it

    folder = queue_dir(platform, name)
    return Security(
        tls_ca_file=str(folder / "ca.pem"),
        tls_client_cert=str(folder / "client.pem"),
        tls_client_key=str(folder / "client.key"),
        require_encryption=True,
    )


# -- supervision ------------------------------------------------------------------------


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class SchedulerSupervisor:
    """Starts the scheduler of each queue when it is not running, and stops it on request.

    Schedulers run detached (their own session), so that a restart of the
    platform leaves runs in progress alone: the platform finds the scheduler
    again, follows its runs and collects their results.  Started by a hub's
    service, they stop with the hub (`lifetime`).
    """

    def __init__(self, platform: Any, start_timeout: float = 30.0):
        self.platform = platform
        self.start_timeout = start_timeout
        self._children: dict[str, subprocess.Popen] = {}

    def _settings(self, name: str) -> dict[str, Any]:
        return json.loads((queue_dir(self.platform, name) / "scheduler.json").read_text())

    def pid(self, name: str) -> Optional[int]:
        try:
            pid = int((queue_dir(self.platform, name) / "scheduler.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def address(self, name: str) -> str:
        settings = self._settings(name)
        return f"tls://{settings['host']}:{settings['port']}"

    def running(self, name: str) -> bool:
        settings = self._settings(name)
        host = settings["listen_host"] if settings["listen_host"] not in ("", "0.0.0.0") else "127.0.0.1"
        return self.pid(name) is not None and _port_open(host, int(settings["port"]))

    def ensure(self, name: str) -> str:
        """The scheduler address of queue `name`, starting its scheduler if it is not running."""
        if self.running(name):
            return self.address(name)
        folder = queue_dir(self.platform, name)
        stale = self.pid(name)
        if stale is not None:  # alive but not answering: replace it
            self._kill(stale)
        (folder / "scheduler.pid").unlink(missing_ok=True)
        log_file = open(folder / "scheduler.log", "ab")
        try:
            # No platform secret in the scheduler's environment either; freed result
            # payloads go back to the system at once.
            child = subprocess.Popen(
                [sys.executable, "-m", "hub_extension.queue_scheduler", str(folder)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=str(folder),
                env=process_environment({"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": "1048576",
                                         **owner_environment()}),
            )
        finally:
            log_file.close()
        self._children[name] = child
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                tail = (folder / "scheduler.log").read_text(errors="replace")[-2000:]
                raise PlatformError(f"the scheduler of queue {name!r} exited ({child.returncode}):\n{tail}")
            if self.running(name):
                return self.address(name)
            time.sleep(0.1)
        raise PlatformError(f"the scheduler of queue {name!r} did not start within {self.start_timeout:.0f} s")

    def _kill(self, pid: int, grace: float = 10.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and process_alive(pid):
            self._reap()
            time.sleep(0.05)
        if process_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def _reap(self) -> None:
        for child in self._children.values():
            child.poll()

    def stop(self, name: str) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        self._kill(pid)
        (queue_dir(self.platform, name) / "scheduler.pid").unlink(missing_ok=True)
        return True
