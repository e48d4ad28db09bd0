"""The files of a run on a worker: datasets unpacked once, run folders, program metadata.

Datasets (reference data, input data, programs) arrive as ZIP files from the
artifact store.  `unpack_dataset` unpacks each one once per worker into a
cache folder named after the content hash of the ZIP, atomically (a rename
of a finished temporary folder), so that concurrent runs on the same worker
share it and a crash never leaves a half-unpacked dataset behind.  Archives
come from organizers, who are trusted with their own competition only, so
unpacking is as strict as for any upload: no absolute paths, no `..`, no
links, and an optional bound on the total size.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional

import yaml


class DatasetError(ValueError):
    """A dataset or program archive that cannot be used; the message says why."""


class ProgramError(ValueError):
    """A program folder without a usable `metadata` command; the message says what to add."""


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _member_path(name: str, archive: str) -> Optional[PurePosixPath]:
    """The safe relative path of a ZIP member, None for the root; raises on escapes."""
    # Archives made on Windows may use backslashes as separators.
    clean = name.replace("\\", "/")
    path = PurePosixPath(clean)
    if clean.startswith("/") or (path.parts and ":" in path.parts[0]):
        raise DatasetError(f"{archive}: {name!r} is an absolute path; archive members must be relative")
    parts = [part for part in path.parts if part not in ("", ".")]
    if ".." in parts:
        raise DatasetError(f"{archive}: {name!r} points outside the archive ('..'); remove it and upload again")
    return PurePosixPath(*parts) if parts else None


def _extract(zip_path: Path, target: Path, max_bytes: Optional[int]) -> None:
    archive = zip_path.name
    try:
        bundle = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{archive}: not a readable ZIP file ({error}); upload it again") from None
    total = 0
    with bundle:
        for info in bundle.infolist():
            relative = _member_path(info.filename, archive)
            if relative is None:
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DatasetError(
                    f"{archive}: {info.filename!r} is a symbolic link; links are not allowed, "
                    "put the file itself in the archive"
                )
            destination = target / relative
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, open(destination, "xb") as sink:
                # Count what is really written: the sizes in a ZIP header can lie.
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        raise DatasetError(
                            f"{archive}: unpacks to more than {max_bytes} bytes, the limit for datasets"
                        )
                    sink.write(chunk)
            # Programs are often shell scripts: keep the executable bit, drop the rest.
            executable = bool(mode & 0o111)
            destination.chmod(0o555 if executable else 0o444)


def unpack_dataset(zip_path: str | Path, cache_dir: str | Path, max_bytes: Optional[int] = None) -> Path:
    """Unpack `zip_path` once into `cache_dir/<sha256>` and return that folder.

    Files are made read-only, so that a run cannot change the cached copy
    by accident (runs get hard links to them).  Raises `DatasetError` for an
    unusable archive, naming the member at fault.
    """
    zip_path, cache_dir = Path(zip_path), Path(cache_dir)
    try:
        key = file_digest(zip_path)
    except OSError as error:
        raise DatasetError(f"{zip_path.name}: cannot be read ({error.strerror})") from None
    final = cache_dir / key
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=cache_dir))
    try:
        _extract(zip_path, staging, max_bytes)
        try:
            os.rename(staging, final)
        except OSError:
            # Another run finished the same dataset first: theirs is as good.
            if not final.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        # Another file system, or links not allowed: a copy does as well.
        shutil.copy2(source, destination)


def populate(source: str | Path, destination: str | Path) -> None:
    """Fill `destination` with the files of `source` (hard links when possible, else copies).

    Symbolic links inside `source` are copied as the files they point to, so
    the result holds no link that leads out of it.
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, destination, copy_function=_link_or_copy, dirs_exist_ok=True)


def read_program_command(program_dir: str | Path, what: str) -> Optional[str]:
    """The `command:` of a program's `metadata` (or `metadata.yaml`) file, None without one.

    `what` names the program in error messages ("the scoring program").
    """
    program_dir = Path(program_dir)
    for name in ("metadata", "metadata.yaml", "metadata.yml"):
        path = program_dir / name
        if path.is_file():
            break
    else:
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ProgramError(f"{what}: {path.name} is not valid YAML ({error}); write `command: ...`") from None
    if not isinstance(data, dict):
        # CodaLab accepts a metadata file holding anything else as "no command".
        return None
    command = data.get("command")
    if command is None:
        return None
    if not isinstance(command, str) or not command.strip():
        raise ProgramError(f"{what}: {path.name}: `command` must be a non-empty string, got {command!r}")
    return command.strip()
