"""The files of a run on a worker: datasets unpacked once, run folders, program metadata.

Datasets (reference data, input data, programs) arrive as ZIP files from the
artifact store.  `unpack_dataset` unpacks each one once per worker into a
cache folder named after the content hash of the ZIP, atomically (a rename
of a finished temporary folder), so that concurrent runs on the same worker
share it and a crash never leaves a half-unpacked dataset behind.  Archives
come from organizers, who are trusted with their own competition only, and
submissions from participants, so unpacking is as strict as for any upload:
no absolute paths, no `..`, no links, and the platform's unpack limits
(`UnpackLimits`: member count, total and per-file size, compression ratio),
enforced on the bytes written.

The cache has a size cap: `evict_cache` removes the least recently used
entries (an entry is touched on every use), never one a run of this machine
holds (`CacheUse`).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Optional

import yaml

from .safe_files import copy_beneath, read_beneath, tree_usage, walk_entries

_MIB = 1 << 20
_GIB = 1 << 30
_KEY = re.compile(r"[0-9a-f]{64}")


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


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds on what one archive may unpack to, as the platform checks them on bundles.

    The defaults equal the platform's `c.Compete.unpack_max_*` defaults; the
    platform sends its own values in a job as `unpack_limits` (see
    `from_job`).  Sizes are enforced on the bytes really written, since the
    sizes in a ZIP header can lie.
    """

    max_members: int = 20000
    max_total_bytes: int = 4 * _GIB
    max_file_bytes: int = 2 * _GIB
    max_ratio: float = 100.0
    # Tiny files of repeated bytes compress far beyond any ratio; a bomb is
    # big by definition, so the ratio is only checked past this size.
    ratio_min_bytes: int = 1 * _MIB

    @classmethod
    def from_job(cls, data: Optional[dict]) -> "UnpackLimits":
        """Limits from a job's `unpack_limits` dict (keys as the fields); missing keys keep the defaults."""
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        values = {}
        for name, value in data.items():
            if name in known and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                values[name] = float(value) if name == "max_ratio" else int(value)
        return cls(**values)


def _extract(zip_path: Path, target: Path, max_bytes: Optional[int], limits: UnpackLimits, label: str) -> int:
    """Unpack into `target`, enforcing `limits` while writing; returns the bytes written."""
    archive = label
    try:
        bundle = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DatasetError(f"{archive}: not a readable ZIP file ({error}); upload it again") from None
    total_cap = limits.max_total_bytes if max_bytes is None else min(max_bytes, limits.max_total_bytes)
    total = 0
    # A member listed twice (zip tools write that when a folder is added twice): the first
    # copy is used when the copies agree, as the platform said at upload; else refused.
    first: dict[PurePosixPath, zipfile.ZipInfo] = {}
    with bundle:
        infos = bundle.infolist()
        if len(infos) > limits.max_members:
            raise DatasetError(f"{archive}: has {len(infos)} members, more than the limit of {limits.max_members}")
        for info in infos:
            relative = _member_path(info.filename, archive)
            if relative is None:
                continue
            if not info.is_dir() and relative in first:
                earlier = first[relative]
                if (earlier.CRC, earlier.file_size) != (info.CRC, info.file_size):
                    raise DatasetError(f"{archive}: {info.filename!r} appears twice with different contents; "
                                       "keep one copy and upload again")
                continue
            if not info.is_dir():
                first[relative] = info
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
            written = 0
            try:
                with bundle.open(info) as source, open(destination, "xb") as sink:
                    # Count what is really written: the sizes in a ZIP header can lie.
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        written += len(chunk)
                        total += len(chunk)
                        if written > limits.max_file_bytes:
                            raise DatasetError(
                                f"{archive}: {info.filename!r} unpacks to more than {limits.max_file_bytes} bytes, "
                                f"the per-file limit"
                            )
                        if (written >= limits.ratio_min_bytes
                                and written > limits.max_ratio * max(info.compress_size, 1)):
                            raise DatasetError(
                                f"{archive}: {info.filename!r}: compression ratio above the limit of "
                                f"{limits.max_ratio:.0f}:1 (zip bomb?)"
                            )
                        if total > total_cap:
                            what = "the limit for datasets" if max_bytes is not None and max_bytes <= limits.max_total_bytes \
                                else "the limit"
                            raise DatasetError(f"{archive}: unpacks to more than {total_cap} bytes, {what}")
                        sink.write(chunk)
            except (zipfile.BadZipFile, EOFError, zlib.error) as error:
                raise DatasetError(f"{archive}: {info.filename!r} could not be unpacked ({error})") from None
            # Programs are often shell scripts: keep the executable bit, drop the rest.
            executable = bool(mode & 0o111)
            destination.chmod(0o555 if executable else 0o444)
    return total


# -- the dataset cache --------------------------------------------------------------

_in_use_lock = threading.Lock()
_in_use: dict[str, int] = {}  # cache entry path -> runs of this process using it


def _lock_path(cache_dir: Path, name: str) -> Path:
    return cache_dir / ".locks" / name


class CacheUse:
    """Holds entries of a dataset cache in use until `close`: they are never evicted meanwhile.

    Each entry is marked twice: a count in this process, and a shared
    `flock` on `<cache>/.locks/<entry>` seen by every worker process of the
    machine (eviction takes the lock exclusively, without waiting, and
    skips the entry when it cannot).
    """

    def __init__(self) -> None:
        self._held: list[tuple[str, int]] = []

    def hold(self, entry: Path) -> None:
        entry = Path(entry)
        key = str(entry)
        lock = _lock_path(entry.parent, entry.name)
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        with _in_use_lock:
            _in_use[key] = _in_use.get(key, 0) + 1
        self._held.append((key, fd))
        _touch(entry)

    def close(self) -> None:
        for key, fd in self._held:
            with _in_use_lock:
                left = _in_use.get(key, 0) - 1
                if left > 0:
                    _in_use[key] = left
                else:
                    _in_use.pop(key, None)
            os.close(fd)
        self._held.clear()

    def __enter__(self) -> "CacheUse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _touch(entry: Path) -> None:
    try:
        os.utime(entry, follow_symlinks=False)
    except OSError:
        pass


def _entry_size(entry: Path) -> int:
    """Bytes of a cache entry; folders are measured once (entries never change) and remembered."""
    if entry.is_file():
        return entry.stat().st_size
    memo = entry.parent / ".sizes" / entry.name
    try:
        return int(memo.read_text())
    except (OSError, ValueError):
        pass
    size = tree_usage(entry)[0]
    try:
        memo.parent.mkdir(exist_ok=True)
        memo.write_text(str(size))
    except OSError:
        pass
    return size


def cache_entries(cache_dir: str | Path) -> list[Path]:
    """The evictable entries of a cache: unpacked folders and received archives (`blobs/`)."""
    cache_dir = Path(cache_dir)
    entries = [p for p in cache_dir.iterdir() if _KEY.fullmatch(p.name) and p.is_dir()] if cache_dir.is_dir() else []
    blobs = cache_dir / "blobs"
    if blobs.is_dir():
        entries += [p for p in blobs.iterdir() if _KEY.fullmatch(p.name) and p.is_file()]
    return entries


def evict_cache(cache_dir: str | Path, max_bytes: int) -> list[str]:
    """Remove least recently used entries until the cache holds at most `max_bytes`; returns their names.

    Entries in use (held by a `CacheUse` of any worker process on this
    machine) are never removed, even when the cap cannot be met without them.
    """
    cache_dir = Path(cache_dir)
    sized = []
    for entry in cache_entries(cache_dir):
        try:
            sized.append((entry.stat().st_mtime, entry, _entry_size(entry)))
        except OSError:
            continue
    total = sum(size for _, _, size in sized)
    evicted: list[str] = []
    for _mtime, entry, size in sorted(sized, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        with _in_use_lock:
            if _in_use.get(str(entry)):
                continue
        lock = _lock_path(entry.parent, entry.name)
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a run of another worker process uses it
            # Renamed away first, so that a run looking it up meanwhile unpacks it again.
            doomed = entry.with_name(f".evicted-{entry.name}-{os.getpid()}")
            try:
                os.rename(entry, doomed)
            except OSError:
                continue
            if doomed.is_dir():
                _make_writable(doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                (cache_dir / ".sizes" / entry.name).unlink(missing_ok=True)
            else:
                doomed.unlink(missing_ok=True)
            total -= size
            evicted.append(entry.name)
        finally:
            os.close(fd)
    return evicted


def _make_writable(folder: Path) -> None:
    # Cached files and folders are read-only; a non-root worker needs write
    # permission on a folder to remove what it holds.
    for rel, st in walk_entries(folder):
        if stat.S_ISDIR(st.st_mode):
            try:
                os.chmod(folder / rel, 0o755, follow_symlinks=False)
            except OSError:
                pass
    try:
        os.chmod(folder, 0o755)
    except OSError:
        pass


def unpack_dataset(zip_path: str | Path, cache_dir: str | Path, max_bytes: Optional[int] = None,
                   limits: Optional[UnpackLimits] = None, label: Optional[str] = None,
                   use: Optional[CacheUse] = None) -> Path:
    """Unpack `zip_path` once into `cache_dir/<sha256>` and return that folder.

    Files are made read-only, so that a run cannot change the cached copy
    by accident (runs get hard links to them).  `limits` (default:
    `UnpackLimits()`) bound the member count, the total and per-file sizes
    and the compression ratio, checked on the bytes written; `max_bytes`
    lowers the total further.  `label` names the archive in messages (the
    file name by default).  With `use`, the folder is held in use until
    `use` is closed, so that cache eviction leaves it alone.  Raises
    `DatasetError` for an unusable archive, naming the member at fault.
    """
    zip_path, cache_dir = Path(zip_path), Path(cache_dir)
    label = label or zip_path.name
    try:
        key = file_digest(zip_path)
    except OSError as error:
        raise DatasetError(f"{label}: cannot be read ({error.strerror})") from None
    final = cache_dir / key
    if use is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        use.hold(final)
    if final.is_dir():
        _touch(final)
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=cache_dir))
    try:
        _extract(zip_path, staging, max_bytes, limits or UnpackLimits(), label)
        try:
            os.rename(staging, final)
        except OSError:
            # Another run finished the same dataset first: theirs is as good.
            if not final.is_dir():
                raise
    finally:
        if staging.exists():
            _make_writable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _link_or_copy(source_dir: Path, rel: str, destination: Path) -> None:
    try:
        os.link(source_dir / rel, destination, follow_symlinks=False)
    except OSError:
        # Another file system, or links not allowed: a copy does as well.
        copy_beneath(source_dir, rel, destination)


def populate(source: str | Path, destination: str | Path) -> list[str]:
    """Fill `destination` with the regular files of `source` (hard links when possible, else copies).

    Nothing is followed: symbolic links and special files of `source` are
    skipped (and returned), folders are made.  The result holds no link.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(source))
    destination.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    for rel, st in walk_entries(source):
        target = destination / rel
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(exist_ok=True)
        elif stat.S_ISREG(st.st_mode):
            if os.path.lexists(target):
                os.unlink(target)
            _link_or_copy(source, rel, target)
        else:
            skipped.append(rel)
    return skipped


def read_program_command(program_dir: str | Path, what: str) -> Optional[str]:
    """The `command:` of a program's `metadata` (or `metadata.yaml`) file, None without one.

    `what` names the program in error messages ("the scoring program").
    """
    program_dir = Path(program_dir)
    for name in ("metadata", "metadata.yaml", "metadata.yml"):
        path = program_dir / name
        try:
            text = read_beneath(program_dir, name, max_bytes=_MIB).decode()
            break
        except FileNotFoundError:
            continue
        except UnicodeDecodeError as error:
            raise ProgramError(f"{what}: {name} is not UTF-8 text ({error})") from None
        except OSError as error:
            raise ProgramError(f"{what}: {name} is not a regular file of at most 1 MB ({error.strerror})") from None
    else:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
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
