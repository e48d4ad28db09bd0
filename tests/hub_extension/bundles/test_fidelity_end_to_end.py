"""The fidelity fixture bundles end to end on the docker executor.

Each case creates a competition from a bundle in a shape that CodaLab or
Codabench accepted and this platform once refused (dates without leading zeros
and unsupported keys and pages in CodaLab's order; an early Codabench bundle
without `version`; data named by another server's dataset key and provided in
the bundle; a zip holding its scoring program twice), runs one submission on
the Dask queue in Docker, and compares the scores with what the bundle's own
scoring program computes by hand on the same submission.
"""
from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.errors import PlatformError

from tests.hub_extension.bundles.test_bundles_end_to_end import (  # noqa: F401  (stack is a fixture)
    codabench_expected,
    run_scoring,
    stack,
    zip_of,
)
from tests.support.bundles import FIXTURES

CODALAB = FIXTURES / "fidelity_codalab"
CODABENCH_2019 = FIXTURES / "fidelity_codabench_2019"
FOREIGN = FIXTURES / "fidelity_foreign_key"
DUPLICATES = FIXTURES / "fidelity_duplicates"
FOREIGN_KEY = "ed6a2f4c-5b1e-4c3a-9d2e-7f0a1b2c3d4e"


def create(stack, bundle: Path) -> list[str]:
    """Creates the competition (the stack runs submissions on it); returns the upload's warnings."""
    slug, said = stack.platform.create_competition(bundle, LOCAL_ADMIN)
    stack.slugs[str(bundle)] = slug
    return said


def submit_solution(stack, bundle: Path, tmp_path: Path, solution: Path, **kwargs) -> dict:
    info = stack.run(bundle, zip_of(solution, tmp_path / "submission.zip"), **kwargs)
    assert info["status"] == m.FINISHED, info["error"]
    return info


def test_codalab_bundle_as_written_in_2012(stack, tmp_path):
    said = create(stack, CODALAB)
    assert not any("anonymous_leaderboard" in w for w in said)  # honoured
    assert stack.platform.competition_spec(stack.slugs[str(CODALAB)]).anonymous_leaderboard is True
    assert not any("allow_teams" in w for w in said)
    spec = stack.platform.competition_spec(stack.slugs[str(CODALAB)])
    assert spec.allow_teams is True
    assert [p.name for p in spec.pages] == ["overview", "evaluation", "faq", "data"]
    assert spec.phases[0].start.isoformat() == "2012-10-01T00:00:00"

    info = submit_solution(stack, CODALAB, tmp_path, CODALAB / "solution")
    want = codabench_expected(CODALAB, CODALAB / "solution", tmp_path / "by-hand")
    assert want == pytest.approx({"accuracy": 2 / 3, "errors": 1})
    assert info["scores"] == pytest.approx(want)


def test_codabench_2019_bundle_without_version(stack, tmp_path):
    said = create(stack, CODABENCH_2019)
    assert said[0].startswith("competition.yaml: version: is missing; read as a Codabench v2 bundle because")
    assert stack.platform.competition_spec(stack.slugs[str(CODABENCH_2019)]).dialect == "codabench"

    # The bundle's fact sheet asks a required question: a submission without its answer is refused.
    with pytest.raises(PlatformError, match="Describe your method"):
        submit_solution(stack, CODABENCH_2019, tmp_path, CODABENCH_2019 / "solution")
    info = submit_solution(stack, CODABENCH_2019, tmp_path, CODABENCH_2019 / "solution",
                           fact_sheet={"method": "the reference answers"})
    want = codabench_expected(CODABENCH_2019, CODABENCH_2019 / "solution", tmp_path / "by-hand")
    assert want == {"accuracy": 1.0, "errors": 0}
    assert info["scores"] == pytest.approx(want)


def test_dataset_key_of_another_server_provided_in_the_bundle(stack, tmp_path):
    create(stack, FOREIGN)
    info = submit_solution(stack, FOREIGN, tmp_path, FOREIGN / "solution")
    out = run_scoring(FOREIGN / "scoring_program" / "score.py", FOREIGN / FOREIGN_KEY, FOREIGN / "solution",
                      tmp_path / "by-hand")
    want = json.loads((out / "scores.json").read_text())
    assert want == pytest.approx({"accuracy": 2 / 3, "errors": 1})
    assert info["scores"] == pytest.approx(want)


def test_bundle_zip_with_its_scoring_program_twice(stack, tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's own "Duplicate name" warning
        for path in sorted(DUPLICATES.rglob("*")) + sorted((DUPLICATES / "scoring_program").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(DUPLICATES).as_posix())
    said = create(stack, archive)
    assert ("bundle.zip: scoring_program/score.py: appears twice in the archive with the same contents; one copy "
            "is used") in said

    info = stack.run(archive, zip_of(DUPLICATES / "solution", tmp_path / "submission.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    want = codabench_expected(DUPLICATES, DUPLICATES / "solution", tmp_path / "by-hand")
    assert want == pytest.approx({"accuracy": 1 / 3, "errors": 2})
    assert info["scores"] == pytest.approx(want)


def test_submission_zip_with_a_member_twice_is_scored_and_says_so(stack, tmp_path):
    create(stack, DUPLICATES)
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's own "Duplicate name" warning
        for _ in range(2):
            for path in sorted((DUPLICATES / "solution").rglob("*")):
                zf.write(path, path.relative_to(DUPLICATES / "solution").as_posix())
    info = stack.run(DUPLICATES, archive)
    assert info["status"] == m.FINISHED, info["error"]
    want = codabench_expected(DUPLICATES, DUPLICATES / "solution", tmp_path / "by-hand")
    assert info["scores"] == pytest.approx(want)
    # Said to the participant, and kept beside what the run itself said.
    assert [w for w in info["warnings"] if "twice" in w] == [
        "at submission: twice.zip: predictions.txt: appears twice in the archive with the same contents; one copy "
        "is used"], info["warnings"]
