"""`Refresher`: a timer thread that calls back every few seconds, backs off on failures, and stops for good."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

log = logging.getLogger("compete.widgets")

MAX_BACKOFF = 8


# -- a timer that stops ---------------------------------------------------------------------------
class Refresher:
    """Calls `callback()` every `interval` seconds on a daemon thread until `stop()`.

    A callback that returns False (or raises) counts as a failure: the next
    call waits twice as long, up to `MAX_BACKOFF` times the interval.
    `trigger()` calls it at once.  `stop()` returns once no call is running
    and none will start.
    """

    def __init__(self, callback: Callable[[], Any], interval: float, *, name: str = "compete-refresh"):
        if interval <= 0:
            raise ValueError("the refresh interval must be positive")
        self.callback = callback
        self.interval = float(interval)
        self.name = name
        self.failures = 0
        self.calls = 0
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    @property
    def delay(self) -> float:
        return self.interval * min(2 ** self.failures, MAX_BACKOFF)

    def start(self) -> "Refresher":
        if self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def trigger(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 65.0) -> None:
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.delay)
            self._wake.clear()
            if self._stopped.is_set():
                return
            self.calls += 1
            try:
                ok = self.callback() is not False
            except Exception:  # noqa: BLE001 - a refresh must never kill the timer
                log.exception("%s: the refresh failed", self.name)
                ok = False
            self.failures = 0 if ok else min(self.failures + 1, 8)
