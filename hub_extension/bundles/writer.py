"""Exporting a stored competition as a bundle zip, in its own dialect.

`export_bundle` writes `competition.yaml` (CodaLab v1.5 or Codabench v2, as
the spec was imported), the pages and terms under the file names they were
read from, the logo, and each stored dataset as a `.zip` inside the bundle.
A solution is written under the path its bundle named it by: a folder's
files under that folder, a zip as that zip (another name only when that path
is taken), so the exported yaml's `path` finds it.
A light export (`light=True`) names datasets by their store key instead of
including them; it imports back on a platform that holds those keys.  The
zip itself is written canonically (and compressed), so exporting twice on
one machine gives the same bytes.
"""
from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path

import yaml

from ..storage import Store, is_dataset_key
from .codabench import codabench_document
from .codalab import codalab_document
from .datasets import CanonicalZip, _refs
from .model import BundleError, CompetitionSpec, DataRef, PageSpec, Problem, SolutionSpec
from .unpack import member_path

log = logging.getLogger(__name__)

_IMAGE_SIGNATURES = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"<svg", ".svg"),
                     (b"<?xml", ".svg"), (b"RIFF", ".webp"))


class BundleNames:
    """File names inside the exported bundle, chosen once so nothing collides."""

    def __init__(self, spec: CompetitionSpec, store: Store, light: bool):
        self.light = light
        self.taken = {"competition.yaml"}
        files = (spec.extra or {}).get("files", {})
        self._pages: dict[str, str] = {}
        for page in spec.pages:
            suffix = ".md" if page.format == "markdown" else ".html"
            self._pages[page.name] = self._claim(page.source, f"pages/{page.name}{suffix}")
        self._terms = self._claim(files.get("terms"), "terms.html") if spec.terms is not None else ""
        self._logo = ""
        if spec.logo is not None:
            self._logo = self._claim(files.get("logo"), "logo" + _image_suffix(store, spec.logo))
        self.datasets: dict[str, str] = {}  # key -> file name
        for owner, attr, ref in _refs(spec):
            if attr != "logo" and not isinstance(owner, SolutionSpec) and ref.value not in self.datasets:
                self.datasets[ref.value] = self._claim(None, f"{attr}.zip")
        # Solutions by index: (name in the bundle, written as a folder of that name rather than a zip).
        self.solutions: dict[int, tuple[str, bool]] = {}
        for solution in spec.solutions:
            self.solutions[solution.index] = self._claim_solution(solution, store)

    def _claim_solution(self, solution: SolutionSpec, store: Store) -> tuple[str, bool]:
        wanted = member_path(solution.source) if solution.source else None
        if wanted and not is_dataset_key(wanted) and not self.light:
            if wanted.lower().endswith(".zip"):
                if wanted not in self.taken and not self._under_taken(wanted):
                    self.taken.add(wanted)
                    return wanted, False
            elif not self._under_taken(wanted) and _has_members(store, solution.data):
                self.taken.add(wanted + "/")
                return wanted, True
        return self._claim(None, "solution.zip"), False

    def _under_taken(self, name: str) -> bool:
        """Whether `name` as a file or folder would clash with a name already taken."""
        return any(t == name or t.startswith(name + "/") or name.startswith(t.rstrip("/") + "/")
                   or t.rstrip("/") == name for t in self.taken)

    def _claim(self, wanted: object, fallback: str) -> str:
        name = member_path(wanted) if isinstance(wanted, str) else None
        if not name or self._under_taken(name):
            name, n = fallback, 2
            stem, dot, suffix = fallback.rpartition(".")
            while self._under_taken(name):
                name, n = f"{stem}_{n}{dot}{suffix}", n + 1
        self.taken.add(name)
        return name

    def data(self, ref: DataRef) -> str:
        return ref.value if self.light else self.datasets[ref.value]

    def page(self, page: PageSpec) -> str:
        return self._pages[page.name]

    def terms(self) -> str:
        return self._terms

    def logo(self) -> str:
        return self._logo

    def solution(self, solution: SolutionSpec) -> str:
        return solution.data.value if self.light else self.solutions[solution.index][0]


def _has_members(store: Store, ref: DataRef) -> bool:
    """Whether a stored dataset holds any file (an empty one cannot be written as a folder)."""
    if ref.kind != "key" or not store.has_dataset(ref.value):
        return False
    with zipfile.ZipFile(store.dataset_path(ref.value)) as zf:
        return bool(zf.namelist())


def _image_suffix(store: Store, ref: DataRef) -> str:
    if ref.kind == "key" and store.has_dataset(ref.value):
        with store.open_dataset(ref.value) as fh:
            head = fh.read(16).lstrip()
        for signature, suffix in _IMAGE_SIGNATURES:
            if head.startswith(signature):
                return suffix
    return ".png"


def _write_folder(bundle: CanonicalZip, folder: str, stored: Path) -> None:
    """A stored (canonical) zip's files under `folder/` of the bundle."""
    with zipfile.ZipFile(stored) as zf:
        for info in zf.infolist():
            with zf.open(info) as src, bundle.open_entry(f"{folder}/{info.filename}", info.file_size) as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)


def export_bundle(spec: CompetitionSpec, store: Store, out_zip: Path, *, light: bool = False,
                  paths: bool = False) -> None:
    """Write `spec` as a bundle zip; raise `BundleError` if its data is not all stored.

    `paths` (light only): a DataRef of kind "path" is written as that path, for
    a caller that puts the file there beside the unpacked bundle (the editor's
    uploads, read back as an upload reads its files).
    """
    problems = []
    for owner, attr, ref in _refs(spec):
        where = f"{type(owner).__name__.removesuffix('Spec').lower()} {getattr(owner, 'index', '')}".strip()
        if ref.kind == "path" and light and paths and attr != "logo":
            continue
        if ref.kind != "key":
            problems.append(Problem("export", f"{where}.{attr}", "is not stored yet; store the bundle data first"))
        elif not store.has_dataset(ref.value):
            problems.append(Problem("export", f"{where}.{attr}", f"dataset {ref.value} is missing from the store"))
    if problems:
        raise BundleError(problems)
    names = BundleNames(spec, store, light)
    if spec.dialect == "codabench":
        doc, lost = codabench_document(spec, names)
    else:
        doc, lost = codalab_document(spec, names)
    for note in lost:
        log.warning("export of %r: %s", spec.title, note)
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)

    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so a failed export leaves no half zip.
    fd, tmp = tempfile.mkstemp(dir=out_zip.parent, prefix=".export-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as out, CanonicalZip(out, zipfile.ZIP_DEFLATED) as bundle:
            bundle.write_bytes("competition.yaml", text.encode("utf-8"))
            for page in spec.pages:
                bundle.write_bytes(names.page(page), page.content.encode("utf-8"))
            if spec.terms is not None:
                bundle.write_bytes(names.terms(), spec.terms.encode("utf-8"))
            if spec.logo is not None:
                bundle.write_file(names.logo(), store.dataset_path(spec.logo.value))
            if not light:
                for key, name in names.datasets.items():
                    bundle.write_file(name, store.dataset_path(key))
                for solution in spec.solutions:
                    name, folder = names.solutions[solution.index]
                    if folder:
                        _write_folder(bundle, name, store.dataset_path(solution.data.value))
                    else:
                        bundle.write_file(name, store.dataset_path(solution.data.value))
        os.replace(tmp, out_zip)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
