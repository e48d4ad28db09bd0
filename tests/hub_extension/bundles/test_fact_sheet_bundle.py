"""Codabench's `fact_sheet` in both dialects: read, refused with the key to fix, written back on export."""
from __future__ import annotations

import shutil
import zipfile

import pytest
import yaml

from hub_extension.bundles import BundleError, export_bundle, load_bundle, store_bundle_data
from hub_extension.storage import LocalStore

from tests.support.bundles import FIXTURES

QUESTIONS = {
    "method": {"key": "method", "type": "text", "title": "Method name", "selection": "", "is_required": "true",
               "is_on_leaderboard": "true"},
    "uses_extra_data": {"key": "uses_extra_data", "type": "checkbox", "title": "Extra data?",
                        "selection": [True, False], "is_required": "false", "is_on_leaderboard": "false"},
    "family": {"key": "family", "type": "select", "title": "Model family", "selection": ["", "tree", "net"],
               "is_required": False, "is_on_leaderboard": True},
}


def bundle_with(tmp_path, name, change):
    folder = tmp_path / name
    shutil.copytree(FIXTURES / "good" / name, folder)
    doc = yaml.safe_load((folder / "competition.yaml").read_text())
    change(doc)
    (folder / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def test_a_codabench_fact_sheet_is_read_in_order_with_its_flags(tmp_path):
    folder = bundle_with(tmp_path, "codabench_results", lambda doc: doc.update(fact_sheet=QUESTIONS))
    with load_bundle(folder) as bundle:
        spec = bundle.spec
        assert not [w for w in bundle.warnings if "fact_sheet" in w]
    assert spec.fact_sheet == [
        {"key": "method", "type": "text", "title": "Method name", "selection": [], "is_required": True,
         "is_on_leaderboard": True},
        {"key": "uses_extra_data", "type": "checkbox", "title": "Extra data?", "selection": [],
         "is_required": False, "is_on_leaderboard": False},
        {"key": "family", "type": "select", "title": "Model family", "selection": ["", "tree", "net"],
         "is_required": False, "is_on_leaderboard": True},
    ]
    assert spec.leaderboards[0].fact_sheet_columns == ["method", "family"]


@pytest.mark.parametrize("question, expected", [
    ({"key": "other", "type": "text", "title": "T"},
     "competition.yaml: fact_sheet.q.key: 'other' does not match the question's name 'q'; write the same key in "
     "both places"),
    ({"type": "radio", "title": "T"}, "competition.yaml: fact_sheet.q.type: must be one of text, checkbox, select, "
                                      "got 'radio'"),
    ({"title": "T"}, "competition.yaml: fact_sheet.q.type: is required: one of text, checkbox, select"),
    ({"type": "text"}, "competition.yaml: fact_sheet.q.title: is required"),
    ({"type": "select", "title": "T", "selection": "a, b"},
     "competition.yaml: fact_sheet.q.selection: a select question needs its choices as a list of text, got 'a, b'"),
    ({"type": "select", "title": "T", "selection": ["", " "]},
     "competition.yaml: fact_sheet.q.selection: a select question needs at least one choice that is not empty"),
    ({"type": "text", "title": "T", "is_required": "maybe"},
     "competition.yaml: fact_sheet.q.is_required: must be true or false, got 'maybe'"),
    ("just text", "competition.yaml: fact_sheet.q: must be a mapping of keys to values, got 'just text'"),
])
def test_a_malformed_question_is_refused_with_the_key_to_fix(tmp_path, question, expected):
    folder = bundle_with(tmp_path, "codabench_results", lambda doc: doc.update(fact_sheet={"q": question}))
    with pytest.raises(BundleError) as info:
        load_bundle(folder)
    assert expected in [str(p) for p in info.value.problems]


def test_a_fact_sheet_that_is_not_a_mapping_and_a_board_naming_no_question_are_refused(tmp_path):
    folder = bundle_with(tmp_path, "codabench_results", lambda doc: doc.update(fact_sheet=["method"]))
    with pytest.raises(BundleError) as info:
        load_bundle(folder)
    assert "competition.yaml: fact_sheet: must map each question's key to the question, got a list" in \
        [str(p) for p in info.value.problems]

    def board_names_unknown(doc):
        doc["fact_sheet"] = QUESTIONS
        doc["leaderboards"][0]["fact_sheet_columns"] = ["method", "nope"]
    folder = bundle_with(tmp_path / "second", "codabench_results", board_names_unknown)
    with pytest.raises(BundleError) as info:
        load_bundle(folder)
    assert ("competition.yaml: leaderboards[0].fact_sheet_columns: no fact sheet question 'nope'; questions: "
            "method, uses_extra_data, family") in [str(p) for p in info.value.problems]


@pytest.mark.parametrize("name", ["codabench_results", "codalab_results"])
def test_export_writes_the_fact_sheet_back_in_codabench_form(tmp_path, name):
    folder = bundle_with(tmp_path, name, lambda doc: doc.update(fact_sheet=QUESTIONS))
    store = LocalStore(tmp_path / "store")
    with load_bundle(folder) as bundle:
        spec = store_bundle_data(bundle, store)
    if name == "codabench_results":
        spec.leaderboards[0].fact_sheet_columns = ["uses_extra_data"]  # the board's own choice
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
    assert doc["fact_sheet"]["method"] == QUESTIONS["method"]
    assert doc["fact_sheet"]["uses_extra_data"] == QUESTIONS["uses_extra_data"]
    assert doc["fact_sheet"]["family"] == dict(QUESTIONS["family"], is_required="false", is_on_leaderboard="true")
    with load_bundle(out) as again:
        assert again.spec.fact_sheet == spec.fact_sheet
        assert [b.fact_sheet_columns for b in again.spec.leaderboards] == [b.fact_sheet_columns
                                                                         for b in spec.leaderboards]
