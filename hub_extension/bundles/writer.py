"""Exporting a stored competition as a bundle zip, in its own dialect.

`export_bundle` writes `competition.yaml` (CodaLab v1.5 or Codabench v2, as
the spec was imported), the pages and terms under the file names they were
read from, the logo, and each stored dataset as a `.zip` inside the bundle.
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

from ..storage import Store
from .codabench import codabench_document
from .codalab import codalab_document
from .datasets import CanonicalZip, _refs
from .model import BundleError, CompetitionSpec, DataRef, PageSpec, Problem
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
        for _, attr, ref in _refs(spec):
            if attr != "logo" and ref.value not in self.datasets:
                self.datasets[ref.value] = self._claim(None, f"{attr}.zip")

    def _claim(self, wanted: object, fallback: str) -> str:
        name = member_path(wanted) if isinstance(wanted, str) else None
        if not name or name in self.taken:
            name, n = fallback, 2
            stem, dot, suffix = fallback.rpartition(".")
            while name in self.taken:
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


def _image_suffix(store: Store, ref: DataRef) -> str:
    if ref.kind == "key" and store.has_dataset(ref.value):
        with store.open_dataset(ref.value) as fh:
            head = fh.read(16).lstrip()
        for signature, suffix in _IMAGE_SIGNATURES:
            if head.startswith(signature):
                return suffix
    return ".png"


def export_bundle(spec: CompetitionSpec, store: Store, out_zip: Path, *, light: bool = False) -> None:
    """Write `spec` as a bundle zip; raise `BundleError` if its data is not all stored."""
    problems = []
    for owner, attr, ref in _refs(spec):
        where = f"{type(owner).__name__.removesuffix('Spec').lower()} {getattr(owner, 'index', '')}".strip()
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
        os.replace(tmp, out_zip)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
