"""Files written by untrusted programs are data, never paths: read them without following links.

Every folder a step could write (its output folder, the shared folder, the
predictions) is hostile ground for the worker (DESIGN.md section 8).  A
program can leave a symbolic link named like an expected output
(`executed.ipynb -> /proc/self/environ`, `answer.txt -> /app/input/ref/answer.txt`),
a FIFO that blocks the reader forever, or a device.  The helpers here are
the only way the worker looks into such a folder:

- `sanitize_tree` walks a folder without following links and removes every
  entry that is not a regular file or a directory, returning what it removed
  so that the run log can say so;
- `open_beneath` opens a file below a root with `O_NOFOLLOW` on every path
  component, and refuses anything that is not a regular file;
  `read_beneath`, `copy_beneath` and `file_size_beneath` build on it, with
  an optional cap on the bytes read;
- `regular_files` lists the regular files of a folder (no links followed);
- `tree_usage` measures a folder (bytes by `lstat`, number of entries), for
  the cap on a step's output;
- `neutral_paths` replaces worker-local paths in a message by neutral names,
  so that what a participant reads never shows the worker's file system.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

# Directories nested deeper than this are removed whole: no program needs them
# and walking them would cost one file descriptor per level.
MAX_DEPTH = 64
_CHUNK = 1 << 20
# The end of every line that reports a link or special file taken out of a step's folders.
REMOVED_SUFFIX = ": outputs must be regular files"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO for reading must never wait for a writer.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class UnsafeFileError(OSError):
    """A path below a root that is not a plain regular file reached without links."""


class FileTooLargeError(UnsafeFileError):
    """A file larger than the cap the caller set."""


@dataclass(frozen=True)
class Removed:
    """One entry `sanitize_tree` removed: its path relative to the root, its kind, a link's target."""

    path: str
    kind: str
    target: Optional[str] = None

    def describe(self, where: str) -> str:
        """A line for the run log, e.g. "removed a symbolic link a.txt -> /etc/passwd from the prediction output"."""
        name = _printable(self.path)
        if self.target is not None:
            name = f"{name} -> {_printable(self.target)}"
        return f"removed {self.kind} {name} from {where}{REMOVED_SUFFIX}"

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "target": self.target}


def _printable(text: str, limit: int = 300) -> str:
    clean = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "a special file"


def _open_root(root: str | os.PathLike) -> int:
    """A directory fd of `root`, a folder the worker made or was configured with.

    The root path itself is trusted (it may legitimately pass through links
    of the machine, such as a configured data folder); every component
    below it is opened with O_NOFOLLOW.  `sanitize_tree` replaces a root
    that a step turned into a link before anything else looks into it.
    """
    return os.open(os.fspath(root), _DIR_FLAGS & ~os.O_NOFOLLOW)


def _remove_subtree(parent_fd: int, name: str) -> None:
    """Remove the directory `name` of `parent_fd` and everything below it, following no link."""
    stack: list[tuple[int, str, int]] = []
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    stack.append((parent_fd, name, fd))
    while stack:
        parent, dname, dfd = stack[-1]
        child_dir = None
        with os.scandir(dfd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    child_dir = entry.name
                    break
                os.unlink(entry.name, dir_fd=dfd)
        if child_dir is not None:
            stack.append((dfd, child_dir, os.open(child_dir, _DIR_FLAGS, dir_fd=dfd)))
            continue
        stack.pop()
        os.close(dfd)
        os.rmdir(dname, dir_fd=parent)


def sanitize_tree(root: str | os.PathLike) -> list[Removed]:
    """Remove every entry below `root` that is not a regular file or a directory; return them.

    Nothing is followed: links are removed as links (their target is
    reported, never touched), FIFOs are never opened.  When `root` itself
    has been replaced by a link (possible only where the program could reach
    the folder's parent), the link is removed and an empty folder is made.
    Directories deeper than `MAX_DEPTH` are removed whole.
    """
    root = Path(root)
    removed: list[Removed] = []
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        return removed
    if not stat.S_ISDIR(mode):
        target = os.readlink(root) if stat.S_ISLNK(mode) else None
        os.unlink(root)
        root.mkdir()
        removed.append(Removed(".", _kind(mode), target))
        return removed
    root_fd = _open_root(root)
    # Depth-first with an explicit stack: a hostile tree can be deep.
    stack: list[tuple[int, str]] = [(root_fd, "")]
    try:
        while stack:
            dfd, prefix = stack.pop()
            try:
                subdirs: list[str] = []
                with os.scandir(dfd) as entries:
                    listing = list(entries)
                for entry in listing:
                    rel = f"{prefix}{entry.name}"
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        if rel.count("/") + 1 > MAX_DEPTH:
                            _remove_subtree(dfd, entry.name)
                            removed.append(Removed(rel, f"a folder nested deeper than {MAX_DEPTH} levels"))
                        else:
                            subdirs.append(entry.name)
                        continue
                    target = None
                    if stat.S_ISLNK(st.st_mode):
                        try:
                            target = os.readlink(entry.name, dir_fd=dfd)
                        except OSError:
                            target = "?"
                    os.unlink(entry.name, dir_fd=dfd)
                    removed.append(Removed(rel, _kind(st.st_mode), target))
                for name in subdirs:
                    try:
                        child = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                    except OSError as error:
                        if error.errno in (errno.ELOOP, errno.ENOTDIR):
                            # Swapped for a link since the listing: remove it as a link.
                            os.unlink(name, dir_fd=dfd)
                            removed.append(Removed(f"{prefix}{name}", "a symbolic link", "?"))
                            continue
                        if error.errno == errno.ENOENT:
                            continue
                        raise
                    stack.append((child, f"{prefix}{name}/"))
            finally:
                if dfd != root_fd:
                    os.close(dfd)
    finally:
        for dfd, _ in stack:
            if dfd != root_fd:
                os.close(dfd)
        os.close(root_fd)
    return removed


def _parts(rel: str | os.PathLike) -> list[str]:
    parts = [p for p in PurePosixPath(os.fspath(rel)).parts if p not in ("", ".")]
    if not parts or parts[0] == "/" or ".." in parts:
        raise UnsafeFileError(errno.EINVAL, f"not a relative path below the folder: {os.fspath(rel)!r}")
    return parts


def open_beneath(root: str | os.PathLike, rel: str | os.PathLike) -> int:
    """An fd of the regular file `root/rel`, opened with O_NOFOLLOW on every component.

    Raises `UnsafeFileError` when a component is a link or not a directory,
    or when the file is not a regular file; `FileNotFoundError` when it is
    missing.  The caller closes the fd.
    """
    parts = _parts(rel)
    dfd = _open_root(root)
    try:
        for part in parts[:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeFileError(error.errno, f"{os.fspath(rel)}: {part} is not a plain folder") from None
                raise
            os.close(dfd)
            dfd = child
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dfd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENXIO):
                raise UnsafeFileError(error.errno, f"{os.fspath(rel)} is a symbolic link or special file") from None
            raise
    finally:
        os.close(dfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(errno.EINVAL, f"{os.fspath(rel)} is not a regular file")
        # Reads block normally from here (O_NONBLOCK only mattered for the open).
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def split_path(path: str | os.PathLike) -> tuple[Path, str]:
    """(folder, name) of a path, for callers that hold a full path to a file in a worker-made folder."""
    path = Path(path)
    return path.parent, path.name


def file_size_beneath(root: str | os.PathLike, rel: str | os.PathLike) -> int:
    """Size of the regular file `root/rel` (same rules as `open_beneath`)."""
    fd = open_beneath(root, rel)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def is_regular_beneath(root: str | os.PathLike, rel: str | os.PathLike) -> bool:
    """True when `root/rel` is a regular file reached without any link."""
    try:
        os.close(open_beneath(root, rel))
        return True
    except OSError:
        return False


def _read_fd(fd: int, max_bytes: Optional[int], what: str) -> bytes:
    size = os.fstat(fd).st_size
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(errno.EFBIG, f"{what} is {size} bytes, more than the {max_bytes} allowed")
    chunks = []
    total = 0
    with os.fdopen(os.dup(fd), "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise FileTooLargeError(errno.EFBIG, f"{what} grew past the {max_bytes} bytes allowed")
            chunks.append(chunk)
    return b"".join(chunks)


def read_beneath(root: str | os.PathLike, rel: str | os.PathLike, max_bytes: Optional[int] = None) -> bytes:
    """The bytes of the regular file `root/rel`, never through a link; at most `max_bytes`."""
    fd = open_beneath(root, rel)
    try:
        return _read_fd(fd, max_bytes, os.fspath(rel))
    finally:
        os.close(fd)


def read_file(path: str | os.PathLike, max_bytes: Optional[int] = None) -> bytes:
    """`read_beneath` for a full path whose folder the worker made (the last component is checked)."""
    folder, name = split_path(path)
    return read_beneath(folder, name, max_bytes)


def copy_beneath(root: str | os.PathLike, rel: str | os.PathLike, destination: str | os.PathLike,
                 max_bytes: Optional[int] = None) -> int:
    """Copy the regular file `root/rel` to `destination` (a worker path); returns the bytes copied.

    The source is opened as `open_beneath` does; a link or any other
    non-regular entry at `destination` is replaced, never written through.
    """
    fd = open_beneath(root, rel)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise FileTooLargeError(errno.EFBIG, f"{os.fspath(rel)} is {size} bytes, more than the {max_bytes} allowed")
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.part")
        total = 0
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                      0o644)
        try:
            with os.fdopen(os.dup(fd), "rb") as source, os.fdopen(out, "wb") as sink:
                for chunk in iter(lambda: source.read(_CHUNK), b""):
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        raise FileTooLargeError(errno.EFBIG, f"{os.fspath(rel)} grew past the {max_bytes} bytes allowed")
                    sink.write(chunk)
            os.replace(partial, destination)
        except BaseException:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise
        return total
    finally:
        os.close(fd)


def copy_file(source: str | os.PathLike, destination: str | os.PathLike, max_bytes: Optional[int] = None) -> int:
    """`copy_beneath` for a full source path whose folder the worker made."""
    folder, name = split_path(source)
    return copy_beneath(folder, name, destination, max_bytes)


def write_beneath(root: str | os.PathLike, name: str, data: bytes) -> None:
    """Write `data` as the regular file `root/name` (one component), replacing any link there."""
    if "/" in name or name in ("", ".", ".."):
        raise UnsafeFileError(errno.EINVAL, f"not a file name: {name!r}")
    dfd = _open_root(root)
    try:
        try:
            mode = os.lstat(name, dir_fd=dfd).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            if stat.S_ISDIR(mode):
                _remove_subtree(dfd, name)
            else:
                os.unlink(name, dir_fd=dfd)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     0o644, dir_fd=dfd)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    finally:
        os.close(dfd)


def walk_entries(root: str | os.PathLike) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every entry below `root`, directories first; no link is followed.

    Entries that vanish while walking are skipped (the tree may be written to).
    """
    try:
        root_fd = _open_root(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        if error.errno == errno.ELOOP:
            return
        raise
    stack: list[tuple[int, str]] = [(root_fd, "")]
    try:
        while stack:
            dfd, prefix = stack.pop()
            try:
                with os.scandir(dfd) as entries:
                    listing = list(entries)
                for entry in listing:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    rel = f"{prefix}{entry.name}"
                    yield rel, st
                    if stat.S_ISDIR(st.st_mode) and rel.count("/") < MAX_DEPTH:
                        try:
                            stack.append((os.open(entry.name, _DIR_FLAGS, dir_fd=dfd), rel + "/"))
                        except OSError:
                            continue
            finally:
                if dfd != root_fd:
                    os.close(dfd)
    finally:
        for dfd, _ in stack:
            if dfd != root_fd:
                os.close(dfd)
        os.close(root_fd)


def regular_files(root: str | os.PathLike) -> list[str]:
    """Relative paths of the regular files below `root`, sorted; links and special files are left out."""
    return sorted(rel for rel, st in walk_entries(root) if stat.S_ISREG(st.st_mode))


def tree_usage(root: str | os.PathLike, stop_bytes: Optional[int] = None,
               stop_entries: Optional[int] = None) -> tuple[int, int]:
    """(bytes, entries) below `root` by `lstat`; stops counting once past either bound.

    A file's size is the larger of its length and the blocks it holds, so a
    sparse file counts for what a copy of it would cost.
    """
    total = entries = 0
    for _rel, st in walk_entries(root):
        entries += 1
        if stat.S_ISREG(st.st_mode):
            total += max(st.st_size, getattr(st, "st_blocks", 0) * 512)
        if (stop_bytes is not None and total > stop_bytes) or (stop_entries is not None and entries > stop_entries):
            break
    return total, entries


def neutral_paths(text: Optional[str], names: dict[str, str]) -> Optional[str]:
    """`text` with every worker path of `names` (path -> neutral name) replaced by its name.

    Both the path as given and its resolved form are replaced, longest
    first, so that a message keeps what follows the folder ("<run>/input/x")
    and never shows where the worker keeps it.
    """
    if not text:
        return text
    pairs: dict[str, str] = {}
    for path, name in names.items():
        if not path:
            continue
        for form in {str(path).rstrip("/"), os.path.realpath(str(path)).rstrip("/")}:
            if form and form != "/" and form not in pairs:
                pairs[form] = name
    for form in sorted(pairs, key=len, reverse=True):
        text = text.replace(form, pairs[form])
    return text
