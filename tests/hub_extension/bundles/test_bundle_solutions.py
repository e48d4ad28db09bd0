"""Codabench `solutions`: read with their tasks and phases, stored as datasets, refused when missing, exported
under the paths their yaml names."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from hub_extension.bundles import BundleError, DataRef, canonical_zip_bytes, export_bundle, load_bundle
from hub_extension.bundles.codabench import PHASE_KEYS, SOLUTION_KEYS, TOP_KEYS
from hub_extension.bundles.datasets import store_bundle_data
from hub_extension.storage import is_dataset_key

from tests.support.bundles import FIXTURES, zip_folder

BUNDLE = FIXTURES / "solutions_codabench"


def stored(source, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
        assert [w for w in bundle.warnings if "solution" in w] == []
        return store_bundle_data(bundle, store)


def edited(tmp_path: Path, change) -> Path:
    """A copy of the fixture whose competition.yaml `change(doc)` edits."""
    root = shutil.copytree(BUNDLE, tmp_path / "bundle")
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    change(doc)
    (root / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def problems(source) -> list[str]:
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    return [str(p) for p in info.value.problems]


def test_solutions_are_read_with_their_tasks_and_the_phases_that_list_them(as_source):
    with load_bundle(as_source(BUNDLE)) as bundle:
        spec = bundle.spec
    assert [(s.index, s.name, s.description, s.task_indexes, s.data, s.source) for s in spec.solutions] == [
        (0, "Careful", "Gets three items of four right.", [0], DataRef("path", "solution"), "solution"),
        (1, "Always circle", "", [0], DataRef("path", "baselines/constant"), "baselines/constant"),
    ]
    assert [p.solution_indexes for p in spec.phases] == [[1, 0], []]
    assert "solutions" not in spec.extra.get("competition", {}) and "phases" not in spec.extra


def test_solutions_are_honoured_keys():
    assert TOP_KEYS["solutions"].honoured and PHASE_KEYS["solutions"].honoured
    assert all(SOLUTION_KEYS[key].honoured for key in ("index", "tasks", "path", "name", "description"))


def test_solutions_are_stored_by_content_like_any_dataset(store, tmp_path):
    spec = stored(BUNDLE, store)
    for solution, folder in zip(spec.solutions, ("solution", "baselines/constant")):
        assert solution.data.kind == "key" and is_dataset_key(solution.data.value)
        with store.open_dataset(solution.data.value) as fh:
            assert fh.read() == canonical_zip_bytes(BUNDLE / folder)
    # A zip of the same files is the same dataset.
    root = edited(tmp_path, lambda doc: doc["solutions"][1].update(path="constant.zip"))
    zip_folder(root / "baselines" / "constant", root / "constant.zip")
    shutil.rmtree(root / "baselines")
    assert stored(root, store).solutions[1].data == spec.solutions[1].data


@pytest.mark.parametrize("path", ["nope", "nope.zip"])
def test_a_missing_solution_is_refused_like_any_missing_file(tmp_path, path):
    root = edited(tmp_path, lambda doc: doc["solutions"][0].update(path=path))
    found = problems(root)
    assert found == [f"competition.yaml: solutions[0].path: {path!r} not found in the bundle"]
    # The same message as a missing program.
    other = edited(tmp_path / "other", lambda doc: doc["tasks"][0].update(scoring_program=path))
    assert problems(other) == [f"competition.yaml: tasks[0].scoring_program: {path!r} not found in the bundle"]


def test_wrong_solutions_are_refused_with_what_to_do(tmp_path):
    def change(doc):
        doc["solutions"][0] = {"index": 0, "tasks": [3], "key": "7f3c1e2a-0000-4000-8000-000000000001"}
        doc["solutions"][1]["index"] = 0
        doc["phases"][0]["solutions"] = [0, 5]
    assert problems(edited(tmp_path, change)) == [
        "competition.yaml: solutions[0].key: refers to a solution stored on another server; put the solution's "
        "folder or zip in the bundle and name it with path",
        "competition.yaml: solutions[0].tasks[0]: no task with index 3 (tasks: 0)",
        "competition.yaml: solutions[1].index: 0 is used by another solution",
        "competition.yaml: phases[0].solutions[1]: no solution with index 5 (solutions: 0)",
    ]
    root = edited(tmp_path / "nopath", lambda doc: doc["solutions"][1].pop("path"))
    assert problems(root) == ["competition.yaml: solutions[1].path: is required: the solution's folder or zip in "
                              "the bundle"]


def test_export_writes_each_solution_under_the_path_its_yaml_names(store, tmp_path):
    spec = stored(BUNDLE, store)
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
        assert zf.read("solution/predictions.txt") == (BUNDLE / "solution" / "predictions.txt").read_bytes()
        assert zf.read("baselines/constant/predictions.txt") == \
            (BUNDLE / "baselines" / "constant" / "predictions.txt").read_bytes()
    assert [(s["index"], s["tasks"], s["path"]) for s in doc["solutions"]] == [
        (0, [0], "solution"), (1, [0], "baselines/constant")]
    assert [p.get("solutions") for p in doc["phases"]] == [[1, 0], None]
    again = stored(out, store)
    assert again.solutions == spec.solutions and again == spec
    assert [s.source for s in again.solutions] == ["solution", "baselines/constant"]


def test_a_zip_solution_is_exported_as_that_zip(store, tmp_path):
    root = edited(tmp_path, lambda doc: doc["solutions"][0].update(path="solutions/careful.zip"))
    (root / "solutions").mkdir()
    zip_folder(root / "solution", root / "solutions" / "careful.zip")
    shutil.rmtree(root / "solution")
    spec = stored(root, store)
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        assert zf.read("solutions/careful.zip") == canonical_zip_bytes(BUNDLE / "solution")
        assert yaml.safe_load(zf.read("competition.yaml"))["solutions"][0]["path"] == "solutions/careful.zip"
    assert stored(out, store) == spec


def test_a_solution_path_another_file_takes_gets_a_name_of_its_own(store, tmp_path):
    # The solution is named like the zip export gives the scoring program.
    root = edited(tmp_path, lambda doc: doc["solutions"][0].update(path="scoring_program.zip"))
    zip_folder(root / "solution", root / "scoring_program.zip")
    spec = stored(root, store)
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
        assert doc["tasks"][0]["scoring_program"] == "scoring_program.zip"
        assert doc["solutions"][0]["path"] == "solution.zip"
        assert zf.read("solution.zip") == canonical_zip_bytes(BUNDLE / "solution")
    assert stored(out, store) == spec


def test_light_export_names_solutions_by_key(store, tmp_path):
    spec = stored(BUNDLE, store)
    out = tmp_path / "light.zip"
    export_bundle(spec, store, out, light=True)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
        assert not [n for n in zf.namelist() if n.startswith(("solution", "baselines"))]
    assert [s["path"] for s in doc["solutions"]] == [s.data.value for s in spec.solutions]
    assert stored(out, store) == spec
