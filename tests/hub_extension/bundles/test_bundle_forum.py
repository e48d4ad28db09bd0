"""The forum's keys: CodaLab's `enable_forum` (off unless true), Codabench's `forum_enabled`
(on unless false; `enable_forum` read there too), written back under each dialect's name."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hub_extension.bundles import BundleError, load_bundle
from hub_extension.bundles.codabench import codabench_document
from hub_extension.bundles.codalab import codalab_document
from tests.support.bundles import FIXTURES

CODALAB = FIXTURES / "fidelity_codalab"
CODABENCH = FIXTURES / "fidelity_codabench_2019"


def with_keys(bundle: Path, tmp_path: Path, **keys) -> Path:
    copy = shutil.copytree(bundle, tmp_path / bundle.name)
    path = copy / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    for key in ("enable_forum", "forum_enabled"):
        doc.pop(key, None)
    doc.update(keys)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


class Names:
    def data(self, ref):
        return ref.value

    def page(self, page):
        return page.name

    def terms(self):
        return "terms.html"

    def logo(self):
        return "logo.png"

    def solution(self, solution):
        return solution.name


@pytest.mark.parametrize("bundle,keys,expected", [
    (CODALAB, {}, False),
    (CODALAB, {"enable_forum": True}, True),
    (CODALAB, {"enable_forum": "false"}, False),
    (CODABENCH, {}, True),
    (CODABENCH, {"forum_enabled": False}, False),
    (CODABENCH, {"enable_forum": False}, False),
    (CODABENCH, {"forum_enabled": True, "enable_forum": True}, True),
], ids=["codalab-default", "codalab-on", "codalab-off", "codabench-default", "codabench-off",
        "codabench-codalab-name", "codabench-both"])
def test_the_forum_key_is_honoured_without_a_warning(tmp_path, bundle, keys, expected):
    with load_bundle(with_keys(bundle, tmp_path, **keys)) as loaded:
        assert loaded.spec.enable_forum is expected
        assert not any("forum" in w for w in loaded.warnings), loaded.warnings


def test_both_names_saying_different_things_is_a_problem(tmp_path):
    with pytest.raises(BundleError) as info:
        load_bundle(with_keys(CODABENCH, tmp_path, forum_enabled=True, enable_forum=False))
    assert [str(p) for p in info.value.problems] == [
        "competition.yaml: enable_forum: says False but forum_enabled says True: keep one of them"]


def test_a_flag_that_is_no_flag_is_a_problem(tmp_path):
    with pytest.raises(BundleError) as info:
        load_bundle(with_keys(CODALAB, tmp_path, enable_forum="sometimes"))
    assert any("enable_forum: must be true or false, got 'sometimes'" in str(p) for p in info.value.problems)


def test_each_dialect_writes_its_own_name(tmp_path):
    with load_bundle(with_keys(CODALAB, tmp_path, enable_forum=True)) as loaded:
        doc, _ = codalab_document(loaded.spec, Names())
        assert doc["enable_forum"] is True and "forum_enabled" not in doc
    with load_bundle(with_keys(CODABENCH, tmp_path / "b", forum_enabled=False)) as loaded:
        doc, _ = codabench_document(loaded.spec, Names())
        assert doc["forum_enabled"] is False and "enable_forum" not in doc
