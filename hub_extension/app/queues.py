"""Organizer queues as use cases: create one, rotate its credentials, see it, and who may.

Admins manage every queue; the owner of a queue (with a token that carries
organizer powers) and the organizers of its competition manage it.  The files
and processes of a queue (its CA, certificates, scheduler) are
`hub_extension.queues`; the state the dispatcher saw of a queue (connected,
workers) is recorded here and shown with the queue, and admins see which
process dispatches (the dispatcher lease, `app.lease`).
"""
from __future__ import annotations

import json
import time
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Forbidden, NotFound, PlatformError
from ..queues import (
    QUEUE_NAME,
    SchedulerSupervisor,
    attach_command,
    free_port,
    queue_dir,
    silent_after,
    write_key_material,
)
from .actors import LOCAL_ADMIN, Actor, is_organizer, may_create_competitions
from .context import Context
from .lease import Leases, lease_view
from .routing import DEFAULT_QUEUE, queue_positions
from .runs import is_open


def _can_manage(actor: Actor, queue: Optional[m.Queue], comp: Optional[m.Competition]) -> bool:
    if actor.is_admin:
        return True
    # Owning a queue counts only with a token that carries organizer powers: a
    # down-scoped token of its owner acts as a participant (SECURITY.md).
    if queue is not None and queue.owner and queue.owner == actor.username and actor.organizer_powers:
        return True
    return comp is not None and is_organizer(actor, comp)


def _queue_row(s: Session, name: str) -> m.Queue:
    row = s.scalar(select(m.Queue).where(m.Queue.name == name))
    if row is None:
        raise NotFound(f"no queue {name!r}; create it with `compete queue create {name}`")
    return row


SCHEDULER_FIELDS = ("address", "id", "host", "pid", "folder", "started_at")


def _scheduler(row: Optional[m.QueueState]) -> Optional[dict[str, Any]]:
    """Where the queue's scheduler runs, as last recorded (None: never recorded)."""
    if row is None or not row.scheduler_address:
        return None
    return {field: getattr(row, f"scheduler_{field}") for field in SCHEDULER_FIELDS}


def scheduler_view(record: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """A scheduler record as pages and the CLI show it (times as ISO text, no folder)."""
    if record is None:
        return None
    started = record.get("started_at")
    return {"address": record["address"], "id": record.get("id"), "host": record.get("host"),
            "pid": record.get("pid"), "since": started.isoformat() if started else None}


def _state(s: Session, name: str) -> dict[str, Any]:
    row = s.get(m.QueueState, name)
    if row is None:
        return {"connected": False, "workers": [], "note": "the dispatcher has not checked this queue yet",
                "checked_at": None, "scheduler": None}
    return {"connected": row.connected, "workers": list(row.workers or []), "note": row.note,
            "checked_at": row.updated_at.isoformat(), "scheduler": scheduler_view(_scheduler(row))}


def _submissions(s: Session, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    positions = queue_positions(s, name)
    waiting, running = [], []
    rows = s.execute(
        select(m.Submission, m.Participant.username, m.Competition.slug)
        .join(m.Participant, m.Submission.participant_id == m.Participant.id)
        .join(m.Competition, m.Participant.competition_id == m.Competition.id)
        .where(is_open())
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
    waiting.sort(key=lambda entry: entry["position"])  # the order they go to workers in (fair share)
    return waiting, running


def _note(state: dict[str, Any], waiting: list[Any]) -> Optional[str]:
    if not state["connected"]:
        return f"the queue's scheduler is not reachable: {state['note'] or 'not started'}"
    if not state["workers"]:
        return ("no worker is attached: submissions wait until one is" if waiting
                else "no worker is attached")
    return None


class Queues:
    """The organizer queues, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def create_queue(self, name: str, actor: Actor = LOCAL_ADMIN, *, competition: Optional[str] = None,
                     port: Optional[int] = None) -> dict[str, Any]:
        """Create queue `name` with its CA and credentials; with `competition`, that competition runs on it."""
        if not QUEUE_NAME.match(name or ""):
            raise PlatformError(
                f"invalid queue name {name!r}: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit"
            )
        if name == DEFAULT_QUEUE:
            raise PlatformError("'default' is the platform's own queue; choose another name")
        config = self.ctx.config
        with self.ctx.db.session() as s:
            comp = None
            if competition is not None:
                comp = s.scalar(select(m.Competition).where(m.Competition.slug == competition))
                if comp is None:
                    raise NotFound(f"no competition {competition!r}")
            if not (may_create_competitions(actor) or (comp and is_organizer(actor, comp))):
                raise Forbidden("only organizers and admins may create queues")
            if comp is not None and not is_organizer(actor, comp):
                raise Forbidden(f"you are not an organizer of {competition!r}")
            if s.scalar(select(m.Queue).where(m.Queue.name == name)) is not None:
                raise PlatformError(f"queue {name!r} already exists")
        host = config.queue_host
        listen_host = config.queue_listen_host or host
        port = port or free_port(listen_host)
        folder = queue_dir(self.ctx, name)
        if folder.exists():
            raise PlatformError(f"{folder} already exists; remove it or choose another queue name")
        folder.mkdir(parents=True, mode=0o700)
        try:
            (folder / "scheduler.json").write_text(
                json.dumps({"queue": name, "listen_host": listen_host, "host": host, "port": port}, indent=2)
            )
            fingerprint = write_key_material(folder, name, host, listen_host, port)
            with self.ctx.db.session() as s:
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
        return self.queue_info(name, actor)

    def rotate_credentials(self, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
        """Replace queue `name`'s CA and every certificate: credentials given out before stop working.

        The scheduler is stopped; the dispatcher starts it again with the new
        certificates, and runs it had are sent again.  Workers attach again with
        the new credentials file.
        """
        self.queue_info(name, actor)  # exists, and the actor may manage it
        folder = queue_dir(self.ctx, name)
        settings = json.loads((folder / "scheduler.json").read_text())
        fingerprint = write_key_material(folder, name, settings["host"], settings["listen_host"],
                                                     int(settings["port"]))
        with self.ctx.db.session() as s:
            _queue_row(s, name).ca_fingerprint = fingerprint
        SchedulerSupervisor(self.ctx).stop(name)
        return self.queue_info(name, actor)

    def queue_info(self, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
        with self.ctx.db.session() as s:
            row = _queue_row(s, name)
            comp = row.competition
            if not _can_manage(actor, row, comp):
                raise Forbidden(f"you cannot see queue {name!r}")
            return {
                "name": row.name,
                "competition": comp.slug if comp else None,
                "owner": row.owner,
                "address": f"tls://{row.host}:{row.port}",
                "ca_fingerprint": row.ca_fingerprint,
                "created_at": row.created_at.isoformat(),
                "credentials_file": str(queue_dir(self.ctx, name) / "worker-credentials.json"),
            }

    def worker_credentials(self, name: str, actor: Actor = LOCAL_ADMIN) -> bytes:
        """The one file an organizer downloads to attach machines to queue `name`."""
        self.queue_info(name, actor)  # permission
        return (queue_dir(self.ctx, name) / "worker-credentials.json").read_bytes()

    # -- what the dispatcher sees, and what it shows ------------------------------------------------
    def queue_names(self) -> list[str]:
        """The queues created here, by name (the default queue has no row)."""
        with self.ctx.db.session() as s:
            return list(s.scalars(select(m.Queue.name).order_by(m.Queue.name)))

    def record_queue_state(self, name: str, *, connected: bool, workers: list[dict[str, Any]],
                           note: Optional[str] = None) -> None:
        """What the dispatcher saw of queue `name`: reachable or not, and its workers."""
        with self.ctx.db.session() as s:
            row = s.get(m.QueueState, name)
            if row is None:
                row = m.QueueState(name=name)
                s.add(row)
            row.connected = connected
            row.workers = workers
            row.note = note
            row.updated_at = m.utcnow()

    def record_queue_scheduler(self, name: str, **fields: Any) -> None:
        """Where queue `name`'s scheduler runs (`SCHEDULER_FIELDS`; a field not given keeps its value).

        `clear=True` forgets the scheduler (it was stopped)."""
        clear = fields.pop("clear", False)
        unknown = set(fields) - set(SCHEDULER_FIELDS)
        if unknown:
            raise ValueError(f"unknown scheduler fields {sorted(unknown)}")
        with self.ctx.db.session() as s:
            row = s.get(m.QueueState, name)
            if row is None:
                row = m.QueueState(name=name, connected=False, workers=[])
                s.add(row)
            for field in SCHEDULER_FIELDS:
                if clear:
                    setattr(row, f"scheduler_{field}", None)
                elif field in fields:
                    setattr(row, f"scheduler_{field}", fields[field])

    def queue_scheduler(self, name: str) -> Optional[dict[str, Any]]:
        """The recorded scheduler of queue `name` (`SCHEDULER_FIELDS`), or None."""
        with self.ctx.db.session() as s:
            return _scheduler(s.get(m.QueueState, name))

    def list_queues(self, actor: Actor = LOCAL_ADMIN) -> list[dict[str, Any]]:
        """Queues the actor may see, each with its workers count and submissions waiting and running."""
        out = []
        with self.ctx.db.session() as s:
            names: list[tuple[str, Optional[m.Queue]]] = []
            if actor.is_admin:
                names.append((DEFAULT_QUEUE, None))
            for row in s.scalars(select(m.Queue).order_by(m.Queue.name)):
                if _can_manage(actor, row, row.competition):
                    names.append((row.name, row))
            for name, row in names:
                state = _state(s, name)
                waiting, running = _submissions(s, name)
                out.append({
                    "name": name,
                    "competition": row.competition.slug if row is not None and row.competition else None,
                    "address": (f"tls://{row.host}:{row.port}" if row is not None
                                else (state["scheduler"] or {}).get("address") or "not started"),
                    "scheduler": state["scheduler"],
                    "connected": state["connected"],
                    "workers": len(state["workers"]),
                    "gpus": sum(int((w.get("resources") or {}).get("GPU", 0)) for w in state["workers"]),
                    "waiting": len(waiting),
                    "running": len(running),
                    "note": _note(state, waiting),
                })
        return out

    def queue_detail(self, name: str, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
        """Workers attached (name, resources, running task, last heartbeat) and submissions with positions."""
        with self.ctx.db.session() as s:
            if name == DEFAULT_QUEUE:
                if not actor.is_admin:
                    raise Forbidden("only admins may see the default queue")
                scheduler = _state(s, name)["scheduler"] or {}
                info: dict[str, Any] = {"name": name, "competition": None,
                                        "address": scheduler.get("address") or "not started", "owner": None}
            else:
                row = _queue_row(s, name)
                if not _can_manage(actor, row, row.competition):
                    raise Forbidden(f"you cannot see queue {name!r}")
                info = {"name": name, "competition": row.competition.slug if row.competition else None,
                        "address": f"tls://{row.host}:{row.port}", "owner": row.owner,
                        "ca_fingerprint": row.ca_fingerprint, "attach_command": attach_command(name)}
            state = _state(s, name)
            waiting, running = _submissions(s, name)
        quiet = silent_after(self.ctx)
        for worker in state["workers"]:
            seen = worker.get("last_seen")
            worker["silent"] = isinstance(seen, (int, float)) and seen > quiet
        return {**info, "scheduler": state["scheduler"], "connected": state["connected"],
                "checked_at": state["checked_at"],
                "workers": state["workers"], "waiting": waiting, "running": running,
                "note": _note(state, waiting)}

    def dispatcher_lease(self, actor: Actor = LOCAL_ADMIN) -> dict[str, Any]:
        """Which process dispatches (admins): `held` and the holder's host, pid and times, or who held it last."""
        if not actor.is_admin:
            raise Forbidden("only admins may see which process dispatches")
        return lease_view(Leases(self.ctx).current())

    def wait_for_workers(self, name: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Block until the dispatcher has seen `count` workers on queue `name` (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.ctx.db.session() as s:
                workers = _state(s, name)["workers"]
            if len(workers) >= count or time.monotonic() > deadline:
                return workers
            time.sleep(0.2)
