"""The dispatcher: sends submissions to a Dask queue and records what comes back.

The database is the record; a Dask future is only the means.  A submission is
claimed with an atomic `Submitted -> Preparing` update, so two dispatchers
never run it twice, and its result is recorded once (a terminal submission is
never written again).  Workers report status changes as Dask events on the
topic `compete-status`; results are plain dicts, validated by
`Platform.record_result`.

The default queue is a `LocalCluster` of worker processes started here, so
that the workers keep heavy imports (papermill, the docker SDK) warm between
submissions.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from . import models as m
from .app import Platform

log = logging.getLogger("compete.dispatch")

STATUS_TOPIC = "compete-status"


class Dispatcher:
    def __init__(
        self,
        platform: Platform,
        *,
        scheduler_address: Optional[str] = None,
        n_workers: int = 1,
        threads_per_worker: int = 2,
    ):
        from distributed import Client, LocalCluster

        self.platform = platform
        self.cluster = None
        if scheduler_address is None:
            self.cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            scheduler_address = self.cluster.scheduler_address
        self.client = Client(scheduler_address)
        self.client.subscribe_topic(STATUS_TOPIC, self._on_status_event)
        self._futures: dict[int, Any] = {}
        self._done: dict[int, threading.Event] = {}
        self._lock = threading.Lock()

    # -- sending ---------------------------------------------------------------------
    def dispatch(self, submission_id: int) -> bool:
        """Claim and send one submission; False if it was not waiting."""
        from dask_workers.submission_job import run_submission_job

        if not self.platform.claim(submission_id):
            return False
        try:
            job = self.platform.job_for(submission_id)
        except Exception as exc:  # noqa: BLE001 - a broken competition must fail the submission, not stall it
            self.platform.record_result(submission_id, {"status": m.FAILED, "error": f"cannot prepare the run: {exc}"})
            return True
        event = threading.Event()
        with self._lock:
            self._done[submission_id] = event
        future = self.client.submit(
            run_submission_job, job, key=f"submission-{submission_id}-{time.time_ns()}", pure=False
        )
        with self._lock:
            self._futures[submission_id] = future
        future.add_done_callback(lambda fut, sid=submission_id: self._on_done(sid, fut))
        return True

    def dispatch_pending(self) -> list[int]:
        return [sid for sid in self.platform.pending_submissions() if self.dispatch(sid)]

    # -- receiving -------------------------------------------------------------------
    def _on_status_event(self, event: Any) -> None:
        try:
            _, msg = event
            sid, status = int(msg["submission"]), str(msg["status"])
        except (TypeError, ValueError, KeyError):
            log.warning("ignoring a malformed status event: %r", event)
            return
        if status in (m.PREPARING, m.RUNNING, m.SCORING):
            try:
                self.platform.set_status(sid, status, note=str(msg.get("worker", ""))[:200] or None)
            except Exception:  # noqa: BLE001 - an event must never kill the event loop
                log.exception("could not record status %s of submission %s", status, sid)

    def _on_done(self, submission_id: int, future: Any) -> None:
        try:
            if future.cancelled():
                result = {"status": m.CANCELLED, "error": "cancelled"}
            else:
                exc = future.exception()
                if exc is not None:
                    result = {"status": m.FAILED, "error": f"the worker failed: {type(exc).__name__}: {exc}"}
                else:
                    result = future.result()
                    if not isinstance(result, dict):
                        result = {"status": m.FAILED, "error": "the worker returned no result"}
            self.platform.record_result(submission_id, result)
        except Exception:  # noqa: BLE001
            log.exception("could not record the result of submission %s", submission_id)
            try:
                self.platform.record_result(submission_id, {"status": m.FAILED, "error": "the result could not be recorded"})
            except Exception:  # noqa: BLE001
                log.exception("submission %s left unrecorded", submission_id)
        finally:
            with self._lock:
                self._futures.pop(submission_id, None)
                event = self._done.pop(submission_id, None)
            if event:
                event.set()

    # -- control -----------------------------------------------------------------------
    def wait(self, submission_id: int, timeout: Optional[float] = None) -> dict[str, Any]:
        with self._lock:
            event = self._done.get(submission_id)
        if event is not None:
            event.wait(timeout)
        return self.platform.submission(submission_id)

    def cancel(self, submission_id: int) -> bool:
        """Cancel a submission: its containers or processes are killed on every worker."""
        from dask_workers.submission_job import cancel_on_worker

        changed = self.platform.set_status(submission_id, m.CANCELLED, note="cancelled")
        with self._lock:
            future = self._futures.get(submission_id)
        if future is not None:
            try:
                self.client.run(cancel_on_worker, submission_id)
            except Exception:  # noqa: BLE001
                log.exception("could not reach the workers to cancel %s", submission_id)
            future.cancel()
        return changed

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
