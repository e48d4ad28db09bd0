"""The good fixture bundles end to end on the docker executor.

Each case submits a zip to a competition created from a fixture bundle, runs
it on the Dask queue in Docker, and compares the scores with what the
bundle's own programs compute when run by hand (with this Python) on the same
submission.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import zipfile
from itertools import count
from typing import Optional
from pathlib import Path

import pytest
import yaml

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from tests.support.paths import BUNDLE_FIXTURES
from tests.support.stacks import DockerStack

GOOD = BUNDLE_FIXTURES / "good"
NOW = dt.datetime(2025, 6, 1, 12, 0)  # inside the first phase of every bundle used here

ECHO_MODEL_CLASS = (GOOD / "codabench_code" / "starting_kit" / "model.py").read_text()
RED_MODEL_CLASS = """
class Model:
    def fit(self, items):
        pass

    def predict(self, item):
        return "red"
"""
RAISING_MODEL_CLASS = """
class Model:
    def fit(self, items):
        raise RuntimeError("model exploded on purpose")

    def predict(self, item):
        return item
"""


def zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return target


# The platform treats a zip as a code submission only when it holds a `metadata`
# file (CodaLab's convention); with an ingestion program its command is unused.
CODE_METADATA = "description: model.py for the ingestion program\n"


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def unzip(archive: Path, target: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    return target


def run_scoring(score_py: Path, reference: Path, predictions: Path, work: Path) -> Path:
    """Runs a scoring program by hand in the $input/ref + $input/res layout; returns its output dir."""
    shutil.copytree(reference, work / "in" / "ref")
    shutil.copytree(predictions, work / "in" / "res")
    subprocess.run([sys.executable, str(score_py), str(work / "in"), str(work / "out")], check=True, timeout=60)
    return work / "out"


def codabench_expected(bundle: Path, predictions: Path, work: Path) -> dict:
    out = run_scoring(bundle / "scoring_program" / "score.py", bundle / "reference_data", predictions, work)
    return json.loads((out / "scores.json").read_text())


def codabench_code_expected(bundle: Path, submission: Path, work: Path) -> dict:
    preds = work / "preds"
    subprocess.run([sys.executable, str(bundle / "ingestion_program" / "ingestion.py"),
                    str(bundle / "input_data"), str(preds), str(submission)], check=True, timeout=60)
    return codabench_expected(bundle, preds, work)


def codalab_code_expected(bundle: Path, submission: Path, work: Path) -> dict:
    ingestion = unzip(bundle / "ingestion_program.zip", work / "ingestion")
    scoring = unzip(bundle / "scoring_program.zip", work / "scoring")
    inputs = unzip(bundle / "input_data.zip", work / "input_data")
    reference = unzip(bundle / "reference_data.zip", work / "reference_data")
    preds = work / "preds"
    subprocess.run([sys.executable, str(ingestion / "ingestion.py"), str(inputs), str(preds),
                    str(ingestion), str(submission)], check=True, timeout=60)
    out = run_scoring(scoring / "score.py", reference, preds, work)
    scores = {}
    for line in (out / "scores.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        scores[key.strip()] = float(value)
    return scores


class Stack(DockerStack):
    """One platform and one dispatcher on the docker executor, shared by the module."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.slugs: dict[str, str] = {}
        self.users = count(1)

    def competition(self, bundle: Path) -> str:
        key = str(bundle)
        if key not in self.slugs:
            self.slugs[key], _ = self.platform.create_competition(bundle, LOCAL_ADMIN)
        return self.slugs[key]

    def run(self, bundle: Path, path: Path, phase: int = 1, timeout: float = 300,
            fact_sheet: Optional[dict] = None) -> dict:
        slug = self.competition(bundle)
        user = f"ann{next(self.users)}"
        self.platform.register(slug, user, LOCAL_ADMIN)
        sid = self.platform.submit(slug, path, username=user, phase=phase, actor=LOCAL_ADMIN, now=NOW,
                                   fact_sheet=fact_sheet)
        return self.finish(sid, timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image):
    s = Stack(tmp_path_factory.mktemp("e2e-home"))
    yield s
    s.close()


@pytest.mark.parametrize("folder", ["solution", "starting_kit"])
def test_codabench_results_submission(stack, tmp_path, folder):
    bundle = GOOD / "codabench_results"
    preds = bundle / folder
    info = stack.run(bundle, zip_of(preds, tmp_path / "sub.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    want = codabench_expected(bundle, preds, tmp_path / "by-hand")
    assert info["scores"] == pytest.approx(want)
    if folder == "solution":
        assert want == {"accuracy": 1.0, "errors": 0}


WAIT_FOR_PREDICTIONS = """import os, sys, time
_path = os.path.join(sys.argv[1], "res", "predictions.txt")
_deadline = time.time() + 60
while time.time() < _deadline and not (os.path.exists(_path) and open(_path).read().endswith("\\n")):
    time.sleep(0.2)
"""


def codabench_code_copy(root: Path, only_during_scoring: bool) -> Path:
    """codabench_code with the flag set as asked.  With the flag, ingestion and scoring
    start together, so the copy's scoring program first waits for the predictions
    (as a Codabench scoring program must); the fixture's own one does not."""
    bundle = shutil.copytree(GOOD / "codabench_code", root / "bundle")
    spec = yaml.safe_load((bundle / "competition.yaml").read_text())
    spec["tasks"][0]["ingestion_only_during_scoring"] = only_during_scoring
    (bundle / "competition.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if only_during_scoring:
        score = bundle / "scoring_program" / "score.py"
        score.write_text(WAIT_FOR_PREDICTIONS + score.read_text())
    return bundle


@pytest.fixture(scope="module", params=[True, False], ids=["ingestion-during-scoring", "ingestion-then-scoring"])
def code_bundle(request, tmp_path_factory):
    return codabench_code_copy(tmp_path_factory.mktemp("codabench_code"), request.param)


def test_codabench_code_fixture_sets_ingestion_only_during_scoring():
    spec = yaml.safe_load((GOOD / "codabench_code" / "competition.yaml").read_text())
    assert spec["tasks"][0]["ingestion_only_during_scoring"] is True


@pytest.mark.parametrize("model", [ECHO_MODEL_CLASS, RED_MODEL_CLASS], ids=["echo", "always-red"])
def test_codabench_code_submission(stack, tmp_path, code_bundle, model):
    sub = write_files(tmp_path / "sub", {"model.py": model, "metadata": CODE_METADATA})
    info = stack.run(code_bundle, zip_of(sub, tmp_path / "sub.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    want = codabench_code_expected(code_bundle, sub, tmp_path / "by-hand")
    assert info["scores"] == pytest.approx(want)
    if model is ECHO_MODEL_CLASS:
        assert want == {"accuracy": 1.0, "errors": 0}
    else:
        assert want == pytest.approx({"accuracy": 1 / 3, "errors": 2})


def test_codabench_code_model_that_raises_fails(stack, tmp_path):
    sub = write_files(tmp_path / "sub", {"model.py": RAISING_MODEL_CLASS, "metadata": CODE_METADATA})
    info = stack.run(GOOD / "codabench_code", zip_of(sub, tmp_path / "sub.zip"))
    assert info["status"] == m.FAILED
    assert not info["scores"]


def test_codalab_code_starting_kit(stack, tmp_path):
    bundle = GOOD / "codalab_code"
    sub = unzip(bundle / "starting_kit.zip", tmp_path / "sub")
    (sub / "metadata").write_text(CODE_METADATA)
    sub_zip = zip_of(sub, tmp_path / "sub.zip")
    info = stack.run(bundle, sub_zip)
    assert info["status"] == m.FINISHED, info["error"]
    want = codalab_code_expected(bundle, sub, tmp_path / "by-hand")
    assert want == {"correct": 1.0, "accuracy": 1.0}
    assert info["scores"] == pytest.approx(want)


def test_codalab_code_wrong_answers(stack, tmp_path):
    bundle = GOOD / "codalab_code"
    sub = write_files(tmp_path / "sub", {"model.py": "def predict(question):\n    return 'hello'\n",
                                           "metadata": CODE_METADATA})
    info = stack.run(bundle, zip_of(sub, tmp_path / "sub.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    want = codalab_code_expected(bundle, sub, tmp_path / "by-hand")
    assert want == {"correct": 0.0, "accuracy": 0.5}
    assert info["scores"] == pytest.approx(want)
