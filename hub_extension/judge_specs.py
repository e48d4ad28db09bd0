"""Facts about the platform's judge kernels that every side may read: their marks, names and state.

A judge kernel is a Jupyter kernel spec the platform installs (`compete kernel
install`, or the embedded default for users' servers: `hub_extension.cli_kernel`)
whose kernel runs in a runtime image.  Its spec carries the mark
`metadata.jupyter_compete.kind == "judge"` and the image.  This module lists
installed ones (`judge_kernels`), names an image's digest for people
(`short_digest`), gives a notebook's `metadata.kernelspec` for one, and reads
what the platform installed for users' servers (`read_servers_state`).  It
imports only the standard library (jupyter_client when listing), so the
participant's widgets and the platform's application layer share it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

# The module a judge kernel's spec launches, and the mark in its metadata.
LAUNCHER_MODULE = "kernels.judge_kernel"
SPEC_KIND = "judge"
# Where the platform keeps the judge kernels of users' servers (under the platform home),
# and the state of their installation.
SERVERS_FOLDER = "jupyter"
SERVERS_STATE = "judge-kernels.json"
# The image of a judge kernel whose spec names none (the default runtime).
DEFAULT_RUNTIME = "jupyter-compete/runtime:py3"


def judge_kernels() -> list[dict[str, Any]]:
    """Every installed judge kernel spec, with what would stop it from starting."""
    # Start-up cost: jupyter_client takes over half a second to import; only kernel commands need it.
    from jupyter_client.kernelspec import KernelSpecManager

    found = []
    for name, entry in sorted(KernelSpecManager().get_all_specs().items()):
        spec = entry.get("spec") or {}
        marker = (spec.get("metadata") or {}).get("jupyter_compete") or {}
        argv = list(spec.get("argv") or [])
        if marker.get("kind") != SPEC_KIND and LAUNCHER_MODULE not in argv:
            continue
        problem = None
        python = argv[0] if argv else ""
        if python and os.path.isabs(python) and not os.access(python, os.X_OK):
            problem = f"its Python {python} is gone: run `compete kernel install` again"
        found.append({
            "name": name,
            "display_name": spec.get("display_name", name),
            "image": marker.get("image") or argv_option(argv, "--image") or DEFAULT_RUNTIME,
            "path": entry.get("resource_dir"),
            "python": python,
            "limits": marker.get("limits") or {},
            "problem": problem,
        })
    return found


def argv_option(argv: list[str], option: str) -> Optional[str]:
    if option in argv and argv.index(option) + 1 < len(argv):
        return argv[argv.index(option) + 1]
    return None


def short_digest(digest: str) -> str:
    """`repo@sha256:<64 hex>` or `sha256:<64 hex>` -> `sha256:<first 8 hex>`."""
    algorithm, _, value = digest.rpartition("@")[2].partition(":")
    return f"{algorithm}:{value[:8]}" if value else digest[:15]


def servers_folder(home: str | os.PathLike) -> Path:
    """The JUPYTER_PATH entry of users' servers that holds the platform's judge kernels."""
    return Path(home) / SERVERS_FOLDER


def read_servers_state(home: str | os.PathLike) -> Optional[dict[str, Any]]:
    """What `install_for_servers` last did for the servers of `home` (None: it never ran there)."""
    try:
        state = json.loads((servers_folder(home) / SERVERS_STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def notebook_kernelspec(entry: dict[str, Any]) -> dict[str, str]:
    """A notebook's `metadata.kernelspec` for an installed judge kernel (an entry of the state's kernels)."""
    return {"name": entry["name"], "display_name": entry["display_name"], "language": entry.get("language", "python")}
