"""Boards ranked again after results, off the path that records them.

Recording a result is a short transaction; ranking a phase's boards again
reads every candidate of the phase (seconds at a hundred thousand
submissions under `Force_Best`).  A long-running dispatcher hands that work
to a `BoardRefresher`: each finished submission is a request for its phase;
requests for one phase wait together while a rebuild runs and are then served
by one rebuild, so a burst of results costs one or two rebuilds, not one each.
The dispatcher goes on recording meanwhile; a board shows a result as soon as
the next rebuild of its phase ends.

`rebuild(phase_id, finished_ids)` does the work: in the service, in a process
of its own (`service.readers.BoardBuilder`), so that it never holds the
service's GIL; in a CLI dispatcher, in this thread.  A process that stops with
requests pending leaves its phases for `standings.stale_phases`, which the
next platform to open ranks again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class BoardRefresher:
    """One thread that serves rebuild requests, per phase, coalesced."""

    def __init__(self, rebuild: Callable[[int, tuple[int, ...]], None], *, name: str = "boards"):
        self.rebuild = rebuild
        self._pending: dict[int, set[int]] = {}
        self._running = False
        self._closed = False
        self.rebuilds = 0  # how many rebuilds ran (the coalescing shows in it)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"compete-{name}")
        self._thread.start()

    def request(self, phase_id: int, submission_id: int) -> None:
        """Rank `phase_id`'s boards again after `submission_id` finished (soon; never in this call)."""
        with self._cond:
            self._pending.setdefault(phase_id, set()).add(submission_id)
            self._cond.notify_all()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                phase_id = next(iter(self._pending))  # the phase waiting longest
                finished = tuple(sorted(self._pending.pop(phase_id)))
                self._running = True
            try:
                self.rebuild(phase_id, finished)
            except Exception:  # noqa: BLE001 - the next request of the phase tries again
                log.exception("the leaderboards of phase %s were not ranked again after submissions %s finished",
                              phase_id, ", ".join(map(str, finished)))
            finally:
                with self._cond:
                    self._running = False
                    self.rebuilds += 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Until no request waits and no rebuild runs; False when `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Serve what is pending (up to `timeout` seconds), then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
