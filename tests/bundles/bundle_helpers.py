"""Helpers shared by the bundle tests: fixture paths, zipping folders, store listing."""
from __future__ import annotations

import zipfile
from pathlib import Path

from hub_extension.storage import LocalStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
GOOD = sorted(p.name for p in (FIXTURES / "good").iterdir() if p.is_dir())
BAD = sorted(p.name for p in (FIXTURES / "bad").iterdir() if p.is_dir())
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "bundles"


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
    return {p for p in (store.root / "datasets").rglob("*") if p.is_file()}
