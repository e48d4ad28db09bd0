"""An artifact store in an S3-compatible object store (AWS S3, MinIO, Ceph, ...), through fsspec's s3fs.

`c.Compete.storage_url = "s3://bucket/prefix"` selects it, with
`c.Compete.storage_options` for s3fs (endpoint, credentials, region).  The
objects are laid out as a local store's folder is (`contract.StoreLayout`:
`<prefix>/datasets/ab/<key>`, `<prefix>/files/...`), so a store's content
can be copied between the two with any S3 tool.

What the platform reads from it:

- `open_dataset` streams an object (the service's downloads and per-run
  links read it in chunks);
- `dataset_url` signs a presigned GET URL of a dataset: the workers of every
  queue fetch a run's datasets from the object store itself
  (`Job.data_urls`), and the store has no folder they read (`root` is None);
- `dataset_path` and `file_path` give a file of this machine for the callers
  that read one (bundle export, outputs, logs): a read-through cache below
  `cache_dir`, filled on first use.  Datasets are content-addressed and a
  run's files are written once per attempt, so a cached copy never goes
  stale; `put_file_bytes` and `delete_file` change both.

The read-through cache is bounded (`cache_max_bytes`,
`c.Compete.storage_cache_max_bytes`): past the cap, the least recently
used files are removed (every read through `dataset_path`/`file_path`
marks its file used).  Never removed: a file handed out in the last
`cache_grace` seconds (its caller is about to open it), and a file that is
open in any process of this machine (served at this moment): eviction
takes a Linux write lease on it first, which the kernel grants only when
no one else has the file open.  The processes of one platform share the
folder; one of them trims it at a time.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Optional

from .contract import StoreLayout
from .storage import Store, file_key, is_dataset_key

_CHUNK = 1 << 20
DEFAULT_CACHE_MAX_BYTES = 10 << 30
# Seconds after a file of the cache was handed out during which it is never evicted.
CACHE_GRACE = 60.0
# Seconds after which a process measures the cache folder again (others fill it too).
_REMEASURE_EVERY = 30.0
_TRIM_LOCK = ".trim.lock"

log = logging.getLogger("compete.storage")


def parse_s3_url(url: str) -> str:
    """`bucket/prefix` of `s3://bucket/prefix` (ValueError for anything else)."""
    if not url.startswith("s3://") or not url[5:].strip("/"):
        raise ValueError(f"not an S3 URL (s3://bucket/prefix): {url!r}")
    return url[5:].strip("/")


class S3Store(Store):
    """Artifacts as objects below `s3://bucket/prefix`, with a local read-through cache."""

    def __init__(self, url: str, *, storage_options: Optional[dict[str, Any]] = None,
                 cache_dir: str | os.PathLike, cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
                 cache_grace: float = CACHE_GRACE, **kwargs: Any):
        super().__init__(**kwargs)
        # Imported here: s3fs (and botocore) is needed only by platforms that keep artifacts in S3.
        import s3fs

        self.url = url
        self.base = parse_s3_url(url)
        self.fs = s3fs.S3FileSystem(**dict(storage_options or {}))
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_max_bytes = int(cache_max_bytes)
        self.cache_grace = float(cache_grace)
        # Bytes the cache holds, as this process last measured them plus what it added since.
        self._cache_bytes = 0
        self._measured_at = float("-inf")
        self._cache_lock = threading.Lock()
        bucket = self.base.split("/", 1)[0]
        if not self.fs.exists(bucket):
            raise ValueError(f"c.Compete.storage_url = {url!r}: the bucket {bucket!r} does not exist or cannot be "
                             "read with c.Compete.storage_options; create it first")
        self.root = None

    # -- where things are ------------------------------------------------------------------
    def _remote(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def _cached(self, rel: str, missing_ok: bool = False) -> Path:
        """The local copy of the object `rel`, fetched when not cached; a path that does not exist when
        the object does not (with `missing_ok`)."""
        local = self.cache_dir / rel
        if local.is_file():
            try:
                os.utime(local)  # used now: the last file eviction would take
                return local
            except FileNotFoundError:
                pass  # evicted meanwhile: fetched again below
        remote = self._remote(rel)
        try:
            is_dir = self.fs.isdir(remote)
        except FileNotFoundError:
            is_dir = False
        if is_dir:
            for path in self.fs.find(remote):
                self._cached(path[len(self.base) + 1:])
            return local
        if not self.fs.exists(remote):
            if missing_ok:
                return local
            raise FileNotFoundError(rel)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        os.close(fd)
        try:
            # Copied in chunks (s3fs's get_file holds the whole object in memory).
            with self.fs.open(remote, "rb", block_size=8 * _CHUNK) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)
        self._added(local)
        return local

    # -- the cache's size cap --------------------------------------------------------------
    def _cache_files(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every cached file (not the temporary files of fills under way)."""
        found = []
        stack = [self.cache_dir]
        while stack:
            try:
                with os.scandir(stack.pop()) as entries:
                    for entry in entries:
                        if entry.name.startswith("."):
                            continue
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(Path(entry.path))
                            elif entry.is_file(follow_symlinks=False):
                                st = entry.stat(follow_symlinks=False)
                                found.append((st.st_mtime, st.st_size, Path(entry.path)))
                        except FileNotFoundError:
                            continue
            except FileNotFoundError:
                continue
        return found

    def cache_bytes(self) -> int:
        """Bytes of the files in the read-through cache now."""
        return sum(size for _, size, _ in self._cache_files())

    def _added(self, local: Path) -> None:
        """Count a file just put in the cache; trim the cache when it is over its cap."""
        try:
            size = local.stat().st_size
        except FileNotFoundError:
            return
        with self._cache_lock:
            if time.monotonic() - self._measured_at > _REMEASURE_EVERY:
                self._cache_bytes = self.cache_bytes()
                self._measured_at = time.monotonic()
            else:
                self._cache_bytes += size
            over = self._cache_bytes > self.cache_max_bytes
        if over:
            self.trim_cache()

    def trim_cache(self, max_bytes: Optional[int] = None) -> list[Path]:
        """Remove least recently used files until the cache holds at most `max_bytes` (default: the cap);
        returns the files removed.  Files handed out within `cache_grace` seconds, or open in any process,
        stay, even when the cap cannot be met without them.  Another process trimming: nothing done."""
        cap = self.cache_max_bytes if max_bytes is None else int(max_bytes)
        lock = os.open(self.cache_dir / _TRIM_LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        removed: list[Path] = []
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return removed
            files = self._cache_files()
            total = sum(size for _, size, _ in files)
            for _mtime, size, path in sorted(files, key=lambda item: item[0]):
                if total <= cap:
                    break
                if self._evict(path):
                    total -= size
                    removed.append(path)
            with self._cache_lock:
                self._cache_bytes = total
                self._measured_at = time.monotonic()
        finally:
            os.close(lock)
        if removed:
            log.info("artifact cache: %d least recently used files removed, %d bytes left (cap %d)",
                     len(removed), total, cap)
        return removed

    def _evict(self, path: Path) -> bool:
        """Remove one cached file unless it was used within the grace period or is open anywhere."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return False
        try:
            leased = False
            try:
                # The kernel signals a lease holder when another process opens the file meanwhile: a
                # signal whose default is to be ignored, not SIGIO's (which ends the process).
                fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
                leased = True
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EBUSY):
                    return False  # open in some process: being read now
                # No leases on this file system: the grace period alone protects readers (an open
                # file's content stays readable after its name is removed).
            try:
                # Checked again under the lease: a reader may have taken it since the folder was listed.
                if time.time() - os.fstat(fd).st_mtime < self.cache_grace:
                    return False
                os.unlink(path)
                return True
            except FileNotFoundError:
                return False
            finally:
                if leased:
                    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        finally:
            os.close(fd)

    # -- content-addressed datasets ------------------------------------------------------
    def dataset_path(self, key: str) -> Path:
        return self._cached(StoreLayout.dataset(key), missing_ok=True)

    def has_dataset(self, key: str) -> bool:
        if not is_dataset_key(key):
            return False
        return (self.cache_dir / StoreLayout.dataset(key)).is_file() or self.fs.exists(
            self._remote(StoreLayout.dataset(key)))

    def put_dataset_bytes(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        remote = self._remote(StoreLayout.dataset(key))
        if not self.fs.exists(remote):
            self.fs.pipe_file(remote, data)
        return key

    def put_dataset_file(self, path: str | os.PathLike) -> str:
        key = file_key(path)
        remote = self._remote(StoreLayout.dataset(key))
        if not self.fs.exists(remote):
            self.fs.put_file(str(path), remote)
        return key

    def open_dataset(self, key: str) -> BinaryIO:
        return self.fs.open(self._remote(StoreLayout.dataset(key)), "rb", block_size=8 * _CHUNK)

    def dataset_size(self, key: str) -> int:
        return int(self.fs.size(self._remote(StoreLayout.dataset(key))))

    def delete_dataset(self, key: str) -> None:
        rel = StoreLayout.dataset(key)
        if self.fs.exists(self._remote(rel)):
            self.fs.rm(self._remote(rel))
        (self.cache_dir / rel).unlink(missing_ok=True)

    def dataset_url(self, key: str, expires: float = 3600.0) -> Optional[str]:
        return self.fs.sign(self._remote(StoreLayout.dataset(key)), expiration=int(expires))

    # -- plain files -----------------------------------------------------------------------
    @staticmethod
    def _check(relpath: str) -> str:
        parts = Path(relpath).parts
        if not parts or relpath.startswith("/") or ".." in parts:
            raise ValueError(f"bad artifact path {relpath!r}")
        return StoreLayout.file(relpath)

    def file_path(self, relpath: str) -> Path:
        return self._cached(self._check(relpath), missing_ok=True)

    def put_file_bytes(self, relpath: str, data: bytes) -> Path:
        rel = self._check(relpath)
        self.fs.pipe_file(self._remote(rel), data)
        local = self.cache_dir / rel
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, local)
        self._added(local)
        return local

    def delete_file(self, relpath: str) -> None:
        rel = self._check(relpath)
        remote = self._remote(rel)
        if self.fs.exists(remote):
            self.fs.rm(remote, recursive=True)
        local = self.cache_dir / rel
        if local.is_dir():
            shutil.rmtree(local)
        elif local.exists():
            local.unlink()

    def usage_bytes(self) -> int:
        try:
            return int(self.fs.du(self.base))
        except FileNotFoundError:
            return 0
