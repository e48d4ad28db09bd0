"""Warm judges: containers of the Docker executor started before a submission needs them.

A notebook step on a cold container pays for the container's start, the
import of papermill and nbclient and the start of a Jupyter kernel before
its first cell runs.  `WarmPool` keeps a few containers per *key* with all
of that done: each was created from exactly the `create_kwargs` of a step
of that key (limits, user, labels of this worker, hardening, network rules,
the mounts of the phase's data), its per-submission folders (program and
output) mounted from a fresh *slot* folder of its own, and it runs the
notebook runner in its waiting mode (`run_notebook.py --warm`).

Each container serves one submission only and is removed afterwards, with
its slot: nothing is shared between submissions.  The key is everything of
the container's definition but the slot; a key's first step runs cold and
asks for a pool, and each use of a warm container asks for its replacement,
made in the background by one thread.  A step that finds none waiting but
one being made waits for it (up to `wait` seconds): the rest of its start is
shorter than a cold one.  A container that died, grew older
than `max_age`, or whose data mounts no longer name the folders they were
made from (a dataset evicted and unpacked again) is removed instead of
used.  At most `max_keys` keys are kept (the least recently used goes).

The pool knows nothing of steps: the executor hands it a key and a function
that makes one container (`Warm`) for that key.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

logger = logging.getLogger(__name__)


@dataclass
class Warm:
    """One started container waiting for its submission."""

    key: str
    container: Any  # a docker SDK Container
    slot: Path  # host folder holding the container's per-submission mounts
    folders: dict[str, Path]  # container path -> its folder in the slot
    sources: dict[str, tuple[int, int]] = field(default_factory=dict)  # direct mount -> (device, inode) at creation
    created: float = field(default_factory=time.monotonic)

    def stale_sources(self) -> list[str]:
        """The direct mounts whose host path now names another file or folder (or nothing)."""
        stale = []
        for path, identity in self.sources.items():
            try:
                info = os.stat(path)
            except OSError:
                stale.append(path)
                continue
            if (info.st_dev, info.st_ino) != identity:
                stale.append(path)
        return stale


def source_identity(paths: list[str]) -> dict[str, tuple[int, int]]:
    """(device, inode) of each path, to tell later whether a path still names the same thing."""
    identity = {}
    for path in paths:
        info = os.stat(path)
        identity[path] = (info.st_dev, info.st_ino)
    return identity


class WarmPool:
    """Up to `size` waiting containers per key, refilled in the background; see the module docstring."""

    def __init__(self, size: int = 1, max_age: float = 900.0, max_keys: int = 4) -> None:
        self.size = max(0, int(size))
        self.max_age = float(max_age)
        self.max_keys = max(1, int(max_keys))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a container was made (or failed to be)
        self._ready: dict[str, list[Warm]] = {}
        self._pending: dict[str, int] = {}
        self._used: dict[str, float] = {}  # key -> last time it was asked for
        self._closed = False
        self._filler = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-judges")
        self.made = 0
        self.taken = 0
        self.discarded = 0

    @property
    def enabled(self) -> bool:
        return self.size > 0 and not self._closed

    def take(self, key: str, alive: Callable[[Warm], bool], wait: float = 0.0) -> Optional[Warm]:
        """A usable container of `key` (it leaves the pool), or None; a replacement is asked for either way.

        `alive` tells whether a container still runs (one engine call);
        containers failing it, too old or with moved mounts are removed.
        When none waits but one of `key` is being made, wait up to `wait`
        seconds for it.
        """
        if not self.enabled:
            return None
        found: Optional[Warm] = None
        dropped: list[Warm] = []
        deadline = time.monotonic() + wait
        with self._lock:
            self._used[key] = time.monotonic()
            while found is None:
                waiting = self._ready.get(key, [])
                while waiting and found is None:
                    candidate = waiting.pop(0)
                    if self._usable(candidate, alive):
                        found = candidate
                    else:
                        dropped.append(candidate)
                left = deadline - time.monotonic()
                if found is not None or dropped or not self._pending.get(key) or left <= 0 or self._closed:
                    break
                self._changed.wait(left)
        for warm in dropped:
            self.discarded += 1
            self.remove(warm)
        if found is not None:
            self.taken += 1
        return found

    def _usable(self, warm: Warm, alive: Callable[[Warm], bool]) -> bool:
        if time.monotonic() - warm.created > self.max_age:
            logger.info("warm container %s is older than %g s: replaced", warm.container.short_id, self.max_age)
            return False
        stale = warm.stale_sources()
        if stale:
            logger.info("warm container %s mounts folders replaced since (%s): replaced",
                        warm.container.short_id, ", ".join(stale))
            return False
        try:
            if not alive(warm):
                logger.warning("warm container %s is no longer running: replaced", warm.container.short_id)
                return False
        except Exception as exc:  # noqa: BLE001 - an engine error makes it unusable, not the step
            logger.warning("warm container %s could not be checked: %s", warm.container.short_id, exc)
            return False
        return True

    def fill(self, key: str, make: Callable[[], Warm]) -> None:
        """Start containers of `key` in the background until `size` wait or are being made."""
        if not self.enabled:
            return
        evicted: list[Warm] = []
        with self._lock:
            self._used[key] = time.monotonic()
            # Few keys are kept: the least recently used one goes first.
            keys = set(self._ready) | {k for k, n in self._pending.items() if n} | {key}
            while len(keys) > self.max_keys:
                oldest = min((k for k in keys if k != key), key=lambda k: self._used.get(k, 0.0))
                evicted += self._ready.pop(oldest, [])
                self._used.pop(oldest, None)
                keys.discard(oldest)
            missing = self.size - len(self._ready.get(key, [])) - self._pending.get(key, 0)
            for _ in range(max(0, missing)):
                self._pending[key] = self._pending.get(key, 0) + 1
                try:
                    self._filler.submit(self._make_one, key, make)
                except RuntimeError:  # the filler was shut down by close()
                    self._pending[key] -= 1
        for warm in evicted:
            self.remove(warm)

    def _make_one(self, key: str, make: Callable[[], Warm]) -> None:
        warm: Optional[Warm] = None
        try:
            if self._closed:
                return
            warm = make()
            self.made += 1
        except Exception as exc:  # noqa: BLE001 - the next step of the key simply runs cold
            logger.warning("a warm container could not be started: %s", exc)
        finally:
            keep = False
            with self._lock:
                self._pending[key] = max(0, self._pending.get(key, 0) - 1)
                if warm is not None and not self._closed and key in self._used:
                    self._ready.setdefault(key, []).append(warm)
                    keep = True
                self._changed.notify_all()
            if warm is not None and not keep:
                self.remove(warm)

    def waiting(self, key: Optional[str] = None) -> list[Warm]:
        """The containers waiting now (of `key`, or of every key)."""
        with self._lock:
            if key is not None:
                return list(self._ready.get(key, []))
            return [warm for items in self._ready.values() for warm in items]

    def wait_ready(self, key: str, timeout: float = 60.0) -> bool:
        """Block until a container of `key` waits (or `timeout` passes); for tests and benchmarks."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._ready.get(key):
                    return True
            time.sleep(0.02)
        return False

    @staticmethod
    def remove(warm: Warm) -> None:
        """Remove the container and its slot."""
        try:
            warm.container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - already gone, or the engine is; orphans are cleaned later
            if "No such container" not in str(exc) and "404" not in str(exc):
                logger.warning("could not remove warm container %s: %s", warm.container.short_id, exc)
        shutil.rmtree(warm.slot, ignore_errors=True)

    def close(self) -> None:
        """Remove every waiting container; nothing is made afterwards (the executor runs steps cold)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        # Containers being made now are removed by their maker, which sees the pool closed.
        self._filler.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            left = [warm for items in self._ready.values() for warm in items]
            self._ready.clear()
            self._pending.clear()
        for warm in left:
            self.remove(warm)
