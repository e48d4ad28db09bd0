"""Modules a warm kernel imports before its notebook arrives.

A warm kernel (the docker executor's warm judges, the process executor's
warm kernels) imports the executor's fixed list (numpy, pandas) while it
waits, so that a notebook's own imports of them cost nothing.  `Preloads`
adds what the last notebook of the same kind of step imported, limited to
the modules of a few allowed packages (scikit-learn, SciPy, ...): names
only travel from one submission to the next, never code or state, and only
names of modules the image itself provides can be imported.  Importing them
ahead costs the next submission memory (within its limit), not time.
"""
from __future__ import annotations

import ast
import json
import re
import threading
from pathlib import Path
from typing import Iterable, Optional, Sequence

from .safe_files import read_file

# Packages whose modules may be learned from a notebook; a name outside them is never imported ahead.
LEARNED_PACKAGES = ("numpy", "pandas", "scipy", "sklearn")
MAX_LEARNED = 24
MAX_NOTEBOOK_BYTES = 16 << 20
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
# IPython syntax that is not Python: magics, shell escapes, help.
_IPYTHON_LINE = re.compile(r"\s*[%!?]")


def _cell_code(source: object) -> str:
    text = "".join(source) if isinstance(source, list) else str(source)
    return "\n".join("" if _IPYTHON_LINE.match(line) else line for line in text.splitlines())


def imported_modules(code: str) -> list[str]:
    """The absolute module names a piece of Python imports (`import a.b`, `from a.b import c`), in order."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def notebook_imports(path: str | Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> list[str]:
    """The modules a notebook's code cells import, each once, in order; [] for anything unreadable.

    The notebook is read as a regular file reached without a link, and not at all past `max_bytes`.
    """
    try:
        nb = json.loads(read_file(path, max_bytes=max_bytes))
    except (OSError, ValueError, RecursionError):
        return []
    cells = nb.get("cells") if isinstance(nb, dict) else None
    found: dict[str, None] = {}
    for cell in cells if isinstance(cells, list) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            for name in imported_modules(_cell_code(cell.get("source", ""))):
                found.setdefault(name, None)
    return list(found)


def allowed(names: Iterable[str], packages: Sequence[str], limit: int = MAX_LEARNED) -> list[str]:
    """The names that are modules of `packages` (at most `limit` of them)."""
    kept = [name for name in names
            if _MODULE.match(name) and name.split(".", 1)[0] in packages]
    return kept[:limit]


class Preloads:
    """The fixed modules, and per kind of step those the last notebook of that kind imported."""

    def __init__(self, fixed: Sequence[str], packages: Sequence[str] = LEARNED_PACKAGES, max_kinds: int = 16):
        self.fixed = [name for name in fixed if _MODULE.match(name)]
        self.packages = tuple(packages)
        self.max_kinds = max_kinds
        self._learned: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def modules(self, kind: str = "") -> list[str]:
        """What a warm kernel of `kind` imports: the fixed modules, then the learned ones."""
        with self._lock:
            learned = self._learned.get(kind, [])
        return self.fixed + [name for name in learned if name not in self.fixed]

    def learn(self, notebook: str | Path, kind: str = "") -> Optional[list[str]]:
        """Remember the allowed modules `notebook` imports for `kind`; the list kept (None: nothing to learn)."""
        if not self.packages:
            return None
        names = allowed(notebook_imports(notebook), self.packages)
        with self._lock:
            self._learned.pop(kind, None)
            self._learned[kind] = names
            while len(self._learned) > self.max_kinds:
                self._learned.pop(next(iter(self._learned)))
        return names
