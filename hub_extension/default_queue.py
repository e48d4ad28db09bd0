"""The default queue as a process of its own: a guarded scheduler and its worker processes.

`python -m hub_extension.default_queue FOLDER` runs the platform's own Dask
queue: a `GuardedScheduler` on TLS, and `dask worker` processes (each under a
nanny) that it starts, restarts when one exits, and stops with it.  It is
started detached (a session of its own) by the dispatcher that holds the
lease, and recorded in the database (`queue_states.scheduler_*` of the
default queue): every later dispatcher, in this process or another, finds it
there by address and follows the runs it holds, so a run outlives the
process that sent it.  It holds no platform secret: it is executed with
`process_environment()`, and reads only its folder.

Its folder (`home/default-queue/q-<time>-<random>/`, 0700) holds
`settings.json` (written by the starter), `state.json` (written by the
process once it listens: address, Dask id, pid), `scheduler.log`, one log and
one local directory per worker, and `tls/`: a CA made for this process, one
certificate per role (scheduler, the dispatcher's client, the workers) and no
CA key, which is dropped once they are signed.

It stops on SIGTERM, or by itself after `idle_exit` seconds without a client
or a task (`results_hold` seconds while it keeps results no dispatcher
collected): a platform that is gone for good leaves no process behind.
Started by a hub's service, it also stops once that hub is gone (`lifetime`).

`DefaultQueueProcess` is the platform's side: find the recorded process,
check it answers, or start a new one (and record it), and stop it.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import dask
from distributed.security import Security

from dask_workers.environment import process_environment
from dask_workers.executors.base import process_alive

from . import tls
from .contract import DEFAULT_QUEUE
from .errors import PlatformError
from .lifetime import owner_environment, watch_owner
from .queue_scheduler import WORKER_OPS, GuardedScheduler, ResultLog, install_decode_guard, scheduler_config

log = logging.getLogger("compete.default_queue")

# The default queue's workers run under a nanny, which registers with the scheduler.
DEFAULT_WORKER_OPS = WORKER_OPS | {"register_nanny"}
SETTINGS = "settings.json"
STATE = "state.json"
FOLDER_PREFIX = "q-"
# The TLS folders of the default queue when its scheduler ran inside the dispatcher: `tls-<pid>-<random>`.
_LEGACY_PREFIX = "tls-"
# Fire-and-forget futures are held by this pseudo-client of the scheduler.
_FIRE_AND_FORGET = "fire-and-forget"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(partial, path)


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def port_open(address: str, timeout: float = 0.5) -> bool:
    """True when something listens at `tls://HOST:PORT`."""
    try:
        host, port = address.split("://", 1)[1].rsplit(":", 1)
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError, IndexError):
        return False


# -- the process ----------------------------------------------------------------------------
class QueueWorkers:
    """The worker processes of the default queue: `dask worker` (under a nanny) with a clean environment.

    Each is executed with `process_environment()`; the worker a nanny spawns
    inherits that environment.  A nanny that exits is started again.  They
    stop with this process, or on their own once the scheduler has been gone
    for `death_timeout` seconds (it was killed).
    """

    def __init__(self, address: str, folder: Path, settings: dict[str, Any]):
        # Imported here: only this process needs the machine's memory figure.
        from distributed.system import MEMORY_LIMIT

        self.address = address
        self.folder = folder
        self.count = max(1, int(settings["workers"]))
        self.threads = max(1, int(settings["threads"]))
        self.death_timeout = float(settings.get("death_timeout", 60.0))
        self.memory = int(MEMORY_LIMIT / self.count)
        files = folder / "tls"
        self.tls_arguments = ["--tls-ca-file", str(files / "ca.pem"), "--tls-cert", str(files / "worker.pem"),
                              "--tls-key", str(files / "worker.key")]
        self.processes: list[Optional[subprocess.Popen]] = [None] * self.count
        for index in range(self.count):
            self.start(index)

    def start(self, index: int) -> None:
        log_file = open(self.folder / f"worker-{index}.log", "ab")
        try:
            self.processes[index] = subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                 "--name", f"default-{index}", "--nworkers", "1", "--nthreads", str(self.threads),
                 "--memory-limit", str(self.memory), "--local-directory", str(self.folder / f"worker-{index}"),
                 "--no-dashboard", "--death-timeout", str(self.death_timeout), *self.tls_arguments],
                env=process_environment(), stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, cwd=str(self.folder),
            )
        finally:
            log_file.close()

    def restart_exited(self) -> None:
        for index, proc in enumerate(self.processes):
            if proc is not None and proc.poll() is not None:
                log.warning("worker process %s exited (%s); starting it again", index, proc.returncode)
                self.start(index)

    def close(self, grace: float = 15.0) -> None:
        running = [p for p in self.processes if p is not None]
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def idleness(scheduler: Any) -> Optional[str]:
    """None while a client (but fire-and-forget) is connected or a task is known; else `idle`, or
    `holding` while results no dispatcher collected are kept for one that comes back."""
    if any(client != _FIRE_AND_FORGET for client in scheduler.clients):
        return None
    if scheduler.tasks:
        return None
    plugin = scheduler.plugins.get(ResultLog.name)
    return "holding" if plugin is not None and plugin.uncollected() else "idle"


async def serve(folder: Path) -> None:
    settings = _read_json(folder / SETTINGS)
    if settings is None:
        raise SystemExit(f"no readable {SETTINGS} in {folder}")
    files = folder / "tls"
    security = Security(tls_ca_file=str(files / "ca.pem"), tls_scheduler_cert=str(files / "scheduler.pem"),
                        tls_scheduler_key=str(files / "scheduler.key"), require_encryption=True)
    # This process is the queue's scheduler only: every connection it reads is guarded.
    install_decode_guard(every_connection=True)
    with dask.config.set(scheduler_config()):
        scheduler = GuardedScheduler(
            host=settings.get("host", "127.0.0.1"), port=int(settings.get("port") or 0), protocol="tls",
            security=security, dashboard=False, dashboard_address="127.0.0.1:0", validate=False,
            worker_ops=DEFAULT_WORKER_OPS,
        )
        await scheduler
        workers = QueueWorkers(scheduler.address, folder, settings)
        _write_json(folder / STATE, {"address": scheduler.address, "id": scheduler.id, "pid": os.getpid(),
                                     "host": socket.gethostname(),
                                     "started_at": dt.datetime.now(dt.timezone.utc).isoformat()})
        log.info("default queue: scheduler at %s (%s), %s worker process(es)", scheduler.address, scheduler.id,
                 workers.count)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        idle_exit = float(settings.get("idle_exit") or 0)
        results_hold = max(idle_exit, float(settings.get("results_hold") or 0))
        idle_since: Optional[float] = None
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            if stop.is_set():
                break
            workers.restart_exited()
            if idle_exit <= 0:
                continue
            state = idleness(scheduler)
            if state is None:
                idle_since = None
                continue
            if idle_since is None:
                idle_since = time.monotonic()
            waited = time.monotonic() - idle_since
            if waited > (idle_exit if state == "idle" else results_hold):
                log.info("default queue: no dispatcher and nothing to run for %.0f s%s; stopping", waited,
                         "" if state == "idle" else " (results no dispatcher collected are dropped)")
                break
        await asyncio.to_thread(workers.close)
        await scheduler.close()
        (folder / STATE).unlink(missing_ok=True)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_extension.default_queue")
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Dask logs every snapshot the platform takes at INFO: keep its warnings only.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    watch_owner()  # started by a hub's service: SIGTERM (workers stopped too) once that hub is gone
    asyncio.run(serve(args.folder))
    return 0


# -- the platform's side --------------------------------------------------------------------
class DefaultQueueProcess:
    """The default queue's process as the platform finds, starts and stops it.

    `platform` is anything with the platform's `config` and its queue records
    (`record_queue_scheduler`, `queue_scheduler`): a `Platform`.
    """

    def __init__(self, platform: Any, folder: Path, state: dict[str, Any], child: Optional[subprocess.Popen] = None):
        self.platform = platform
        self.folder = folder
        self.address: str = state["address"]
        self.id: Optional[str] = state.get("id")
        self.pid: Optional[int] = state.get("pid")
        self.host: Optional[str] = state.get("host")
        self.child = child

    # -- finding -------------------------------------------------------------------------------
    @classmethod
    def parent(cls, platform: Any) -> Path:
        return Path(platform.config.home) / "default-queue"

    @classmethod
    def recorded(cls, platform: Any) -> Optional["DefaultQueueProcess"]:
        """The process the database names as the default queue's (alive or not), or None."""
        record = platform.queue_scheduler(DEFAULT_QUEUE)
        if not record or not record.get("folder") or not record.get("address"):
            return None
        folder = Path(record["folder"])
        if folder.parent != cls.parent(platform):
            return None  # only folders this platform makes are followed
        return cls(platform, folder, record)

    def local(self) -> bool:
        return self.host == socket.gethostname()

    def answers(self) -> bool:
        """Its scheduler listens (and, on this machine, its process lives) and its client files are there."""
        if self.child is not None and self.child.poll() is not None:
            return False
        if self.local() and (self.pid is None or not process_alive(self.pid)):
            return False
        if not (self.folder / "tls" / "client.key").is_file():
            return False
        return port_open(self.address)

    def security(self) -> Any:
        """Dask security of the platform's client of this queue."""
        files = self.folder / "tls"
        return Security(tls_ca_file=str(files / "ca.pem"), tls_client_cert=str(files / "client.pem"),
                        tls_client_key=str(files / "client.key"), require_encryption=True)

    def settings(self) -> dict[str, Any]:
        return _read_json(self.folder / SETTINGS) or {}

    @classmethod
    def find_or_start(cls, platform: Any, settings: dict[str, Any], start_timeout: float) -> "DefaultQueueProcess":
        """The recorded process when it answers; otherwise a new one, started, waited for and recorded."""
        current = cls.recorded(platform)
        if current is not None and current.answers():
            return current
        if current is not None:
            log.warning("the default queue's process (pid %s on %s) does not answer; starting a new one",
                        current.pid, current.host)
            if current.local():
                current.stop(forget=False)
        cls.remove_stale(platform)
        return cls.start(platform, settings, start_timeout)

    @classmethod
    def start(cls, platform: Any, settings: dict[str, Any], start_timeout: float) -> "DefaultQueueProcess":
        parent = cls.parent(platform)
        parent.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        folder = parent / f"{FOLDER_PREFIX}{stamp}-{secrets.token_hex(4)}"
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # whatever the umask
        host = settings.get("host", "127.0.0.1")
        tls.write_ephemeral(folder / "tls", DEFAULT_QUEUE, hosts=tuple(dict.fromkeys((host, "127.0.0.1", "localhost"))))
        _write_json(folder / SETTINGS, settings)
        log_file = open(folder / "scheduler.log", "ab")
        try:
            # Detached: a session of its own, so that it outlives the process that started it.
            # Freed result payloads go back to the system at once.
            child = subprocess.Popen(
                [sys.executable, "-m", "hub_extension.default_queue", str(folder)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=str(folder),
                env=process_environment({"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": "1048576",
                                         **owner_environment()}),
            )
        finally:
            log_file.close()
        deadline = time.monotonic() + start_timeout
        while (state := _read_json(folder / STATE)) is None:
            if child.poll() is not None:
                tail = (folder / "scheduler.log").read_text(errors="replace")[-2000:]
                shutil.rmtree(folder, ignore_errors=True)
                raise PlatformError(f"the default queue's process exited ({child.returncode}):\n{tail}")
            if time.monotonic() > deadline:
                child.kill()
                child.wait()
                shutil.rmtree(folder, ignore_errors=True)
                raise PlatformError(f"the default queue's process did not start within {start_timeout:.0f} s")
            time.sleep(0.05)
        process = cls(platform, folder, state, child)
        platform.record_queue_scheduler(
            DEFAULT_QUEUE, address=process.address, id=process.id, host=process.host, pid=process.pid,
            folder=str(folder), started_at=dt.datetime.fromisoformat(state["started_at"]).replace(tzinfo=None),
        )
        log.info("started the default queue: pid %s, scheduler %s", process.pid, process.address)
        return process

    @classmethod
    def remove_stale(cls, platform: Any) -> None:
        """Remove the folders of queue processes of this machine that are gone (killed, never cleaned)."""
        parent = cls.parent(platform)
        if not parent.is_dir():
            return
        for folder in parent.iterdir():
            if folder.is_symlink() or not folder.is_dir():
                continue
            if folder.name.startswith(_LEGACY_PREFIX):
                pid_text = folder.name[len(_LEGACY_PREFIX):].split("-", 1)[0]
                if not (pid_text.isdigit() and process_alive(int(pid_text))):
                    shutil.rmtree(folder, ignore_errors=True)
                continue
            if not folder.name.startswith(FOLDER_PREFIX):
                continue
            state = _read_json(folder / STATE)
            pid = state.get("pid") if state else None
            if state and state.get("host") == socket.gethostname() and isinstance(pid, int) and process_alive(pid):
                continue
            if state is None and time.time() - folder.stat().st_mtime < 120:
                continue  # a process another platform process is starting
            shutil.rmtree(folder, ignore_errors=True)

    # -- stopping ------------------------------------------------------------------------------
    def stop(self, grace: float = 30.0, forget: bool = True) -> None:
        """Stop the process (SIGTERM, then SIGKILL after `grace`), remove its folder, and forget its record."""
        pid = self.pid
        if self.local() and pid is not None and process_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while process_alive(pid) and time.monotonic() < deadline:
                if self.child is not None:
                    self.child.poll()
                time.sleep(0.05)
            if process_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.child is not None:
            try:
                self.child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.local():
            shutil.rmtree(self.folder, ignore_errors=True)
        if forget:
            record = self.platform.queue_scheduler(DEFAULT_QUEUE)
            if record is not None and record.get("id") == self.id:
                self.platform.record_queue_scheduler(DEFAULT_QUEUE, clear=True)


if __name__ == "__main__":
    sys.exit(main())
