"""Safe unpacking of uploaded bundle zips and of the zips inside them.

Organizers upload bundles and participants' data flows through the same code,
so a zip is never trusted: every member path must stay inside the target
folder (no `../`, absolute paths or drive letters), symbolic links are
refused, and member count, total size, per-file size and compression ratio
are capped (zip bombs).  Every violation is reported as a `Problem` naming the
archive and the member, all at once, before anything is written.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterator, Optional

from .model import Problem

_GIB = 1 << 30
_MIB = 1 << 20

# Files that zip tools add on their own; they are not part of anyone's data.
NOISE_PARTS = {"__MACOSX", ".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class UnpackLimits:
    """Caps applied to every zip read (bundle, nested datasets, programs)."""

    max_members: int = 20000
    max_total_bytes: int = 4 * _GIB
    max_file_bytes: int = 2 * _GIB
    max_ratio: float = 100.0
    # Tiny files of repeated bytes legitimately compress far beyond any ratio;
    # a bomb is big by definition, so the ratio is only checked above this size.
    ratio_min_bytes: int = 1 * _MIB


def member_path(name: str) -> Optional[str]:
    """The normalized relative POSIX path of a zip member, or None if unsafe."""
    # Some Windows tools write backslashes; read them as separators so that
    # `..\x` cannot slip past the check.
    text = name.replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    path = "/".join(parts)
    # `./C:x` normalizes to a drive-letter path: refuse it after normalizing too.
    if re.match(r"^[A-Za-z]:", path):
        return None
    return path


def is_noise(relpath: str) -> bool:
    return any(part in NOISE_PARTS or part.startswith("._") for part in relpath.split("/"))


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def check_zip(zf: zipfile.ZipFile, label: str, limits: UnpackLimits,
              warnings: Optional[list[str]] = None) -> list[Problem]:
    """Every reason not to unpack `zf`; `label` names the archive in messages.

    A member listed twice with the same contents (zip tools write that when a
    folder is added twice; CodaLab accepted such bundles) is not a problem:
    one copy is used, and `warnings`, when given, says so.  Twice with
    different contents is a problem, as nobody can tell which one is meant.
    """
    problems: list[Problem] = []
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        problems.append(Problem(label, "(archive)",
                                f"has {len(infos)} members, more than the limit of {limits.max_members}"))
        return problems
    total = 0
    seen: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        path = member_path(info.filename)
        if path is None:
            problems.append(Problem(label, info.filename,
                                    "member path escapes the archive (absolute, drive letter or '..'); "
                                    "rebuild the zip with relative paths"))
            continue
        if _is_symlink(info):
            problems.append(Problem(label, info.filename,
                                    "is a symbolic link; zips may only hold regular files and folders"))
            continue
        if info.is_dir():
            continue
        if info.file_size > limits.max_file_bytes:
            problems.append(Problem(label, info.filename,
                                    f"unpacks to {info.file_size} bytes, more than the per-file limit "
                                    f"of {limits.max_file_bytes}"))
        if (info.file_size >= limits.ratio_min_bytes
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            ratio = info.file_size / max(info.compress_size, 1)
            problems.append(Problem(label, info.filename,
                                    f"compression ratio {ratio:.0f}:1 is above the limit of "
                                    f"{limits.max_ratio:.0f}:1 (zip bomb?)"))
        # Every copy counts against the caps, so that repeating a member cannot get around them.
        total += info.file_size
        if path in seen:
            first = seen[path]
            differs = first.file_size != info.file_size or first.CRC != info.CRC
            if not differs and (problems or total > limits.max_total_bytes):
                continue  # refused anyway: not read
            if differs or not _same_content(zf, first, info, limits):
                problems.append(Problem(label, info.filename,
                                        f"appears twice in the archive with different contents (also as "
                                        f"{first.filename!r}); keep one copy and rebuild the zip"))
            elif warnings is not None:
                warnings.append(str(Problem(label, info.filename,
                                            "appears twice in the archive with the same contents; "
                                            "one copy is used")))
            continue
        seen[path] = info
    if total > limits.max_total_bytes:
        problems.append(Problem(label, "(archive)",
                                f"unpacks to {total} bytes, more than the limit of {limits.max_total_bytes}"))
    return problems


def _same_content(zf: zipfile.ZipFile, first: zipfile.ZipInfo, second: zipfile.ZipInfo,
                  limits: UnpackLimits) -> bool:
    """Whether two members hold the same bytes; read in step, never past the per-file cap."""
    if first.file_size != second.file_size or first.CRC != second.CRC:
        return False
    if first.file_size > limits.max_file_bytes:
        return False  # the size check reports it; such a member is never read
    try:
        with zf.open(first) as a, zf.open(second) as b:
            read = 0
            while True:
                chunk_a, chunk_b = a.read(_MIB), b.read(_MIB)
                if chunk_a != chunk_b:
                    return False
                if not chunk_a:
                    return True
                read += len(chunk_a)
                if read > first.file_size:
                    return False  # inflates past its declared size
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
        return False


def open_zip(path: Path, label: str) -> tuple[Optional[zipfile.ZipFile], list[Problem]]:
    try:
        return zipfile.ZipFile(path), []
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return None, [Problem(label, "(archive)", f"is not a readable zip file ({exc})")]


def check_zip_file(path: Path, label: str, limits: UnpackLimits,
                   warnings: Optional[list[str]] = None) -> list[Problem]:
    zf, problems = open_zip(path, label)
    if zf is None:
        return problems
    with zf:
        return check_zip(zf, label, limits, warnings)


def zip_members(zf: zipfile.ZipFile) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """Regular file members as (normalized path, info), noise and repeated copies skipped.

    Call after `check_zip`, which has refused members listed twice with
    different contents.
    """
    seen: set[str] = set()
    for info in zf.infolist():
        path = member_path(info.filename)
        if path is None or info.is_dir() or _is_symlink(info) or is_noise(path) or path in seen:
            continue
        seen.add(path)
        yield path, info


def copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: IO[bytes], label: str,
                limits: UnpackLimits) -> None:
    """Stream one member out, stopping if it inflates past what its header claimed."""
    written = 0
    with zf.open(info) as src:
        for chunk in iter(lambda: src.read(_MIB), b""):
            written += len(chunk)
            if written > min(info.file_size, limits.max_file_bytes):
                raise UnpackError([Problem(label, info.filename, "inflates past its declared size")])
            out.write(chunk)


class UnpackError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


def extract_zip(path: Path, target: Path, limits: UnpackLimits, label: str,
                warnings: Optional[list[str]] = None) -> list[Problem]:
    """Unpack `path` into `target` if it passes every check; else return the problems."""
    zf, problems = open_zip(path, label)
    if zf is None:
        return problems
    with zf:
        problems = check_zip(zf, label, limits, warnings)
        if problems:
            return problems
        target.mkdir(parents=True, exist_ok=True)
        base = target.resolve()
        written: set[str] = set()
        try:
            for info in zf.infolist():
                rel = member_path(info.filename)
                assert rel is not None  # check_zip refused unsafe names
                if rel in written:
                    continue  # a second copy, with the same contents (check_zip compared them)
                dest = (base / rel) if rel else base
                if base != dest and base not in dest.parents:
                    return [Problem(label, info.filename, "member path escapes the archive")]
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                written.add(rel)
                # Permissions in the zip are not honoured: a bundle's files are data.
                with open(dest, "wb") as out:
                    copy_member(zf, info, out, label, limits)
        except UnpackError as exc:
            return exc.problems
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            return [Problem(label, "(archive)", f"could not be unpacked ({exc})")]
    return []


def check_folder_links(root: Path, label: str) -> list[Problem]:
    """Symbolic links in a folder bundle that lead outside it (or nowhere)."""
    problems = []
    base = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            if not entry.is_symlink():
                continue
            rel = entry.relative_to(root).as_posix()
            try:
                resolved = entry.resolve(strict=True)
            except (OSError, RuntimeError):
                problems.append(Problem(label, rel, "is a broken symbolic link"))
                continue
            if resolved != base and base not in resolved.parents:
                problems.append(Problem(label, rel,
                                        "is a symbolic link pointing outside the bundle; "
                                        "copy the file into the bundle instead"))
    return problems


def remove_tree(path: Optional[str | Path]) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def folder_files(root: Path) -> list[tuple[str, Path]]:
    """Regular files under a folder as sorted (POSIX relative path, path), noise skipped.

    Symbolic links inside the folder are followed (`check_folder_links` has
    refused those leading out); a link back up the tree is visited once.
    """
    found: list[tuple[str, Path]] = []
    seen_dirs: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        for name in filenames:
            entry = Path(dirpath) / name
            rel = PurePosixPath(entry.relative_to(root).as_posix()).as_posix()
            if is_noise(rel) or not entry.is_file():
                continue
            found.append((rel, entry))
    found.sort(key=lambda item: item[0])
    return found
