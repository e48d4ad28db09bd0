"""The dispatcher: sends submissions to their Dask queues and follows them to the end.

The database is the record; a Dask future is only the means.  A submission is
claimed with an atomic update that gives it a Dask key while it is still
Submitted, so two dispatchers never send it twice; it keeps waiting, with a
position in its queue, until a worker reports Preparing.  Workers report
status and results as Dask events of plain data (topics `STATUS_TOPIC` and
`RESULT_TOPIC` of `hub_extension.contract`); the platform never gathers or
unpickles what a worker computed, and `Platform.record_result` validates and
records each result exactly once, for the current key only.

What waits is sent in the fair order of `hub_extension.app.fairness`
(scoring first, owners in turn, a phase's `max_concurrent_submissions` held)
and only as worker slots free up (`send_ahead` more): a queue's scheduler
runs what it holds first come, first served, so the order is kept here.  A
run that ends wakes the dispatcher's thread for the next round at once.
`dispatch(sid)` itself sends the one submission asked for at once (the CLI's
own runner, `compete submit` or `run-pending` while no process holds the
lease, sends what it names that way).

Nothing stays stuck: `tick()` (run every `dispatch_seconds` by the
dispatcher's own thread, `start()`, and while waiting from the CLI) reconciles
every sent, unfinished submission with what its scheduler knows:

- still waiting or running: followed (after a platform restart, adopted again);
- failed on the scheduler (its worker died, it was retried once elsewhere and
  that worker died too): failed with the reason;
- unknown to the scheduler (the scheduler or the platform restarted): sent
  again, at most `max_dispatches` times, then failed with the reason;
- finished without a result reaching the platform: failed with the reason.

One process dispatches at a time per database: the one holding the dispatcher
lease (`hub_extension.app.lease`).  A dispatcher renews its lease at the start
of every tick (and while a long tick goes on); one that does not hold it does
nothing but try to take it, so it never reconciles another process's runs as
lost ones.  When it takes the lease over (its holder stopped, or was silent
past `lease_seconds`), its first reconciliation adopts the runs as after a
restart: those its queues' schedulers still hold are followed, the others
sent again.  Claims and resends are fenced by the lease in the database
(`Runs.claim` and `Runs.release` with the holder's id), so a holder that lost
its lease without knowing it (paused past expiry) cannot send anything, and a
report of a run another holder sent again carries a key that is no longer
current.  `close()` releases the lease so that a successor takes over at once.

Nothing of it runs on the service's request loop: the ticks run in the
dispatcher's thread (started by `start()`, paced by its own clock, so a busy
request loop neither delays nor doubles them), and workers' reports are
recorded by the handlers of each queue's Dask client, which run on that
client's own event loop thread.  The service's loop only answers requests.

The loop speaks to queues only through `QueueBackend`
(`hub_extension.queue_backends`): the default queue (`DefaultQueue`, or the
class `c.Dispatcher.default_queue_class` names) and organizer queues
(`OrganizerQueue`, schedulers of their own started by this dispatcher when
they are down).  The dispatcher's timings are traits (`c.Dispatcher.*`).

Processes that run submissions hold no platform secret: the default queue's
workers are executed (not forked) with `process_environment()`, an allow-list
of the service's variables, so neither their `os.environ` nor
`/proc/<pid>/environ` holds the hub token, the OAuth secrets or the database
URL.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from typing import Any, Optional

from traitlets import Float, Integer, Type
from traitlets.config import LoggingConfigurable

from . import models as m
from .app import NotFound, Platform
from .app.fairness import to_send
from .app.lease import Holder, LeaseState
from .app.queue_order import CPU_POOL, GPU_POOL, slots_of
from .contract import DEFAULT_QUEUE, JobResult, Status
from .default_queue import DefaultQueueProcess
from .queue_backends import DefaultQueue, OrganizerQueue, QueueBackend
from .queues import SILENT_AFTER, SchedulerSupervisor

log = logging.getLogger("compete.dispatch")

# The Dask key of a run: the submission it runs, then a part unique to the attempt.
KEY_PREFIX = "submission-"
_KEY = re.compile(re.escape(KEY_PREFIX) + r"(\d+)-[0-9a-f]+")


class Dispatcher(LoggingConfigurable):
    """Sends waiting submissions to their queues and reconciles what was sent with what the queues know."""

    dispatch_seconds = Float(
        2.0, help="Seconds between two rounds of the service's dispatcher (send what waits, reconcile what runs).",
    ).tag(config=True)

    max_dispatches = Integer(
        3, help="Times a run is sent to its queue at most; a run its queue lost (a scheduler or platform restart) "
                "after that many sends fails with the reason.",
    ).tag(config=True)

    in_flight_grace = Float(
        30.0, help="Seconds a sent run may be unknown to its scheduler while it is still on its way there.",
    ).tag(config=True)

    result_grace = Float(
        15.0, help="Seconds a run finished on its scheduler may wait for its result to reach the platform "
                   "before it fails.",
    ).tag(config=True)

    reconnect_after = Float(
        5.0, help="Seconds before the dispatcher tries again to reach a queue it could not reach.",
    ).tag(config=True)

    lease_seconds = Float(
        15.0, help="Seconds the dispatcher lease lasts without renewal: the dispatcher renews it on every tick, "
                   "and another process takes over dispatching when it expires (its holder stopped or hung).",
    ).tag(config=True)

    connect_timeout = Float(10.0, help="Seconds to connect to a queue's scheduler.").tag(config=True)

    silent_after = Float(
        SILENT_AFTER, help="Seconds since its last heartbeat after which a worker is shown as silent on the "
                           "queue pages.",
    ).tag(config=True)

    send_ahead = Integer(
        0, allow_none=True,
        help="Runs sent to a queue beyond its free worker slots. The dispatcher sends waiting submissions in "
             "the fair order (scoring first, owners in turn; `hub_extension.app.fairness`) only as slots free "
             "up, since a queue's scheduler runs what it holds first come, first served; a few more hide the "
             "time a run takes to reach a worker. None: send everything that may go at once (the fair order "
             "then holds only among what waits at the same moment; a phase's max_concurrent_submissions "
             "still holds).",
    ).tag(config=True)

    nudge_seconds = Float(
        0.2, help="Seconds the dispatcher's thread waits, after a run ended, before its next round sends "
                  "what waits to the freed slot (it gathers the runs that end together into one round).",
    ).tag(config=True)

    default_queue_class = Type(
        DefaultQueue, klass=QueueBackend,
        help="The backend of the default queue (a QueueBackend subclass).",
    ).tag(config=True)

    organizer_queue_class = Type(
        OrganizerQueue, klass=QueueBackend,
        help="The backend of the queues organizers create (a QueueBackend subclass).",
    ).tag(config=True)

    def __init__(
        self,
        platform: Platform,
        *,
        scheduler_address: Optional[str] = None,
        n_workers: Optional[int] = None,
        threads_per_worker: Optional[int] = None,
        supervise: bool = True,
        **kwargs: Any,
    ):
        kwargs.setdefault("config", getattr(platform.config, "config", None))
        super().__init__(**kwargs)
        self.platform = platform
        self.runs = platform.runs  # the runs ledger: where the loop reads and records runs
        self.supervisor = SchedulerSupervisor(platform) if supervise else None
        self._next_attempt: dict[str, float] = {}
        self._done: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._last_tick = 0.0
        # The dispatcher lease: held until `_lease_deadline` (monotonic), renewed by `keep_lease`.
        self.holder = Holder.this_process()
        self.leases = platform.lease
        self._holding = False
        self._lease_deadline = 0.0
        self._deferred_to: Optional[str] = None
        self._closed = False
        # The thread that runs the ticks (`start`), and what stops it.
        self._runner: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        # Set when a run ends: a slot is free, so the thread's next round comes early.
        self._nudged = threading.Event()
        # The workers each queue's scheduler last reported (their slots bound what is sent).
        self._workers: dict[str, list[Any]] = {}
        options = {name: value for name, value in (("scheduler_address", scheduler_address),
                                                    ("n_workers", n_workers),
                                                    ("threads_per_worker", threads_per_worker))
                   if value is not None}
        self.default_queue = self.default_queue_class(self, DEFAULT_QUEUE, **options)
        self.queues: dict[str, QueueBackend] = {DEFAULT_QUEUE: self.default_queue}
        try:
            self.default_queue.start()
            # Holding the lease, reach the default queue now (starting its process when none
            # runs), so that a queue that cannot start says so here.
            if self.keep_lease():
                self.default_queue.connect()
                self.default_queue.ready()
                self.keep_lease()  # starting the queue's process may have taken a good part of the lease
        except BaseException:
            self.close()
            raise

    @property
    def default_process(self) -> Optional[DefaultQueueProcess]:
        """The default queue's process this dispatcher follows (None: not reached yet, or given by address)."""
        return getattr(self.default_queue, "process", None)

    # -- the lease -------------------------------------------------------------------------------
    def holds_lease(self) -> bool:
        """This dispatcher holds the dispatcher lease (by its last renewal): it may send and reconcile."""
        return self._holding and time.monotonic() < self._lease_deadline

    def lease(self) -> Optional[LeaseState]:
        """The dispatcher lease as the database has it now (whoever holds it)."""
        return self.leases.current()

    def keep_lease(self) -> bool:
        """Renew the lease, or take it when it is free or expired; False while another process holds it."""
        if self._closed:
            return False
        started = time.monotonic()
        try:
            renewed = self.leases.renew(self.holder, self.lease_seconds)
            taken = not renewed and self.leases.take(self.holder, self.lease_seconds)
        except Exception as exc:  # noqa: BLE001 - a database that does not answer stops the dispatching, not the process
            log.warning("the dispatcher lease could not be renewed: %s", exc)
            return self.holds_lease()
        if (renewed or taken) and self._closed:
            # close() ran meanwhile: give back what this renewal kept.
            self.release_lease()
            return False
        if renewed or taken:
            if taken or not self._holding:
                log.info("this process (pid %s on %s) holds the dispatcher lease: it dispatches",
                         self.holder.pid, self.holder.host)
            self._holding = True
            self._deferred_to = None
            self._lease_deadline = started + self.lease_seconds
            return True
        other = self.lease()
        if self._holding:
            log.warning("the dispatcher lease was taken over by %s: this process stops dispatching",
                        other.describe() if other else "another process")
            self._disconnect_all()
        elif other is not None and other.holder != self._deferred_to:
            log.info("dispatching is done by %s; this process stands by", other.describe())
        self._deferred_to = other.holder if other is not None else None
        self._holding = False
        self._lease_deadline = 0.0
        return False

    def _ensure_lease(self) -> bool:
        """Hold the lease, renewing it once half of it is gone (within a long tick, before a send)."""
        if self.holds_lease() and time.monotonic() < self._lease_deadline - self.lease_seconds / 2:
            return True
        return self.keep_lease()

    def release_lease(self) -> None:
        """Give the lease up now (a successor takes over at once); this dispatcher stops sending."""
        self._holding = False
        self._lease_deadline = 0.0
        try:
            self.leases.release(self.holder)
        except Exception as exc:  # noqa: BLE001 - the lease then expires by itself
            log.warning("the dispatcher lease could not be released (it expires by itself): %s", exc)

    # -- links ---------------------------------------------------------------------------------
    def _disconnect_all(self) -> None:
        """Drop every queue link: a process that does not dispatch keeps no client of any scheduler."""
        with self._lock:
            backends = list(self.queues.values())
        for backend in backends:
            backend.disconnect()

    def link(self, name: str) -> Optional[QueueBackend]:
        """The connected backend of queue `name`, connecting (and starting its scheduler) when needed."""
        with self._lock:
            backend = self.queues.get(name)
            if backend is None:
                backend = self.queues[name] = self.organizer_queue_class(self, name)
        if backend.alive:
            return backend
        backend.disconnect()
        if time.monotonic() < self._next_attempt.get(name, 0.0):
            return None
        try:
            backend.connect()
            backend.ready()
        except Exception as exc:  # noqa: BLE001 - a queue that is down waits visibly, it stops nothing
            backend.disconnect()
            self._next_attempt[name] = time.monotonic() + self.reconnect_after
            note = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            log.warning("queue %s is not reachable: %s", name, note)
            self.platform.record_queue_state(name, connected=False, workers=[], note=note)
            return None
        return backend

    # -- sending ---------------------------------------------------------------------------------
    def dispatch(self, submission_id: int) -> bool:
        """Claim and send one waiting submission; False if it is not waiting, its queue is down or another
        process holds the dispatcher lease."""
        if not self._ensure_lease():
            return False
        try:
            queue = self.runs.job_queue(submission_id)
        except NotFound:
            return False
        backend = self.link(queue)
        if backend is None:
            return False
        key = f"{KEY_PREFIX}{submission_id}-{uuid.uuid4().hex[:12]}"
        if not self.runs.claim(submission_id, queue, key, holder=self.holder.id, scheduler=backend.scheduler_id):
            return False
        with self._lock:
            self._done.setdefault(submission_id, threading.Event())
        try:
            job = self.runs.job_for(submission_id).with_changes(key=key)
            self.runs.note_programs(job)
            job, data = backend.prepare(job)
            gpus = int(job.limits.gpus or 0)
            backend.submit(submission_id, key, job.to_wire(), data, {"GPU": gpus} if gpus else None)
        except Exception as exc:  # noqa: BLE001 - a run that cannot be sent fails with the reason, never stalls
            log.exception("could not send submission %s", submission_id)
            self._record(submission_id, _failure(f"cannot prepare the run: {exc}"), key)
        return True

    def send_waiting(self, link: QueueBackend) -> list[int]:
        """Send what waits on `link`'s queue, in the fair order, as many as its free worker slots take
        (plus `send_ahead`; every one when that is None); the ids sent."""
        plan = self.runs.fair_queue(link.name)
        if self.send_ahead is None:
            chosen = plan.order.ready
        else:
            workers = self._workers.get(link.name, [])
            free = {pool: slots_of(workers, pool) - plan.in_flight.get(pool, 0) + self.send_ahead
                    for pool in (CPU_POOL, GPU_POOL)}
            chosen = to_send(plan.order, plan.pools, free)
        return [sid for sid in chosen if self.dispatch(sid)]

    def dispatch_pending(self) -> list[int]:
        return [sid for sid in self.runs.pending_submissions() if self.dispatch(sid)]

    # -- receiving ------------------------------------------------------------------------------
    def _on_status(self, link: QueueBackend, event: Any) -> None:
        try:
            _, msg = event
            sid, status = int(msg["submission"]), str(msg["status"])
            key = msg.get("key")
            # The scheduler stamps `worker` with the sender's address; the name is the worker's own.
            worker = str(msg.get("worker_name") or msg.get("worker") or "")[:200] or None
        except (TypeError, ValueError, KeyError):
            log.warning("queue %s: ignoring a malformed status event", link.name)
            return
        if status not in Status.REPORTED or not isinstance(key, str):
            return
        try:
            self.runs.set_status(sid, status, note=worker, key=key, worker=worker, queue=link.name)
        except Exception:  # noqa: BLE001 - an event must never kill the event loop
            log.exception("could not record status %s of submission %s", status, sid)

    def _on_result(self, link: QueueBackend, event: Any) -> None:
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
            self.runs.record_result(sid, result, key=key, queue=queue)
        except NotFound:
            return True
        except Exception:  # noqa: BLE001
            log.exception("could not record the result of submission %s", sid)
            try:
                self.runs.record_result(sid, _failure("the result could not be recorded"), key=key)
            except Exception:  # noqa: BLE001
                log.exception("submission %s left unrecorded", sid)
                handled = False
        self._wake(sid)
        self._nudged.set()
        return handled

    def _on_done(self, link: QueueBackend, sid: int, key: str, future: Any) -> None:
        status = future.status
        if status == "error":
            self._record(sid, _failure(_failure_reason(future)), key)
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
        """Renew the lease; holding it, reconcile every queue in use and send what waits.

        Without the lease (another process holds it) a tick only tries to take
        it.  Safe to call often, from any thread.
        """
        if not self._tick_lock.acquire(blocking=False):
            return
        try:
            if not self.keep_lease():
                return
            names = {DEFAULT_QUEUE, *self.platform.queue_names(), *self.runs.queues_in_use()}
            for name in sorted(names):
                if not self._ensure_lease():
                    return
                link = self.link(name)
                if link is None:
                    continue
                try:
                    self.reconcile(link)
                except Exception as exc:  # noqa: BLE001 - one queue's trouble must not stop the others
                    log.warning("queue %s: reconciliation failed: %s", name, exc)
                    continue
                self.send_waiting(link)
        finally:
            self._last_tick = time.monotonic()
            self._tick_lock.release()

    def reconcile(self, link: QueueBackend) -> None:
        """Bring what was sent to `link`'s queue in line with its scheduler; only while holding the lease."""
        if not self._ensure_lease():
            return
        sent = self.runs.dispatched_submissions(link.name)
        snapshot = link.snapshot([s["key"] for s in sent])
        self._workers[link.name] = list(snapshot["workers"])
        self.platform.record_queue_state(link.name, connected=True, workers=snapshot["workers"])
        now = time.monotonic()
        replayed = False
        for sub in sent:
            sid, key = sub["id"], sub["key"]
            task = snapshot["tasks"].get(key)
            held_by = sub.get("scheduler")
            if held_by and link.scheduler_id and held_by != link.scheduler_id:
                # Sent to a scheduler that is no longer the queue's: it stopped, and the run with it.
                if not self._terminal(sid):
                    self._resend(sid, key, sub["dispatch_count"],
                                 "the queue's scheduler that held the run stopped (a new one runs now)")
                continue
            if task is None:
                future = link.futures.get(key)
                age = (m.utcnow() - sub["dispatched_at"]).total_seconds() if sub["dispatched_at"] else 1e9
                if future is not None and future.status == "pending" and age < self.in_flight_grace:
                    continue  # still on its way to the scheduler
                if not replayed:
                    link.replay()
                    replayed = True
                if self._terminal(sid):
                    continue
                self._resend(sid, key, sub["dispatch_count"],
                             "the queue lost the run (its scheduler or the platform restarted)")
            elif task["state"] == "erred":
                self._record(sid, _failure(_death_text(task)), key)
            elif task["state"] in ("memory", "released", "forgotten"):
                first_seen = link.finished.setdefault(key, now)
                if now - first_seen > self.result_grace:
                    if not replayed:
                        link.replay()
                        replayed = True
                    if not self._terminal(sid):
                        self._record(sid, _failure("the run ended without its result reaching the platform"), key)
            elif key not in link.futures:
                link.adopt(sid, key)
        self._stop_ended_elsewhere(link, {s["key"] for s in sent})

    def _stop_ended_elsewhere(self, link: QueueBackend, open_keys: set[str]) -> None:
        """Stop the runs this queue still holds whose submissions another process ended.

        A service that does not dispatch (another process holds the lease)
        marks a cancelled submission in the database only: its run goes on in
        the holder's queue until this sweep kills it there.
        """
        for key in [k for k in list(link.futures) if k not in open_keys]:
            found = _KEY.fullmatch(key)
            if found is None:
                continue
            sid = int(found.group(1))
            if self._terminal(sid):
                link.cancel(sid, key)
                link.futures.pop(key, None)

    def _terminal(self, sid: int) -> bool:
        return self.runs.submission_status(sid) in Status.TERMINAL

    def _resend(self, sid: int, key: str, count: int, why: str) -> None:
        if count >= self.max_dispatches:
            self._record(sid, _failure(f"{why}; it was sent {count} times and is not sent again"), key)
        elif self.runs.release(sid, key, note=f"{why}; sent again", holder=self.holder.id):
            self.dispatch(sid)

    # -- the dispatcher's own thread ----------------------------------------------------------------
    @property
    def tick_seconds(self) -> float:
        """Seconds between two ticks of `start`'s thread: `dispatch_seconds`, and well within the lease."""
        return min(self.dispatch_seconds, self.lease_seconds / 3)

    def start(self) -> "Dispatcher":
        """Tick every `tick_seconds` in a thread of the dispatcher's own until `close()`.

        A tick that fails is logged (once while it keeps failing the same way)
        and tried again at the next one, never fatal.
        """
        with self._lock:
            if self._runner is None and not self._closed:
                self._runner = threading.Thread(target=self._run, name="compete-dispatcher", daemon=True)
                self._runner.start()
        return self

    def _run(self) -> None:
        last_error: Optional[str] = None
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.tick()
                last_error = None
            except Exception as exc:  # noqa: BLE001 - a periodic task must survive its own failures
                text = f"{type(exc).__name__}: {exc}"
                if text != last_error:
                    log.exception("dispatcher tick failed (retrying every %.0f s)", self.tick_seconds)
                last_error = text
            if self._nudged.wait(max(0.0, self.tick_seconds - (time.monotonic() - started))):
                # A run ended: its slot goes to the next in line without waiting for the full period.
                self._nudged.clear()
                self._stopping.wait(self.nudge_seconds)

    def _stop_runner(self) -> None:
        self._stopping.set()
        self._nudged.set()
        runner = self._runner
        if runner is not None and runner is not threading.current_thread():
            runner.join(self.lease_seconds)

    # -- control ----------------------------------------------------------------------------------
    def wait(self, submission_id: int, timeout: Optional[float] = None) -> dict[str, Any]:
        """Block until the submission is terminal (or `timeout`), keeping its queue reconciled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            event = self._done.setdefault(submission_id, threading.Event())
        while True:
            info = self.platform.submission(submission_id)
            if info["status"] in Status.TERMINAL:
                return info
            if deadline is not None and time.monotonic() >= deadline:
                return info
            if time.monotonic() - self._last_tick > 2.0:
                self.tick()
            event.wait(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
            event.clear()

    def cancel(self, submission_id: int) -> bool:
        """Cancel a submission: marked Cancelled, and its containers or processes killed on its queue."""
        try:
            info = self.platform.submission(submission_id)
        except NotFound:
            return False
        changed = self.runs.set_status(submission_id, Status.CANCELLED, note="cancelled")
        key = self.runs.dispatch_key(submission_id)
        with self._lock:
            backend = self.queues.get(info.get("queue") or DEFAULT_QUEUE)
        if backend is not None:
            backend.cancel(submission_id, key)
        self._wake(submission_id)
        return changed

    def close(self) -> None:
        """Release the lease (a successor takes over at once), then close the queues' links.

        The default queue's process outlives this dispatcher while runs are on
        it (the next holder follows them); with none, the holder stops it, so
        nothing is left running.
        """
        self._stop_runner()
        was_holding = self.holds_lease()
        self._closed = True
        try:
            # The queue is this process's to stop while it holds the lease, or when no process does.
            may_stop = was_holding or self.leases.live() is None
        except Exception:  # noqa: BLE001 - a database that does not answer: leave the queue to its idle exit
            may_stop = False
        if may_stop:
            try:
                if not self.runs.dispatched_submissions(DEFAULT_QUEUE):
                    self.default_queue.shutdown()
            except Exception:  # noqa: BLE001 - a queue left up stops by itself once idle
                log.warning("could not stop the default queue's process", exc_info=True)
        self.release_lease()
        with self._lock:
            backends = list(self.queues.values())
            self.queues.clear()
        for backend in backends:
            backend.close()


def _failure(error: str) -> dict[str, Any]:
    """A failed result, in the form a worker sends it."""
    return JobResult.failure(error).to_wire()


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
