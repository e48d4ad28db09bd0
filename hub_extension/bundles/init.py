"""Starting a new competition from a bundle template (`compete init DIR --template NAME`).

Templates are working Codabench v2 bundles under `templates/bundles/<name>/`
of the project (found by `hub_extension.resources`): `results` (participants
upload predictions), `code` (participants upload a `model.py` run by an
ingestion program) and `notebook` (participants develop in a starting-kit
notebook).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..resources import templates
from .model import BundleError, Problem

TEMPLATES_DIR = templates("bundles")


def template_names() -> list[str]:
    if not TEMPLATES_DIR.is_dir():
        return []
    return sorted(p.name for p in TEMPLATES_DIR.iterdir() if (p / "competition.yaml").is_file())


def init_bundle(target_dir: Path, template: str) -> None:
    """Copy the bundle template `template` into `target_dir` (new or empty)."""
    target_dir = Path(target_dir)
    names = template_names()
    if template not in names:
        raise BundleError([Problem(str(target_dir), "--template",
                                   f"unknown template {template!r}; choose one of {', '.join(names) or 'none'}")])
    if target_dir.exists() and (not target_dir.is_dir() or any(target_dir.iterdir())):
        raise BundleError([Problem(str(target_dir), "target",
                                   "already exists and is not an empty folder; choose a new folder")])
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TEMPLATES_DIR / template, target_dir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
