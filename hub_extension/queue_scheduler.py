"""The scheduler of an organizer queue: a process of its own, guarded.

`python -m hub_extension.queue_scheduler QUEUE_DIR` runs the Dask scheduler of
one queue on TLS with the queue's own CA.  The platform starts it and
restarts it when it dies (`hub_extension.queues`).

In Dask, any peer holding a certificate of the cluster may connect as a
client and run code on the scheduler, and the wire protocol unpickles what a
peer sends.  Workers of a queue belong to an organizer, so this process
accepts from a *worker* certificate only what a worker needs:

- messages read from a worker-role connection are decoded as plain msgpack;
  pickled or serialized payloads in them are replaced by a refusal marker and
  never unpickled, so nothing a worker sends can reach the platform's client
  as a pickle either;
- request operations are limited to those a worker sends (register,
  heartbeat, ...); stream operations reserved to clients (`update-graph`,
  ...) are refused on a worker's stream.

Only the platform's client certificate (role `client`) gets the full
protocol.  The role is the organizational unit of the peer's certificate
(`hub_extension.tls`).
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import inspect
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .tls import role_of_peercert

log = logging.getLogger("compete.queue_scheduler")

REFUSED = "<refused: serialized data from a worker>"

# Request operations a worker-role connection may call on the scheduler.
WORKER_OPS = frozenset(
    {"identity", "echo", "register-worker", "heartbeat_worker", "who_has", "set_resources",
     "unregister", "retire_workers", "register_nanny", "close"}
)
# Keyword arguments a worker may pass to retire_workers (closing itself gracefully);
# `key` in particular is a pickled function there.
RETIRE_ARGS = frozenset({"workers", "close_workers", "remove", "stimulus_id", "names"})

_untrusted = contextvars.ContextVar("compete_untrusted_peer", default=False)
_installed = False


def _peer_role(comm: Any) -> str | None:
    try:
        return role_of_peercert(comm.extra_info.get("peercert"))
    except Exception:  # noqa: BLE001 - no certificate, no role
        return None


def plain_loads(frames: list) -> Any:
    """Decode a message without ever unpickling: serialized parts are refused."""
    import msgpack
    from distributed.protocol.core import msgpack_opts

    def hook(obj: dict) -> Any:
        if "__Pickled__" in obj or "__Serialized__" in obj:
            return REFUSED
        if "__Enum__" in obj:
            return REFUSED
        if "__Set__" in obj:
            return set(obj.get("as-list", ()))
        return obj

    if not frames:
        return {}
    return msgpack.loads(frames[0], object_hook=hook, use_list=False, **msgpack_opts)


def install_decode_guard() -> None:
    """Read every non-client TLS connection of this process as plain data."""
    global _installed
    if _installed:
        return
    import distributed.comm.tcp as tcp

    original_from_frames = tcp.from_frames
    original_read = tcp.TLS.read

    async def guarded_from_frames(frames, deserialize=True, deserializers=None, allow_offload=True):
        if _untrusted.get():
            return plain_loads(frames)
        return await original_from_frames(
            frames, deserialize=deserialize, deserializers=deserializers, allow_offload=allow_offload
        )

    async def guarded_read(self, deserializers=None):
        if _peer_role(self) == "client":
            return await original_read(self, deserializers)
        token = _untrusted.set(True)
        try:
            return await original_read(self, deserializers)
        finally:
            _untrusted.reset(token)

    tcp.from_frames = guarded_from_frames
    tcp.TLS.read = guarded_read
    _installed = True


def _call(handler, comm, kwargs):
    params = inspect.signature(handler).parameters
    if params and next(iter(params)) == "comm":
        return handler(comm, **kwargs)
    return handler(**kwargs)


def guard_handlers(scheduler: Any) -> None:
    """Limit worker-role connections to the operations of a worker."""
    for op, handler in list(scheduler.handlers.items()):

        async def guarded(comm, __op=op, __handler=handler, **kwargs):
            role = _peer_role(comm)
            if role != "client":
                if __op not in WORKER_OPS:
                    log.warning("refused operation %r from a %s connection %s", __op, role, comm.peer_address)
                    raise PermissionError(f"operation {__op!r} is not allowed for a {role} certificate")
                if __op == "retire_workers" and set(kwargs) - RETIRE_ARGS:
                    raise PermissionError("retire_workers: unexpected arguments from a worker")
            result = _call(__handler, comm, kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        scheduler.handlers[op] = guarded

    client_ops = {
        "update-graph", "client-desires-keys", "update-data", "report-key", "client-releases-keys",
        "heartbeat-client", "close-client", "subscribe-topic", "unsubscribe-topic", "cancel-keys",
    }
    for op in client_ops & set(scheduler.stream_handlers):
        handler = scheduler.stream_handlers[op]

        async def guarded_stream(__op=op, __handler=handler, **kwargs):
            # A worker's stream always carries `worker` (set by the scheduler, not the peer).
            if "worker" in kwargs:
                log.warning("refused stream operation %r from worker %s", __op, kwargs.get("worker"))
                return None
            result = __handler(**kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        scheduler.stream_handlers[op] = guarded_stream


def queue_snapshot(dask_scheduler: Any = None, keys: tuple = ()) -> dict[str, Any]:
    """Run on a scheduler by the platform: its workers and the state of the given task keys."""
    import time

    now = time.time()
    workers = []
    for ws in dask_scheduler.workers.values():
        workers.append({
            "name": str(ws.name),
            "address": ws.address,
            "nthreads": int(ws.nthreads),
            "resources": {str(k): float(v) for k, v in (ws.resources or {}).items()},
            "running": sorted(str(ts.key) for ts in ws.processing),
            "last_seen": round(max(0.0, now - ws.last_seen), 1),
            "status": str(getattr(ws.status, "name", ws.status)),
        })
    tasks: dict[str, Any] = {}
    for key in keys:
        ts = dask_scheduler.tasks.get(key)
        if ts is None:
            tasks[key] = None
            continue
        tasks[key] = {
            "state": ts.state,
            "worker": str(ts.processing_on.name) if ts.processing_on is not None else None,
            "error": str(ts.exception_text or "")[:2000] or None,
            "deaths": int(ts.suspicious),
        }
    return {"workers": workers, "tasks": tasks}


def scheduler_config() -> dict[str, Any]:
    """Dask settings of every queue scheduler."""
    return {
        # A task whose worker dies is retried once elsewhere, then fails (KilledWorker).
        "distributed.scheduler.allowed-failures": 1,
        # A worker silent for this long is removed and its tasks rescheduled.
        "distributed.scheduler.worker-ttl": "20s",
        # Results and status arrive as events (per topic); the last ones stay for a platform
        # restart to collect.  Results carry logs and outputs, so this bounds the memory too.
        "distributed.admin.low-level-log-length": 2000,
        # No web routes: the dashboard would serve the queue's state to anyone.
        "distributed.scheduler.http.routes": [],
        # Waiting tasks are kept on the scheduler, so positions are the platform's to show.
        "distributed.scheduler.worker-saturation": 1.0,
    }


async def serve(queue_dir: Path) -> None:
    import dask
    from distributed import Scheduler
    from distributed.security import Security

    settings = json.loads((queue_dir / "scheduler.json").read_text())
    security = Security(
        tls_ca_file=str(queue_dir / "ca.pem"),
        tls_scheduler_cert=str(queue_dir / "scheduler.pem"),
        tls_scheduler_key=str(queue_dir / "scheduler.key"),
        require_encryption=True,
    )
    install_decode_guard()
    with dask.config.set(scheduler_config()):
        scheduler = Scheduler(
            host=settings["listen_host"],
            port=int(settings["port"]),
            protocol="tls",
            security=security,
            dashboard=False,
            dashboard_address="127.0.0.1:0",
            validate=False,
        )
        guard_handlers(scheduler)
        await scheduler
        (queue_dir / "scheduler.pid").write_text(str(os.getpid()))
        log.info("queue %s: scheduler at %s", settings.get("queue"), scheduler.address)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await scheduler.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_extension.queue_scheduler")
    parser.add_argument("queue_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Dask logs every snapshot the platform takes at INFO: keep its warnings only.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    asyncio.run(serve(args.queue_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
