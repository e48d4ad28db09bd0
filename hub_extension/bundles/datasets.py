"""Putting a loaded bundle's data and programs into the artifact store.

Datasets are content-addressed, so the bytes stored for a folder or zip must
depend on its content alone: every one is re-packed as a canonical zip
(members sorted by path, fixed timestamp, fixed permissions, no directory
entries and no tool noise such as `__MACOSX/`), and the same files always get
the same key whether they came as a folder, a zip from macOS Finder or one
from `zip -r`.  Members are stored uncompressed: deflate output differs
between zlib builds, and a key must not change with the machine that
computed it (the exported bundle around them is compressed).  A logo is
stored as its raw bytes.  A solution (an example submission) is a dataset like
the others: its folder or zip is stored canonically under its content key.
"""
from __future__ import annotations

import copy
import io
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Iterable, Optional

from ..storage import Store
from .model import TASK_DATA_KINDS, BundleError, CompetitionSpec, DataRef
from .reader import LoadedBundle
from .unpack import UnpackError, UnpackLimits, check_zip, copy_member, folder_files, open_zip, zip_members

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
FILE_MODE = 0o100644


def _entry(name: str, size: int, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.compress_type = compression
    info.create_system = 3  # Unix, so the fixed mode below is what readers see
    info.external_attr = FILE_MODE << 16
    info.file_size = size  # lets zipfile pick ZIP64 from the size, deterministically
    return info


class CanonicalZip:
    """A zip writer whose output depends only on the (path, bytes) written."""

    def __init__(self, out: IO[bytes], compression: int = zipfile.ZIP_STORED):
        self._compression = compression
        self._zip = zipfile.ZipFile(out, "w", compression)

    def open_entry(self, name: str, size: int) -> IO[bytes]:
        return self._zip.open(_entry(name, size, self._compression), "w")

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open_entry(name, len(data)) as dst:
            dst.write(data)

    def write_file(self, name: str, path: Path) -> None:
        with open(path, "rb") as src, self.open_entry(name, path.stat().st_size) as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "CanonicalZip":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def write_canonical_zip(source: Path, out: IO[bytes], limits: UnpackLimits, label: str) -> None:
    """Re-pack a folder or a zip into `out`; raise `BundleError` on an unsafe zip."""
    with CanonicalZip(out) as canon:
        if source.is_dir():
            for rel, path in folder_files(source):
                canon.write_file(rel, path)
            return
        zf, problems = open_zip(source, label)
        if zf is None:
            raise BundleError(problems)
        with zf:
            problems = check_zip(zf, label, limits)
            if problems:
                raise BundleError(problems)
            members = sorted(zip_members(zf), key=lambda item: item[0])
            for rel, info in members:
                with canon.open_entry(rel, info.file_size) as dst:
                    try:
                        copy_member(zf, info, dst, label, limits)
                    except UnpackError as exc:
                        raise BundleError(exc.problems) from None


def canonical_zip_bytes(source: Path, limits: Optional[UnpackLimits] = None) -> bytes:
    """The canonical zip of a folder or zip, in memory (small data and tests)."""
    buffer = io.BytesIO()
    write_canonical_zip(source, buffer, limits or UnpackLimits(), source.name)
    return buffer.getvalue()


def _refs(spec: CompetitionSpec) -> Iterable[tuple[object, str, DataRef]]:
    """Every DataRef in the spec with its owner and attribute name."""
    if spec.logo is not None:
        yield spec, "logo", spec.logo
    for task in spec.tasks:
        for kind in TASK_DATA_KINDS:
            if getattr(task, kind) is not None:
                yield task, kind, getattr(task, kind)
    for phase in spec.phases:
        for kind in ("starting_kit", "public_data"):
            if getattr(phase, kind) is not None:
                yield phase, kind, getattr(phase, kind)
    for solution in spec.solutions:
        yield solution, "data", solution.data


def store_bundle_data(bundle: LoadedBundle, store: Store) -> CompetitionSpec:
    """A copy of the bundle's spec with every DataRef stored and of kind "key".

    All datasets are packed first and stored only when every one succeeded, so
    a bad nested zip leaves the store untouched.
    """
    spec = copy.deepcopy(bundle.spec)
    refs = list(_refs(spec))
    with tempfile.TemporaryDirectory(prefix="compete-store-") as tmp:
        packed: dict[str, Path] = {}
        logos: dict[str, Path] = {}
        for owner, attr, ref in refs:
            if ref.kind != "path":
                continue
            source = bundle.root / ref.value
            if attr == "logo":
                logos[ref.value] = source
            elif ref.value not in packed:
                target = Path(tmp) / f"{len(packed)}.zip"
                with open(target, "wb") as out:
                    write_canonical_zip(source, out, bundle.limits, ref.value)
                packed[ref.value] = target
        keys = {value: store.put_dataset_file(path) for value, path in packed.items()}
        for value, path in logos.items():
            keys[value] = store.put_dataset_bytes(path.read_bytes())
        for owner, attr, ref in refs:
            if ref.kind == "path":
                setattr(owner, attr, DataRef("key", keys[ref.value]))
    return spec


def dataset_sizes(spec: CompetitionSpec, store: Store) -> dict[str, int]:
    """Bytes per stored dataset key of a spec (for summaries and quotas)."""
    return {ref.value: store.dataset_size(ref.value) for _, _, ref in _refs(spec)
            if ref.kind == "key" and store.has_dataset(ref.value)}


