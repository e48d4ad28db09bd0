"""`allow_teams`: read from CodaLab's `allow_teams`/`enable_teams` and Codabench's `allow_teams`, exported back."""
from __future__ import annotations

import shutil
import zipfile

import pytest
import yaml

from hub_extension.bundles import export_bundle, load_bundle, store_bundle_data

from tests.support.bundles import FIXTURES, GOOD


def stored_spec(source, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
        return store_bundle_data(bundle, store)


@pytest.mark.parametrize("name", GOOD)
def test_allow_teams_goes_out_and_back(name, store, tmp_path):
    first = stored_spec(FIXTURES / "good" / name, store)
    first.allow_teams = True
    out = tmp_path / "export.zip"
    export_bundle(first, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
    assert doc["allow_teams"] is True
    if first.dialect == "codalab":
        assert doc["enable_teams"] is True  # the name CodaLab's editor writes
    again = stored_spec(out, store)
    assert again.allow_teams is True and again == first
    first.allow_teams = False
    export_bundle(first, store, out)
    assert stored_spec(out, store).allow_teams is False


@pytest.mark.parametrize("key", ["allow_teams", "enable_teams"])
def test_codalab_reads_either_key(key, store, tmp_path):
    source = next(FIXTURES / "good" / n for n in GOOD
                  if stored_spec(FIXTURES / "good" / n, store).dialect == "codalab")
    folder = tmp_path / "bundle"
    shutil.copytree(source, folder)
    path = folder / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    doc[key] = True
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with load_bundle(folder, dataset_exists=store.has_dataset) as bundle:
        assert bundle.spec.allow_teams is True
        assert not any(key in w for w in bundle.warnings)
