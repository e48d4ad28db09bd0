"""Upload-time checks about the images a bundle names and the code of its programs.

Nothing about a step's environment is decided silently.  When a bundle is
uploaded, the organizer is told, per phase and task:

- which image each step will run in when it is not the one the bundle names:
  an image the platform's aliases replace (`codalab/codalab-legacy:py37` runs
  on `jupyter-compete/runtime:legacy`, say), an alias target that this
  machine has not built, or an image this machine's engine does not have (a
  worker pulls it when it can and runs the default runtime when it cannot);
- which program files are Python 2 (a `print` statement, `except X, e:`,
  backticks, ...), naming the file and the line: no runtime here runs
  Python 2, so every submission would fail at that step;
- which program files use numpy names removed in 1.24 (`np.float`, ...)
  while their step runs on a runtime with a current numpy: such a program
  fails there, or scores wrong when it catches the error itself.

`upload_warnings(bundle, config)` gives both, as the sentences of a bundle's
warnings.  The image a run actually used is recorded on the run (its name and
digest) and shown to organizers on the submission's page.
"""
from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, Optional

from kernels.build import LEGACY_IMAGE, runtime_for
from kernels.images import ImageChoice, docker_available, expected_image, image_exists

from .model import CompetitionSpec, DataRef, TaskSpec
from .reader import LoadedBundle

# A program's Python files read at upload: at most this many, each up to this size.
MAX_PY_FILES = 300
MAX_PY_BYTES = 2 * 1024 * 1024
PROGRAM_KINDS = ("scoring_program", "ingestion_program")

HaveImage = Callable[[str], bool]


# -- images ----------------------------------------------------------------------------------------

@dataclass
class _Use:
    """Where a task runs: its phases, and the image each of its steps names."""

    task: TaskSpec
    phases: list[str]
    images: dict[str, Optional[str]]  # step -> image named (None: none)


def _phase_label(phase) -> str:
    return f"phase {phase.index} ({phase.name})" if phase.name else f"phase {phase.index}"


def _task_label(task: TaskSpec) -> str:
    return f"task {task.index} ({task.name})" if task.name else f"task {task.index}"


def _uses(spec: CompetitionSpec) -> list[_Use]:
    tasks = {t.index: t for t in spec.tasks}
    phases_of: dict[int, list[str]] = {}
    for phase in spec.phases:
        for index in phase.task_indexes or sorted(tasks):
            phases_of.setdefault(index, []).append(_phase_label(phase))
    uses = []
    for task in spec.tasks:
        images = {"scoring": task.scoring_docker_image or spec.docker_image,
                  "prediction": task.ingestion_docker_image or spec.docker_image}
        uses.append(_Use(task, phases_of.get(task.index, []), images))
    return uses


def _where(use: _Use) -> str:
    task = _task_label(use.task)
    if len(use.phases) == 1 and use.task.name and use.phases[0].endswith(f"({use.task.name})"):
        return use.phases[0]  # a CodaLab phase and the task made of it: one name
    return f"{', '.join(use.phases)}, {task}" if use.phases else task


def _steps(steps: list[str]) -> str:
    return "both steps" if len(steps) > 1 else f"the {steps[0]} step"


def image_warnings(spec: CompetitionSpec, aliases: dict[str, str], default: str,
                   have_image: Optional[HaveImage] = None) -> list[str]:
    """One sentence per phase/task whose steps will not run in the image the bundle names.

    `have_image` tells whether this machine's engine has an image (None: no
    engine to ask, so only the aliases are checked).
    """
    warnings: list[str] = []
    for use in _uses(spec):
        by_image: dict[str, list[str]] = {}
        for step, image in use.images.items():
            if image:
                by_image.setdefault(image, []).append(step)
        for image, steps in by_image.items():
            line = _image_line(expected_image(image, aliases, default), default, have_image)
            if line:
                warnings.append(f"competition.yaml: {_where(use)}: {_steps(steps)}: {line}")
    return warnings


def _image_line(choice: ImageChoice, default: str, have_image: Optional[HaveImage]) -> Optional[str]:
    requested = choice.requested or ""
    if choice.replaced:
        line = (f"the image {requested} runs on {choice.used} here ({runtime_for(choice.used).summary}), "
                f"{choice.reason}")
        if have_image is not None and not have_image(choice.used):
            line += (f"; {choice.used} is not built on this machine, so until it is, steps run on the "
                     f"default runtime {default}: build it with `compete image build --all`")
        return (line + f". To run another image, add your own entry for {requested} to c.Compete.image_aliases "
                f"(an empty target has workers pull {requested} itself)")
    if have_image is not None and not have_image(requested):
        return (f"the image {requested} is not on this machine: a worker pulls it from its registry when it "
                f"can, and otherwise runs the step on the default runtime {default} "
                f"({runtime_for(default).summary}). Pull it on the workers (`docker pull {requested}`) or map "
                f"it to a local image in c.Compete.image_aliases")
    return None


def engine_probe() -> Optional[HaveImage]:
    """`image_exists` on this machine's engine, or None when no engine answers."""
    if not docker_available():
        return None
    return lambda name: image_exists(name)


# -- Python 2 ------------------------------------------------------------------------------------

# Constructs of Python 2 that Python 3 refuses, each with its name for people.
# Matched against the line a SyntaxError points at (and, failing that, every
# line of the file, for the statements that are Python 2 beyond doubt).
_PY2_LINES: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"^\s*print(\s*>>|\s+(?![\s(=.,)\]}:;+\-*/%<>!|&^]))"), "a print statement", True),
    (re.compile(r"^\s*except\b[^:#]*,\s*[A-Za-z_]\w*\s*:"), "`except X, e:`", True),
    (re.compile(r"^\s*raise\s+[\w.]+\s*,"), "`raise E, message`", True),
    (re.compile(r"^\s*exec\s+(?![\s(=.,)])"), "an exec statement", True),
    (re.compile(r"`[^`\n]+`"), "backticks (repr)", False),
    (re.compile(r"<>"), "the `<>` operator", False),
    (re.compile(r"(?<![\w.])0[0-7]+(?![\w.])"), "an octal literal without 0o", False),
    (re.compile(r"(?<![\w.])\d+[lL](?!\w)"), "a long literal (123L)", False),
    (re.compile(r"(?<![\w])[uU][rR]['\"]"), "a ur'' string", False),
)


@dataclass
class Python2Line:
    file: str  # path inside the program
    line: int
    construct: str
    text: str


def python2_line(source: str, name: str = "<program>") -> Optional[Python2Line]:
    """Where `source` is Python 2, or None when Python 3 parses it (or its error is no Python 2 construct)."""
    try:
        tree = ast.parse(source, filename=name)
        return _print_chevron(tree, source, name)
    except TabError as exc:
        lineno = exc.lineno or 1
        return Python2Line(name, lineno, "tabs and spaces mixed in indentation", _line(source, lineno))
    except (SyntaxError, ValueError) as exc:
        lineno = getattr(exc, "lineno", None) or 0
    lines = source.splitlines()
    if 0 < lineno <= len(lines):
        found = _construct(lines[lineno - 1], strong_only=False)
        if found:
            return Python2Line(name, lineno, found, lines[lineno - 1].strip())
    for number, text in enumerate(lines, 1):
        found = _construct(text, strong_only=True)
        if found:
            return Python2Line(name, number, found, text.strip())
    return None


def _print_chevron(tree: ast.AST, source: str, name: str) -> Optional[Python2Line]:
    """`print >>f, x`: Python 3 parses it (a tuple), and fails on it when it runs."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Expr):
            continue
        value = node.value.elts[0] if isinstance(node.value, ast.Tuple) and node.value.elts else node.value
        if (isinstance(value, ast.BinOp) and isinstance(value.op, ast.RShift)
                and isinstance(value.left, ast.Name) and value.left.id == "print"):
            return Python2Line(name, node.lineno, "a print statement to a file (`print >>f, x`)",
                               _line(source, node.lineno))
    return None


def _construct(text: str, *, strong_only: bool) -> Optional[str]:
    for pattern, what, strong in _PY2_LINES:
        if (strong or not strong_only) and pattern.search(text):
            return what
    return None


def _line(source: str, lineno: int) -> str:
    lines = source.splitlines()
    return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""


def _python_files(root: Path, ref: DataRef) -> Iterator[tuple[str, bytes]]:
    """(path inside the program, bytes) of each .py file of a program folder or zip."""
    if ref.kind != "path":
        return
    path = (root / ref.value).resolve()
    if not path.is_relative_to(root.resolve()):
        return
    count = 0
    if path.is_dir():
        for file in sorted(path.rglob("*.py")):
            if "__MACOSX" in file.parts or file.is_symlink() or not file.is_file():
                continue
            if file.stat().st_size > MAX_PY_BYTES:
                continue
            count += 1
            if count > MAX_PY_FILES:
                return
            yield file.relative_to(path).as_posix(), file.read_bytes()
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                member = PurePosixPath(info.filename)
                if info.is_dir() or member.suffix != ".py" or "__MACOSX" in member.parts:
                    continue
                if info.file_size > MAX_PY_BYTES:
                    continue
                count += 1
                if count > MAX_PY_FILES:
                    return
                yield info.filename, zf.read(info)


def python2_warnings(bundle: LoadedBundle) -> list[str]:
    """One sentence per program file that is Python 2, naming the file, the line and where it runs."""
    where: dict[tuple[str, str], list[str]] = {}
    refs: dict[tuple[str, str], tuple[str, DataRef]] = {}
    for use in _uses(bundle.spec):
        for kind in PROGRAM_KINDS:
            ref = getattr(use.task, kind)
            if ref is None or ref.kind != "path":
                continue
            key = (kind, ref.value)
            refs[key] = (kind, ref)
            where.setdefault(key, []).append(_where(use))
    warnings = []
    for key, (kind, ref) in refs.items():
        for name, data in _python_files(bundle.root, ref):
            source = data.decode("utf-8", errors="replace")
            found = python2_line(source, name)
            if found is None:
                continue
            program = kind.replace("_", " ")
            warnings.append(
                f"{ref.value}: {found.file} line {found.line} is Python 2 ({found.construct}: `{found.text[:120]}`), "
                f"in the {program} of {'; '.join(where[key])}. No runtime here runs Python 2 (they are Python "
                f"3.11), so every submission would fail in this program: port it to Python 3 (a tool such as 2to3 "
                f"does most of it) and upload the bundle again")
    return warnings


# -- numpy names removed in 1.24 ----------------------------------------------------------------

# Aliases of builtins that numpy deprecated in 1.20 and removed in 1.24: a program
# using them fails on a current numpy, or, when it catches the error itself,
# scores silently wrong.
REMOVED_NUMPY_NAMES = frozenset({"float", "int", "bool", "object", "str", "long", "unicode", "complex"})


def removed_numpy_use(source: str, name: str = "<program>") -> Optional[Python2Line]:
    """The first use of a numpy alias removed in 1.24 (`np.float`, `numpy.int`, ...), or None."""
    try:
        tree = ast.parse(source, filename=name)
    except (SyntaxError, ValueError):
        return None
    modules = {"numpy"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "numpy"}
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr in REMOVED_NUMPY_NAMES
             and isinstance(node.value, ast.Name) and node.value.id in modules]
    if not found:
        return None
    first = min(found, key=lambda n: (n.lineno, n.col_offset))
    return Python2Line(name, first.lineno, f"{first.value.id}.{first.attr}", _line(source, first.lineno))


def removed_numpy_warnings(bundle: LoadedBundle, aliases: dict[str, str], default: str) -> list[str]:
    """One sentence per program file using numpy names removed in 1.24 whose step runs on a runtime
    without them (any but the legacy runtime)."""
    warnings = []
    seen: set[tuple[str, str]] = set()
    for use in _uses(bundle.spec):
        for kind, step in (("scoring_program", "scoring"), ("ingestion_program", "prediction")):
            ref = getattr(use.task, kind)
            if ref is None or ref.kind != "path" or (kind, ref.value) in seen:
                continue
            seen.add((kind, ref.value))
            used = expected_image(use.images[step], aliases, default).used
            if runtime_for(used).packages == runtime_for(LEGACY_IMAGE).packages:
                continue
            for file, data in _python_files(bundle.root, ref):
                found = removed_numpy_use(data.decode("utf-8", errors="replace"), file)
                if found is None:
                    continue
                warnings.append(
                    f"{ref.value}: {found.file} line {found.line} uses {found.construct} (`{found.text[:120]}`), "
                    f"which numpy removed in 1.24; the {kind.replace('_', ' ')} of {_where(use)} runs on {used} "
                    f"({runtime_for(used).summary}), where it fails, or scores wrong if the program catches the "
                    f"error. Name `docker_image: codalab/codalab-legacy:py37` in competition.yaml to run it on "
                    f"{LEGACY_IMAGE} ({runtime_for(LEGACY_IMAGE).summary}), or port it "
                    f"({found.construct} -> {found.construct.split('.')[-1]})")
                break
    return warnings


# -- both ------------------------------------------------------------------------------------------

def upload_warnings(bundle: LoadedBundle, config, *, have_image: Optional[HaveImage] = None,
                    probe: bool = True) -> list[str]:
    """The image and program-code warnings of a bundle, for the organizer who uploads it.

    `config` is the platform's `Compete`: its `image_aliases` and
    `default_image`.  Without `have_image`, this machine's engine is asked
    (when `probe` and one answers).
    """
    if have_image is None and probe and getattr(config, "executor", "auto") != "process":
        have_image = engine_probe()
    aliases = dict(config.image_aliases)
    return (image_warnings(bundle.spec, aliases, config.default_image, have_image)
            + python2_warnings(bundle)
            + removed_numpy_warnings(bundle, aliases, config.default_image))
