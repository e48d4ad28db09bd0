"""`compete init` templates: each is a valid bundle, copied only into a new or empty folder."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub_extension.bundles import BundleError, init_bundle, load_bundle, template_names

from tests.support.bundles import TEMPLATES

NAMES = ["code", "notebook", "results"]


def test_the_three_templates_exist():
    assert set(NAMES) <= set(template_names())


@pytest.mark.parametrize("name", NAMES)
def test_template_validates_without_warnings(name, as_source):
    with load_bundle(as_source(TEMPLATES / name)) as bundle:
        assert bundle.warnings == []
        spec = bundle.spec
    assert spec.dialect == "codabench"
    assert spec.tasks[0].scoring_program is not None and spec.tasks[0].reference_data is not None
    assert spec.leaderboards[0].columns[0].key == "accuracy"


def test_code_template_has_ingestion_and_notebook_template_has_a_parameters_cell():
    with load_bundle(TEMPLATES / "code") as bundle:
        assert bundle.spec.tasks[0].ingestion_program is not None
    with load_bundle(TEMPLATES / "notebook") as bundle:
        assert bundle.spec.tasks[0].input_data is not None
        assert bundle.spec.phases[0].starting_kit is not None
    notebook = json.loads((TEMPLATES / "notebook" / "starting_kit" / "starting_kit.ipynb").read_text())
    tagged = [c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    assert "input_dir" in source and "output_dir" in source


def _score(program, ref, res, tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "ref").symlink_to(ref)
    (tmp_path / "input" / "res").symlink_to(res)
    subprocess.run([sys.executable, str(program / "score.py"), str(tmp_path / "input"), str(tmp_path / "out")],
                   check=True, timeout=30)
    return json.loads((tmp_path / "out" / "scores.json").read_text())


def test_results_template_scores_its_sample_submission(tmp_path):
    root = TEMPLATES / "results"
    scores = _score(root / "scoring_program", root / "reference_data", root / "sample_submission", tmp_path)
    assert scores == {"accuracy": 0.75}


def test_code_template_runs_ingestion_then_scoring(tmp_path):
    root = TEMPLATES / "code"
    subprocess.run([sys.executable, str(root / "ingestion_program" / "ingestion.py"), str(root / "input_data"),
                    str(tmp_path / "pred"), str(root / "sample_submission")], check=True, timeout=30)
    scores = _score(root / "scoring_program", root / "reference_data", tmp_path / "pred", tmp_path)
    assert scores == {"accuracy": 1.0}


def test_init_copies_a_template(tmp_path):
    target = tmp_path / "mine"
    init_bundle(target, "results")
    assert (target / "competition.yaml").read_text() == (TEMPLATES / "results" / "competition.yaml").read_text()
    with load_bundle(target) as bundle:
        assert bundle.spec.title


def test_init_accepts_an_empty_folder(tmp_path):
    init_bundle(tmp_path, "code")
    assert (tmp_path / "ingestion_program" / "ingestion.py").is_file()


def test_init_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(BundleError) as info:
        init_bundle(tmp_path, "results")
    assert str(info.value) == f"{tmp_path}: target: already exists and is not an empty folder; choose a new folder"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_init_refuses_an_unknown_template(tmp_path):
    with pytest.raises(BundleError) as info:
        init_bundle(tmp_path / "x", "fancy")
    assert "unknown template 'fancy'; choose one of " in str(info.value)
    assert not (tmp_path / "x").exists()
