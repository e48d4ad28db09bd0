"""The artifact store: datasets, programs, submissions, logs and outputs.

Datasets and programs are content-addressed: `put_*` returns the SHA-256 of the
stored bytes as the key, so the same data uploaded twice is stored once and a
bundle can refer to it by key.  Other artifacts (submission files, logs, output
folders) live under plain paths below `files/`.  Where each lives below the
store's root is `contract.StoreLayout`, which workers share.

`Store` is the interface the platform and its workers use; `LocalStore` (a
local directory) is the default implementation, and `storage_s3.S3Store` an
S3-compatible object store.  The platform builds its store with
`stores.make_store(config)`, chosen by `c.Compete.storage_url`: a path or
`file:///path` is a `LocalStore` (or `c.Compete.store_class`, a `Store`
subclass built at that path), `s3://bucket/prefix` an `S3Store` with
`c.Compete.storage_options`.  A store class is a traitlets
`LoggingConfigurable`, so its own options are `c.<StoreClass>.<trait>`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Optional

from traitlets.config import LoggingConfigurable

from .contract import StoreLayout

_CHUNK = 1 << 20


def is_dataset_key(value: str) -> bool:
    return StoreLayout.is_dataset_key(value)


def file_key(path: str | os.PathLike) -> str:
    """The dataset key of a file: the SHA-256 of its bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Store(LoggingConfigurable):
    """Where artifacts live: the methods the platform and the default queue's workers rely on.

    Datasets are named by key (the SHA-256 of their bytes), other files by a
    path below `files/` (`StoreLayout`).  Paths returned are paths of this
    machine that the platform reads and serves; `root` is the store's
    folder, which workers of the platform's own machine read and write
    (`Job.store_root`), or None when the store has no such folder (then
    every queue gets datasets with the job and sends files back inline).
    """

    root: Optional[Path] = None

    # -- content-addressed datasets ------------------------------------------
    def dataset_path(self, key: str) -> Path:
        """The local file of dataset `key` (KeyError for a value that is not a key)."""
        raise NotImplementedError

    def has_dataset(self, key: str) -> bool:
        raise NotImplementedError

    def put_dataset_bytes(self, data: bytes) -> str:
        """Store `data`; returns its key."""
        raise NotImplementedError

    def put_dataset_file(self, path: str | os.PathLike) -> str:
        """Store the file at `path` (copied, streamed); returns its key."""
        raise NotImplementedError

    def open_dataset(self, key: str) -> BinaryIO:
        return open(self.dataset_path(key), "rb")

    def dataset_size(self, key: str) -> int:
        return self.dataset_path(key).stat().st_size

    def delete_dataset(self, key: str) -> None:
        """Remove dataset `key`; nothing when it is not there.  Callers make sure no row refers to it
        (keys are shared by every competition uploaded from the same bytes)."""
        raise NotImplementedError

    def dataset_url(self, key: str, expires: float = 3600.0) -> Optional[str]:
        """A URL a worker can fetch dataset `key` from for `expires` seconds, signed by the store itself
        (an object store's presigned URL); None when the store has none (the service's per-run link is used)."""
        return None

    # -- plain files -----------------------------------------------------------
    def file_path(self, relpath: str) -> Path:
        """The local path of the file `relpath` (below `files/`); ValueError for a path leaving it."""
        raise NotImplementedError

    def put_file_bytes(self, relpath: str, data: bytes) -> Path:
        raise NotImplementedError

    def delete_file(self, relpath: str) -> None:
        """Remove the file or folder `relpath`; nothing when it is not there."""
        raise NotImplementedError

    def usage_bytes(self) -> int:
        """Bytes the store holds in all."""
        raise NotImplementedError

    def folder_bytes(self, relpath: str) -> dict[str, int]:
        """Bytes below each folder in `relpath` (below `files/`), by folder name, read in one walk
        (here: of the local folder `file_path` gives; a store whose files are elsewhere says it its way)."""
        sizes: dict[str, int] = {}
        top = self.file_path(relpath)
        if not top.is_dir():
            return sizes
        for child in top.iterdir():
            if child.is_dir() and not child.is_symlink():
                sizes[child.name] = sum(p.stat().st_size for p in child.rglob("*") if p.is_file())
        return sizes


class LocalStore(Store):
    """Artifacts in a local directory: `datasets/ab/abcdef…` and `files/…` (`StoreLayout`)."""

    def __init__(self, root: str | os.PathLike, **kwargs: Any):
        super().__init__(**kwargs)
        self.root = Path(root)
        (self.root / StoreLayout.DATASETS).mkdir(parents=True, exist_ok=True)
        (self.root / StoreLayout.FILES).mkdir(parents=True, exist_ok=True)

    # -- content-addressed datasets ------------------------------------------
    def dataset_path(self, key: str) -> Path:
        return self.root / StoreLayout.dataset(key)

    def has_dataset(self, key: str) -> bool:
        return is_dataset_key(key) and self.dataset_path(key).is_file()

    def put_dataset_bytes(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        target = self.dataset_path(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            self._atomic_write(target, data)
        return key

    def put_dataset_file(self, path: str | os.PathLike) -> str:
        key = file_key(path)
        target = self.dataset_path(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return key

    def delete_dataset(self, key: str) -> None:
        self.dataset_path(key).unlink(missing_ok=True)

    # -- plain files -----------------------------------------------------------
    def file_path(self, relpath: str) -> Path:
        parts = Path(relpath).parts
        if not parts or relpath.startswith("/") or ".." in parts:
            raise ValueError(f"bad artifact path {relpath!r}")
        return self.root / StoreLayout.file(relpath)

    def put_file_bytes(self, relpath: str, data: bytes) -> Path:
        target = self.file_path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._atomic_write(target, data)
        return target

    def delete_file(self, relpath: str) -> None:
        target = self.file_path(relpath)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    @staticmethod
    def _atomic_write(target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
