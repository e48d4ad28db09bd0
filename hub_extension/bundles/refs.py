"""Resolving what `competition.yaml` points at: files, folders, zips, stored keys.

A dialect reader hands every file-valued key (programs, data, pages, logo,
terms) to a `BundleFiles`, which checks it against the unpacked bundle: a
path must stay inside the bundle and exist; a nested `.zip` is checked with
the same unpacking limits as the bundle; a 64-hex value that names no file is
a stored dataset key and must be known to the store.  A UUID that names no
file is the key of a dataset on the server the bundle was exported from
(CodaLab and Codabench write those): it is looked for in the bundle as a folder
or a `.zip` of that name, and otherwise refused with what to do.  Problems go
to the shared `Issues` so that they are reported together.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, Protocol

from ..storage import is_dataset_key
from .fields import Issues
from .model import DataRef, PageSpec, SolutionSpec
from .unpack import UnpackLimits, check_zip_file, member_path

PROGRAM_METADATA = ("metadata", "metadata.yaml", "metadata.yml")
# How CodaLab and Codabench name their stored datasets (a UUID, with or without dashes).
FOREIGN_KEY = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def is_foreign_key(value: str) -> bool:
    """A dataset key of a CodaLab or Codabench server, as their exports write it."""
    return FOREIGN_KEY.fullmatch(value.strip()) is not None


def short_key(value: str) -> str:
    return value if len(value) <= 12 else value[:8] + "…"


class BundleFiles:
    def __init__(self, root: Path, yaml_name: str, issues: Issues, limits: UnpackLimits,
                 dataset_exists: Callable[[str], bool]):
        self.root = root
        self.yaml_name = yaml_name
        self.issues = issues
        self.limits = limits
        self.dataset_exists = dataset_exists
        self._checked_zips: set[str] = set()

    def _error(self, key: str, message: str) -> None:
        self.issues.error(self.yaml_name, key, message)

    def _relpath(self, value: str, key: str) -> Optional[str]:
        rel = member_path(value.strip())
        if rel is None:
            self._error(key, f"{value!r} must be a path inside the bundle")
            return None
        return rel

    def _exists(self, rel: str) -> Optional[Path]:
        path = self.root / rel
        return path if rel and (path.is_file() or path.is_dir()) else None

    def data(self, value: object, key: str, *, program: bool = False) -> Optional[DataRef]:
        """A dataset or program: a folder, a `.zip` in the bundle, or a stored key."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self._error(key, f"must be a file name in the bundle or a dataset key, got {value!r}")
            return None
        rel = self._relpath(value, key)
        if rel is None:
            return None
        path = self._exists(rel)
        if path is None and is_foreign_key(value):
            # The dataset of another server, provided in the bundle under its key.
            path = self._exists(rel + ".zip")
            if path is not None:
                rel = rel + ".zip"
        if path is None:
            if is_dataset_key(value.strip()):
                if self.dataset_exists(value.strip()):
                    return DataRef("key", value.strip())
                self._error(key, f"{value!r} is neither a file in the bundle nor a stored dataset key")
                return None
            if is_foreign_key(value):
                self._error(key, foreign_key_message(value.strip(), key))
                return None
            self._error(key, f"{value!r} not found in the bundle")
            return None
        if path.is_file():
            if not zipfile.is_zipfile(path):
                self._error(key, f"{value!r} must be a folder or a .zip file")
                return None
            if rel not in self._checked_zips:
                self._checked_zips.add(rel)
                self.issues.problems.extend(check_zip_file(path, rel, self.limits, self.issues.warnings))
        if program and not has_program_metadata(path):
            self.issues.warn(self.yaml_name, key,
                             f"{value!r} has no 'metadata' file with a command at its top, "
                             "so it cannot be run")
        return DataRef("path", rel)

    def image(self, value: object, key: str) -> Optional[DataRef]:
        """A logo: an image file in the bundle or a stored key."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self._error(key, f"must be an image file name in the bundle, got {value!r}")
            return None
        rel = self._relpath(value, key)
        if rel is None:
            return None
        path = self._exists(rel)
        if path is None:
            if is_dataset_key(value.strip()) and self.dataset_exists(value.strip()):
                return DataRef("key", value.strip())
            self._error(key, f"{value!r} not found in the bundle")
            return None
        if not path.is_file():
            self._error(key, f"{value!r} must be an image file, not a folder")
            return None
        return DataRef("path", rel)

    def text(self, value: object, key: str) -> Optional[tuple[str, str]]:
        """A text file of the bundle (page, terms) as (relative path, content)."""
        if not isinstance(value, str) or not value.strip():
            self._error(key, f"must be a file name in the bundle, got {value!r}")
            return None
        rel = self._relpath(value, key)
        if rel is None:
            return None
        path = self._exists(rel)
        if path is None or not path.is_file():
            self._error(key, f"{value!r} not found in the bundle")
            return None
        raw = path.read_bytes()
        try:
            return rel, raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Old CodaLab pages were often saved as Windows-1252.
            self.issues.warn(self.yaml_name, key, f"{value!r} is not UTF-8; read as Windows-1252")
            return rel, raw.decode("cp1252", errors="replace")


def foreign_key_message(value: str, key: str) -> str:
    """What a dataset key of another server is, and how to provide its dataset here."""
    what = key.rsplit(".", 1)[-1]
    return (f"{short_key(value)!r} is the key of a dataset held by the CodaLab or Codabench server this bundle "
            f"was exported from ({value}); this platform does not hold that server's datasets. "
            f"Provide the {what}: put its folder or zip in the bundle under that name "
            f"('{value}/' or '{value}.zip'), or under any name and write that name here; "
            "a dataset already stored on this platform is named by its 64-character key")


def has_program_metadata(path: Path) -> bool:
    if path.is_dir():
        return any((path / name).is_file() for name in PROGRAM_METADATA)
    try:
        with zipfile.ZipFile(path) as zf:
            names = {PurePosixPath(member_path(n) or "").as_posix() for n in zf.namelist()}
    except (zipfile.BadZipFile, OSError):
        return True  # the zip check reports it
    return any(name in names for name in PROGRAM_METADATA)


def page_format(filename: str) -> str:
    return "markdown" if filename.lower().endswith((".md", ".markdown")) else "html"


class ExportNames(Protocol):
    """How export names the files it writes into a bundle (see `writer.py`)."""

    def data(self, ref: DataRef) -> str: ...

    def page(self, page: PageSpec) -> str: ...

    def terms(self) -> str: ...

    def logo(self) -> str: ...

    def solution(self, solution: SolutionSpec) -> str: ...
