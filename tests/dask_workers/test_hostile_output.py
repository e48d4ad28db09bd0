"""Hostile outputs, end to end on a worker: links, zip bombs, floods, outside kills, oversized results.

Each test performs the attack for real (the Docker executor and the runtime
image; the process executor where the attack applies to it) through
`run_task` or `run_submission_job`, and checks that the worker treats what a
program wrote as data: no link is followed, no host file comes back, limits
stop the step with a reason a person understands.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Optional

import pytest

from dask_workers import submission_job
from dask_workers.executors.docker import LABEL_SUBMISSION
from dask_workers.pipeline import TaskRun, run_task
from dask_workers.spec import Limits

from .conftest import PYTHON, write_notebook, write_program

# -- helpers ------------------------------------------------------------------------

# A scoring program for the container: compares res/answer.txt with
# ref/answer.txt, and reports how many links it found among the predictions.
SCORE_IN_CONTAINER = """\
import json, os, sys, time
res, ref, out = "/app/input/res", "/app/input/ref", "/app/output"
if os.environ.get("WAIT_FOR_DONE"):
    deadline = time.time() + 60
    while not os.path.exists("/app/shared/done") and time.time() < deadline:
        time.sleep(0.05)
links = sum(os.path.islink(os.path.join(d, f)) for d, _, fs in os.walk(res) for f in fs)
try:
    answer = open(os.path.join(res, "answer.txt")).read().strip()
except OSError:
    answer = None
truth = open(os.path.join(ref, "answer.txt")).read().strip()
json.dump({"correct": float(answer == truth), "links": float(links)}, open(os.path.join(out, "scores.json"), "w"))
"""


def host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A file of the worker's machine holding a marker that must never come back."""
    marker = f"HOST-SECRET-{uuid.uuid4().hex}"
    folder = tmp_path / f"private-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    path = folder / "host.txt"
    path.write_text(marker + "\n")
    return path, marker


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


class Worker:
    """Runs jobs through `run_submission_job` with the test's executor and keeps what they report."""

    def __init__(self, tmp_path: Path, executor, monkeypatch, image: str, store: bool):
        self.tmp_path = tmp_path
        self.image = image
        self.store = tmp_path / "store" if store else None
        self.data: dict[str, bytes] = {}
        self.results: list[dict] = []
        self.work_root = tmp_path / "worker"
        monkeypatch.setattr(submission_job, "executor_for", lambda job: executor)
        monkeypatch.setattr(submission_job, "emit_result",
                            lambda sid, key, result: self.results.append(result))
        monkeypatch.setattr(submission_job, "emit_status", lambda *args, **kwargs: None)

    def put(self, payload: bytes) -> str:
        key = hashlib.sha256(payload).hexdigest()
        if self.store is not None:
            path = self.store / "datasets" / key[:2] / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
        else:
            self.data[key] = payload
        return key

    def run(self, kind: str, submission: bytes, filename: str, scoring: Path, reference: Path,
            ingestion: Optional[Path] = None, sid: int = 1, **extra: Any) -> dict:
        task = {
            "index": 0,
            "scoring_program": self.put(zip_folder(scoring)),
            "reference_data": self.put(zip_folder(reference)),
            "ingestion_program": self.put(zip_folder(ingestion)) if ingestion else None,
            "scoring_image": self.image,
            "ingestion_image": self.image,
        }
        job = {
            "submission_id": sid, "queue": "default", "kind": kind, "filename": filename, "submission": self.put(submission),
            "store_root": str(self.store) if self.store else None, "work_root": str(self.work_root),
            "tasks": [task], "executor": "docker", "limits": {"time_limit": 60},
            **extra,
        }
        submission_job.run_submission_job(job, None if self.store else dict(self.data))
        return self.results[-1]

    def everything(self, result: dict) -> str:
        """All the result says and carries, and every file it left in the store, as one text."""
        parts = [json.dumps({k: v for k, v in result.items() if k != "files"}, default=str)]
        parts += [data.decode("utf-8", "replace") for data in (result.get("files") or {}).values()]
        if self.store is not None and (self.store / "files").is_dir():
            parts += [p.read_text(errors="replace") for p in (self.store / "files").rglob("*") if p.is_file()]
        return "\n".join(parts)

    def run_log(self, result: dict) -> str:
        rel = result["tasks"][0]["run_log"]
        if self.store is not None:
            return (self.store / "files" / rel).read_text()
        return result["files"][rel].decode()


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "answer.txt").write_text("42\n")
    return folder


@pytest.fixture
def container_scoring(tmp_path: Path) -> Path:
    return write_program(tmp_path / "scoring", "python3 /app/program/score.py", **{"score.py": SCORE_IN_CONTAINER})


def task_run(tmp_path: Path, kind: str, submission: Path, scoring: Path, reference: Path, image: Optional[str],
             **extra) -> TaskRun:
    return TaskRun(
        submission_id=extra.pop("submission_id", 11), task_index=0, kind=kind, submission_dir=str(submission),
        scoring_program_dir=str(scoring), reference_data_dir=str(reference),
        work_dir=str(tmp_path / f"work-{uuid.uuid4().hex[:6]}"), limits=extra.pop("limits", Limits(time_limit=60)),
        image=image or "unused", **extra,
    )


def run_log_of(result: dict) -> str:
    return Path(result["outputs"]["run_log"]).read_text()


# -- 1. the executed notebook as a link to a host file -----------------------------------

def test_executed_notebook_replaced_by_a_link_to_a_host_file_leaks_nothing(tmp_path, docker_executor, runtime_image,
                                                                          monkeypatch, reference, container_scoring):
    secret, marker = host_secret(tmp_path)
    # The cell makes the link's target exist inside the container too, so that
    # the runner writes the executed notebook through the link without error
    # and the link is what the worker finds in the output folder.
    notebook = write_notebook(
        tmp_path / "nb" / "solution.ipynb",
        f"""\
        import os
        os.makedirs({str(secret.parent)!r}, exist_ok=True)
        open(os.path.join(output_dir, 'answer.txt'), 'w').write('1')
        target = os.path.join(output_dir, 'executed.ipynb')
        if os.path.lexists(target):
            os.remove(target)
        os.symlink({str(secret)!r}, target)
        print('planted')
        """,
    )
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=True)

    result = worker.run("notebook", notebook.read_bytes(), "solution.ipynb", container_scoring, reference)

    assert marker not in worker.everything(result)
    assert secret.read_text() == marker + "\n"  # the host file was not touched either
    assert "executed_notebook" not in result["artifacts"]
    log = worker.run_log(result)
    assert f"removed a symbolic link executed.ipynb -> {secret} from the prediction output" in log
    assert any("executed.ipynb" in warning for warning in result["warnings"])


# -- 2. a prediction file linked to the reference data ------------------------------------------

def test_prediction_linked_to_the_reference_scores_nothing_in_docker(tmp_path, docker_executor, runtime_image,
                                                                    reference, container_scoring):
    submission = write_program(tmp_path / "code", "ln -s /app/input/ref/answer.txt /app/output/answer.txt")
    run = task_run(tmp_path, "code", submission, container_scoring, reference, runtime_image)

    result = run_task(run, docker_executor)

    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 0.0, "links": 0.0}  # no link reached the scoring step
    assert ("removed a symbolic link answer.txt -> /app/input/ref/answer.txt from the prediction output: "
            "outputs must be regular files") in run_log_of(result)


def test_prediction_linked_to_the_reference_scores_nothing_in_the_process_executor(tmp_path, process_executor,
                                                                                   reference):
    # On the worker's own file system the predictions sit at <run>/input/res,
    # next to where the reference data is put for scoring: a relative link.
    scoring = write_program(
        tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output",
        **{"score.py": SCORE_IN_CONTAINER.replace('"/app/input/res", "/app/input/ref", "/app/output"',
                                                  'sys.argv[1] + "/res", sys.argv[1] + "/ref", sys.argv[2]')},
    )
    submission = write_program(tmp_path / "code", "ln -s ../ref/answer.txt $output/answer.txt")
    run = task_run(tmp_path, "code", submission, scoring, reference, None, limits=Limits(time_limit=60))

    result = run_task(run, process_executor)

    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 0.0, "links": 0.0}
    assert "removed a symbolic link answer.txt -> ../ref/answer.txt from the prediction output" in run_log_of(result)


def test_prediction_linked_to_the_reference_while_scoring_runs_scores_nothing(tmp_path, docker_executor,
                                                                             runtime_image, reference):
    # Codabench's ingestion_only_during_scoring: the scoring container has the
    # reference mounted while the participant's code still runs.
    ingestion = write_program(tmp_path / "ingestion", "python3 /app/ingested_program/attack.py")
    submission = write_program(tmp_path / "code", None, **{"attack.py": """\
        import os, time
        os.symlink('/app/input/ref/answer.txt', '/app/output/answer.txt')
        os.symlink('/app/input/ref/answer.txt', '/app/shared/answer.txt')
        time.sleep(0.5)
        open('/app/shared/done', 'w').write('1')
    """})
    scoring = write_program(tmp_path / "scoring", "WAIT_FOR_DONE=1 python3 /app/program/score.py",
                            **{"score.py": SCORE_IN_CONTAINER})
    run = task_run(tmp_path, "code", submission, scoring, reference, runtime_image,
                   ingestion_program_dir=str(ingestion), ingestion_only_during_scoring=True)

    result = run_task(run, docker_executor)

    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 0.0, "links": 0.0}
    log = run_log_of(result)
    assert "symbolic link answer.txt -> /app/input/ref/answer.txt from the ingestion output" in log
    assert "symbolic link answer.txt -> /app/input/ref/answer.txt from the ingestion's shared folder" in log
    assert not os.path.islink(Path(run.work_dir) / "shared" / "answer.txt")


def test_concurrent_ingestion_passes_regular_files_on_while_running(tmp_path, docker_executor, runtime_image,
                                                                   reference):
    # The honest case of the mode: predictions and a signal through the shared folder reach scoring.
    ingestion = write_program(tmp_path / "ingestion", "python3 /app/program/ingest.py", **{"ingest.py": """\
        import os, time
        time.sleep(0.5)
        os.makedirs('/app/output/sub')
        open('/app/output/sub/x.txt', 'w').write('nested')
        open('/app/output/answer.txt', 'w').write('42')
        open('/app/shared/done', 'w').write('1')
    """})
    submission = write_program(tmp_path / "code", None, **{"model.py": ""})
    scoring = write_program(tmp_path / "scoring", "WAIT_FOR_DONE=1 python3 /app/program/score.py",
                            **{"score.py": SCORE_IN_CONTAINER})
    run = task_run(tmp_path, "code", submission, scoring, reference, runtime_image,
                   ingestion_program_dir=str(ingestion), ingestion_only_during_scoring=True)

    result = run_task(run, docker_executor)

    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0, "links": 0.0}
    res = Path(result["outputs"]["predictions"])
    assert (res / "sub" / "x.txt").read_text() == "nested"
    assert "ingestionExitCode: 0" in (res / "metadata").read_text()


# -- 3. detailed results of a scoring program as a link to a host file ---------------------------

def test_detailed_results_linked_to_a_host_file_leak_nothing(tmp_path, docker_executor, runtime_image, monkeypatch,
                                                           reference):
    secret, marker = host_secret(tmp_path)
    scoring = write_program(tmp_path / "scoring", "python3 /app/program/score.py", **{"score.py": f"""\
        import os
        open('/app/output/scores.txt', 'w').write('correct: 1\\n')
        os.symlink({str(secret)!r}, '/app/output/detailed_results.html')
        os.makedirs('/app/output/pages')
        os.symlink({str(secret)!r}, '/app/output/pages/other.html')
    """})
    results = tmp_path / "results"
    results.mkdir()
    (results / "answer.txt").write_text("42\n")
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=False)  # an organizer queue

    result = worker.run("results", zip_folder(results), "results.zip", scoring, reference)

    assert result["status"] == "Finished", result["error"]
    assert marker not in worker.everything(result)
    assert "detailed_results" not in result["artifacts"]
    log = worker.run_log(result)
    assert f"removed a symbolic link detailed_results.html -> {secret} from the scoring output" in log
    assert f"removed a symbolic link pages/other.html -> {secret} from the scoring output" in log


# -- 4. zip bombs ------------------------------------------------------------------------------

def _bomb(size: int, members: int = 1) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(members):
            with archive.open(f"part{index}.bin", "w", force_zip64=True) as member:
                block = b"\0" * (1 << 20)
                for _ in range(size // len(block)):
                    member.write(block)
    return buffer.getvalue()


def _disk_usage(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_symlink() and p.is_file())


def test_submission_zip_bomb_is_refused_on_the_worker(tmp_path, docker_executor, runtime_image, monkeypatch,
                                                     reference, container_scoring):
    bomb = _bomb(512 << 20)  # 512 MB of zeros in about half a megabyte
    assert len(bomb) < 1 << 20
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=True)

    result = worker.run("code", bomb, "bomb.zip", container_scoring, reference)

    assert result["status"] == "Failed"
    assert "the submission" in result["error"] and "compression ratio above the limit of 100:1" in result["error"]
    assert _disk_usage(worker.work_root) < 8 << 20  # stopped after a few megabytes, and those are gone


def test_submission_over_the_job_unpack_limits_is_refused(tmp_path, docker_executor, runtime_image, monkeypatch,
                                                         reference, container_scoring):
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=True)

    total = worker.run("code", _bomb(4 << 20, members=3), "big.zip", container_scoring, reference, sid=2,
                       unpack_limits={"max_total_bytes": 10 << 20, "max_ratio": 1e9})
    many = worker.run("code", _bomb(0, members=30), "many.zip", container_scoring, reference, sid=3,
                      unpack_limits={"max_members": 20})

    assert total["status"] == "Failed" and f"unpacks to more than {10 << 20} bytes" in total["error"]
    assert many["status"] == "Failed" and "has 30 members, more than the limit of 20" in many["error"]
    for result in (total, many):
        assert str(tmp_path) not in result["error"]  # no worker path in what the participant reads


def test_dataset_cache_is_capped_and_evicts_least_recently_used(tmp_path, docker_executor, runtime_image,
                                                                monkeypatch, reference, container_scoring):
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=True)
    cache = worker.work_root / "datasets"
    for sid in (21, 22, 23):
        results = tmp_path / f"results-{sid}"
        results.mkdir()
        (results / "answer.txt").write_text("42\n")
        (results / "padding.bin").write_bytes(os.urandom(3 << 20))
        result = worker.run("results", zip_folder(results), "results.zip", container_scoring, reference, sid=sid,
                            dataset_cache_mb=5)
        assert result["status"] == "Finished", result["error"]
        assert result["scores"]["correct"] == 1.0
    entries = [p for p in cache.iterdir() if len(p.name) == 64]
    size = sum(_disk_usage(p) for p in entries)
    assert size <= 5 << 20
    # The small programs and reference data, used by every run, are the recent ones and stay.
    assert len(entries) >= 2


# -- 5. a step writing more than the output cap -------------------------------------------------

FLOOD = """\
import os, time
with open(os.path.join(os.environ.get('OUT', '/app/output'), 'flood.bin'), 'wb') as sink:
    block = os.urandom(1 << 20)
    while True:
        sink.write(block)
        sink.flush()
        time.sleep(0.01)
"""


def test_step_writing_past_the_output_cap_is_stopped_in_docker(tmp_path, docker_executor, runtime_image,
                                                              monkeypatch, reference, container_scoring):
    code = write_program(tmp_path / "code", "python3 /app/program/flood.py", **{"flood.py": FLOOD})
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=True)
    started = time.monotonic()

    result = worker.run("code", zip_folder(code), "code.zip", container_scoring, reference, step_output_mb=20)

    assert time.monotonic() - started < 40  # stopped long before its 60 s time limit
    assert result["status"] == "Failed"
    assert "output over 20 MB" in result["error"]
    assert "memory" not in result["error"] and "time limit" not in result["error"]


def test_step_writing_past_the_output_cap_is_stopped_in_the_process_executor(tmp_path, process_executor,
                                                                           reference):
    code = write_program(tmp_path / "code", f"OUT=$output {PYTHON} $program/flood.py", **{"flood.py": FLOOD})
    scoring = write_program(tmp_path / "scoring", "echo scored")
    run = task_run(tmp_path, "code", code, scoring, reference, None, limits=Limits(time_limit=60, output_mb=20))
    started = time.monotonic()

    result = run_task(run, process_executor)

    assert time.monotonic() - started < 30
    assert result["status"] == "Failed"
    assert "output over 20 MB" in result["error"]
    assert result["steps"][0]["output_over"] is True


# -- 6. a container killed from outside ----------------------------------------------------------

def test_container_killed_from_outside_says_so(tmp_path, docker_executor, docker_engine, runtime_image, reference,
                                              container_scoring):
    submission = write_program(tmp_path / "code", "sleep 60")
    run = task_run(tmp_path, "code", submission, container_scoring, reference, runtime_image, submission_id=9191)
    results: list[dict] = []
    runner = threading.Thread(target=lambda: results.append(run_task(run, docker_executor)))
    runner.start()
    deadline = time.monotonic() + 30
    while True:
        running = docker_engine.containers.list(filters={"label": f"{LABEL_SUBMISSION}=9191",
                                                         "status": "running"})
        if running:
            break
        assert time.monotonic() < deadline, "the step's container never started"
        time.sleep(0.1)
    time.sleep(0.5)
    running[0].kill()  # `docker kill`: SIGKILL from outside, not the memory limit
    runner.join(timeout=60)

    result = results[0]
    assert result["status"] == "Failed"
    assert "killed (SIGKILL) from outside" in result["error"]
    assert "memory" not in result["error"].replace("out of memory", "")
    assert result["steps"][0]["oom_killed"] is False


# -- 7. an organizer-queue result over the inline cap -------------------------------------------

def test_inline_result_over_the_cap_keeps_what_fits_and_says_what_was_dropped(tmp_path, docker_executor,
                                                                             runtime_image, monkeypatch, reference):
    big = 70 << 20
    scoring = write_program(tmp_path / "scoring", "python3 /app/program/score.py", **{"score.py": f"""\
        import os
        open('/app/output/scores.txt', 'w').write('correct: 1\\n')
        with open('/app/output/detailed_results.html', 'wb') as page:
            line = b'<p>' + b'x' * 1020 + b'</p>'
            for _ in range({big} // len(line)):
                page.write(line)
            page.write(b'y' * ({big} % len(line)))
        print('scored')
    """})
    notebook = write_notebook(tmp_path / "nb" / "solution.ipynb",
                              "import os\nopen(os.path.join(output_dir, 'answer.txt'), 'w').write('42')\nprint('hi')")
    worker = Worker(tmp_path, docker_executor, monkeypatch, runtime_image, store=False)  # an organizer queue

    result = worker.run("notebook", notebook.read_bytes(), "solution.ipynb", scoring, reference)

    assert result["status"] == "Finished", result["error"]
    files = result["files"]
    assert sum(len(data) for data in files.values()) <= 64 << 20
    # What fits is kept and listed; what does not is neither carried nor listed.
    assert set(result["artifacts"]) == {"executed_notebook", "executed_notebook_html"}
    for rel in result["artifacts"].values():
        assert rel in files
    assert not any(rel.endswith("detailed_results.html") for rel in files)
    assert any(rel.endswith("scoring/stdout.txt") and b"scored" in data for rel, data in files.items())
    assert result["tasks"][0]["run_log"] in files
    assert result["dropped"] == [{"name": "the detailed results", "bytes": big,
                                  "reason": "a run on an organizer queue carries back at most 64 MB of outputs"}]
    assert ("the detailed results (70.0 MB) was not kept: a run on an organizer queue carries back at most "
            "64 MB of outputs") in result["warnings"]


# -- 8. no worker path in messages -----------------------------------------------------------------

def test_errors_name_no_worker_path(tmp_path, process_executor):
    # A reference folder that vanished from the worker makes the run fail with an OSError naming it.
    scoring = write_program(tmp_path / "scoring", "echo scored")
    results = tmp_path / "results"
    results.mkdir()
    (results / "answer.txt").write_text("42\n")
    run = task_run(tmp_path, "results", results, scoring, tmp_path / "gone" / "reference", None)

    result = run_task(run, process_executor)

    assert result["status"] == "Failed"
    assert result["error"].startswith("the worker could not prepare the run")
    assert "<reference data>" in result["error"]
    assert str(tmp_path) not in result["error"] and str(tmp_path) not in run_log_of(result)
