"""Leaderboard reads and rebuilds done by processes of their own, so that the service's loop never waits on them.

A page of a maintained board costs a few statements and some Python (rows
turned into JSON).  Done in threads of the service, twenty clients reading at
once hold the service's GIL, and every other request, `/health` among them,
waits for its turn.  `BoardReaders` answers the leaderboard API, page and
history from a few reader processes (`c.Compete.board_reader_processes`),
each with its own engine on the same database, over a pipe each that the
service's loop reads itself (no thread of the service in between: one would
take the GIL from the loop at every request).  The API gets its answer as
finished JSON, kept by its ETag while it is current (`Answers`), so the loop
only writes bytes.  With no processes, or when one exits (killed), the
service's blocking threads answer, as the same functions (`answer_json`),
and the process is started again for later reads.
`BoardBuilder` is one more such process: it ranks a phase's boards again
after results (`app.refresher`), seconds of Python at a hundred thousand
submissions.

A worker ignores Ctrl-C (the service stops it) and exits by itself when the
service's process is gone.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import json
import logging
import multiprocessing
import os
import pickle
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


class Answers:
    """Answers kept as JSON text by their ETag, the most recently used first, up to `max_bytes` in all.

    An ETag names one answer (the board's version, the phase, who asks and
    what they asked: `leaderboards._etag`), so a kept answer is served while
    its ETag is current, without reading rows or encoding them again.
    """

    def __init__(self, max_bytes: int = 16 << 20):
        self.max_bytes = max_bytes
        self.size = 0
        self._lock = threading.Lock()
        self._texts: collections.OrderedDict[str, str] = collections.OrderedDict()

    def __contains__(self, etag: object) -> bool:
        with self._lock:
            return etag in self._texts

    def get(self, etag: str) -> Optional[str]:
        with self._lock:
            text = self._texts.get(etag)
            if text is not None:
                self._texts.move_to_end(etag)
            return text

    def put(self, etag: str, text: str) -> None:
        if len(text) > self.max_bytes // 8:
            return
        with self._lock:
            old = self._texts.pop(etag, None)
            self.size += len(text) - (len(old) if old is not None else 0)
            self._texts[etag] = text
            while self.size > self.max_bytes:
                self.size -= len(self._texts.popitem(last=False)[1])


# A reader process's answers (it reads one database).
ANSWERS = Answers()


def answer_json(answer: Callable[..., tuple[Optional[str], Optional[dict[str, Any]]]], *args: Any,
                answers: Optional[Answers] = None, **kwargs: Any) -> tuple[Optional[str], Optional[str]]:
    """`leaderboard_answer`'s (ETag, page) with the page as JSON text (None: not modified).

    The text of an answer is kept in `answers` by its ETag: while the ETag
    is current, a request costs the statement that locates the board.
    Answers naming a baseline's solution are not kept (a solution's name is
    not part of the ETag).
    """
    tags = list(kwargs.get("if_none_match") or ())
    etag, data = answer(*args, have=answers if answers is not None else (), **kwargs)
    if data is None:
        if etag in tags or "*" in tags or answers is None:
            return etag, None
        kept = answers.get(etag) if etag is not None else None
        if kept is not None:
            return etag, kept
        # Dropped since the check (another thread's answers pushed it out): read it again.
        etag, data = answer(*args, **kwargs)
        if data is None:
            return etag, None
    text = json.dumps(data, default=json_default)
    if answers is not None and etag is not None and not any(r.get("baseline") for r in data.get("rows") or ()):
        answers.put(etag, text)
    return etag, text


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
        return answer_json(_leaderboards.leaderboard_answer, *args, answers=ANSWERS, **kwargs)
    return getattr(_leaderboards, name)(*args, **kwargs)


def _worker_pool(db_url: str, processes: int, home: Optional[str] = None) -> ProcessPoolExecutor:
    """`processes` fresh interpreters (spawned: the service's threads are not forked), each with its engine."""
    return ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(db_url, os.getpid(), home))


def _rebuild(phase_id: int, finished: tuple[int, ...]) -> None:
    # The application layer is imported here, in the worker (`_start_worker` opened its database).
    from ..app.standings import refresh_phase

    with _leaderboards.ctx.db.session() as s:
        refresh_phase(s, phase_id, finished=finished)


class ReaderGone(Exception):
    """The reader process that had the request exited before answering."""


def _serve(conn: Any, db_url: str, parent: int, home: Optional[str] = None) -> None:
    """A reader process: requests `(id, name, args, kwargs)` from `conn`, answers `(id, ok, value)`, in order."""
    _start_worker(db_url, parent, home)
    while True:
        try:
            request_id, name, args, kwargs = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the service closed its end, or is gone
        try:
            answer = (request_id, True, _read(name, args, kwargs))
        except Exception as exc:  # noqa: BLE001 - the service raises it where the request is
            answer = (request_id, False, exc)
        try:
            data = pickle.dumps(answer)
        except Exception as exc:  # noqa: BLE001 - an error that does not pickle is told as text
            data = pickle.dumps((request_id, False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        conn.send_bytes(data)


class _Reader:
    """One reader process, the service's end of its pipe and the requests it has not answered yet.

    The service's loop reads the pipe when it is readable: no thread of the
    service is involved (a thread of its own would take the GIL from the loop
    for each request).
    """

    def __init__(self, db_url: str, home: Optional[str] = None):
        context = multiprocessing.get_context("spawn")  # the service's threads are not forked
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, db_url, os.getpid(), home), daemon=True,
                                       name="compete-board-reader")
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future] = {}
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.gone = False

    def send(self, request_id: int, name: str, args: tuple, kwargs: dict[str, Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
            loop.add_reader(self.conn.fileno(), self._readable)
        future = loop.create_future()
        self.pending[request_id] = future
        try:
            self.conn.send_bytes(pickle.dumps((request_id, name, args, kwargs)))
        except (OSError, ValueError):
            self._fail()
        return future

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                request_id, ok, value = pickle.loads(self.conn.recv_bytes())
                future = self.pending.pop(request_id, None)
                if future is None or future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (EOFError, OSError):
            self._fail()

    def _fail(self) -> None:
        """The process is gone: its requests fail with ReaderGone, and it reads no more."""
        if not self.gone:
            self.gone = True
            self._unwatch()
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ReaderGone(f"board reader {self.process.pid} exited"))

    def _unwatch(self) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop or not loop.is_running():
            loop.remove_reader(self.conn.fileno())
            return
        done = threading.Event()

        def remove() -> None:
            loop.remove_reader(self.conn.fileno())
            done.set()

        loop.call_soon_threadsafe(remove)
        done.wait(5)

    @property
    def alive(self) -> bool:
        return not self.gone and self.process.is_alive()

    def close(self) -> None:
        if not self.gone:
            self.gone = True
            self._unwatch()
        self.conn.close()  # the process reads the end of its pipe and exits
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class BoardReaders:
    """`processes` reader processes that read leaderboards from the database at `db_url` (with the
    platform's `home`, where the key of pseudonyms is).

    A request goes to the process with the fewest unanswered requests.  A
    process that exited (killed, crashed) fails the requests it had, which
    the service's threads then answer (`read`'s `fallback`), and is replaced
    by a new one for later requests; the others go on.
    """

    NAMES = ("answer_json", "leaderboard_view", "best_score_history")
    # Unanswered requests per process beyond which the service's threads answer (a stuck process).
    MAX_PENDING = 256

    def __init__(self, db_url: str, processes: int, home: Optional[str] = None):
        self.db_url = db_url
        self.processes = processes
        self.home = home
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # Started now, so that the first reader does not wait for the processes' imports.
        self._readers: list[_Reader] = [_Reader(db_url, home) for _ in range(processes)]

    def pids(self) -> list[int]:
        """The process ids of the readers (dead ones replaced first)."""
        return [r.process.pid for r in self._current()]

    def _current(self) -> list[_Reader]:
        with self._lock:
            for i, reader in enumerate(self._readers):
                if not reader.alive:
                    reader.close()
                    self._readers[i] = _Reader(self.db_url, self.home)
            return list(self._readers)

    async def read(self, name: str, *args: Any, fallback: Callable[..., Any], **kwargs: Any) -> Any:
        """`name(*args, **kwargs)` in a reader process; `fallback` (the same read in the service's blocking
        threads) answers when the process exits before answering, or all are busy past `MAX_PENDING`."""
        if name not in self.NAMES:
            raise ValueError(f"no board read {name!r}")
        reader = min(self._current(), key=lambda r: len(r.pending))
        if len(reader.pending) >= self.MAX_PENDING:
            log.warning("the leaderboard readers have %d requests each unanswered; the service answers this one",
                        len(reader.pending))
            return await fallback()
        try:
            return await reader.send(next(self._ids), name, args, kwargs)
        except ReaderGone:
            log.warning("a leaderboard reader exited (pid %s); it is started again", reader.process.pid)
            return await fallback()

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()


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
