"""The artifact store: datasets, programs, submissions, logs and outputs.

Datasets and programs are content-addressed: `put_*` returns the SHA-256 of the
stored bytes as the key, so the same data uploaded twice is stored once and a
bundle can refer to it by key.  Other artifacts (submission files, logs, output
folders) live under plain paths.  The default backend is a local directory;
the interface is small so that an fsspec-backed store can stand beside it.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


def is_dataset_key(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class LocalStore:
    """Artifacts in a local directory: `datasets/ab/abcdef…` and `files/…`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        (self.root / "datasets").mkdir(parents=True, exist_ok=True)
        (self.root / "files").mkdir(parents=True, exist_ok=True)

    # -- content-addressed datasets ------------------------------------------
    def dataset_path(self, key: str) -> Path:
        if not is_dataset_key(key):
            raise KeyError(f"not a dataset key: {key!r}")
        return self.root / "datasets" / key[:2] / key

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
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        key = digest.hexdigest()
        target = self.dataset_path(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return key

    def open_dataset(self, key: str) -> BinaryIO:
        return open(self.dataset_path(key), "rb")

    def dataset_size(self, key: str) -> int:
        return self.dataset_path(key).stat().st_size

    # -- plain files -----------------------------------------------------------
    def file_path(self, relpath: str) -> Path:
        parts = Path(relpath).parts
        if not parts or relpath.startswith("/") or ".." in parts:
            raise ValueError(f"bad artifact path {relpath!r}")
        return self.root / "files" / relpath

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
