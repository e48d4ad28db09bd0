"""The phase key `allow_reproduce` (participants may reproduce their own submissions): read with
validation in both dialects, written back by each, off unless said."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hub_extension.bundles import BundleError, load_bundle
from hub_extension.bundles.codabench import codabench_document
from hub_extension.bundles.codalab import codalab_document
from tests.hub_extension.bundles.test_bundle_forum import Names
from tests.support.bundles import FIXTURES

CODALAB = FIXTURES / "fidelity_codalab"
CODABENCH = FIXTURES / "fidelity_codabench_2019"


def with_phase_key(bundle: Path, tmp_path: Path, value) -> Path:
    copy = shutil.copytree(bundle, tmp_path / bundle.name)
    path = copy / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    phases = doc["phases"]
    first = phases[0] if isinstance(phases, list) else phases[sorted(phases)[0]]
    if value is not None:
        first["allow_reproduce"] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


@pytest.mark.parametrize("bundle", [CODALAB, CODABENCH], ids=["codalab", "codabench"])
@pytest.mark.parametrize("value,expected", [(None, False), (True, True), ("yes", True), (False, False)])
def test_the_key_is_read_without_a_warning(tmp_path, bundle, value, expected):
    with load_bundle(with_phase_key(bundle, tmp_path, value)) as loaded:
        assert loaded.spec.phases[0].allow_reproduce is expected
        assert not any("allow_reproduce" in w for w in loaded.warnings), loaded.warnings


@pytest.mark.parametrize("bundle", [CODALAB, CODABENCH], ids=["codalab", "codabench"])
def test_a_value_that_is_no_flag_is_a_problem(tmp_path, bundle):
    with pytest.raises(BundleError) as info:
        load_bundle(with_phase_key(bundle, tmp_path, "sometimes"))
    assert any("allow_reproduce: must be true or false, got 'sometimes'" in str(p) for p in info.value.problems)


@pytest.mark.parametrize("bundle,document", [(CODALAB, codalab_document), (CODABENCH, codabench_document)],
                         ids=["codalab", "codabench"])
def test_each_dialect_writes_it_back(tmp_path, bundle, document):
    with load_bundle(with_phase_key(bundle, tmp_path, True)) as loaded:
        doc, _ = document(loaded.spec, Names())
    phases = doc["phases"]
    first = phases[0] if isinstance(phases, list) else phases[sorted(phases)[0]]
    assert first["allow_reproduce"] is True
    with load_bundle(with_phase_key(bundle, tmp_path / "off", None)) as loaded:
        doc, _ = document(loaded.spec, Names())
    phases = doc["phases"]
    first = phases[0] if isinstance(phases, list) else phases[sorted(phases)[0]]
    assert "allow_reproduce" not in first
