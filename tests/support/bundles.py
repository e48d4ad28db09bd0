"""Helpers of the bundle tests: the fixture bundles (good and bad), zipping folders, store listing."""
from __future__ import annotations

import zipfile
from pathlib import Path

from hub_extension.storage import LocalStore

from . import paths

FIXTURES = paths.BUNDLE_FIXTURES
GOOD = sorted(p.name for p in (FIXTURES / "good").iterdir() if p.is_dir())
BAD = sorted(p.name for p in (FIXTURES / "bad").iterdir() if p.is_dir())
TEMPLATES = paths.TEMPLATES / "bundles"


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip a folder the way an organizer would (directory entries included)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(folder).as_posix()
            zf.write(path, rel + "/" if path.is_dir() else rel)
    return target


def stored_files(store: LocalStore) -> set[Path]:
    """The files of the store's datasets."""
    return {p for p in (store.root / "datasets").rglob("*") if p.is_file()}
