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
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Optional

from .contract import StoreLayout
from .storage import Store, file_key, is_dataset_key

_CHUNK = 1 << 20


def parse_s3_url(url: str) -> str:
    """`bucket/prefix` of `s3://bucket/prefix` (ValueError for anything else)."""
    if not url.startswith("s3://") or not url[5:].strip("/"):
        raise ValueError(f"not an S3 URL (s3://bucket/prefix): {url!r}")
    return url[5:].strip("/")


class S3Store(Store):
    """Artifacts as objects below `s3://bucket/prefix`, with a local read-through cache."""

    def __init__(self, url: str, *, storage_options: Optional[dict[str, Any]] = None,
                 cache_dir: str | os.PathLike, **kwargs: Any):
        super().__init__(**kwargs)
        # Imported here: s3fs (and botocore) is needed only by platforms that keep artifacts in S3.
        import s3fs

        self.url = url
        self.base = parse_s3_url(url)
        self.fs = s3fs.S3FileSystem(**dict(storage_options or {}))
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
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
            return local
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
            self.fs.get_file(remote, tmp)
            os.replace(tmp, local)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return local

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
