"""The helpers that read what untrusted programs wrote: no link is ever followed, no FIFO ever blocks."""
from __future__ import annotations

import os
import socket
import time
import zipfile
from pathlib import Path

import pytest

from dask_workers.mirror import FolderMirror, Route
from dask_workers.safe_files import (FileTooLargeError, UnsafeFileError, copy_beneath, neutral_paths, open_beneath,
                                     read_beneath, regular_files, sanitize_tree, tree_usage)
from dask_workers.workdir import CacheUse, DatasetError, UnpackLimits, evict_cache, populate, unpack_dataset


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """A folder as a step could leave it, and a file of the host its links point to."""
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    out = tmp_path / "out"
    (out / "sub" / "deeper").mkdir(parents=True)
    (out / "ok.txt").write_text("data")
    (out / "sub" / "deeper" / "fine.txt").write_text("fine")
    (out / "link.txt").symlink_to(secret)
    (out / "sub" / "rel.txt").symlink_to("../../secret.txt")
    (out / "dirlink").symlink_to(tmp_path)
    os.mkfifo(out / "sub" / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(out / "sock"))
    sock.close()
    return out, secret


def test_sanitize_removes_links_and_special_files_only(hostile):
    out, secret = hostile

    removed = sanitize_tree(out)

    assert sorted((r.path, r.kind, r.target) for r in removed) == [
        ("dirlink", "a symbolic link", str(secret.parent)),
        ("link.txt", "a symbolic link", str(secret)),
        ("sock", "a socket", None),
        ("sub/pipe", "a named pipe", None),
        ("sub/rel.txt", "a symbolic link", "../../secret.txt"),
    ]
    assert regular_files(out) == ["ok.txt", "sub/deeper/fine.txt"]
    assert secret.read_text() == "host secret"
    line = [r for r in removed if r.path == "link.txt"][0].describe("the prediction output")
    assert line == f"removed a symbolic link link.txt -> {secret} from the prediction output: outputs must be regular files"


def test_sanitize_replaces_a_root_turned_into_a_link(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("x")
    (tmp_path / "out").symlink_to(tmp_path / "elsewhere")

    removed = sanitize_tree(tmp_path / "out")

    assert [(r.path, r.kind) for r in removed] == [(".", "a symbolic link")]
    assert (tmp_path / "out").is_dir() and not (tmp_path / "out").is_symlink()
    assert (tmp_path / "elsewhere" / "keep.txt").exists()


def test_reads_never_follow_links_on_any_component_nor_block_on_fifos(hostile, tmp_path):
    out, _secret = hostile
    assert read_beneath(out, "ok.txt") == b"data"
    assert read_beneath(out, "sub/deeper/fine.txt") == b"fine"
    for rel in ("link.txt", "sub/rel.txt", "dirlink/secret.txt", "sub/pipe", "sock"):
        started = time.monotonic()
        with pytest.raises(UnsafeFileError):
            read_beneath(out, rel)
        assert time.monotonic() - started < 1
    for rel in ("../secret.txt", "/etc/passwd"):
        with pytest.raises(UnsafeFileError):
            open_beneath(out, rel)
    with pytest.raises(FileTooLargeError):
        read_beneath(out, "ok.txt", max_bytes=2)
    # A link waiting at the destination of a copy is replaced, not written through.
    target = tmp_path / "copy.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    target.symlink_to(victim)
    assert copy_beneath(out, "ok.txt", target) == 4
    assert not target.is_symlink() and target.read_text() == "data" and victim.read_text() == "untouched"


def test_tree_usage_counts_by_lstat(hostile):
    out, _ = hostile
    size, entries = tree_usage(out)
    assert size >= len("data") + len("fine")
    assert size < 1 << 20  # the linked folder (the whole tmp_path) is not counted
    assert entries == 9


def test_neutral_paths_hide_worker_folders(tmp_path):
    work = tmp_path / "work" / "submission-1-abc"
    message = f"[Errno 2] No such file or directory: '{work}/task-0/input/ref/x'"
    assert neutral_paths(message, {str(work): "<run>"}) == "[Errno 2] No such file or directory: '<run>/task-0/input/ref/x'"


def test_populate_copies_regular_files_only(hostile, tmp_path):
    out, _ = hostile
    skipped = populate(out, tmp_path / "copy")
    assert sorted(skipped) == ["dirlink", "link.txt", "sock", "sub/pipe", "sub/rel.txt"]
    assert regular_files(tmp_path / "copy") == ["ok.txt", "sub/deeper/fine.txt"]
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))


def test_mirror_passes_regular_files_and_reports_links(tmp_path):
    source, destination = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    destination.mkdir()
    (source / "a.txt").write_text("one")
    (source / "link").symlink_to("/etc/hostname")
    # A link planted at the destination is replaced by the file, never written through.
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (destination / "a.txt").symlink_to(victim)
    lines: list[str] = []
    mirror = FolderMirror([Route(source, destination, "the ingestion output")], [], log=lines.append)

    mirror.sync_once()
    (source / "a.txt").write_text("one and two")
    os.utime(source / "a.txt", ns=(time.time_ns() + 10**9,) * 2)
    mirror.sync_once()

    assert (destination / "a.txt").read_text() == "one and two" and not (destination / "a.txt").is_symlink()
    assert victim.read_text() == "untouched"
    assert not (destination / "link").exists()
    assert lines == ["did not pass on a symbolic link link -> /etc/hostname from the ingestion output: "
                     "outputs must be regular files"]


def test_mirror_of_the_shared_folder_goes_both_ways(tmp_path):
    left, right = tmp_path / "left", tmp_path / "right"
    left.mkdir()
    right.mkdir()
    mirror = FolderMirror([], [Route(left, right, "left"), Route(right, left, "right", wins_ties=False)])
    (left / "from-left").write_text("L")
    (right / "from-right").write_text("R")
    mirror.sync_once()
    assert (right / "from-left").read_text() == "L" and (left / "from-right").read_text() == "R"
    copies = mirror.copies
    mirror.sync_once()
    assert mirror.copies == copies  # nothing changed: nothing copied back and forth


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_unpack_limits_are_enforced_on_bytes_written(tmp_path):
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (8 << 20)})
    with pytest.raises(DatasetError, match=r"compression ratio above the limit of 100:1"):
        unpack_dataset(bomb, tmp_path / "cache", label="the submission")
    with pytest.raises(DatasetError, match="per-file limit"):
        unpack_dataset(bomb, tmp_path / "cache", limits=UnpackLimits(max_file_bytes=1 << 20, max_ratio=1e9))
    many = _zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(5)})
    with pytest.raises(DatasetError, match="has 5 members, more than the limit of 4"):
        unpack_dataset(many, tmp_path / "cache", limits=UnpackLimits.from_job({"max_members": 4}))
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == []
    assert UnpackLimits.from_job(None) == UnpackLimits()


def test_cache_eviction_is_least_recently_used_and_spares_entries_in_use(tmp_path):
    cache = tmp_path / "cache"
    folders = []
    for index in range(3):
        archive = _zip(tmp_path / f"d{index}.zip", {"data.bin": os.urandom(1 << 20)})
        folders.append(unpack_dataset(archive, cache))
        time.sleep(0.02)
    os.utime(folders[0])  # used again: now the most recent
    with CacheUse() as use:
        use.hold(folders[1])  # a running job holds the second one
        evicted = evict_cache(cache, 2 << 20)
    assert evicted == [folders[2].name]
    assert folders[0].is_dir() and folders[1].is_dir() and not folders[2].exists()


def test_a_member_twice_unpacks_once_when_the_copies_agree_and_is_refused_when_they_differ(tmp_path):
    import warnings

    def archive(name: str, second: bytes) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zipfile's own "Duplicate name" warning
            zf.writestr("res/predictions.txt", b"1\n2\n")
            zf.writestr("res/predictions.txt", second)
        return path

    folder = unpack_dataset(archive("same.zip", b"1\n2\n"), tmp_path / "cache")
    assert (Path(folder) / "res" / "predictions.txt").read_bytes() == b"1\n2\n"
    with pytest.raises(DatasetError, match="'res/predictions.txt' appears twice with different contents"):
        unpack_dataset(archive("differ.zip", b"3\n4\n"), tmp_path / "cache")
