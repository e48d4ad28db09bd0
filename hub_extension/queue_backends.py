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
  picks another): a process of its own (`hub_extension.default_queue`: a
  guarded TLS scheduler and worker processes executed with
  `process_environment()`, so that they hold no platform secret), started
  detached when none runs and found by every dispatcher from the database;
  or any scheduler given by address (`c.DefaultQueue.scheduler_address`).
  Its workers share the platform's store.
- `OrganizerQueue`, a queue an organizer created (`hub_extension.queues`): a
  scheduler of its own found by address, started by the dispatcher's
  `SchedulerSupervisor` when it is down; results come back inline.

Where workers do not see the store's folder (organizer queues; every queue
with an object store), a job names its datasets by key and carries a URL
for each (`by_reference`): the store's own presigned URL, or the service's
per-run link at `c.Compete.public_url` (`hub_extension.data_links`).  The
scheduler then holds only the job's small description.  Only an organizer
queue of a platform with a local store and no `public_url` still sends the
datasets inline with each run.

The default queue's certificates: a CA made for each start of its process
signs one certificate per role (its scheduler, the dispatcher's client, the
worker processes) and its key is dropped at once.  Only the dispatcher's client certificate
gets the full protocol; the workers' certificate gets the operations of a
worker on itself, and what it sends is read as plain data.
"""
from __future__ import annotations

import logging
import socket
import time
from typing import TYPE_CHECKING, Any, Optional

from traitlets import Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .app import PlatformError
from .contract import DEFAULT_QUEUE, RESULT_TOPIC, STATUS_TOPIC, Job
from .data_links import service_links
from .default_queue import DefaultQueueProcess
from .queue_scheduler import queue_snapshot
from .queues import SchedulerSupervisor, client_security

if TYPE_CHECKING:
    from .dispatch import Dispatcher

log = logging.getLogger("compete.dispatch")



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
        # The Dask id of the scheduler the client is connected to: recorded with each run sent.
        self.scheduler_id: Optional[str] = None
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

    def shutdown(self) -> None:
        """Stop the queue itself when the platform runs it (the dispatcher holding the lease closes, idle)."""

    def ready(self) -> None:
        """Wait, after the first connection, until the queue can run jobs."""

    def stop(self) -> None:
        """Stop what `start` started."""

    def prepare(self, job: Job) -> tuple[Job, Optional[dict[str, bytes]]]:
        """The job as this queue's workers get it, and the datasets sent with it (None: they read the store)."""
        return job, None

    def by_reference(self, job: Job) -> Optional[Job]:
        """The job without the store's root, with a URL per dataset; None when there is no URL to give.

        Each key gets the store's own URL when it signs one (an object
        store), else the service's per-run link (which needs
        `c.Compete.public_url`).
        """
        config = self.platform.config
        store = self.platform.store
        urls: dict[str, str] = {}
        for key in job.data_keys():
            url = store.dataset_url(key, expires=config.run_data_link_ttl)
            if url:
                urls[key] = url
        missing = [key for key in job.data_keys() if key not in urls]
        if missing:
            if not config.public_url or not job.key:
                return None
            urls.update(service_links(config.public_url, config.home, job.submission_id, job.key, missing))
        return job.with_changes(store_root=None, data_urls=urls)

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
        address = self.address()
        client = Client(
            address, security=self.security(), timeout=self.dispatcher.connect_timeout,
            set_as_default=False, direct_to_workers=False,
        )
        self.client = client
        self.scheduler_id = client.scheduler_info().get("id")
        self.record_scheduler(address)
        client.subscribe_topic(STATUS_TOPIC, lambda event: self.dispatcher._on_status(self, event))
        client.subscribe_topic(RESULT_TOPIC, lambda event: self.dispatcher._on_result(self, event))
        self.replay()

    def record_scheduler(self, address: str) -> None:
        """Record where this queue's scheduler is (address and Dask id), as pages and the CLI show it."""
        self.platform.record_queue_scheduler(self.name, address=address, id=self.scheduler_id)

    def disconnect(self) -> None:
        client, self.client = self.client, None
        self.scheduler_id = None
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
class DefaultQueue(QueueBackend):
    """The platform's own queue: a process of its own (scheduler and workers), found from the database.

    The dispatcher that holds the lease finds the queue's process where the
    database records it (`hub_extension.default_queue`), or starts one and
    records it; every later holder, in any process, follows the same
    scheduler, so runs outlive the process that sent them.  With
    `scheduler_address` set, the queue is that scheduler instead, and this
    backend starts nothing.  Its workers share the platform's store.
    """

    scheduler_address = Unicode(
        "", help="Address of a Dask scheduler to use as the default queue. Empty: a process of the platform's "
                 "own (a guarded scheduler with `c.Compete.default_queue_workers` worker processes), started "
                 "when none runs and shared by every dispatcher of the database.",
    ).tag(config=True)

    n_workers = Integer(
        None, allow_none=True, help="Worker processes of the default queue. None: `c.Compete.default_queue_workers`.",
    ).tag(config=True)

    threads_per_worker = Integer(
        None, allow_none=True,
        help="Runs at a time per worker process of the default queue. None: `c.Compete.default_queue_threads`.",
    ).tag(config=True)

    listen_host = Unicode(
        "127.0.0.1", help="Address the default queue's scheduler listens on (another machine's dispatcher "
                          "reaches it there when services on several machines share the platform home).",
    ).tag(config=True)

    start_timeout = Float(
        120.0, help="Seconds the default queue's process and its worker processes have to start.",
    ).tag(config=True)

    death_timeout = Float(
        60.0, help="Seconds a worker process of the default queue lives on once its scheduler is gone "
                   "(the queue's process was killed).",
    ).tag(config=True)

    idle_exit = Float(
        300.0, help="Seconds the default queue's process stays up with no dispatcher connected and nothing to "
                    "run or to hand over; then it stops (0: never).",
    ).tag(config=True)

    results_hold = Float(
        3600.0, help="Seconds the default queue's process, with no dispatcher connected, keeps results no "
                     "dispatcher collected, for one that comes back; then it stops.",
    ).tag(config=True)

    def __init__(self, dispatcher: "Dispatcher", name: str = DEFAULT_QUEUE, **kwargs: Any):
        super().__init__(dispatcher, name, **kwargs)
        self.process: Optional[DefaultQueueProcess] = None
        self._started_here = False

    def _settings(self) -> dict[str, Any]:
        config = self.platform.config
        return {"workers": self.n_workers or config.default_queue_workers,
                "threads": self.threads_per_worker or config.default_queue_threads,
                "host": self.listen_host, "death_timeout": self.death_timeout, "idle_exit": self.idle_exit,
                "results_hold": self.results_hold}

    def address(self) -> str:
        if self.scheduler_address:
            return self.scheduler_address
        if self.process is None or not self.process.answers():
            recorded = DefaultQueueProcess.recorded(self.platform)
            before = recorded.id if recorded is not None else None
            self.process = DefaultQueueProcess.find_or_start(self.platform, self._settings(), self.start_timeout)
            self._started_here = self.process.id != before
        return self.process.address

    def prepare(self, job: Job) -> tuple[Job, Optional[dict[str, bytes]]]:
        """Workers of the platform's machine read a local store; an object store's datasets go by reference."""
        if self.platform.store.root is not None:
            return job, None
        by_reference = self.by_reference(job)
        if by_reference is None:
            raise PlatformError("the store gives no URL for the run's datasets")
        return by_reference, None

    def security(self) -> Any:
        return None if self.scheduler_address or self.process is None else self.process.security()

    def ready(self) -> None:
        """After starting the queue's process: wait until its worker processes registered."""
        if not self._started_here or not self.alive:
            return
        self._started_here = False
        count = int(self.process.settings().get("workers") or 1)
        deadline = time.monotonic() + self.start_timeout
        while len(self.client.scheduler_info(n_workers=-1)["workers"]) < count:
            if not self.process.answers():
                tail = (self.process.folder / "scheduler.log").read_text(errors="replace")[-2000:]
                raise PlatformError(f"the default queue's process stopped while its workers started:\n{tail}")
            if time.monotonic() > deadline:
                raise PlatformError(f"the default queue's {count} worker process(es) did not start within "
                                    f"{self.start_timeout:.0f} s; see {self.process.folder}")
            time.sleep(0.1)

    def shutdown(self) -> None:
        """Stop the queue's process (when this platform runs it): nothing of it is left running."""
        self.disconnect()
        process = self.process or (None if self.scheduler_address else DefaultQueueProcess.recorded(self.platform))
        self.process = None
        if process is not None and process.local():
            process.stop()


# -- organizer queues ---------------------------------------------------------------------------
class OrganizerQueue(QueueBackend):
    """A queue an organizer created: its own scheduler, found by address, started when it is down.

    Its workers run on other machines: they fetch datasets by reference
    (`by_reference`), or, without a URL to give them, get them with the job
    (up to `c.Compete.queue_inline_data_max_bytes`); results come back inline.
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

    def record_scheduler(self, address: str) -> None:
        supervisor = self.dispatcher.supervisor or SchedulerSupervisor(self.platform)
        pid = supervisor.pid(self.name)
        self.platform.record_queue_scheduler(self.name, address=address, id=self.scheduler_id, pid=pid,
                                             host=socket.gethostname() if pid is not None else None)

    def prepare(self, job: Job) -> tuple[Job, Optional[dict[str, bytes]]]:
        """The job without the store's root, with a URL per dataset; else with the stored archives as bytes."""
        by_reference = self.by_reference(job)
        if by_reference is not None:
            return by_reference, None
        store = self.platform.store
        cap = self.platform.config.queue_inline_data_max_bytes
        data: dict[str, bytes] = {}
        total = 0
        for key in job.data_keys():
            total += store.dataset_size(key)
            if total > cap:
                raise PlatformError(
                    f"the data of this run is over {cap} bytes, too much to send "
                    "with each run: set c.Compete.public_url so that workers fetch it by reference, keep it "
                    "on the queue's workers (a task's worker_data) or raise c.Compete.queue_inline_data_max_bytes"
                )
            with store.open_dataset(key) as fh:
                data[key] = fh.read()
        return job.with_changes(store_root=None), data
