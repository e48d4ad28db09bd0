"""`compete worker`: attach this machine to an organizer's queue.

The credentials file (downloaded from the platform, one per queue) holds the
queue's scheduler address, its CA and the worker certificate.  The worker
runs the platform's plugin, which removes containers left behind by a worker
of this machine that died, and kills this worker's runs when it stops.  When
the scheduler goes away (restarted by the platform), the worker comes back as
soon as it answers again; it stops only on SIGINT or SIGTERM.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any, Optional

from distributed.diagnostics.plugin import WorkerPlugin

from . import submission_job

log = logging.getLogger("compete.worker")

CREDENTIALS_FORMAT = "jupyter-compete-worker-credentials/1"
RETRY_SECONDS = 2.0
# How long one attempt waits for the scheduler before saying so and trying again.
ATTACH_TIMEOUT = 20.0


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

    def __init__(self, executor: Optional[str] = None):
        self.executor = executor

    def setup(self, worker: Any) -> None:
        submission_job.executor_override = self.executor
        removed = submission_job.cleanup_orphans()
        if removed:
            log.warning("removed %d containers left by a worker of this machine that died", removed)

    def teardown(self, worker: Any) -> None:
        for sid in submission_job.running_submissions():
            submission_job.cancel_on_worker(sid)


def _security(credentials: dict[str, str]):
    from distributed.security import Security

    return Security(
        tls_ca_file=credentials["ca"],
        tls_worker_cert=credentials["cert"],
        tls_worker_key=credentials["key"],
        require_encryption=True,
    )


async def attach(
    credentials: dict[str, str],
    *,
    name: Optional[str] = None,
    nthreads: int = 1,
    gpus: int = 0,
    executor: Optional[str] = None,
    local_directory: Optional[str] = None,
    listen_host: Optional[str] = None,
    once: bool = False,
) -> int:
    from distributed import Worker

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
                plugins={CompetePlugin(executor)},
                local_directory=local_directory,
                host=listen_host,
                protocol="tls",
                dashboard=False,
                validate=False,
                death_timeout=ATTACH_TIMEOUT,
            )
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
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    credentials = load_credentials(credentials_path)
    return asyncio.run(attach(credentials, **options))
