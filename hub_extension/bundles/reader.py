"""Loading a competition bundle (zip or folder) into the internal model.

`load_bundle` is the one entry point: it unpacks a zip safely into a
temporary folder it owns, finds `competition.yaml` (tolerating one wrapping
folder), parses the YAML with line and column on error, picks the dialect and reads
it.  Import is all-or-nothing: any problem raises `BundleError` carrying every
problem found, and the temporary folder is removed.

The dialect: `version: 2` is Codabench, `1` or `1.5` CodaLab v1.5.  Without a
`version`, both platforms read CodaLab v1.5; early Codabench bundles (2019)
left it out all the same, so a bundle whose structure is Codabench's (a list
of `phases` with `tasks`) and has nothing of CodaLab's is read as Codabench,
with a warning naming what decided it.  One with both is refused, naming the
keys of each side.
"""
from __future__ import annotations

import tempfile
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import yaml

from scoring.leaderboard import hidden_column_disclosures

from .codabench import read_codabench
from .codalab import read_codalab
from .fields import Issues
from .model import BundleError, CompetitionSpec, Problem
from .refs import BundleFiles
from .unpack import UnpackLimits, check_folder_links, extract_zip, is_noise, remove_tree

YAML_NAMES = ("competition.yaml", "competition.yml")


@dataclass
class LoadedBundle:
    """A bundle read into a spec, with its files still on disk under `root`.

    DataRefs of kind "path" in `spec` are relative to `root`.  When the source
    was a zip, `root` lies in a temporary folder owned by this object; use it
    as a context manager (or call `close`) to remove it.
    """

    spec: CompetitionSpec
    root: Path
    warnings: list[str] = field(default_factory=list)
    limits: UnpackLimits = field(default_factory=UnpackLimits)
    _tmpdir: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, remove_tree, self._tmpdir) if self._tmpdir else None

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> "LoadedBundle":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _candidates(folder: Path) -> list[Path]:
    """Competition files directly in `folder`, best first."""
    found = [folder / name for name in YAML_NAMES if (folder / name).is_file()]
    if found:
        return found
    # CodaLab took the first .yaml of the zip; sorted names make that stable.
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in (".yaml", ".yml")
                  and p.name.lower() not in ("metadata.yaml", "metadata.yml") and not is_noise(p.name))


def find_competition_yaml(base: Path, issues: Issues) -> Optional[tuple[Path, Path]]:
    """(bundle root, competition file), looking one folder down if needed."""
    found = _candidates(base)
    if found:
        return base, found[0]
    folders = [p for p in sorted(base.iterdir()) if p.is_dir() and not is_noise(p.name)]
    inner = [(folder, _candidates(folder)) for folder in folders]
    inner = [(folder, files) for folder, files in inner if files]
    if len(inner) == 1:
        folder, files = inner[0]
        issues.warn("bundle", files[0].name, f"found in '{folder.name}/'; the bundle has a wrapping folder")
        return folder, files[0]
    if len(inner) > 1:
        where = ", ".join(f"'{folder.name}/'" for folder, _ in inner)
        issues.error("bundle", "competition.yaml", f"found in several folders ({where}); keep one bundle per zip")
        return None
    issues.error("bundle", "competition.yaml",
                 "not found at the top of the bundle (nor one folder down); add competition.yaml")
    return None


def parse_yaml(path: Path, name: str, issues: Issues) -> Optional[dict]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.error(name, "(file)", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8")
        return None
    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        issues.error(name, where, f"is not valid YAML: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        issues.error(name, "(file)", f"is not valid YAML: {exc}")
        return None
    if not isinstance(doc, dict):
        issues.error(name, "(top)", "must be a mapping of keys to values (title:, phases:, ...)")
        return None
    return doc


def load_bundle(source: str | Path, *, limits: Optional[UnpackLimits] = None,
                dataset_exists: Callable[[str], bool] = lambda key: False) -> LoadedBundle:
    """Read a bundle zip or folder; raise `BundleError` with every problem found."""
    source = Path(source)
    limits = limits or UnpackLimits()
    issues = Issues()
    tmpdir: Optional[str] = None
    try:
        if source.is_dir():
            base = source
            issues.problems.extend(check_folder_links(source, source.name or "bundle"))
        elif source.is_file() and zipfile.is_zipfile(source):
            tmpdir = tempfile.mkdtemp(prefix="compete-bundle-")
            base = Path(tmpdir) / "bundle"
            issues.problems.extend(extract_zip(source, base, limits, source.name, issues.warnings))
        elif source.exists():
            raise BundleError([Problem(source.name, "(bundle)", "is neither a zip file nor a folder")])
        else:
            raise BundleError([Problem(str(source), "(bundle)", "no such file or folder")])
        if issues.problems:
            raise BundleError(issues.problems)
        spec, root = _read(base, issues, limits, dataset_exists)
        if issues.problems or spec is None or root is None:
            raise BundleError(issues.problems)
        return LoadedBundle(spec=spec, root=root, warnings=issues.warnings, limits=limits, _tmpdir=tmpdir)
    except BaseException:
        remove_tree(tmpdir)
        raise


def _read(base: Path, issues: Issues, limits: UnpackLimits,
          dataset_exists: Callable[[str], bool]) -> tuple[Optional[CompetitionSpec], Optional[Path]]:
    found = find_competition_yaml(base, issues)
    if found is None:
        return None, None
    root, yaml_path = found
    name = yaml_path.name
    doc = parse_yaml(yaml_path, name, issues)
    if doc is None:
        return None, None
    files = BundleFiles(root, name, issues, limits, dataset_exists)
    dialect = pick_dialect(doc, name, issues)
    if dialect is None:
        return None, None
    try:
        if dialect == "codabench":
            spec = read_codabench(doc, files, issues)
        else:
            spec = read_codalab(doc, files, issues)
    except Exception as exc:  # a reader bug must still not show a traceback to the organizer
        issues.error(name, "(file)", f"could not be read ({type(exc).__name__}: {exc}); "
                                     "please report this bundle to the platform admins")
        return None, None
    if spec is not None:
        _say_what_boards_reveal(spec, name, issues)
    return spec, root


def structure_signs(doc: dict) -> tuple[list[str], list[str]]:
    """What in a document without `version` is Codabench v2's, and what is CodaLab v1.5's."""
    codabench: list[str] = []
    codalab: list[str] = []
    phases = doc.get("phases")
    if isinstance(phases, list):
        codabench.append("'phases' is a list")
        codalab_phase_keys = sorted({k for p in phases if isinstance(p, dict)
                                     for k in ("phasenumber", "start_date", "label") if k in p})
        if codalab_phase_keys:
            codalab.append("phases have CodaLab's " + ", ".join(codalab_phase_keys))
    elif isinstance(phases, dict):
        codalab.append("'phases' is a mapping of phase numbers")
    for key in ("tasks", "solutions", "pages"):
        if isinstance(doc.get(key), list):
            codabench.append(f"'{key}' is given")
    boards = doc.get("leaderboards")
    if isinstance(boards, list) and any(isinstance(b, dict) and "key" in b for b in boards):
        codabench.append("'leaderboards' have a 'key'")
    for key in ("html", "leaderboard", "competition_docker_image", "has_registration"):
        if key in doc:
            codalab.append(f"'{key}' is given")
    return codabench, codalab


def pick_dialect(doc: dict, name: str, issues: Issues) -> Optional[str]:
    """"codabench" or "codalab" for the document, or None (an error) when it cannot be told."""
    version = doc.get("version")
    if version is not None:
        return "codabench" if str(version).strip() in ("2", "2.0") else "codalab"
    codabench, codalab = structure_signs(doc)
    decisive = "'phases' is a list" in codabench and "'tasks' is given" in codabench
    if not decisive:
        return "codalab"  # what CodaLab and Codabench both do without a version
    if codalab:
        issues.error(name, "version",
                     "is missing and the structure is ambiguous: " + ", ".join(codabench)
                     + " (Codabench v2) but " + ", ".join(codalab) + " (CodaLab v1.5); add 'version: 2' "
                     "for a Codabench bundle, or write 'phases' as a mapping (1:, 2:, ...) without 'tasks' "
                     "for a CodaLab one")
        return None
    issues.warn(name, "version", "is missing; read as a Codabench v2 bundle because "
                + ", ".join(codabench) + " (early Codabench bundles left out 'version: 2'; add it to say so)")
    return "codabench"


def _say_what_boards_reveal(spec: CompetitionSpec, name: str, issues: Issues) -> None:
    """Warn the organizer of what a board lets participants work out about its hidden columns."""
    for board in spec.leaderboards:
        if board.hidden:
            continue  # participants see nothing of it
        for key, sentence in hidden_column_disclosures(board.columns, board.primary_key):
            issues.warn(name, f"leaderboard {board.key!r}: column {key!r}", sentence)
