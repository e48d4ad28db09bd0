"""The worker keeps each task's prediction and scoring outputs for organizers to download.

Files are read without following links (a link a program wrote is data, never
a path to follow), capped in count and size, and what is left out is said.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from dask_workers import submission_job
from dask_workers.submission_job import _report
from hub_extension.contract import StoreLayout


def _task(tmp_path: Path) -> dict:
    work = tmp_path / "work"
    res, out, logs = work / "input" / "res", work / "output", work / "logs"
    for folder in (res, out / "deep", logs):
        folder.mkdir(parents=True)
    (res / "predictions.txt").write_text("1\n0\n")
    (out / "scores.json").write_text('{"accuracy": 0.5}')
    (out / "deep" / "detail.txt").write_text("deep")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the worker's own file")
    os.symlink(secret, out / "link.txt")
    os.symlink(tmp_path, res / "linked-folder")
    return {"task_index": 0, "status": "Finished", "scores": {"accuracy": 0.5}, "steps": [],
            "outputs": {"predictions": str(res), "scoring_output": str(out), "logs": str(logs)}}


def _attempt_of(store: Path, sid: int) -> Path:
    folders = list((store / StoreLayout.FILES / StoreLayout.submission_files(sid)).iterdir())
    assert len(folders) == 1
    return folders[0]


def test_outputs_are_kept_in_the_store_without_following_links(tmp_path):
    store = tmp_path / "store"
    task = _task(tmp_path)
    detailed = Path(task["outputs"]["scoring_output"]) / "detailed_results.html"
    detailed.write_text("<p>details</p>")
    combined = {"status": "Finished", "scores": {}, "tasks": [task], "detailed_results": str(detailed)}
    result = _report(combined, store, 7, "w", time.monotonic())
    attempt = _attempt_of(store, 7)
    kept = {p.relative_to(attempt).as_posix() for p in attempt.rglob("*") if p.is_file()}
    # The detailed results are kept once, as feedback.
    assert kept == {"task-0/prediction_output/predictions.txt", "task-0/scoring_output/scores.json",
                    "task-0/scoring_output/deep/detail.txt", StoreLayout.DETAILED_RESULTS}
    assert set(result.artifacts) == {"detailed_results"}
    assert not any(p.is_symlink() for p in attempt.rglob("*"))
    assert result.dropped == [] and not result.warnings


def test_without_a_shared_store_outputs_ride_in_the_result(tmp_path):
    combined = {"status": "Finished", "scores": {}, "tasks": [_task(tmp_path)]}
    result = _report(combined, None, 8, "w", time.monotonic())
    names = {rel.split("/", 3)[3]: data for rel, data in result.files.items()}
    assert names["task-0/scoring_output/scores.json"] == b'{"accuracy": 0.5}'
    assert names["task-0/prediction_output/predictions.txt"] == b"1\n0\n"
    assert not any("link" in rel for rel in result.files)


def test_outputs_over_the_caps_are_left_out_and_said(tmp_path, monkeypatch):
    task = _task(tmp_path)
    many = Path(task["outputs"]["predictions"])
    for n in range(5):
        (many / f"extra-{n}.txt").write_text("x" * 10)
    monkeypatch.setattr(submission_job, "OUTPUT_FILES_KEPT", 3)
    result = _report({"status": "Finished", "scores": {}, "tasks": [task]}, tmp_path / "store", 9, "w",
                     time.monotonic(), output_max_bytes=1 << 20)
    assert any("the prediction output of task 0: 3 of its 6 files were not kept" in w for w in result.warnings)
    assert any(d.name.startswith("the prediction output of task 0") for d in result.dropped)
    small = _report({"status": "Finished", "scores": {}, "tasks": [_task(tmp_path / "again")]},
                    tmp_path / "store2", 10, "w", time.monotonic(), output_max_bytes=12)
    assert any("scoring output of task 0" in w for w in small.warnings)
