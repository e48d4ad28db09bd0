"""Queue backends: the Dask queues the dispatcher sends runs to, behind one interface.

A `QueueBackend` is one queue as the dispatcher sees it: it starts what the
queue needs on the platform's side (`start`), gives the address and TLS
security of its scheduler, opens the platform's Dask client (`connect`),
sends a job (`prepare`, `submit`), says what the scheduler knows of the
platform's keys (`snapshot`), cancels a run on its workers, and closes.  The
dispatcher (`hub_extension.dispatch`) keeps the record and reconciles every
queue through this interface only.

Two implementations:

- `DefaultQueue`, the platform's own queue (`c.Dispatcher.default_queue_class`
  picks another): a scheduler in this process (`SpecCluster` with the
  queue schedulers' guard, `GuardedScheduler`) on TLS with a CA made when
  the dispatcher starts (`DefaultQueueTLS`), and worker processes of its own
  (`DefaultWorkers`) executed with `process_environment()`, so that they
  hold no platform secret; or any scheduler given by address
  (`c.DefaultQueue.scheduler_address`).  Its workers share the platform's
  store.
- `OrganizerQueue`, a queue an organizer created (`hub_extension.queues`): a
  scheduler of its own found by address, started by the dispatcher's
  `SchedulerSupervisor` when it is down; datasets travel with each job and
  results come back inline.

The default queue's certificates: the CA signs one certificate per role (the
scheduler in this process, the dispatcher's client, the worker processes)
and its key is dropped at once.  Only the dispatcher's client certificate
gets the full protocol; the workers' certificate gets the operations of a
worker on itself, and what it sends is read as plain data.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from dask_workers.environment import process_environment

from . import tls
from .app import PlatformError
from .contract import DEFAULT_QUEUE, RESULT_TOPIC, STATUS_TOPIC, Job
from .queue_scheduler import WORKER_OPS, GuardedScheduler, queue_snapshot, scheduler_config
from .queues import SchedulerSupervisor, client_security

if TYPE_CHECKING:
    from .dispatch import Dispatcher

log = logging.getLogger("compete.dispatch")

# The default queue's workers run under a nanny, which registers with the scheduler.
DEFAULT_WORKER_OPS = WORKER_OPS | {"register_nanny"}
TLS_FOLDER_PREFIX = "tls-"


class _QuietSnapshots(logging.Filter):
    """Drops Dask's note of every `queue_snapshot` the dispatcher runs (one per queue every tick)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "queue_snapshot" not in record.getMessage()


logging.getLogger("distributed.worker").addFilter(_QuietSnapshots())


class QueueBackend(LoggingConfigurable):
    """One Dask queue, as the dispatcher reaches it.

    A subclass gives `address()` and `security()` of the queue's scheduler,
    and may start and stop what the queue needs (`start`, `stop`), change a
    job before it is sent (`prepare`: where its data comes from) and wait
    for the queue to be ready after its first connection (`ready`).  The
    client, the following of futures, the events workers send, snapshots
    and cancellation are the same for every queue and live here.  Options of
    a backend are traits (`c.<BackendClass>.<trait>`); the dispatcher's
    timings are the dispatcher's own (`c.Dispatcher.*`).
    """

    def __init__(self, dispatcher: "Dispatcher", name: str, **kwargs: Any):
        super().__init__(parent=dispatcher, **kwargs)
        self.dispatcher = dispatcher
        self.platform = dispatcher.platform
        self.name = name
        self.client: Any = None
        self.futures: dict[str, Any] = {}
        self.finished: dict[str, float] = {}

    # -- what a queue says about itself -----------------------------------------------------
    def address(self) -> str:
        """The scheduler's address, starting the scheduler when this backend runs it and it is down."""
        raise NotImplementedError

    def security(self) -> Any:
        """Dask security of the platform's client of this queue (None: plain TCP)."""
        return None

    def start(self) -> None:
        """Start what the queue needs on the platform's side (called once, before the first connection)."""

    def ready(self) -> None:
        """Wait, after the first connection, until the queue can run jobs."""

    def stop(self) -> None:
        """Stop what `start` started."""

    def prepare(self, job: Job) -> tuple[Job, Optional[dict[str, bytes]]]:
        """The job as this queue's workers get it, and the datasets sent with it (None: they read the store)."""
        return job, None

    # -- the connection -----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.client is not None and self.client.status == "running"

    def connect(self) -> None:
        """Open the platform's client of the queue (raises when the scheduler cannot be reached)."""
        # Imported here: distributed is slow to import, and only a process that dispatches needs it.
        from distributed import Client

        self.disconnect()
        self.futures, self.finished = {}, {}
        client = Client(
            self.address(), security=self.security(), timeout=self.dispatcher.connect_timeout,
            set_as_default=False, direct_to_workers=False,
        )
        self.client = client
        client.subscribe_topic(STATUS_TOPIC, lambda event: self.dispatcher._on_status(self, event))
        client.subscribe_topic(RESULT_TOPIC, lambda event: self.dispatcher._on_result(self, event))
        self.replay()

    def disconnect(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a dead link must not fail
            log.debug("closing the link of queue %s", self.name, exc_info=True)

    def close(self) -> None:
        self.disconnect()
        self.stop()

    # -- events and the scheduler's knowledge ------------------------------------------------
    def replay(self) -> None:
        """Collect results reported while this platform was not listening (kept by the scheduler)."""
        for event in self.client.get_events(RESULT_TOPIC):
            self.dispatcher._on_result(self, event)

    def collected(self, key: str) -> None:
        """Tell the scheduler this result is recorded: it drops the files it kept for it.

        Safe from any thread; a scheduler without the request (a default queue
        given by address) keeps its log as Dask does.
        """
        client = self.client

        async def send() -> None:
            try:
                await client.scheduler.compete_collected(keys=[key])
            except Exception as exc:  # noqa: BLE001 - the bound on the scheduler still holds
                log.debug("queue %s: could not drop the payload of %s: %s", self.name, key, exc)

        if self.alive:
            client.loop.add_callback(send)

    def snapshot(self, keys: list[str]) -> dict[str, Any]:
        """What the scheduler knows: `workers` (as the queue pages show them) and `tasks` by key."""
        return self.client.run_on_scheduler(queue_snapshot, keys=tuple(keys))

    # -- runs ------------------------------------------------------------------------------------
    def submit(self, sid: int, key: str, job: dict[str, Any], data: Optional[dict[str, bytes]],
               resources: Optional[dict[str, float]]) -> None:
        """Send the job (its wire form) under `key`; the run goes on even if this platform goes away."""
        # Imported here: distributed is slow to import, and only a process that dispatches needs it.
        from distributed import fire_and_forget

        # The worker's entry point, sent by reference; the worker side reaches only the contract.
        from dask_workers.submission_job import run_submission_job

        future = self.client.submit(
            run_submission_job, job, data, key=key, pure=False, resources=resources or None,
        )
        # Its result waits on the scheduler until the platform collects it.
        fire_and_forget(future)
        self.follow(sid, key, future)

    def adopt(self, sid: int, key: str) -> None:
        """Follow a run this process did not send (sent before a restart of the platform)."""
        # Imported here: distributed is slow to import, and only a process that dispatches needs it.
        from distributed import Future

        self.follow(sid, key, Future(key, client=self.client))

    def follow(self, sid: int, key: str, future: Any) -> None:
        self.futures[key] = future
        future.add_done_callback(lambda fut: self.dispatcher._on_done(self, sid, key, fut))

    def cancel(self, sid: int, key: Optional[str]) -> None:
        """Kill the run's steps on every worker of the queue, and drop its future."""
        # The worker-side function, sent by reference to run on every worker.
        from dask_workers.submission_job import cancel_on_worker

        if not self.alive or not key:
            return
        try:
            self.client.run(cancel_on_worker, sid)
        except Exception:  # noqa: BLE001
            log.exception("could not reach the workers to cancel %s", sid)
        future = self.futures.get(key)
        if future is not None:
            future.cancel(force=True)


# -- the default queue ------------------------------------------------------------------------
class DefaultQueueTLS:
    """The TLS material of the default queue: a CA of its own, made when the dispatcher starts.

    The CA signs one certificate per role (the scheduler in this process, the
    dispatcher's client, the worker processes) and its key is dropped at
    once.  The files live in a folder of their own, 0700, under the platform
    home, removed at close; the folder of a dispatcher that was killed is
    removed by the next one.  The workers get their files as arguments, never
    in their environment.
    """

    def __init__(self, parent: Path):
        parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale(parent)
        self.folder = parent / f"{TLS_FOLDER_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self.files = tls.write_ephemeral(self.folder, DEFAULT_QUEUE, hosts=("127.0.0.1", "localhost"))

    @staticmethod
    def _remove_stale(parent: Path) -> None:
        for folder in parent.glob(f"{TLS_FOLDER_PREFIX}*-*"):
            try:
                pid = int(folder.name[len(TLS_FOLDER_PREFIX):].split("-", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or not folder.is_dir() or folder.is_symlink():
                continue
            try:
                os.kill(pid, 0)
                continue  # its dispatcher still runs
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            shutil.rmtree(folder, ignore_errors=True)

    def security(self, role: str) -> Any:
        """Dask security of `role` (`scheduler` or `client`) of the default queue."""
        # Imported here: distributed is slow to import, and only a process that dispatches needs it.
        from distributed.security import Security

        files = self.files[role]
        return Security(
            tls_ca_file=str(files.ca),
            **{f"tls_{role}_cert": str(files.cert), f"tls_{role}_key": str(files.key)},
            require_encryption=True,
        )

    def worker_arguments(self) -> list[str]:
        """`dask worker` options giving a worker process its certificate."""
        files = self.files["worker"]
        return ["--tls-ca-file", str(files.ca), "--tls-cert", str(files.cert), "--tls-key", str(files.key)]

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class DefaultWorkers:
    """The worker processes of the default queue: `dask worker` executed with a clean environment.

    Each is a nanny process (which restarts its worker when it dies) started
    with `process_environment()`; the worker it spawns inherits that
    environment.  They stop with the dispatcher, or on their own when the
    scheduler has been gone for `death_timeout` seconds (the service was
    killed).
    """

    def __init__(self, scheduler_address: str, count: int, threads: int, folder: Path,
                 death_timeout: float = 60.0, tls_arguments: Optional[list[str]] = None):
        # Imported here: distributed is slow to import, and only a process that dispatches needs it.
        from distributed.system import MEMORY_LIMIT

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen] = []
        for index in range(count):
            log_file = open(folder / f"worker-{index}.log", "ab")
            try:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "distributed.cli.dask_worker", scheduler_address,
                     "--name", f"default-{index}", "--nworkers", "1", "--nthreads", str(threads),
                     "--memory-limit", str(int(MEMORY_LIMIT / max(1, count))),
                     "--local-directory", str(folder / f"worker-{index}"), "--no-dashboard",
                     "--death-timeout", str(death_timeout), *(tls_arguments or [])],
                    env=process_environment(), stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT, cwd=str(folder),
                ))
            finally:
                log_file.close()

    def check(self) -> None:
        """Fail loudly when a nanny process exited (its log tells why)."""
        for index, proc in enumerate(self.processes):
            if proc.poll() is not None:
                tail = (self.folder / f"worker-{index}.log").read_text(errors="replace")[-2000:]
                raise PlatformError(f"worker process {index} of the default queue exited ({proc.returncode}):\n{tail}")

    def close(self, grace: float = 15.0) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class DefaultQueue(QueueBackend):
    """The platform's own queue: a guarded TLS scheduler in this process and worker processes of its own.

    With `scheduler_address` set, the queue is that scheduler instead, and
    this backend starts nothing.  Its workers share the platform's store.
    """

    scheduler_address = Unicode(
        "", help="Address of a Dask scheduler to use as the default queue. Empty: a scheduler started in the "
                 "platform's process, with `c.Compete.default_queue_workers` worker processes of its own.",
    ).tag(config=True)

    n_workers = Integer(
        None, allow_none=True, help="Worker processes of the default queue. None: `c.Compete.default_queue_workers`.",
    ).tag(config=True)

    threads_per_worker = Integer(
        None, allow_none=True,
        help="Runs at a time per worker process of the default queue. None: `c.Compete.default_queue_threads`.",
    ).tag(config=True)

    start_timeout = Float(
        120.0, help="Seconds the default queue's worker processes have to register with its scheduler.",
    ).tag(config=True)

    death_timeout = Float(
        60.0, help="Seconds a worker process of the default queue lives on once its scheduler is gone "
                   "(the service was killed).",
    ).tag(config=True)

    def __init__(self, dispatcher: "Dispatcher", name: str = DEFAULT_QUEUE, **kwargs: Any):
        super().__init__(dispatcher, name, **kwargs)
        self.cluster: Any = None
        self.workers: Optional[DefaultWorkers] = None
        self.tls: Optional[DefaultQueueTLS] = None
        self._security: Any = None
        self._address = self.scheduler_address or None

    def start(self) -> None:
        if self._address is not None:
            return
        # Imported here: dask and distributed are slow to import, and only a process that dispatches needs them.
        import dask
        from distributed import SpecCluster  # distributed is slow to import

        config = self.platform.config
        folder = Path(config.home) / "default-queue"
        self.tls = DefaultQueueTLS(folder)
        self._security = self.tls.security("client")
        try:
            # The scheduler only, in this process, guarded before it listens; the workers
            # are processes of their own that inherit nothing secret from it.
            with dask.config.set(scheduler_config()):
                self.cluster = SpecCluster(
                    workers={},
                    scheduler={"cls": GuardedScheduler, "options": {
                        "host": "127.0.0.1", "port": 0, "protocol": "tls",
                        "security": self.tls.security("scheduler"),
                        "dashboard": False, "dashboard_address": "127.0.0.1:0", "validate": False,
                        "worker_ops": DEFAULT_WORKER_OPS,
                    }},
                    security=self._security, silence_logs=logging.ERROR, name="default queue",
                )
            self._address = self.cluster.scheduler_address
            self.workers = DefaultWorkers(
                self._address, self.n_workers or config.default_queue_workers,
                self.threads_per_worker or config.default_queue_threads, folder,
                death_timeout=self.death_timeout, tls_arguments=self.tls.worker_arguments(),
            )
        except BaseException:
            self.stop()
            raise

    def ready(self) -> None:
        if self.workers is None or not self.alive:
            return
        count = len(self.workers.processes)
        deadline = time.monotonic() + self.start_timeout
        while len(self.client.scheduler_info(n_workers=-1)["workers"]) < count:
            self.workers.check()
            if time.monotonic() > deadline:
                raise PlatformError(f"the default queue's {count} worker process(es) did not start within "
                                    f"{self.start_timeout:.0f} s; see {self.workers.folder}")
            time.sleep(0.1)

    def address(self) -> str:
        if self._address is None:
            raise PlatformError("the default queue has not started")
        return self._address

    def security(self) -> Any:
        return self._security

    def stop(self) -> None:
        if self.workers is not None:
            self.workers.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.tls is not None:
            self.tls.remove()


# -- organizer queues ---------------------------------------------------------------------------
class OrganizerQueue(QueueBackend):
    """A queue an organizer created: its own scheduler, found by address, started when it is down.

    Its workers run on other machines: datasets travel with the job (up to
    `c.Compete.queue_inline_data_max_bytes`), and results come back inline.
    """

    def address(self) -> str:
        if self.name not in self.platform.queue_names():
            raise PlatformError(
                f"queue {self.name!r} does not exist: an organizer must create it (compete queue create {self.name})"
            )
        supervisor = self.dispatcher.supervisor
        if supervisor is not None:
            return supervisor.ensure(self.name)
        return SchedulerSupervisor(self.platform).address(self.name)

    def security(self) -> Any:
        return client_security(self.platform, self.name)

    def prepare(self, job: Job) -> tuple[Job, Optional[dict[str, bytes]]]:
        """The job without the store's root, and the stored archives it needs, as bytes."""
        store = self.platform.store
        cap = self.platform.config.queue_inline_data_max_bytes
        data: dict[str, bytes] = {}
        total = 0
        for key in job.data_keys():
            path = store.dataset_path(key)
            total += path.stat().st_size
            if total > cap:
                raise PlatformError(
                    f"the data of this run is over {cap} bytes, too much to send "
                    "with each run: keep large data on the queue's workers (a task's worker_data) or raise "
                    "c.Compete.queue_inline_data_max_bytes"
                )
            data[key] = path.read_bytes()
        return job.with_changes(store_root=None), data
