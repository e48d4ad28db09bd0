"""`compete worker`: attach this machine to an organizer's queue.

The credentials file (downloaded from the platform, one per queue) holds the
queue's scheduler address, its CA and the worker certificate.  The worker
runs the platform's plugin, which removes containers left behind by a worker
of this machine that died, and kills this worker's runs when it stops.  When
the scheduler goes away (restarted by the platform), the worker comes back as
soon as it answers again; it stops only on SIGINT or SIGTERM.

The worker serves its queue's scheduler only.  Every machine of a queue holds
the same worker certificate, so a TLS handshake with the queue's CA says
nothing about who is calling: the role in the peer's certificate
(`dask_workers.queue_guard`) does.  Requests and stream messages from any peer other
than the scheduler are refused (`guard_worker`), whatever the operation --
`run`, `get_data`, `terminate`, `plugin-add`, ... -- and what such a peer
sends is decoded as plain data, never unpickled (`install_decode_guard`).
Worker-to-worker transfers are refused with the rest: a submission job
has no dependencies, so the scheduler never sends a worker to fetch from a
peer.  A job carries only its description: the worker fetches each dataset
over HTTPS from the link the job gives for it (the platform's per-run link,
at the platform's public URL, or an object store's presigned URL) into its
dataset cache, capped by the machine's `c.Compete.dataset_cache_mb` when set
(`data_cache`).

The worker holds nothing of the environment of whoever starts it: when
that environment has names that look like secrets (a hub token, a database
URL, ...), `compete worker` executes itself again, same arguments, with the
allow-listed environment of the platform's processes
(`dask_workers.environment.process_environment`).

Worker side: this module imports the worker's own modules, distributed and
the standard library, never a module of the platform's server.
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from distributed import Worker
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.security import Security

from . import submission_job
from .environment import SECRET_NAME, process_environment
from .queue_guard import peer_role, plain_reads_when

log = logging.getLogger("compete.worker")

CREDENTIALS_FORMAT = "jupyter-compete-worker-credentials/1"
RETRY_SECONDS = 2.0
# How long one attempt waits for the scheduler before saying so and trying again.
ATTACH_TIMEOUT = 20.0
# The only role, in a peer's certificate, that a worker serves.
TRUSTED_ROLE = "scheduler"
# Set in the environment of a `compete worker` executed again with a clean
# environment, which never executes itself again.
REEXEC_MARKER = "COMPETE_WORKER_CLEAN_ENVIRONMENT"


class CredentialsError(ValueError):
    pass


def load_credentials(path: str | Path) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CredentialsError(f"{path}: no such file; download the credentials of your queue first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"{path}: not a credentials file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != CREDENTIALS_FORMAT:
        raise CredentialsError(f"{path}: not a jupyter-compete worker credentials file (format {CREDENTIALS_FORMAT})")
    missing = [k for k in ("queue", "scheduler", "ca", "cert", "key") if not isinstance(data.get(k), str)]
    if missing:
        raise CredentialsError(f"{path}: missing {', '.join(missing)}; download the credentials again")
    return data


class CompetePlugin(WorkerPlugin):
    """Keeps a worker's machine clean: orphans removed at start, own runs killed at stop."""

    name = "jupyter-compete"

    def __init__(self, executor: Optional[str] = None, executor_config: Optional[dict[str, Any]] = None,
                 dataset_cache_mb: Optional[int] = None):
        self.executor = executor
        self.executor_config = dict(executor_config or {})
        self.dataset_cache_mb = dataset_cache_mb

    def setup(self, worker: Any) -> None:
        submission_job.executor_override = self.executor
        submission_job.worker_executor_config = self.executor_config
        submission_job.worker_cache_mb = self.dataset_cache_mb
        removed = submission_job.cleanup_orphans()
        if removed:
            log.warning("removed %d containers left by a worker of this machine that died", removed)

    def teardown(self, worker: Any) -> None:
        for sid in submission_job.running_submissions():
            submission_job.cancel_on_worker(sid)


def _security(credentials: dict[str, str]) -> Security:
    return Security(
        tls_ca_file=credentials["ca"],
        tls_worker_cert=credentials["cert"],
        tls_worker_key=credentials["key"],
        require_encryption=True,
    )


# -- the scheduler only ------------------------------------------------------------------


_stream_role: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("compete_worker_stream_role",
                                                                             default=None)


def _not_the_scheduler(comm: Any) -> bool:
    return peer_role(comm) != TRUSTED_ROLE


def install_decode_guard() -> None:
    """Read what any peer but the scheduler sends to this process as plain data, never unpickled.

    Dask unpickles parts of a message as it reads it, before any handler
    sees it (the connection handshake included), so refusing the operation
    afterwards would come too late.
    """
    plain_reads_when(_not_the_scheduler)


def _refusal(op: str, role: Optional[str], peer: str) -> PermissionError:
    log.warning("refused %r from a %s connection %s: a worker serves its queue's scheduler only", op,
                role or "certificate-less", peer)
    return PermissionError(f"operation {op!r} is refused: this worker serves its queue's scheduler only, "
                           f"not a {role or 'certificate-less'} connection")


def _guarded_handler(op: str, handler: Any) -> Any:
    """`handler`, answering requests that come from the scheduler's certificate only."""
    params = list(inspect.signature(handler).parameters)
    wants_comm = bool(params) and params[0] == "comm"

    async def guarded(comm, **kwargs):
        role = peer_role(comm)
        if role != TRUSTED_ROLE:
            raise _refusal(op, role, getattr(comm, "peer_address", "?"))
        result = handler(comm, **kwargs) if wants_comm else handler(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    if "serializers" in params:
        # Dask passes `serializers` only to handlers that name it (`get_data`).
        async def guarded_with_serializers(comm, serializers=None, **kwargs):
            return await guarded(comm, serializers=serializers, **kwargs)

        return guarded_with_serializers
    return guarded


def _guarded_stream_handler(op: str, handler: Any) -> Any:
    """`handler`, run for messages of the scheduler's stream only."""
    def allowed() -> bool:
        role = _stream_role.get()
        if role == TRUSTED_ROLE:
            return True
        _refusal(op, role, "(stream)")
        return False

    if inspect.iscoroutinefunction(handler):
        async def guarded_async(**kwargs):
            if allowed():
                return await handler(**kwargs)
            return None

        return guarded_async

    def guarded(**kwargs):
        if allowed():
            return handler(**kwargs)
        return None

    return guarded


class SchedulerOnlyHandlers(dict):
    """A worker's request handlers, each answering the scheduler only.

    Guarded when looked up, so handlers that extensions add after the
    worker has started are guarded too.
    """

    def __getitem__(self, op: str) -> Any:
        return _guarded_handler(op, dict.__getitem__(self, op))


class SchedulerOnlyStreamHandlers(dict):
    """A worker's stream handlers, each run for the scheduler's stream only."""

    def __getitem__(self, op: str) -> Any:
        return _guarded_stream_handler(op, dict.__getitem__(self, op))


def guard_worker(worker: Any) -> Any:
    """Make `worker` serve its queue's scheduler only; call before the worker starts.

    Requests (`run`, `run_coroutine`, `get_data`, `update_data`, `terminate`,
    `plugin-add`, `connection_stream`, ... and any added later) are answered
    only on connections presenting the scheduler's certificate; stream
    messages (`compute-task`, `free-keys`, `steal-request`, ...) are handled
    only on a stream whose peer presents it -- the worker's own stream to its
    scheduler.  Everything else gets a `PermissionError`.
    """
    install_decode_guard()
    original_handle_stream = worker.handle_stream

    async def handle_stream(comm, extra=None):
        token = _stream_role.set(peer_role(comm))
        try:
            return await original_handle_stream(comm, extra)
        finally:
            _stream_role.reset(token)

    # The worker's stream to its scheduler goes through `self.handle_stream`, a stream
    # another peer opens through the `connection_stream` request.
    worker.handle_stream = handle_stream
    handlers = dict(worker.handlers)
    handlers["connection_stream"] = handle_stream
    worker.handlers = SchedulerOnlyHandlers(handlers)
    worker.stream_handlers = SchedulerOnlyStreamHandlers(worker.stream_handlers)
    return worker


# -- a clean environment -------------------------------------------------------------------


def secret_names(environ: Optional[dict[str, str]] = None) -> list[str]:
    """Names of `environ` (default: this process's) that look like secrets."""
    environ = os.environ if environ is None else environ
    return sorted(name for name in environ if SECRET_NAME.search(name) and name != REEXEC_MARKER)


def reexec_clean() -> None:
    """Execute this `compete worker` again, same arguments, without its starter's secrets.

    Returns when the environment holds no name that looks like a secret.
    Executed once at most: the new process carries `REEXEC_MARKER`, and a
    process that has it and still sees secret names refuses to start rather
    than run with them or execute itself again.
    """
    names = secret_names()
    if not names:
        return
    if os.environ.get(REEXEC_MARKER):
        raise RuntimeError(
            f"the environment still holds {', '.join(names)} after restarting with a clean one; "
            "start `compete worker` without them")
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    if not sys.executable or not argv:
        raise RuntimeError("cannot restart `compete worker` with a clean environment: unknown interpreter; "
                               f"start it without {', '.join(names)}")
    env = process_environment({REEXEC_MARKER: "1"})
    print(f"compete worker: restarting without the starter's {', '.join(names)}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)



async def attach(
    credentials: dict[str, str],
    *,
    name: Optional[str] = None,
    nthreads: int = 1,
    gpus: int = 0,
    executor: Optional[str] = None,
    executor_config: Optional[dict[str, Any]] = None,
    local_directory: Optional[str] = None,
    listen_host: Optional[str] = None,
    once: bool = False,
    dataset_cache_mb: Optional[int] = None,
) -> int:
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    resources = {"GPU": float(gpus)} if gpus else None
    local_directory = local_directory or str(Path(tempfile.gettempdir()) / "jupyter-compete-worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    security = _security(credentials)
    announced = False
    while not stop.is_set():
        worker = None
        try:
            worker = Worker(
                credentials["scheduler"],
                security=security,
                nthreads=nthreads,
                name=name,
                resources=resources,
                plugins={CompetePlugin(executor, executor_config, dataset_cache_mb)},
                local_directory=local_directory,
                host=listen_host,
                protocol="tls",
                dashboard=False,
                validate=False,
                death_timeout=ATTACH_TIMEOUT,
            )
            guard_worker(worker)
            await worker
            print(f"worker {name}: attached to queue {credentials['queue']} at {credentials['scheduler']} "
                  f"({nthreads} thread(s), {gpus} GPU(s))", flush=True)
            announced = True
            finished = asyncio.ensure_future(worker.finished())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                stopping.cancel()
                await worker.close(reason="compete worker stopped")
                break
            print(f"worker {name}: lost the scheduler; reconnecting", flush=True)
        except Exception as exc:  # noqa: BLE001 - the scheduler may be restarting: try again
            if worker is not None:
                try:
                    await worker.close(reason="could not attach")
                except Exception:  # noqa: BLE001
                    pass
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "name taken" in message or "already" in message and "name" in message:
                print(f"worker {name}: another worker of this queue has this name; choose another --name", flush=True)
                return 2
            print(f"worker {name}: cannot attach to {credentials['scheduler']} ({message}); retrying", flush=True)
        if once and announced:
            break
        try:
            await asyncio.wait_for(stop.wait(), timeout=RETRY_SECONDS)
        except asyncio.TimeoutError:
            pass
    return 0


def main(credentials_path: str, **options: Any) -> int:
    reexec_clean()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    credentials = load_credentials(credentials_path)
    return asyncio.run(attach(credentials, **options))
