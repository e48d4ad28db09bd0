"""Bundles that accept results and code through an ingestion program, end to end on the docker executor.

The two fixture bundles (`ingestion_codabench`, Codabench v2, and
`ingestion_codalab`, CodaLab v1.5) run an ingestion program that imports the
participant's `model`, and a scoring program that scores predictions.  A zip
of predictions (no `metadata`) is labelled results and scored with what the
bundle's own scoring program computes by hand, though the ingestion program
fails on it; a code zip (with `metadata`) whose model fails, fails.
"""
from __future__ import annotations

import json

import pytest

from hub_extension import models as m
from tests.hub_extension.bundles.test_bundles_end_to_end import (CODE_METADATA, RAISING_MODEL_CLASS, Stack,
                                                                 run_scoring, unzip, write_files, zip_of)
from tests.support.paths import BUNDLE_FIXTURES

CODABENCH = BUNDLE_FIXTURES / "ingestion_codabench"
CODALAB = BUNDLE_FIXTURES / "ingestion_codalab"
PLATFORM_MARK = "[platform] "
NOT_HELD = ("not held against this submission, because it has no `metadata` file and its files were taken as "
            "the predictions; they are scored as they are")
# How the docker executor tells the exit of a program that could not import the participant's model.
NO_MODEL = "the ingestion program exited with code 1: ModuleNotFoundError: No module named 'model': "


@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image):
    s = Stack(tmp_path_factory.mktemp("ingestion-e2e-home"))
    yield s
    s.close()


def logs_of(stack: Stack, info: dict, step: str, stream: str) -> str:
    entries = [e for e in stack.platform.submission_logs(info["id"]) if e["step"] == step and e["name"] == stream]
    assert len(entries) == 1, entries
    return entries[0]["text"]


def assert_results_despite_ingestion(stack: Stack, info: dict) -> None:
    assert info["kind"] == "results"
    assert info["warnings"] == [NO_MODEL + NOT_HELD]
    stderr = logs_of(stack, info, "prediction", "stderr")
    assert "No module named 'model'" in stderr
    stdout = logs_of(stack, info, "prediction", "stdout").splitlines()
    assert stdout[0].startswith(PLATFORM_MARK + "the submission has no `metadata` file, so its files were taken "
                                "as the predictions")
    assert stdout[-1] == PLATFORM_MARK + NO_MODEL + NOT_HELD


def test_codabench_results_zip_is_scored_by_the_bundles_scoring_program(stack, tmp_path):
    preds = write_files(tmp_path / "preds", {"predictions.txt": "blue\ngreen\nred\nblack\n"})
    info = stack.run(CODABENCH, zip_of(preds, tmp_path / "preds.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    out = run_scoring(CODABENCH / "scoring_program" / "score.py", CODABENCH / "reference_data", preds,
                      tmp_path / "by-hand")
    want = json.loads((out / "scores.json").read_text())
    assert want == {"accuracy": 0.75}
    assert info["scores"] == pytest.approx(want)
    assert_results_despite_ingestion(stack, info)


def test_codalab_results_zip_is_scored_by_the_bundles_scoring_program(stack, tmp_path):
    preds = write_files(tmp_path / "preds", {"answer.txt": "1\n2\n3\n0\n0\n"})
    info = stack.run(CODALAB, zip_of(preds, tmp_path / "preds.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    scoring = unzip(CODALAB / "scoring_program.zip", tmp_path / "scoring")
    reference = unzip(CODALAB / "reference_data.zip", tmp_path / "reference")
    out = run_scoring(scoring / "score.py", reference, preds, tmp_path / "by-hand")
    key, _, value = (out / "scores.txt").read_text().strip().partition(":")
    assert {key: float(value)} == {"accuracy": 0.6}
    assert info["scores"] == pytest.approx({key: float(value)})
    assert_results_despite_ingestion(stack, info)


def test_codabench_code_zip_whose_model_fails_fails(stack, tmp_path):
    sub = write_files(tmp_path / "sub", {"model.py": RAISING_MODEL_CLASS, "metadata": CODE_METADATA})
    info = stack.run(CODABENCH, zip_of(sub, tmp_path / "sub.zip"))
    assert info["kind"] == "code"
    assert info["status"] == m.FAILED
    assert not info["scores"]
    assert info["error"].startswith("task 0: the prediction step exited with code 1: RuntimeError: model exploded "
                                    "on purpose")
    assert "model exploded on purpose" in info["error"]
    assert not any("not held against" in w for w in info["warnings"])
    assert [e["step"] for e in stack.platform.submission_logs(info["id"]) if e["name"] == "stdout"] == ["prediction"]


def test_the_fixtures_accept_results_and_code_through_an_ingestion_program(tmp_path):
    assert "accepts results and code" in (CODABENCH / "overview.md").read_text()
    assert "accepts results and code" in (CODALAB / "overview.html").read_text()
    assert "from model import Model" in (CODABENCH / "ingestion_program" / "ingestion.py").read_text()
    assert "import model" in (unzip(CODALAB / "ingestion_program.zip", tmp_path) / "ingestion.py").read_text()
