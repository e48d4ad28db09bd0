"""Confidential data stays on the organizer's workers: given as a path there, never uploaded."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.bundles.model import BundleError

from tests.support.queues import RESULTS_TEMPLATE, QueueLab, slow_bundle

pytestmark = pytest.mark.timeout(300)


def _private_bundle(tmp_path, reference: str):
    bundle = slow_bundle(tmp_path / "private-bundle", "Private Truth")
    shutil.rmtree(bundle / "reference_data")
    yaml = bundle / "competition.yaml"
    text = yaml.read_text().replace(
        "    reference_data: reference_data\n",
        f"    worker_data:\n      reference_data: {reference}\n",
    )
    yaml.write_text(text.replace("docker_image: python:3.11-slim\n", "docker_image: python:3.11-slim\nqueue: private\n"))
    return bundle


def _stored_names(lab: QueueLab) -> set[str]:
    """Every file name in the platform's store, including the members of stored zips."""
    names = set()
    for path in (lab.home / "artifacts").rglob("*"):
        if path.is_file():
            names.add(path.name)
            if zipfile.is_zipfile(path):
                names.update(Path(n).name for n in zipfile.ZipFile(path).namelist())
    return names


def test_reference_data_on_the_workers_is_used_there_and_never_uploaded(tmp_path):
    secret = tmp_path / "organizer-machine" / "truth"
    secret.mkdir(parents=True)
    # The organizer's truth here equals the sample predictions: a score of 1.0 proves it was used
    # (the template's own truth gives 0.75).
    shutil.copyfile(RESULTS_TEMPLATE / "sample_submission" / "predictions.csv", secret / "truth.csv")
    lab = QueueLab(tmp_path / "home")
    try:
        slug, warnings = lab.platform.create_competition(_private_bundle(tmp_path, str(secret)), LOCAL_ADMIN)
        assert any("worker_data" in w and str(secret) in w for w in warnings), warnings
        lab.platform.create_queue("private", competition=slug)
        with lab.platform.db.session() as s:
            (task,) = s.query(m.Task).join(m.Competition).filter(m.Competition.slug == slug).all()
            assert task.reference_data_key is None
            assert task.worker_data == {"reference_data": str(secret)}
        assert "truth.csv" not in _stored_names(lab)

        lab.start_dispatcher()
        lab.start_worker(lab.home / "queues" / "private" / "worker-credentials.json", "organizer-box")
        sid = lab.submit(slug, tmp_path)
        lab.wait_terminal([sid], 120)
        info = lab.platform.submission(sid)
        assert info["status"] == m.FINISHED, info
        assert info["worker"] == "organizer-box"
        assert info["scores"]["accuracy"] == pytest.approx(1.0)
        # Not on the platform's store after the run either.
        assert "truth.csv" not in _stored_names(lab)
    finally:
        lab.close()


def test_a_worker_without_the_data_fails_the_run_and_says_what_is_missing(tmp_path):
    """The participant reads the error too: it names the data, not the worker's path (the organizer
    has the path in their bundle's worker_data)."""
    lab = QueueLab(tmp_path / "home")
    try:
        slug, _ = lab.platform.create_competition(_private_bundle(tmp_path, "/nonexistent/truth"), LOCAL_ADMIN)
        lab.platform.create_queue("private", competition=slug)
        lab.start_dispatcher()
        lab.start_worker(lab.home / "queues" / "private" / "worker-credentials.json", "empty-box")
        sid = lab.submit(slug, tmp_path)
        lab.wait_terminal([sid], 120)
        info = lab.platform.submission(sid)
        assert info["status"] == m.FAILED
        assert "reference data" in info["error"] and "not there" in info["error"], info["error"]
        assert "/nonexistent" not in info["error"]
    finally:
        lab.close()


@pytest.mark.parametrize("value, message", [
    ("relative/path", "must be an absolute path"),
    ("/data/ok", "both in the bundle and on the workers"),
])
def test_bad_worker_data_is_refused_with_the_reason(tmp_path, value, message):
    bundle = slow_bundle(tmp_path / "b", "Bad Worker Data")
    yaml = bundle / "competition.yaml"
    text = yaml.read_text()
    if "both" in message:
        text = text.replace("    reference_data: reference_data\n",
                            f"    reference_data: reference_data\n    worker_data:\n      reference_data: {value}\n")
    else:
        shutil.rmtree(bundle / "reference_data")
        text = text.replace("    reference_data: reference_data\n", f"    worker_data:\n      reference_data: {value}\n")
    yaml.write_text(text)
    lab = QueueLab(tmp_path / "home")
    try:
        with pytest.raises(BundleError) as info:
            lab.platform.create_competition(bundle, LOCAL_ADMIN)
        assert any("worker_data" in str(p) and message in str(p) for p in info.value.problems), info.value.problems
    finally:
        lab.close()
