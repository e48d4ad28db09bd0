"""The project's dependency contracts, checked on the source (every import, at any depth).

- `hub_extension.contract` is standard library only: every side imports it;
- `scoring` is pure: no project module, no I/O framework;
- the participant side (the client and widgets that run in a participant's
  kernel) reaches no server module and no server library, even through the
  modules it imports;
- the worker side (`dask_workers`, what `compete worker` runs on an
  organizer's machine) reaches, of `hub_extension`, only the contract;
- the application layer (`hub_extension.app`) sits below its adapters: it
  never imports the service, the CLI or the dispatcher;
- there is no import cycle between the project's modules;
- an import inside a function says why it is there (start-up cost, an
  optional dependency, or a real cycle of use), in a comment on its line or
  the line above.

The graph is read from the source with `ast`, so imports hidden inside
functions count like the others.
"""
from __future__ import annotations

import ast
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hub_extension", "scoring", "dask_workers", "kernels")
SERVER_LIBRARIES = {"sqlalchemy", "alembic", "jupyterhub", "tornado", "jinja2", "psycopg", "nh3", "markdown_it"}
PARTICIPANT_SIDE = ("hub_extension.client", "hub_extension.widgets")
WORKER_SIDE = ("dask_workers",)
# Modules every side may import: the standard library only at import time.
SHARED = {"hub_extension", "hub_extension.contract", "hub_extension.resources", "hub_extension.judge_specs"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "alembic" in path.parts and "versions" in path.parts:
                continue
            found[module_name(path)] = path
    return found


def resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Absolute names of what `node` imports (for `from x import y`, `x.y` when that is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    names = [base]
    known = sources()
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in known:
            names.append(candidate)
    return names


@lru_cache(maxsize=None)
def imports_of(module: str) -> tuple[tuple[str, int, bool], ...]:
    """(imported name, line, inside a function) for every import statement of `module`."""
    path = sources()[module]
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if isinstance(child, ast.ImportFrom) and child.module == "__future__":
                    continue
                for name in resolve(module, path.name == "__init__.py", child):
                    found.append((name, child.lineno, in_function))
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue
            visit(child, nested)

    visit(tree, False)
    return tuple(found)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def project_edges(module: str) -> set[str]:
    """Project modules `module` imports, with the packages whose `__init__` runs on the way."""
    known = sources()
    edges = set()
    for name, _line, _in_function in imports_of(module):
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and prefix != module:
                edges.add(prefix)
    return edges


def reachable(start: str) -> dict[str, str]:
    """Every project module `start` reaches, with the module that imports it first (for messages)."""
    seen = {start: ""}
    todo = [start]
    while todo:
        current = todo.pop()
        for nxt in project_edges(current):
            if nxt not in seen:
                seen[nxt] = current
                todo.append(nxt)
    return seen


def chain(seen: dict[str, str], end: str) -> str:
    path = [end]
    while seen.get(path[-1]):
        path.append(seen[path[-1]])
    return " <- ".join(path)


def external_imports(module: str) -> set[str]:
    return {name.split(".")[0] for name, _line, _f in imports_of(module)} - set(PACKAGES)


def side(prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in sources() if m.startswith(prefixes))


def test_the_contract_is_standard_library_only():
    stdlib = set(sys.stdlib_module_names)
    outside = external_imports("hub_extension.contract") - stdlib
    assert not outside
    assert not project_edges("hub_extension.contract") - {"hub_extension"}


def test_scoring_is_pure():
    frameworks = SERVER_LIBRARIES | {"distributed", "docker", "requests", "papermill", "ipywidgets", "pandas"}
    for module in side(("scoring",)):
        assert not {e for e in project_edges(module) if not e.startswith("scoring")}, module
        assert not external_imports(module) & frameworks, module


@pytest.mark.parametrize("start", side(PARTICIPANT_SIDE))
def test_the_participant_side_reaches_no_server_module(start):
    seen = reachable(start)
    allowed = SHARED | set(side(PARTICIPANT_SIDE))
    foreign = sorted(set(seen) - allowed)
    assert not foreign, [chain(seen, f) for f in foreign]
    libraries = {f"{m}: {lib}" for m in seen for lib in external_imports(m) & SERVER_LIBRARIES}
    assert not libraries


@pytest.mark.parametrize("start", side(WORKER_SIDE))
def test_the_worker_side_reaches_only_the_contract_of_the_platform(start):
    seen = reachable(start)
    foreign = sorted(m for m in seen if m.startswith("hub_extension") and m not in SHARED)
    assert not foreign, [chain(seen, f) for f in foreign]
    libraries = {f"{m}: {lib}" for m in seen for lib in external_imports(m) & SERVER_LIBRARIES}
    assert not libraries


def test_the_application_layer_is_below_its_adapters():
    adapters = ("hub_extension.service", "hub_extension.cli", "hub_extension.dispatch", "hub_extension.embedded")
    for module in side(("hub_extension.app",)):
        seen = reachable(module)
        above = sorted(m for m in seen if m.startswith(adapters))
        assert not above, [chain(seen, m) for m in above]


def test_no_import_cycles():
    graph = {m: project_edges(m) for m in sources()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # A package and the modules its __init__ re-exports form a harmless loop.
            if len(component) > 1 and not _package_reexport(component):
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in graph:
        if v not in index:
            strongconnect(v)
    assert not cycles


def _package_reexport(component: list[str]) -> bool:
    """True when the loop only runs through a package's `__init__` and modules inside that package
    that import nothing of it but their siblings (the usual `from .x import y` re-export)."""
    packages = [m for m in component if any(o != m and o.startswith(m + ".") for o in component)]
    if len(packages) != 1:
        return False
    package = packages[0]
    if not all(m == package or m.startswith(package + ".") for m in component):
        return False
    # The modules inside must not need the package's own namespace (only their siblings).
    for module in component:
        if module == package:
            continue
        for name, _line, _f in imports_of(module):
            if name == package:
                return False
    return True


def test_imports_inside_functions_say_why():
    silent = []
    for module, path in sources().items():
        lines = path.read_text().splitlines()
        for name, line, in_function in imports_of(module):
            if not in_function:
                continue
            if not _said_why(lines, line):
                silent.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not sorted(set(silent))


def _said_why(lines: list[str], line: int) -> bool:
    """A comment on the import's line, or above the block of imports it belongs to."""
    if "#" in lines[line - 1]:
        return True
    i = line - 2
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")
