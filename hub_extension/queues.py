"""Organizer queues: creation, credentials, supervision of their schedulers, visibility.

A queue is a Dask cluster of its own: a scheduler this platform runs (one
process per queue, `hub_extension.queue_scheduler`), a CA of its own, a client
certificate for the platform and a worker certificate that the organizer
downloads in one credentials file and hands to `compete worker`.  The default
queue is the platform's own cluster and has no files here.

Files of queue NAME live in `home/queues/NAME/` (directory 0700, keys 0600):
`ca.pem ca.key scheduler.pem scheduler.key client.pem client.key
scheduler.json worker-credentials.json scheduler.pid scheduler.log`.
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

from sqlalchemy import select

from dask_workers.executors.base import process_alive

from . import models as m
from . import tls
from .app import DEFAULT_QUEUE, LOCAL_ADMIN, Actor, Forbidden, NotFound, Platform, PlatformError

CREDENTIALS_FORMAT = "jupyter-compete-worker-credentials/1"
QUEUE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A worker whose last heartbeat is older than this is shown as silent.
SILENT_AFTER = 30.0


def queues_root(platform: Platform) -> Path:
    return Path(platform.config.home) / "queues"


def queue_dir(platform: Platform, name: str) -> Path:
    if not QUEUE_NAME.match(name):
        raise PlatformError(f"invalid queue name {name!r}")
    return queues_root(platform) / name


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return s.getsockname()[1]


def _can_manage(platform: Platform, actor: Actor, queue: Optional[m.Queue], comp: Optional[m.Competition]) -> bool:
    if actor.is_admin:
        return True
    # Owning a queue counts only with a token that carries organizer powers: a
    # down-scoped token of its owner acts as a participant (SECURITY.md).
    if queue is not None and queue.owner and queue.owner == actor.username and actor.organizer_powers:
        return True
    return comp is not None and platform.is_organizer(actor, comp)


def create_queue(
    platform: Platform,
    name: str,
    actor: Actor = LOCAL_ADMIN,
    *,
    competition: Optional[str] = None,
    port: Optional[int] = None,
) -> dict[str, Any]:
    """Create queue `name` with its CA and credentials; with `competition`, that competition runs on it."""
    if not QUEUE_NAME.match(name or ""):
        raise PlatformError(
            f"invalid queue name {name!r}: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit"
        )
    if name == DEFAULT_QUEUE:
        raise PlatformError("'default' is the platform's own queue; choose another name")
    config = platform.config
    with platform.db.session() as s:
        comp = None
        if competition is not None:
            comp = s.scalar(select(m.Competition).where(m.Competition.slug == competition))
            if comp is None:
                raise NotFound(f"no competition {competition!r}")
        if not (platform.may_create_competitions(actor) or (comp and platform.is_organizer(actor, comp))):
            raise Forbidden("only organizers and admins may create queues")
        if comp is not None and not platform.is_organizer(actor, comp):
            raise Forbidden(f"you are not an organizer of {competition!r}")
        if s.scalar(select(m.Queue).where(m.Queue.name == name)) is not None:
            raise PlatformError(f"queue {name!r} already exists")
    host = config.queue_host
    listen_host = config.queue_listen_host or host
    port = port or _free_port(listen_host)
    folder = queue_dir(platform, name)
    if folder.exists():
        raise PlatformError(f"{folder} already exists; remove it or choose another queue name")
    folder.mkdir(parents=True, mode=0o700)
    try:
        (folder / "scheduler.json").write_text(
            json.dumps({"queue": name, "listen_host": listen_host, "host": host, "port": port}, indent=2)
        )
        fingerprint = _write_key_material(folder, name, host, listen_host, port)
        with platform.db.session() as s:
            comp = s.scalar(select(m.Competition).where(m.Competition.slug == competition)) if competition else None
            s.add(m.Queue(name=name, competition_id=comp.id if comp else None, owner=actor.username, host=host,
                          port=port, ca_fingerprint=fingerprint))
            if comp is not None:
                comp.queue = name
    except BaseException:
        for child in folder.iterdir():
            child.unlink()
        folder.rmdir()
        raise
    return queue_info(platform, name, actor)


def _write_key_material(folder: Path, name: str, host: str, listen_host: str, port: int) -> str:
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


def rotate_credentials(platform: Platform, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
    """Replace queue `name`'s CA and every certificate: credentials given out before stop working.

    The scheduler is stopped; the dispatcher starts it again with the new
    certificates, and runs it had are sent again.  Workers attach again with
    the new credentials file.
    """
    queue_info(platform, name, actor)  # exists, and the actor may manage it
    folder = queue_dir(platform, name)
    settings = json.loads((folder / "scheduler.json").read_text())
    fingerprint = _write_key_material(folder, name, settings["host"], settings["listen_host"], int(settings["port"]))
    with platform.db.session() as s:
        _queue_row(s, name).ca_fingerprint = fingerprint
    SchedulerSupervisor(platform).stop(name)
    return queue_info(platform, name, actor)


def _queue_row(s: Any, name: str) -> m.Queue:
    row = s.scalar(select(m.Queue).where(m.Queue.name == name))
    if row is None:
        raise NotFound(f"no queue {name!r}; create it with `compete queue create {name}`")
    return row


def queue_info(platform: Platform, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
    with platform.db.session() as s:
        row = _queue_row(s, name)
        comp = row.competition
        if not _can_manage(platform, actor, row, comp):
            raise Forbidden(f"you cannot see queue {name!r}")
        return {
            "name": row.name,
            "competition": comp.slug if comp else None,
            "owner": row.owner,
            "address": f"tls://{row.host}:{row.port}",
            "ca_fingerprint": row.ca_fingerprint,
            "created_at": row.created_at.isoformat(),
            "credentials_file": str(queue_dir(platform, name) / "worker-credentials.json"),
        }


def worker_credentials(platform: Platform, name: str, actor: Actor = LOCAL_ADMIN) -> bytes:
    """The one file an organizer downloads to attach machines to queue `name`."""
    queue_info(platform, name, actor)  # permission
    return (queue_dir(platform, name) / "worker-credentials.json").read_bytes()


def attach_command(name: str) -> str:
    return f"compete worker --credentials {name}-credentials.json --nthreads 1 --name $(hostname)"


def client_security(platform: Platform, name: str):
    """Dask security of the platform's own client of queue `name`."""
    from distributed.security import Security

    folder = queue_dir(platform, name)
    return Security(
        tls_ca_file=str(folder / "ca.pem"),
        tls_client_cert=str(folder / "client.pem"),
        tls_client_key=str(folder / "client.key"),
        require_encryption=True,
    )


def queue_names(platform: Platform) -> list[str]:
    with platform.db.session() as s:
        return list(s.scalars(select(m.Queue.name).order_by(m.Queue.name)))


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
    again, follows its runs and collects their results.
    """

    def __init__(self, platform: Platform, start_timeout: float = 30.0):
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
        from .dispatch import process_environment

        try:
            # No platform secret in the scheduler's environment either; freed result
            # payloads go back to the system at once.
            child = subprocess.Popen(
                [sys.executable, "-m", "hub_extension.queue_scheduler", str(folder)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=str(folder),
                env=process_environment({"MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_MMAP_THRESHOLD_": "1048576"}),
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


# -- visibility ---------------------------------------------------------------------------


def record_queue_state(platform: Platform, name: str, *, connected: bool, workers: list[dict[str, Any]],
                       note: Optional[str] = None) -> None:
    with platform.db.session() as s:
        row = s.get(m.QueueState, name)
        if row is None:
            row = m.QueueState(name=name)
            s.add(row)
        row.connected = connected
        row.workers = workers
        row.note = note
        row.updated_at = m.utcnow()


def _state(s: Any, name: str) -> dict[str, Any]:
    row = s.get(m.QueueState, name)
    if row is None:
        return {"connected": False, "workers": [], "note": "the dispatcher has not checked this queue yet",
                "checked_at": None}
    return {"connected": row.connected, "workers": list(row.workers or []), "note": row.note,
            "checked_at": row.updated_at.isoformat()}


def _submissions(platform: Platform, s: Any, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    positions = platform.queue_positions(name)
    waiting, running = [], []
    rows = s.execute(
        select(m.Submission, m.Participant.username, m.Competition.slug)
        .join(m.Participant, m.Submission.participant_id == m.Participant.id)
        .join(m.Competition, m.Participant.competition_id == m.Competition.id)
        .where(m.Submission.status.not_in(m.TERMINAL_STATUSES))
        .order_by(m.Submission.submitted_at, m.Submission.id)
    ).all()
    for sub, username, slug in rows:
        if sub.id in positions:
            waiting.append({"id": sub.id, "position": positions[sub.id], "competition": slug,
                            "participant": username, "submitted_at": sub.submitted_at.isoformat()})
        elif sub.queue == name:
            running.append({"id": sub.id, "status": sub.status, "competition": slug, "participant": username,
                            "worker": sub.worker,
                            "started_at": sub.started_at.isoformat() if sub.started_at else None})
    return waiting, running


def _note(state: dict[str, Any], waiting: list[Any]) -> Optional[str]:
    if not state["connected"]:
        return f"the queue's scheduler is not reachable: {state['note'] or 'not started'}"
    if not state["workers"]:
        return ("no worker is attached: submissions wait until one is" if waiting
                else "no worker is attached")
    return None


def list_queues(platform: Platform, actor: Actor = LOCAL_ADMIN) -> list[dict[str, Any]]:
    """Queues the actor may see, each with its workers count and submissions waiting and running."""
    out = []
    with platform.db.session() as s:
        names: list[tuple[str, Optional[m.Queue]]] = []
        if actor.is_admin:
            names.append((DEFAULT_QUEUE, None))
        for row in s.scalars(select(m.Queue).order_by(m.Queue.name)):
            if _can_manage(platform, actor, row, row.competition):
                names.append((row.name, row))
        for name, row in names:
            state = _state(s, name)
            waiting, running = _submissions(platform, s, name)
            out.append({
                "name": name,
                "competition": row.competition.slug if row is not None and row.competition else None,
                "address": f"tls://{row.host}:{row.port}" if row is not None else "local",
                "connected": state["connected"],
                "workers": len(state["workers"]),
                "gpus": sum(int((w.get("resources") or {}).get("GPU", 0)) for w in state["workers"]),
                "waiting": len(waiting),
                "running": len(running),
                "note": _note(state, waiting),
            })
    return out


def queue_detail(platform: Platform, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
    """Workers attached (name, resources, running task, last heartbeat) and submissions with positions."""
    with platform.db.session() as s:
        if name == DEFAULT_QUEUE:
            if not actor.is_admin:
                raise Forbidden("only admins may see the default queue")
            info: dict[str, Any] = {"name": name, "competition": None, "address": "local", "owner": None}
        else:
            row = _queue_row(s, name)
            if not _can_manage(platform, actor, row, row.competition):
                raise Forbidden(f"you cannot see queue {name!r}")
            info = {"name": name, "competition": row.competition.slug if row.competition else None,
                    "address": f"tls://{row.host}:{row.port}", "owner": row.owner,
                    "ca_fingerprint": row.ca_fingerprint, "attach_command": attach_command(name)}
        state = _state(s, name)
        waiting, running = _submissions(platform, s, name)
    for worker in state["workers"]:
        seen = worker.get("last_seen")
        worker["silent"] = isinstance(seen, (int, float)) and seen > SILENT_AFTER
    return {**info, "connected": state["connected"], "checked_at": state["checked_at"],
            "workers": state["workers"], "waiting": waiting, "running": running,
            "note": _note(state, waiting)}


def wait_for_workers(platform: Platform, name: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Block until the dispatcher has seen `count` workers on queue `name` (for scripts and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        with platform.db.session() as s:
            workers = _state(s, name)["workers"]
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        time.sleep(0.2)
