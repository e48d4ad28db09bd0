"""The dispatcher: sends submissions to their Dask queues and follows them to the end.

The database is the record; a Dask future is only the means.  A submission is
claimed with an atomic update that gives it a Dask key while it is still
Submitted, so two dispatchers never send it twice; it keeps waiting, with a
position in its queue, until a worker reports Preparing.  Workers report
status and results as Dask events of plain data (topics `compete-status` and
`compete-result`); the platform never gathers or unpickles what a worker
computed, and `Platform.record_result` validates and records each result
exactly once, for the current key only.

Nothing stays stuck: `tick()` (called every few seconds by the service, and
while waiting from the CLI) reconciles every sent, unfinished submission with
what its scheduler knows:

- still waiting or running: followed (after a platform restart, adopted again);
- failed on the scheduler (its worker died, it was retried once elsewhere and
  that worker died too): failed with the reason;
- unknown to the scheduler (the scheduler or the platform restarted): sent
  again, at most `MAX_DISPATCHES` times, then failed with the reason;
- finished without a result reaching the platform: failed with the reason.

Organizer queues run on schedulers of their own (`hub_extension.queues`),
started by this dispatcher when they are down.  The default queue is a
scheduler started here with worker processes of its own (`DefaultWorkers`),
or any scheduler given by address.

The default queue's scheduler runs inside this process, which holds the hub
token, so it is guarded like an organizer queue's (`DefaultQueueTLS`): TLS
only, with a CA made when the dispatcher starts whose key is never kept, a
certificate per role in a private folder removed at close, and the queue
schedulers' guard (`GuardedScheduler`): only the dispatcher's client
certificate gets the full protocol; the workers' certificate gets the
operations of a worker on itself, and what it sends is read as plain data.

Processes that run submissions hold no platform secret: the default queue's
workers are executed (not forked) with `process_environment()`, an allow-list
of the service's variables, so neither their `os.environ` nor
`/proc/<pid>/environ` holds the hub token, the OAuth secrets or the database
URL.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Optional

# The environment allow-list is worker-side (`compete worker` uses it too); importable from here as before.
from dask_workers.environment import PASSED_ENV, PASSED_ENV_PREFIXES, SECRET_NAME, process_environment  # noqa: F401

from . import models as m
from . import tls
from .app import DEFAULT_QUEUE, NotFound, Platform, PlatformError
from .queue_scheduler import WORKER_OPS, GuardedScheduler, queue_snapshot, scheduler_config

log = logging.getLogger("compete.dispatch")

STATUS_TOPIC = "compete-status"
RESULT_TOPIC = "compete-result"
MAX_DISPATCHES = 3
# A key the scheduler does not know yet may still be on its way there.
IN_FLIGHT_GRACE = 30.0
# A task finished on the scheduler whose result event has not arrived after this long.
RESULT_GRACE = 15.0
RECONNECT_AFTER = 5.0
CONNECT_TIMEOUT = 10.0


# The default queue's workers run under a nanny, which registers with the scheduler.
DEFAULT_WORKER_OPS = WORKER_OPS | {"register_nanny"}
TLS_FOLDER_PREFIX = "tls-"


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


class _QuietSnapshots(logging.Filter):
    """Drops Dask's note of every `queue_snapshot` the dispatcher runs (one per queue every tick)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "queue_snapshot" not in record.getMessage()


logging.getLogger("distributed.worker").addFilter(_QuietSnapshots())


class QueueLink:
    """The platform's Dask client of one queue."""

    def __init__(self, dispatcher: "Dispatcher", name: str, address: str, security: Any = None):
        from distributed import Client

        self.dispatcher = dispatcher
        self.name = name
        self.client = Client(
            address, security=security, timeout=CONNECT_TIMEOUT, set_as_default=False,
            direct_to_workers=False,
        )
        self.futures: dict[str, Any] = {}
        self.finished: dict[str, float] = {}
        self.client.subscribe_topic(STATUS_TOPIC, lambda event: dispatcher._on_status(self, event))
        self.client.subscribe_topic(RESULT_TOPIC, lambda event: dispatcher._on_result(self, event))
        self.replay()

    @property
    def alive(self) -> bool:
        return self.client.status == "running"

    def replay(self) -> None:
        """Collect results reported while this platform was not listening (kept by the scheduler)."""
        for event in self.client.get_events(RESULT_TOPIC):
            self.dispatcher._on_result(self, event)

    def collected(self, key: str) -> None:
        """Tell the scheduler this result is recorded: it drops the files it kept for it.

        Safe from any thread; a scheduler without the request (a default queue
        given by address) keeps its log as Dask does.
        """
        async def send() -> None:
            try:
                await self.client.scheduler.compete_collected(keys=[key])
            except Exception as exc:  # noqa: BLE001 - the bound on the scheduler still holds
                log.debug("queue %s: could not drop the payload of %s: %s", self.name, key, exc)

        if self.alive:
            self.client.loop.add_callback(send)

    def snapshot(self, keys: list[str]) -> dict[str, Any]:
        return self.client.run_on_scheduler(queue_snapshot, keys=tuple(keys))

    def submit(self, sid: int, key: str, job: dict[str, Any], data: Optional[dict[str, bytes]],
               resources: Optional[dict[str, float]]) -> None:
        from distributed import fire_and_forget

        from dask_workers.submission_job import run_submission_job

        future = self.client.submit(
            run_submission_job, job, data, key=key, pure=False, resources=resources or None,
        )
        # The run goes on even if this platform goes away; its result waits on the scheduler.
        fire_and_forget(future)
        self.follow(sid, key, future)

    def adopt(self, sid: int, key: str) -> None:
        from distributed import Future

        self.follow(sid, key, Future(key, client=self.client))

    def follow(self, sid: int, key: str, future: Any) -> None:
        self.futures[key] = future
        future.add_done_callback(lambda fut: self.dispatcher._on_done(self, sid, key, fut))

    def close(self) -> None:
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - closing a dead link must not fail
            log.debug("closing the link of queue %s", self.name, exc_info=True)


class Dispatcher:
    def __init__(
        self,
        platform: Platform,
        *,
        scheduler_address: Optional[str] = None,
        n_workers: Optional[int] = None,
        threads_per_worker: Optional[int] = None,
        supervise: bool = True,
    ):
        import dask
        from distributed import SpecCluster

        from .queues import SchedulerSupervisor

        self.platform = platform
        self.cluster = None
        self.default_workers: Optional[DefaultWorkers] = None
        self.default_tls: Optional[DefaultQueueTLS] = None
        self.default_security: Any = None
        if scheduler_address is None:
            config = platform.config
            count = n_workers or config.default_queue_workers
            folder = Path(config.home) / "default-queue"
            self.default_tls = DefaultQueueTLS(folder)
            self.default_security = self.default_tls.security("client")
            try:
                # The scheduler only, in this process, guarded before it listens; the workers
                # are processes of their own that inherit nothing secret from it.
                with dask.config.set(scheduler_config()):
                    self.cluster = SpecCluster(
                        workers={},
                        scheduler={"cls": GuardedScheduler, "options": {
                            "host": "127.0.0.1", "port": 0, "protocol": "tls",
                            "security": self.default_tls.security("scheduler"),
                            "dashboard": False, "dashboard_address": "127.0.0.1:0", "validate": False,
                            "worker_ops": DEFAULT_WORKER_OPS,
                        }},
                        security=self.default_security, silence_logs=logging.ERROR, name="default queue",
                    )
                scheduler_address = self.cluster.scheduler_address
                self.default_workers = DefaultWorkers(
                    scheduler_address, count, threads_per_worker or config.default_queue_threads, folder,
                    tls_arguments=self.default_tls.worker_arguments(),
                )
            except BaseException:
                self._close_default_queue()
                raise
        self.default_address = scheduler_address
        self.supervisor = SchedulerSupervisor(platform) if supervise else None
        self.links: dict[str, QueueLink] = {}
        self._next_attempt: dict[str, float] = {}
        self._done: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._last_tick = 0.0
        link = self.link(DEFAULT_QUEUE)
        if self.default_workers is not None and link is not None:
            try:
                self._wait_for_default_workers(link, len(self.default_workers.processes))
            except BaseException:
                self.close()
                raise

    def _wait_for_default_workers(self, link: "QueueLink", count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(link.client.scheduler_info(n_workers=-1)["workers"]) < count:
            self.default_workers.check()
            if time.monotonic() > deadline:
                raise PlatformError(f"the default queue's {count} worker process(es) did not start within "
                                    f"{timeout:.0f} s; see {self.default_workers.folder}")
            time.sleep(0.1)

    # -- links ---------------------------------------------------------------------------------
    def link(self, name: str) -> Optional[QueueLink]:
        """The live client of queue `name`, connecting (and starting its scheduler) when needed."""
        from .queues import client_security, queue_names, record_queue_state

        with self._lock:
            current = self.links.get(name)
        if current is not None and current.alive:
            return current
        if current is not None:
            current.close()
            with self._lock:
                self.links.pop(name, None)
        if time.monotonic() < self._next_attempt.get(name, 0.0):
            return None
        try:
            if name == DEFAULT_QUEUE:
                link = QueueLink(self, name, self.default_address, self.default_security)
            else:
                if name not in queue_names(self.platform):
                    raise PlatformError(
                        f"queue {name!r} does not exist: an organizer must create it (compete queue create {name})"
                    )
                if self.supervisor is not None:
                    address = self.supervisor.ensure(name)
                else:
                    from .queues import SchedulerSupervisor

                    address = SchedulerSupervisor(self.platform).address(name)
                link = QueueLink(self, name, address, client_security(self.platform, name))
        except Exception as exc:  # noqa: BLE001 - a queue that is down waits visibly, it stops nothing
            self._next_attempt[name] = time.monotonic() + RECONNECT_AFTER
            note = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            log.warning("queue %s is not reachable: %s", name, note)
            record_queue_state(self.platform, name, connected=False, workers=[], note=note)
            return None
        with self._lock:
            self.links[name] = link
        return link

    # -- sending ---------------------------------------------------------------------------------
    def dispatch(self, submission_id: int) -> bool:
        """Claim and send one waiting submission; False if it is not waiting or its queue is down."""
        try:
            queue = self.platform.job_queue(submission_id)
        except NotFound:
            return False
        link = self.link(queue)
        if link is None:
            return False
        key = f"submission-{submission_id}-{uuid.uuid4().hex[:12]}"
        if not self.platform.claim(submission_id, queue, key):
            return False
        with self._lock:
            self._done.setdefault(submission_id, threading.Event())
        try:
            job = self.platform.job_for(submission_id)
            job["key"] = key
            data = None
            if queue != DEFAULT_QUEUE:
                # Another machine: datasets travel with the job, results come back inline.
                job["store_root"] = None
                data = self.platform.job_datasets(job)
            gpus = int(job["limits"].get("gpus") or 0)
            link.submit(submission_id, key, job, data, {"GPU": gpus} if gpus else None)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be sent fails with the reason, never stalls
            log.exception("could not send submission %s", submission_id)
            self._record(submission_id, {"status": m.FAILED, "error": f"cannot prepare the run: {exc}"}, key)
        return True

    def dispatch_pending(self) -> list[int]:
        return [sid for sid in self.platform.pending_submissions() if self.dispatch(sid)]

    # -- receiving ------------------------------------------------------------------------------
    def _on_status(self, link: QueueLink, event: Any) -> None:
        try:
            _, msg = event
            sid, status = int(msg["submission"]), str(msg["status"])
            key = msg.get("key")
            # The scheduler stamps `worker` with the sender's address; the name is the worker's own.
            worker = str(msg.get("worker_name") or msg.get("worker") or "")[:200] or None
        except (TypeError, ValueError, KeyError):
            log.warning("queue %s: ignoring a malformed status event", link.name)
            return
        if status not in (m.PREPARING, m.RUNNING, m.SCORING) or not isinstance(key, str):
            return
        try:
            self.platform.set_status(sid, status, note=worker, key=key, worker=worker, queue=link.name)
        except Exception:  # noqa: BLE001 - an event must never kill the event loop
            log.exception("could not record status %s of submission %s", status, sid)

    def _on_result(self, link: QueueLink, event: Any) -> None:
        try:
            _, msg = event
            sid, key, result = int(msg["submission"]), msg["key"], msg["result"]
        except (TypeError, ValueError, KeyError):
            log.warning("queue %s: ignoring a malformed result event", link.name)
            return
        if not isinstance(key, str):
            return
        # A report counts only for the current attempt, and only from the queue it was sent to.
        if self._record(sid, result if isinstance(result, dict) else {}, key, queue=link.name):
            # In the database now (or of no use: another attempt, or a submission gone):
            # the scheduler need not keep its files any longer.
            link.collected(key)

    def _record(self, sid: int, result: dict[str, Any], key: str, queue: Optional[str] = None) -> bool:
        """Record a result; False only when the database could not take it (keep it for a replay)."""
        handled = True
        try:
            self.platform.record_result(sid, result, key=key, queue=queue)
        except NotFound:
            return True
        except Exception:  # noqa: BLE001
            log.exception("could not record the result of submission %s", sid)
            try:
                self.platform.record_result(sid, {"status": m.FAILED, "error": "the result could not be recorded"},
                                            key=key)
            except Exception:  # noqa: BLE001
                log.exception("submission %s left unrecorded", sid)
                handled = False
        self._wake(sid)
        return handled

    def _on_done(self, link: QueueLink, sid: int, key: str, future: Any) -> None:
        status = future.status
        if status == "error":
            self._record(sid, {"status": m.FAILED, "error": _failure_reason(future)}, key)
        elif status == "finished":
            link.finished.setdefault(key, time.monotonic())
        # cancelled or lost: the reconciliation decides (the platform may have cancelled it,
        # or the scheduler went away and it must be sent again)
        link.futures.pop(key, None)
        self._wake(sid)

    def _wake(self, sid: int) -> None:
        with self._lock:
            event = self._done.get(sid)
        if event is not None:
            event.set()

    # -- reconciling ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Reconcile every queue in use and send what waits.  Safe to call often, from any thread."""
        if not self._tick_lock.acquire(blocking=False):
            return
        try:
            from .queues import queue_names

            names = {DEFAULT_QUEUE, *queue_names(self.platform), *self.platform.queues_in_use()}
            for name in sorted(names):
                link = self.link(name)
                if link is None:
                    continue
                try:
                    self.reconcile(link)
                except Exception as exc:  # noqa: BLE001 - one queue's trouble must not stop the others
                    log.warning("queue %s: reconciliation failed: %s", name, exc)
                    continue
                for sid in self.platform.pending_submissions(name):
                    self.dispatch(sid)
            self._last_tick = time.monotonic()
        finally:
            self._tick_lock.release()

    def reconcile(self, link: QueueLink) -> None:
        from .queues import record_queue_state

        sent = self.platform.dispatched_submissions(link.name)
        snapshot = link.snapshot([s["key"] for s in sent])
        record_queue_state(self.platform, link.name, connected=True, workers=snapshot["workers"])
        now = time.monotonic()
        replayed = False
        for sub in sent:
            sid, key = sub["id"], sub["key"]
            task = snapshot["tasks"].get(key)
            if task is None:
                future = link.futures.get(key)
                age = (m.utcnow() - sub["dispatched_at"]).total_seconds() if sub["dispatched_at"] else 1e9
                if future is not None and future.status == "pending" and age < IN_FLIGHT_GRACE:
                    continue  # still on its way to the scheduler
                if not replayed:
                    link.replay()
                    replayed = True
                if self._terminal(sid):
                    continue
                self._resend(sid, key, sub["dispatch_count"],
                             "the queue lost the run (its scheduler or the platform restarted)")
            elif task["state"] == "erred":
                self._record(sid, {"status": m.FAILED, "error": _death_text(task)}, key)
            elif task["state"] in ("memory", "released", "forgotten"):
                first_seen = link.finished.setdefault(key, now)
                if now - first_seen > RESULT_GRACE:
                    if not replayed:
                        link.replay()
                        replayed = True
                    if not self._terminal(sid):
                        self._record(sid, {"status": m.FAILED,
                                           "error": "the run ended without its result reaching the platform"}, key)
            elif key not in link.futures:
                link.adopt(sid, key)

    def _terminal(self, sid: int) -> bool:
        return self.platform.submission_status(sid) in m.TERMINAL_STATUSES

    def _resend(self, sid: int, key: str, count: int, why: str) -> None:
        if count >= MAX_DISPATCHES:
            self._record(sid, {"status": m.FAILED, "error": f"{why}; it was sent {count} times and is not sent again"},
                         key)
        elif self.platform.release(sid, key, note=f"{why}; sent again"):
            self.dispatch(sid)

    # -- control ----------------------------------------------------------------------------------
    def wait(self, submission_id: int, timeout: Optional[float] = None) -> dict[str, Any]:
        """Block until the submission is terminal (or `timeout`), keeping its queue reconciled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            event = self._done.setdefault(submission_id, threading.Event())
        while True:
            info = self.platform.submission(submission_id)
            if info["status"] in m.TERMINAL_STATUSES:
                return info
            if deadline is not None and time.monotonic() >= deadline:
                return info
            if time.monotonic() - self._last_tick > 2.0:
                self.tick()
            event.wait(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
            event.clear()

    def cancel(self, submission_id: int) -> bool:
        """Cancel a submission: marked Cancelled, and its containers or processes killed on its queue."""
        from dask_workers.submission_job import cancel_on_worker

        try:
            info = self.platform.submission(submission_id)
        except NotFound:
            return False
        changed = self.platform.set_status(submission_id, m.CANCELLED, note="cancelled")
        key = self.platform.dispatch_key(submission_id)
        with self._lock:
            link = self.links.get(info.get("queue") or DEFAULT_QUEUE)
        if link is not None and link.alive and key:
            try:
                link.client.run(cancel_on_worker, submission_id)
            except Exception:  # noqa: BLE001
                log.exception("could not reach the workers to cancel %s", submission_id)
            future = link.futures.get(key)
            if future is not None:
                future.cancel(force=True)
        self._wake(submission_id)
        return changed

    def close(self) -> None:
        with self._lock:
            links = list(self.links.values())
            self.links.clear()
        for link in links:
            link.close()
        self._close_default_queue()

    def _close_default_queue(self) -> None:
        if self.default_workers is not None:
            self.default_workers.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.default_tls is not None:
            self.default_tls.remove()


def _failure_reason(future: Any) -> str:
    try:
        exc = future.exception(timeout=5)
    except Exception as err:  # noqa: BLE001 - the reason is best effort, the failure is not
        return f"the run failed on its queue ({type(err).__name__})"
    if type(exc).__name__ == "KilledWorker":
        last = getattr(getattr(exc, "last_worker", None), "name", None)
        return ("the worker running it died, and so did the worker that retried it"
                + (f" (last: {last})" if last else "") + "; it is not retried again")
    return f"the run failed on its queue: {type(exc).__name__}: {exc}"[:2000]


def _death_text(task: dict[str, Any]) -> str:
    if task.get("deaths"):
        last = f" (last: {task['worker']})" if task.get("worker") else ""
        return f"the worker running it died, and so did the worker that retried it{last}; it is not retried again"
    return f"the run failed on its queue: {task.get('error') or 'no reason given'}"
