"""Leaderboard reads and rebuilds done by processes of their own, so that the service's loop never waits on them.

A page of a maintained board costs a few statements and some Python (rows
turned into JSON).  Done in threads of the service, twenty clients reading at
once hold the service's GIL, and every other request, `/health` among them,
waits for its turn.  `BoardReaders` answers the leaderboard API, page and
history from a small pool of worker processes (`c.Compete.board_reader_processes`),
each with its own engine on the same database; the API gets its answer as
finished JSON, so the loop only writes bytes.  With no processes, or when the
pool breaks (a worker killed), the service's blocking threads answer, as the
same functions (`answer_json`), and the pool is started again for later reads.
`BoardBuilder` is one more such process: it ranks a phase's boards again
after results (`app.refresher`), seconds of Python at a hundred thousand
submissions.

A worker ignores Ctrl-C (the service stops it) and exits by itself when the
service's process is gone.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import PurePath
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

# The worker's own leaderboards (set by `_start_worker`).
_leaderboards: Any = None


def json_default(value: Any) -> Any:
    """What the JSON answers write for values json does not know (times, sets, paths)."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, PurePath):
        return value.name
    raise TypeError(f"{type(value).__name__} is not JSON")


def answer_json(answer: Callable[..., tuple[Optional[str], Optional[dict[str, Any]]]], *args: Any,
                **kwargs: Any) -> tuple[Optional[str], Optional[str]]:
    """`leaderboard_answer`'s (ETag, page) with the page as JSON text (None: not modified)."""
    etag, data = answer(*args, **kwargs)
    return etag, None if data is None else json.dumps(data, default=json_default)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start_worker(db_url: str, parent: int, home: Optional[str] = None) -> None:
    global _leaderboards
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    # The application layer is imported here, in the worker: the service's process has it already.
    from ..app.context import Context
    from ..app.leaderboards import Leaderboards
    from ..config import Compete
    from ..db import Database

    # Only the database, and the home's key of pseudonyms, are used by reads; the store stays unset.
    config = Compete(home=home) if home else Compete()
    _leaderboards = Leaderboards(Context(config=config, db=Database(db_url), store=None))  # type: ignore[arg-type]


def _read(name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    if name == "answer_json":
        return answer_json(_leaderboards.leaderboard_answer, *args, **kwargs)
    return getattr(_leaderboards, name)(*args, **kwargs)


def _worker_pool(db_url: str, processes: int, home: Optional[str] = None) -> ProcessPoolExecutor:
    """`processes` fresh interpreters (spawned: the service's threads are not forked), each with its engine."""
    return ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(db_url, os.getpid(), home))


def _ready() -> int:
    return os.getpid()


def _rebuild(phase_id: int, finished: tuple[int, ...]) -> None:
    # The application layer is imported here, in the worker (`_start_worker` opened its database).
    from ..app.standings import refresh_phase

    with _leaderboards.ctx.db.session() as s:
        refresh_phase(s, phase_id, finished=finished)


class BoardReaders:
    """A pool of `processes` worker processes that read leaderboards from the database at `db_url`
    (with the platform's `home`, where the key of pseudonyms is)."""

    NAMES = ("answer_json", "leaderboard_view", "best_score_history")

    def __init__(self, db_url: str, processes: int, home: Optional[str] = None):
        self.db_url = db_url
        self.processes = processes
        self.home = home
        self._lock = threading.Lock()
        self._pool: Optional[ProcessPoolExecutor] = None
        self.pool()  # started now, so that the first reader does not wait for the workers' imports

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = _worker_pool(self.db_url, self.processes, self.home)
                for _ in range(self.processes):
                    self._pool.submit(_ready)
            return self._pool

    async def read(self, name: str, *args: Any, fallback: Callable[..., Any], **kwargs: Any) -> Any:
        """`name(*args, **kwargs)` in a worker; `fallback` (the same read in the service's blocking threads)
        answers when the pool is broken."""
        if name not in self.NAMES:
            raise ValueError(f"no board read {name!r}")
        pool = self.pool()
        try:
            return await asyncio.wrap_future(pool.submit(_read, name, args, kwargs))
        except BrokenProcessPool:
            log.warning("the leaderboard readers' pool broke (a worker exited); it is started again")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return await fallback()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class BoardBuilder:
    """One process that ranks boards again after results (`app.refresher.BoardRefresher`'s `rebuild`):
    seconds of Python at a hundred thousand submissions, never on the service's GIL."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._lock = threading.Lock()
        self._pool: Optional[ProcessPoolExecutor] = None

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = _worker_pool(self.db_url, 1)
            return self._pool

    def __call__(self, phase_id: int, finished: tuple[int, ...]) -> None:
        for attempt in range(2):
            pool = self._get()
            try:
                return pool.submit(_rebuild, phase_id, finished).result()
            except BrokenProcessPool:
                log.warning("the board builder's process exited; it is started again")
                with self._lock:
                    if self._pool is pool:
                        self._pool = None
                if attempt:
                    raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
