"""Store and export: canonical dataset keys, and import -> export -> import round trips."""
from __future__ import annotations

import zipfile

import pytest

from hub_extension.bundles import (
    BundleError,
    canonical_zip_bytes,
    export_bundle,
    load_bundle,
    store_bundle_data,
)
from hub_extension.storage import LocalStore

from tests.support.bundles import FIXTURES, GOOD, stored_files, zip_folder


def stored_spec(source, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
        return store_bundle_data(bundle, store)


# The solutions each good fixture holds, as (index, tasks, the path its yaml names).
SOLUTIONS = {"codabench_results": [(0, [0], "solution")]}


@pytest.mark.parametrize("name", GOOD)
def test_round_trip(name, as_source, store, tmp_path):
    first = stored_spec(as_source(FIXTURES / "good" / name), store)
    assert all(ref.kind == "key" for ref in _all_refs(first))
    assert [(s.index, s.task_indexes, s.source) for s in first.solutions] == SOLUTIONS.get(name, [])
    out = tmp_path / "export.zip"
    export_bundle(first, store, out)
    again = stored_spec(out, store)
    assert again == first
    # Each solution is in the export under the path its yaml names, and comes back as it went.
    assert [(s.index, s.task_indexes, s.source, s.data) for s in again.solutions] == [
        (s.index, s.task_indexes, s.source, s.data) for s in first.solutions]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
    for solution in first.solutions:
        assert any(n.startswith(solution.source + "/") for n in names), (solution.source, names)


@pytest.mark.parametrize("name", GOOD)
def test_light_round_trip_refers_to_keys(name, store, tmp_path):
    first = stored_spec(FIXTURES / "good" / name, store)
    out = tmp_path / "light.zip"
    export_bundle(first, store, out, light=True)
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".zip")]
    assert stored_spec(out, store) == first
    # Elsewhere, without those datasets, the light bundle says what is missing.
    with pytest.raises(BundleError) as info:
        load_bundle(out)
    assert "is neither a file in the bundle nor a stored dataset key" in str(info.value)


def test_folder_and_zip_bundles_give_the_same_keys(store, tmp_path):
    folder = FIXTURES / "good" / "codabench_code"
    assert stored_spec(folder, store) == stored_spec(zip_folder(folder, tmp_path / "b.zip"), store)


def test_canonical_zip_ignores_tool_details(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha")
    (data / "sub" / "b.txt").write_text("beta")
    messy = tmp_path / "messy.zip"
    with zipfile.ZipFile(messy, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("sub/", date_time=(2020, 5, 5, 5, 5, 5)), "")
        zf.writestr(zipfile.ZipInfo("sub/b.txt", date_time=(2021, 1, 2, 3, 4, 6)), "beta")
        zf.writestr("__MACOSX/._a.txt", "resource fork")
        zf.writestr(".DS_Store", "finder")
        zf.writestr(zipfile.ZipInfo("./a.txt", date_time=(2022, 2, 2, 2, 2, 2)), "alpha")
    canonical = canonical_zip_bytes(data)
    assert canonical_zip_bytes(messy) == canonical
    with zipfile.ZipFile(__import__("io").BytesIO(canonical)) as zf:
        assert zf.namelist() == ["a.txt", "sub/b.txt"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in zf.infolist()} == {0o100644}


def test_different_content_gives_different_keys(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    (one / "x.txt").write_text("1")
    (two / "x.txt").write_text("2")
    assert canonical_zip_bytes(one) != canonical_zip_bytes(two)


def test_logo_is_stored_as_raw_bytes(store):
    spec = stored_spec(FIXTURES / "good" / "codabench_results", store)
    assert spec.logo is not None and spec.logo.kind == "key"
    with store.open_dataset(spec.logo.value) as fh:
        assert fh.read() == (FIXTURES / "good" / "codabench_results" / "logo.png").read_bytes()


def test_export_is_deterministic_and_keeps_file_names(store, tmp_path):
    spec = stored_spec(FIXTURES / "good" / "codabench_results", store)
    export_bundle(spec, store, tmp_path / "a.zip")
    export_bundle(spec, store, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        names = set(zf.namelist())
        assert {"competition.yaml", "pages/overview.md", "pages/data.html", "pages/terms.md", "logo.png",
                "scoring_program.zip", "reference_data.zip", "starting_kit.zip"} <= names
        assert b"version: 2" in zf.read("competition.yaml")


def test_codalab_export_links_columns_to_boards_with_anchors(store, tmp_path):
    spec = stored_spec(FIXTURES / "good" / "codalab_results", store)
    export_bundle(spec, store, tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        text = zf.read("competition.yaml").decode()
    assert "phases:\n  1:\n" in text and "leaderboard: *" in text and "version" not in text


def test_export_refuses_unstored_data(store, tmp_path):
    with load_bundle(FIXTURES / "good" / "codabench_results") as bundle:
        with pytest.raises(BundleError) as info:
            export_bundle(bundle.spec, store, tmp_path / "out.zip")
    assert "is not stored yet" in str(info.value)
    assert not (tmp_path / "out.zip").exists()


def test_store_is_untouched_when_a_nested_zip_turns_bad(tmp_path):
    store = LocalStore(tmp_path / "store")
    folder = tmp_path / "bundle"
    import shutil
    shutil.copytree(FIXTURES / "good" / "codabench_boards", folder)
    bundle = load_bundle(folder)
    # The nested zip is replaced after validation, as a racing upload could.
    with zipfile.ZipFile(folder / "scoring_program.zip", "w") as zf:
        zf.writestr("../evil.py", "print('x')")
    with pytest.raises(BundleError) as info:
        store_bundle_data(bundle, store)
    assert "scoring_program.zip: ../evil.py: member path escapes the archive" in str(info.value)
    assert stored_files(store) == set()


def _all_refs(spec):
    refs = [spec.logo] if spec.logo else []
    for task in spec.tasks:
        refs += [r for r in (task.scoring_program, task.ingestion_program, task.reference_data, task.input_data) if r]
    for phase in spec.phases:
        refs += [r for r in (phase.starting_kit, phase.public_data) if r]
    refs += [solution.data for solution in spec.solutions]
    return refs
