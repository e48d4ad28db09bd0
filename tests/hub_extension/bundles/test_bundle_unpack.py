"""Safe unpacking: path escapes, links, and size, count and ratio caps, each a clear problem."""
from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub_extension.bundles import BundleError, UnpackLimits, load_bundle, store_bundle_data
from hub_extension.bundles.unpack import member_path

from tests.support.bundles import FIXTURES, stored_files

YAML = (FIXTURES / "good" / "wrapped" / "my_competition" / "competition.yaml").read_text()


def bundle_zip(path: Path, extra: dict[str, bytes] | None = None, *, infos=()) -> Path:
    """A minimal valid Codabench bundle zip plus extra members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("competition.yaml", YAML)
        zf.writestr("scoring_program/metadata.yaml", "command: python3 $program/score.py $input $output\n")
        zf.writestr("reference_data/truth.txt", "red\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        for info, data in infos:
            zf.writestr(info, data)
    return path


def problems_of(source, **kwargs) -> list[str]:
    with pytest.raises(BundleError) as info:
        load_bundle(source, **kwargs)
    assert "Traceback" not in str(info.value)
    return [str(p) for p in info.value.problems]


def test_minimal_zip_loads(tmp_path):
    with load_bundle(bundle_zip(tmp_path / "b.zip")) as bundle:
        assert bundle.spec.title.startswith("Wrapped")


@pytest.mark.parametrize("member", ["../x", "a/../../x", "..\\x"])
def test_zip_slip_is_refused(tmp_path, member):
    source = bundle_zip(tmp_path / "b.zip", {member: b"owned"})
    assert problems_of(source) == [
        f"b.zip: {member}: member path escapes the archive (absolute, drive letter or '..'); "
        "rebuild the zip with relative paths"]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("member", ["/etc/evil", "C:/evil.txt", "c:\\evil.txt"])
def test_absolute_and_drive_paths_are_refused(tmp_path, member):
    source = bundle_zip(tmp_path / "b.zip", {member: b"owned"})
    (line,) = problems_of(source)
    assert line.startswith(f"b.zip: {member}: member path escapes the archive")


def test_member_path_normalizes_harmless_forms():
    assert member_path("./a//b/./c.txt") == "a/b/c.txt"
    assert member_path("a\\b.txt") == "a/b.txt"
    assert member_path("a/../b") is None


@given(st.text(alphabet=st.sampled_from(list("ab./\\:C")), max_size=12))
def test_member_path_never_escapes(name):
    path = member_path(name)
    if path is not None:
        assert not path.startswith("/") and ".." not in path.split("/") and "\\" not in path
        assert not (len(path) >= 2 and path[0].isalpha() and path[1] == ":")  # no drive letter


def test_zip_bomb_by_ratio_is_refused(tmp_path):
    source = bundle_zip(tmp_path / "b.zip", {"reference_data/zeros.bin": bytes(4 << 20)})
    (line,) = problems_of(source)
    assert line.startswith("b.zip: reference_data/zeros.bin: compression ratio ")
    assert line.endswith(" is above the limit of 100:1 (zip bomb?)")


def test_too_many_members_is_refused(tmp_path):
    source = bundle_zip(tmp_path / "b.zip", {f"reference_data/{i}.txt": b"x" for i in range(20)})
    assert problems_of(source, limits=UnpackLimits(max_members=10)) == [
        "b.zip: (archive): has 23 members, more than the limit of 10"]


def test_file_and_total_size_caps(tmp_path):
    source = bundle_zip(tmp_path / "b.zip", {"reference_data/big.txt": os.urandom(3000),
                                            "reference_data/big2.txt": os.urandom(3000)})
    lines = problems_of(source, limits=UnpackLimits(max_file_bytes=2000, max_total_bytes=5000))
    assert "b.zip: reference_data/big.txt: unpacks to 3000 bytes, more than the per-file limit of 2000" in lines
    assert any(line.startswith("b.zip: (archive): unpacks to ") for line in lines)


def test_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("reference_data/passwd")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    source = bundle_zip(tmp_path / "b.zip", infos=[(link, "/etc/passwd")])
    assert problems_of(source) == [
        "b.zip: reference_data/passwd: is a symbolic link; zips may only hold regular files and folders"]


def test_symlink_out_of_a_folder_bundle_is_refused(tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "good" / "codabench_multitask", folder)
    (folder / "reference_easy" / "secret").symlink_to("/etc/hostname")
    assert problems_of(folder) == [
        "bundle: reference_easy/secret: is a symbolic link pointing outside the bundle; "
        "copy the file into the bundle instead"]


def test_symlink_inside_a_folder_bundle_is_followed(tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "good" / "codabench_multitask", folder)
    (folder / "reference_easy" / "copy.txt").symlink_to(folder / "reference_hard" / "truth.txt")
    with load_bundle(folder) as bundle:
        assert bundle.spec.tasks[0].reference_data is not None


def test_nested_zip_is_checked_at_load(tmp_path, store):
    folder = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "good" / "codabench_boards", folder)
    with zipfile.ZipFile(folder / "scoring_program.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.yaml", "command: python3 score.py\n")
        zf.writestr("zeros.bin", bytes(4 << 20))
        zf.writestr("../../escape.py", "x")
    before = stored_files(store)
    lines = problems_of(folder)
    assert any(line.startswith("scoring_program.zip: zeros.bin: compression ratio") for line in lines)
    assert any(line.startswith("scoring_program.zip: ../../escape.py: member path escapes") for line in lines)
    assert stored_files(store) == before


def test_nested_file_that_is_not_a_zip(tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "good" / "codabench_boards", folder)
    (folder / "scoring_program.zip").write_text("not a zip")
    assert problems_of(folder) == ["competition.yaml: tasks[0].scoring_program: "
                                   "'scoring_program.zip' must be a folder or a .zip file"]


def test_nested_zips_get_the_bundle_limits():
    # The folder bundle itself has no member cap; its nested scoring zip has two members.
    assert problems_of(FIXTURES / "good" / "codabench_boards", limits=UnpackLimits(max_members=1)) == [
        "scoring_program.zip: (archive): has 2 members, more than the limit of 1"]


def test_wrapping_folder_in_a_zip(tmp_path):
    source = tmp_path / "b.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("outer/competition.yaml", YAML)
        zf.writestr("outer/scoring_program/metadata.yaml", "command: x\n")
        zf.writestr("outer/reference_data/truth.txt", "red\n")
        zf.writestr("__MACOSX/outer/._competition.yaml", "noise")
    with load_bundle(source) as bundle:
        assert bundle.warnings == ["bundle: competition.yaml: found in 'outer/'; the bundle has a wrapping folder"]
        assert bundle.root.name == "outer"


def test_failed_zip_load_leaves_no_temp_dir(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    problems_of(bundle_zip(tmp_path / "b.zip", {"../x": b"x"}))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_store_bundle_data_works_from_a_zip_bundle(tmp_path, store):
    with load_bundle(bundle_zip(tmp_path / "b.zip")) as bundle:
        spec = store_bundle_data(bundle, store)
    assert spec.tasks[0].reference_data.kind == "key"
