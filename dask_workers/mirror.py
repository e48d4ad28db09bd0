"""Pass files between two steps that run at the same time, as data only.

With Codabench's `ingestion_only_during_scoring`, the ingestion program
(participant code) and the scoring program (which sees the reference data
at `/app/input/ref`) run side by side.  If they shared one folder, a link
the ingestion leaves there (`answer.txt -> /app/input/ref/answer.txt`) would
resolve inside the scoring container to the truth, before any clean-up
after the step.  So each step gets folders of its own, and a `FolderMirror`
thread of the worker copies between them:

- the ingestion's output folder into the scoring step's `input/res`, one way;
- the two `shared` folders both ways (the ingestion's side wins a tie).

Only regular files are copied, each read with `O_NOFOLLOW` on every path
component and written below the destination without following any link
there either (a temporary name, then a rename in the same folder).  A file
is copied again whenever its size or modification time changes; copies keep
the source's modification time, which is how the two directions of the
shared folder agree on what is new.  Links and special files are never
passed on: each is reported once through `log`.

Order matters to programs that signal "done" through the shared folder
after writing their predictions: each pass lists the shared folders
before it copies the outputs, so a signal is never passed on before the
files written ahead of it.
"""
from __future__ import annotations

import errno
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .safe_files import REMOVED_SUFFIX, open_beneath, walk_entries

LogFn = Callable[[str], None]
TEMP_PREFIX = ".compete-sync-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Route:
    """Copy regular files from `source` to `destination`; `what` names the source for people."""

    source: Path
    destination: Path
    what: str
    wins_ties: bool = True


@dataclass
class _Change:
    rel: str
    is_dir: bool
    mtime_ns: int = 0


class FolderMirror:
    """Mirrors `outputs` (one way) and `shared` (both ways) every `interval` seconds while started."""

    def __init__(self, outputs: list[Route], shared: list[Route], log: Optional[LogFn] = None,
                 interval: float = 0.1):
        self.outputs = outputs
        self.shared = shared
        self.log = log or (lambda message: None)
        self.interval = interval
        self.reported: set[tuple[str, str]] = set()
        self.copies = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._counter = 0

    # -- running ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="folder-mirror")
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then pass on everything once more (the final state of the sources).

        Calling it again does nothing.  A failure of the last pass is logged,
        not raised: what was passed on so far stays.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.sync_once()
        except OSError as error:
            self.log(f"the last mirror pass failed: {error.strerror or error}")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except OSError as error:
                # A folder changed under the pass: the next pass sees the new state.
                self.log(f"mirror pass interrupted ({error.strerror}); trying again")

    def sync_once(self) -> None:
        """One pass: list the shared folders, copy the outputs, then the listed shared changes."""
        with self._lock:
            pending = [(route, self._changes(route)) for route in self.shared]
            for route in self.outputs:
                self._apply(route, self._changes(route))
            for route, changes in pending:
                self._apply(route, changes)

    # -- one route ----------------------------------------------------------------

    def _changes(self, route: Route) -> list[_Change]:
        changes: list[_Change] = []
        for rel, st in walk_entries(route.source):
            if rel.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                continue
            if stat.S_ISDIR(st.st_mode):
                changes.append(_Change(rel, True))
                continue
            if not stat.S_ISREG(st.st_mode):
                self._report(route, rel, st.st_mode)
                continue
            try:
                there = os.lstat(route.destination / rel)
            except OSError:
                there = None
            if there is not None and stat.S_ISREG(there.st_mode):
                newer = st.st_mtime_ns > there.st_mtime_ns
                tie = (st.st_mtime_ns == there.st_mtime_ns and st.st_size != there.st_size and route.wins_ties)
                if not (newer or tie):
                    continue
            changes.append(_Change(rel, False, st.st_mtime_ns))
        return changes

    def _report(self, route: Route, rel: str, mode: int) -> None:
        key = (str(route.source), rel)
        if key in self.reported:
            return
        self.reported.add(key)
        target = ""
        if stat.S_ISLNK(mode):
            try:
                target = " -> " + os.readlink(route.source / rel)
            except OSError:
                target = ""
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
        self.log(f"did not pass on {kind} {rel}{target} from {route.what}{REMOVED_SUFFIX}")

    def _apply(self, route: Route, changes: list[_Change]) -> None:
        for change in changes:
            try:
                if change.is_dir:
                    self._close(self._open_dir(route.destination, change.rel.split("/"), create=True))
                else:
                    self._copy(route, change.rel)
            except FileNotFoundError:
                continue  # removed since the listing
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EINVAL):
                    key = (str(route.destination), change.rel)
                    if key not in self.reported:
                        self.reported.add(key)
                        self.log(f"did not pass on {change.rel} from {route.what}: its place at the "
                                 "destination is not a plain file")
                    continue
                raise

    @staticmethod
    def _close(fd: Optional[int]) -> None:
        if fd is not None:
            os.close(fd)

    def _open_dir(self, root: Path, parts: list[str], create: bool) -> int:
        fd = os.open(root, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        self._own_like_parent(fd, part)
                    except FileExistsError:
                        pass
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _own_like_parent(dir_fd: int, name: str) -> None:
        # The destination may be a folder a program writes (the shared folder
        # of a step running as another uid): what appears there is its.
        parent = os.fstat(dir_fd)
        try:
            os.chown(name, parent.st_uid, parent.st_gid, dir_fd=dir_fd, follow_symlinks=False)
        except PermissionError:
            os.chmod(name, 0o777, dir_fd=dir_fd)

    def _copy(self, route: Route, rel: str) -> None:
        parts = rel.split("/")
        source = open_beneath(route.source, rel)
        try:
            st = os.fstat(source)
            dfd = self._open_dir(route.destination, parts[:-1], create=True)
            try:
                self._counter += 1
                temp = f"{TEMP_PREFIX}{os.getpid()}-{self._counter}"
                out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                              | getattr(os, "O_CLOEXEC", 0), 0o644, dir_fd=dfd)
                try:
                    with os.fdopen(os.dup(source), "rb") as reader, os.fdopen(out, "wb", closefd=False) as writer:
                        for chunk in iter(lambda: reader.read(1 << 20), b""):
                            writer.write(chunk)
                    parent = os.fstat(dfd)
                    try:
                        os.fchown(out, parent.st_uid, parent.st_gid)
                    except PermissionError:
                        os.fchmod(out, 0o666)
                    os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
                    os.close(out)
                    out = -1
                    os.rename(temp, parts[-1], src_dir_fd=dfd, dst_dir_fd=dfd)
                    self.copies += 1
                except BaseException:
                    if out >= 0:
                        os.close(out)
                    try:
                        os.unlink(temp, dir_fd=dfd)
                    except OSError:
                        pass
                    raise
            finally:
                os.close(dfd)
        finally:
            os.close(source)
