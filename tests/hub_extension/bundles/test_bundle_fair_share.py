"""`max_concurrent_submissions` on a phase (EvalAI's `max_concurrent_submissions_allowed` as an alias):
read in both dialects, checked, exported back."""
from __future__ import annotations

import shutil
import zipfile

import pytest
import yaml

from hub_extension.bundles import BundleError, export_bundle, load_bundle, store_bundle_data

from tests.support.bundles import FIXTURES

CODALAB, CODABENCH = "codalab_code", "codabench_code"


def stored_spec(source, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
        return store_bundle_data(bundle, store)


def with_phase_keys(name: str, tmp_path, **keys):
    """The good fixture `name` with `keys` set on its first phase; the folder."""
    folder = tmp_path / name
    shutil.copytree(FIXTURES / "good" / name, folder)
    path = folder / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    phases = doc["phases"]
    first = phases[sorted(phases)[0]] if isinstance(phases, dict) else phases[0]
    first.update(keys)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


@pytest.mark.parametrize("name", [CODALAB, CODABENCH])
@pytest.mark.parametrize("key", ["max_concurrent_submissions", "max_concurrent_submissions_allowed"])
def test_the_limit_is_read_under_either_name_and_exported_back(name, key, store, tmp_path):
    folder = with_phase_keys(name, tmp_path, **{key: 2})
    with load_bundle(folder, dataset_exists=store.has_dataset) as bundle:
        assert bundle.spec.phases[0].max_concurrent_submissions == 2
        assert not any("max_concurrent" in w for w in bundle.warnings), bundle.warnings
    spec = stored_spec(folder, store)
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
    phases = doc["phases"]
    first = phases[sorted(phases)[0]] if isinstance(phases, dict) else phases[0]
    assert first["max_concurrent_submissions"] == 2
    again = stored_spec(out, store)
    assert again.phases[0].max_concurrent_submissions == 2 and again == spec


@pytest.mark.parametrize("name", [CODALAB, CODABENCH])
def test_no_limit_by_default_and_none_exported(name, store, tmp_path):
    spec = stored_spec(FIXTURES / "good" / name, store)
    assert all(p.max_concurrent_submissions is None for p in spec.phases)
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        assert "max_concurrent" not in zf.read("competition.yaml").decode()


@pytest.mark.parametrize("name", [CODALAB, CODABENCH])
@pytest.mark.parametrize("value, message", [
    (0, "max_concurrent_submissions: must be at least 1, got 0"),
    (-3, "max_concurrent_submissions: must be at least 1, got -3"),
    ("two", "max_concurrent_submissions: must be a whole number, got 'two'"),
    (1.5, "max_concurrent_submissions: must be a whole number, got '1.5'"),
])
def test_a_bad_limit_is_a_problem_naming_the_file_and_key(name, value, message, store, tmp_path):
    folder = with_phase_keys(name, tmp_path, max_concurrent_submissions=value)
    with pytest.raises(BundleError) as info:
        load_bundle(folder, dataset_exists=store.has_dataset)
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith("competition.yaml: phases") and p.endswith(message) for p in found), found


@pytest.mark.parametrize("name", [CODALAB, CODABENCH])
def test_both_names_at_once_is_a_problem(name, store, tmp_path):
    folder = with_phase_keys(name, tmp_path, max_concurrent_submissions=1, max_concurrent_submissions_allowed=2)
    with pytest.raises(BundleError) as info:
        load_bundle(folder, dataset_exists=store.has_dataset)
    found = [str(p) for p in info.value.problems]
    assert any("max_concurrent_submissions_allowed: gives the same limit as max_concurrent_submissions; "
               "keep one of the two" in p for p in found), found
