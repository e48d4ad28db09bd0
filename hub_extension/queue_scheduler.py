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

- every request a worker may send acts on the sending worker only: a worker
  certificate is shared by all the machines of a queue, so who is asking is
  read from the connection itself (`WorkerOrigins`), never from the worker
  address written in the request.  `identity` answers without the list of
  workers.

Only the platform's client certificate (role `client`) gets the full
protocol.  The role is the organizational unit of the peer's certificate
(`dask_workers.queue_guard`, which also decodes untrusted reads as plain data
for `compete worker`).

The same guard serves the default queue, whose scheduler is a process of its
own too (`hub_extension.default_queue`): `GuardedScheduler` is a Dask
scheduler with the guard built in before it listens.  The decoding guard can
also be limited to the TLS contexts of guarded schedulers, for a process that
holds clients of other queues as well.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import ipaddress
import json
import logging
import os
import signal
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Optional

import dask
from distributed import Scheduler
from distributed.comm.addressing import get_address_host_port
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.security import Security

from dask_workers.queue_guard import peer_role, plain_reads_when

from .contract import RESULT_TOPIC
from .lifetime import watch_owner

log = logging.getLogger("compete.queue_scheduler")

# Request operations a worker-role connection may call on the scheduler.  Those
# naming a worker (`SELF_OPS`) are answered only for the calling worker; the
# others are answered without anything about other workers.  `compete worker`
# runs no nanny, so `register_nanny` is not among them.
WORKER_OPS = frozenset(
    {"identity", "echo", "register-worker", "heartbeat_worker", "who_has", "set_resources",
     "unregister", "retire_workers", "close"}
)
# The argument naming the worker acted on, per operation.
SELF_OPS = {"heartbeat_worker": "address", "set_resources": "worker", "unregister": "address"}
# Keyword arguments a worker may pass to retire_workers (closing itself gracefully);
# `key` in particular is a pickled function there.
RETIRE_ARGS = frozenset({"workers", "close_workers", "remove", "stimulus_id", "names"})

# Whether every TLS connection of this process is guarded (a queue scheduler's own
# process), or only those made with the TLS contexts of guarded schedulers.
_guard_every_connection = False
_guarded_contexts: "weakref.WeakSet[Any]" = weakref.WeakSet()


def guard_context(ssl_context: Any) -> None:
    """Guard the connections made with this TLS context (a guarded scheduler's listener)."""
    if ssl_context is None:
        raise ValueError("a guarded scheduler needs TLS: it has no TLS context to guard")
    _guarded_contexts.add(ssl_context)


def _untrusted_comm(comm: Any) -> bool:
    """Whether what `comm` reads must be decoded as plain data."""
    if peer_role(comm) == "client":
        return False
    if _guard_every_connection:
        return True
    socket = getattr(getattr(comm, "stream", None), "socket", None)
    context = getattr(socket, "context", None)
    # A connection whose context cannot be told (already closed) is read as untrusted.
    return context is None or context in _guarded_contexts


def install_decode_guard(every_connection: bool = True) -> None:
    """Read non-client TLS connections as plain data, never unpickled (`plain_reads_when`).

    With `every_connection` (a queue scheduler's own process), every TLS
    connection of the process whose peer is not the platform's client is
    guarded.  Without it (the service process, which holds clients of other
    queues too), only the connections made with the TLS contexts registered
    by `guard_context` are.
    """
    global _guard_every_connection
    if every_connection:
        _guard_every_connection = True
    plain_reads_when(_untrusted_comm)


def _call(handler, comm, kwargs):
    params = inspect.signature(handler).parameters
    if params and next(iter(params)) == "comm":
        return handler(comm, **kwargs)
    return handler(**kwargs)


# -- who is calling ------------------------------------------------------------------------


def _host_port(address: str) -> tuple[str, int]:
    host, port = get_address_host_port(address)
    return _ip(host), int(port)


def _ip(host: str) -> str:
    """One spelling per address: IPv4-mapped IPv6 addresses as IPv4."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def _proc_ip(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    # The kernel prints each 32-bit word in host order (little-endian here).
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return _ip(str(ipaddress.ip_address(words)))


def socket_inode(local: tuple[str, int], remote: tuple[str, int]) -> Optional[int]:
    """The inode of the TCP socket of this machine whose ends are `local` and `remote`, if any."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            try:
                (lip, lport), (rip, rport) = (f.split(":") for f in fields[1:3])
                if int(lport, 16) != local[1] or int(rport, 16) != remote[1]:
                    continue
                if _proc_ip(lip) == local[0] and _proc_ip(rip) == remote[0]:
                    return int(fields[9])
            except ValueError:
                continue
    return None


def process_owns_socket(pid: int, inode: int) -> Optional[bool]:
    """Whether process `pid` holds socket `inode`; None when this process may not look."""
    target = f"socket:[{inode}]"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    except PermissionError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except OSError:
            continue
    return False


class WorkerOrigins:
    """Tells whether a connection comes from the worker a request names.

    All the machines of a queue share one worker certificate, so the
    certificate cannot tell them apart.  A worker is known by the connection it
    registered on (its stream): a request from another connection acts for it
    only if it comes from the same host, and, when that host is this machine
    (the socket is in this machine's tables), from the very process that holds
    the worker's stream.  A worker whose stream is not held by the pid it
    reported is acted for by no one.  Two workers of one remote machine are
    told apart by host only: the scheduler cannot see into that machine.
    """

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler
        # worker address -> (stream comm id, host, pid or None, trusted)
        self._origins: dict[str, tuple[int, str, Optional[int], bool]] = {}
        self._allowed: "weakref.WeakKeyDictionary[Any, dict[str, bool]]" = weakref.WeakKeyDictionary()

    def _stream(self, address: str) -> Any:
        batched = self.scheduler.stream_comms.get(address)
        return getattr(batched, "comm", None)

    def origin(self, address: str) -> Optional[tuple[str, Optional[int], bool]]:
        stream = self._stream(address)
        ws = self.scheduler.workers.get(address)
        if stream is None or ws is None:
            return None
        known = self._origins.get(address)
        if known is not None and known[0] == id(stream):
            return known[1:]
        host, port = _host_port(stream.peer_address)
        pid, trusted = None, True
        inode = socket_inode((host, port), _host_port(stream.local_address))
        if inode is not None:  # the worker runs on this machine: find its process
            owns = process_owns_socket(int(ws.pid or 0), inode) if ws.pid else False
            if owns:
                pid = int(ws.pid)
            elif owns is False:
                trusted = False
                log.warning("worker %s reported pid %s, which does not hold its connection", address, ws.pid)
        for gone in [a for a in self._origins if a not in self.scheduler.workers]:
            del self._origins[gone]
        self._origins[address] = (id(stream), host, pid, trusted)
        return host, pid, trusted

    def may_act_for(self, comm: Any, address: str) -> bool:
        """True when `comm` comes from the worker registered at `address`."""
        origin = self.origin(address)
        if origin is None:
            return False
        cache = self._allowed.setdefault(comm, {})
        key = f"{address}|{id(self._stream(address))}"
        if key not in cache:
            cache[key] = self._check(comm, origin)
        return cache[key]

    def _check(self, comm: Any, origin: tuple[str, Optional[int], bool]) -> bool:
        host, pid, trusted = origin
        if not trusted:
            return False
        peer = _host_port(comm.peer_address)
        if peer[0] != host:
            return False
        if pid is None:
            return True
        inode = socket_inode(peer, _host_port(comm.local_address))
        return inode is not None and process_owns_socket(pid, inode) is True

    def own_workers(self, comm: Any) -> list[str]:
        return [address for address in list(self.scheduler.workers) if self.may_act_for(comm, address)]


def _address_of(scheduler: Any, value: Any) -> Optional[str]:
    """The registered worker a request names (by address or name), or None."""
    try:
        address = scheduler.coerce_address(value, resolve=False)
    except Exception:  # noqa: BLE001 - not an address at all
        return None
    return address if address in scheduler.workers else None


def _scope(scheduler: Any, origins: WorkerOrigins, comm: Any, op: str, kwargs: dict[str, Any]) -> None:
    """Refuse a worker's request that would act on, or tell about, another worker."""
    def refuse(why: str) -> None:
        log.warning("refused %s from worker connection %s: %s", op, comm.peer_address, why)
        raise PermissionError(f"{op}: a worker certificate acts on its own worker only ({why})")

    if op in SELF_OPS:
        named = kwargs.get(SELF_OPS[op])
        address = _address_of(scheduler, named)
        # An address no worker holds is left to the handler (a heartbeat then answers
        # "missing", and the worker registers again).
        if address is not None and not origins.may_act_for(comm, address):
            refuse(f"{named!r} is another worker")
    elif op == "retire_workers":
        if set(kwargs) - RETIRE_ARGS:
            refuse("unexpected arguments")
        targets = kwargs.get("workers")
        names = kwargs.get("names")
        if targets is None and names is None:
            refuse("the workers to retire must be named")
        if names is not None:
            targets = [scheduler.aliases.get(n, scheduler.aliases.get(str(n))) for n in names]
        for target in targets or ():
            address = _address_of(scheduler, target)
            if address is None or not origins.may_act_for(comm, address):
                refuse(f"{target!r} is not this worker")


def _who_has_for(scheduler: Any, origins: WorkerOrigins, comm: Any, keys: Any) -> dict:
    """`who_has` for a worker: only the dependencies of tasks given to that worker."""
    wanted = set()
    for address in origins.own_workers(comm):
        for ts in scheduler.workers[address].processing:
            wanted.update(dep.key for dep in ts.dependencies)
    answer = scheduler.get_who_has(keys=[k for k in (keys or ()) if k in wanted])
    return {**{k: [] for k in (keys or ())}, **answer}


def _identity_for_worker(scheduler: Any) -> dict[str, Any]:
    return {"type": type(scheduler).__name__, "id": str(scheduler.id), "address": scheduler.address}


def guard_handlers(scheduler: Any, worker_ops: frozenset = WORKER_OPS) -> WorkerOrigins:
    """Limit worker-role connections to the operations of a worker (`worker_ops`), on themselves."""
    origins = WorkerOrigins(scheduler)
    for op, handler in list(scheduler.handlers.items()):

        async def guarded(comm, __op=op, __handler=handler, **kwargs):
            role = peer_role(comm)
            if role != "client":
                if __op not in worker_ops:
                    log.warning("refused operation %r from a %s connection %s", __op, role, comm.peer_address)
                    raise PermissionError(f"operation {__op!r} is not allowed for a {role} certificate")
                if __op == "identity":
                    return _identity_for_worker(scheduler)
                if __op == "who_has":
                    return _who_has_for(scheduler, origins, comm, kwargs.get("keys"))
                _scope(scheduler, origins, comm, __op, kwargs)
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
    return origins


def queue_snapshot(dask_scheduler: Any = None, keys: tuple = ()) -> dict[str, Any]:
    """Run on a scheduler by the platform: its workers and the state of the given task keys."""
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


# Bytes of result files the scheduler keeps for results the platform has not
# collected yet (a platform restart collects them from here).
PAYLOAD_MAX_BYTES = 256 * 1024 * 1024
PAYLOAD_DROPPED = ("the queue's scheduler dropped the logs and outputs of this run: the platform did not "
                   "collect them before newer results filled its buffer")


def payload_bytes(event: Any) -> int:
    """Bytes of files carried inline by one logged result event."""
    try:
        files = event[1]["result"]["files"]
    except (TypeError, KeyError, IndexError):
        return 0
    if not isinstance(files, dict):
        return 0
    return sum(len(v) for v in files.values() if isinstance(v, (bytes, bytearray, memoryview)))


def without_payload(event: Any, warning: Optional[str] = None) -> Any:
    """A copy of a result event without its files (the original may still be on its way to a client)."""
    ts, msg = event
    result = dict(msg["result"])
    result["files"] = {}
    if warning:
        result["warnings"] = [*(result.get("warnings") or []), warning]
    return ts, {**msg, "result": result}


class ResultLog(SchedulerPlugin):
    """Keeps the scheduler's log of result events free of file payloads the platform holds.

    Results of organizer queues come back as events carrying their files,
    and the scheduler keeps its last events for a platform that restarts.
    This keeps that log small: the platform says which results it has
    recorded (`compete_collected`, a client-only request) and their files are
    dropped from the log; files of results nobody collected are kept up to
    `max_bytes`, newest first, and older ones lose their files (the result
    itself, scores and status, stays for the platform to collect, with a
    warning that says so).
    """

    name = "compete-result-log"

    def __init__(self, scheduler: Any, max_bytes: int = PAYLOAD_MAX_BYTES):
        self.scheduler = scheduler
        self.max_bytes = max_bytes
        # Keys of logged results the platform said it recorded (pruned to those still logged).
        self.collected_keys: set[str] = set()

    def _events(self) -> Any:
        topics = self.scheduler._broker._topics
        return topics[RESULT_TOPIC].events if RESULT_TOPIC in topics else None

    def log_event(self, topic: str, msg: Any) -> None:
        if topic == RESULT_TOPIC:
            self.bound()

    def bound(self) -> int:
        """Drop the files of the oldest uncollected results past `max_bytes`; returns bytes kept."""
        events = self._events()
        if not events:
            return 0
        kept = 0
        for index in range(len(events) - 1, -1, -1):
            size = payload_bytes(events[index])
            if not size:
                continue
            if kept + size > self.max_bytes and kept:
                events[index] = without_payload(events[index], PAYLOAD_DROPPED)
            else:
                kept += size
        return kept

    def collected(self, keys: Any = ()) -> int:
        """The platform recorded the results of these task keys: drop their files; returns events changed."""
        wanted = {k for k in (keys or ()) if isinstance(k, str)}
        self.collected_keys |= wanted
        events = self._events()
        changed = 0
        for index in range(len(events or ())):
            event = events[index]
            try:
                key = event[1].get("key")
            except (AttributeError, IndexError, TypeError):
                continue
            if key in wanted and payload_bytes(event):
                events[index] = without_payload(event)
                changed += 1
        return changed


    def uncollected(self) -> int:
        """Logged results no platform said it recorded (a platform that comes back collects them)."""
        logged = set()
        for event in self._events() or ():
            try:
                key = event[1].get("key")
            except (AttributeError, IndexError, TypeError):
                continue
            if isinstance(key, str):
                logged.add(key)
        self.collected_keys &= logged
        return len(logged - self.collected_keys)


def install_result_log(scheduler: Any, max_bytes: int = PAYLOAD_MAX_BYTES) -> ResultLog:
    """Add the result log's bound and its `compete_collected` request to a scheduler."""
    plugin = ResultLog(scheduler, max_bytes)
    scheduler.add_plugin(plugin, name=ResultLog.name, idempotent=True)
    scheduler.handlers["compete_collected"] = plugin.collected
    return plugin


def scheduler_config() -> dict[str, Any]:
    """Dask settings of every queue scheduler."""
    return {
        # A task whose worker dies is retried once elsewhere, then fails (KilledWorker).
        "distributed.scheduler.allowed-failures": 1,
        # A worker silent for this long is removed and its tasks rescheduled.
        "distributed.scheduler.worker-ttl": "20s",
        # Results and status arrive as events (per topic); the last ones stay for a platform
        # restart to collect.  Their files are bounded apart (`ResultLog`).
        "distributed.admin.low-level-log-length": 2000,
        # No web routes: the dashboard would serve the queue's state to anyone.
        "distributed.scheduler.http.routes": [],
        # Waiting tasks are kept on the scheduler, so positions are the platform's to show.
        "distributed.scheduler.worker-saturation": 1.0,
    }


class GuardedScheduler(Scheduler):
    """A Dask scheduler on TLS with the guard of queue schedulers in place before it listens.

    A connection whose certificate is not the platform's client certificate
    gets `worker_ops` only, each acting on its own worker (`guard_handlers`),
    and what it sends is read as plain data (`install_decode_guard`); the log
    of result events is bounded (`ResultLog`).  Each organizer queue's
    scheduler process runs one, and so does the default queue's process.  It
    refuses to listen on anything but TLS.
    """

    def __init__(self, *args: Any, worker_ops: frozenset = WORKER_OPS,
                 payload_max_bytes: int = PAYLOAD_MAX_BYTES, **kwargs: Any):
        install_decode_guard(every_connection=False)
        super().__init__(*args, **kwargs)
        install_result_log(self, payload_max_bytes)
        self.compete_origins = guard_handlers(self, worker_ops)

    async def listen(self, port_or_addr: Any = None, allow_offload: bool = True, **kwargs: Any) -> None:
        if not (isinstance(port_or_addr, str) and port_or_addr.startswith("tls://")):
            raise ValueError(f"a guarded scheduler listens on TLS only, not on {port_or_addr!r}")
        guard_context(kwargs.get("ssl_context"))
        await super().listen(port_or_addr, allow_offload=allow_offload, **kwargs)


async def serve(queue_dir: Path) -> None:
    settings = json.loads((queue_dir / "scheduler.json").read_text())
    security = Security(
        tls_ca_file=str(queue_dir / "ca.pem"),
        tls_scheduler_cert=str(queue_dir / "scheduler.pem"),
        tls_scheduler_key=str(queue_dir / "scheduler.key"),
        require_encryption=True,
    )
    # This process is the queue's scheduler only: every connection it reads is guarded.
    install_decode_guard(every_connection=True)
    with dask.config.set(scheduler_config()):
        scheduler = GuardedScheduler(
            host=settings["listen_host"],
            port=int(settings["port"]),
            protocol="tls",
            security=security,
            dashboard=False,
            dashboard_address="127.0.0.1:0",
            validate=False,
            payload_max_bytes=int(settings.get("payload_max_bytes") or PAYLOAD_MAX_BYTES),
        )
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
    watch_owner()  # started by a hub's service: SIGTERM once that hub is gone
    asyncio.run(serve(args.queue_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
