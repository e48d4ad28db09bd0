"""The Dask task of one submission: prepare, run every task of the phase, upload, report.

`run_submission_job(job)` runs on a worker.  `job` is the plain dict built by
`Platform.job_for` (datasets by content key, the artifact store's root,
limits, images); the return value is a plain dict validated by
`Platform.record_result`.  Status changes (Preparing, Running, Scoring) go to
the platform as Dask events on the topic `compete-status` as they happen.

The executor is made once per worker process and kept, so that imports and
the notebook runner stay warm between submissions.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from .executors import make_executor
from .executors.base import Executor
from .pipeline import TaskRun, combine_task_results, run_task
from .spec import Limits
from .workdir import DatasetError, unpack_dataset

log = logging.getLogger(__name__)

STATUS_TOPIC = "compete-status"
_executors: dict[str, Executor] = {}
_executors_lock = threading.Lock()


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def worker_name() -> str:
    worker = _worker()
    if worker is not None:
        return str(worker.name)
    return f"{socket.gethostname()}-{os.getpid()}"


def emit_status(submission_id: int, status: str) -> None:
    worker = _worker()
    if worker is None:
        return
    try:
        worker.log_event(STATUS_TOPIC, {"submission": submission_id, "status": status, "worker": worker_name()})
    except Exception:  # noqa: BLE001 - an event lost is not a run lost: the result still comes back
        log.exception("could not send status %s of submission %s", status, submission_id)


def executor_for(job: dict[str, Any]) -> Executor:
    name = job.get("executor") or "auto"
    with _executors_lock:
        executor = _executors.get(name)
        if executor is None:
            options: dict[str, Any] = {}
            if name in ("docker", "auto"):
                # No worker_id: the default (host and pid) is unique, so a worker of
                # another cluster on this engine never takes our containers for orphans.
                options = {
                    "default_image": job.get("default_image"),
                    "image_aliases": job.get("image_aliases") or {},
                }
            executor = make_executor(name, **options)
            if executor.name == "docker":
                removed = executor.cleanup_orphans()
                if removed:
                    log.warning("removed %d orphaned containers", removed)
            _executors[name] = executor
        return executor


def cancel_on_worker(submission_id: int) -> bool:
    """Run on every worker by the dispatcher: kill the submission's steps here."""
    with _executors_lock:
        executors = list(_executors.values())
    return any([e.cancel(submission_id) for e in executors])


def _dataset(store_root: Path, key: Optional[str], cache: Path) -> Optional[str]:
    if not key:
        return None
    return str(unpack_dataset(store_root / "datasets" / key[:2] / key, cache))


def run_submission_job(job: dict[str, Any]) -> dict[str, Any]:
    sid = int(job["submission_id"])
    started = time.monotonic()
    emit_status(sid, "Preparing")
    store_root = Path(job["store_root"])
    base = Path(job.get("work_root") or Path(tempfile.gettempdir()) / "jupyter-compete")
    cache = base / "datasets"
    (base / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"submission-{sid}-", dir=base / "work"))
    name = worker_name()
    try:
        executor = executor_for(job)
        submission_zip = store_root / "datasets" / job["submission"][:2] / job["submission"]
        if job["kind"] == "notebook":
            submission_dir = work / "submission"
            submission_dir.mkdir()
            shutil.copyfile(submission_zip, submission_dir / Path(job["filename"]).name)
        else:
            submission_dir = Path(unpack_dataset(submission_zip, cache))
        limits = Limits(**job.get("limits", {}))
        results = []
        for task in job["tasks"]:
            run = TaskRun(
                submission_id=sid,
                task_index=int(task["index"]),
                kind=job["kind"],
                submission_dir=str(submission_dir),
                scoring_program_dir=_dataset(store_root, task["scoring_program"], cache) or "",
                work_dir=str(work / f"task-{task['index']}"),
                reference_data_dir=_dataset(store_root, task.get("reference_data"), cache),
                ingestion_program_dir=_dataset(store_root, task.get("ingestion_program"), cache),
                input_data_dir=_dataset(store_root, task.get("input_data"), cache),
                image=task.get("ingestion_image") or job.get("default_image"),
                scoring_image=task.get("scoring_image") or job.get("default_image"),
                limits=limits,
                ingestion_only_during_scoring=bool(task.get("ingestion_only_during_scoring")),
            )
            if not run.scoring_program_dir:
                results.append({"task_index": run.task_index, "status": "Failed", "scores": {}, "steps": [],
                                "error": "the task has no scoring program"})
                continue
            results.append(run_task(run, executor, on_status=lambda status: emit_status(sid, status)))
        combined = combine_task_results(results)
        return _report(combined, store_root, sid, name, started)
    except DatasetError as exc:
        return {"status": "Failed", "error": f"the submission could not be unpacked: {exc}", "worker": name}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report(combined: dict[str, Any], store_root: Path, sid: int, worker: str, started: float) -> dict[str, Any]:
    """Upload logs and outputs to the artifact store; return the plain result."""
    attempt = f"submissions/{sid}/{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    files = store_root / "files"
    tasks = []
    for task in combined.get("tasks", []):
        index = task.get("task_index", 0)
        steps = []
        for step in task.get("steps", []):
            log_rel = f"{attempt}/task-{index}/{step.get('name', 'step')}"
            target = files / log_rel
            target.mkdir(parents=True, exist_ok=True)
            for stream in ("stdout", "stderr"):
                source = step.get(f"{stream}_path")
                if source and Path(source).is_file():
                    shutil.copyfile(source, target / f"{stream}.txt")
            steps.append(
                {
                    "step": step.get("name"),
                    "exit_code": step.get("exit_code"),
                    "elapsed": step.get("elapsed"),
                    "image": step.get("image"),
                    "image_digest": step.get("image_digest"),
                    "error": step.get("error"),
                    "log_path": log_rel,
                }
            )
        tasks.append({"task_index": index, "status": task.get("status"), "error": task.get("error"), "steps": steps})
    artifacts: dict[str, str] = {}
    notebook = combined.get("executed_notebook")
    if notebook and Path(notebook).is_file():
        rel = f"{attempt}/executed_notebook.ipynb"
        (files / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, files / rel)
        artifacts["executed_notebook"] = rel
        try:
            from .notebook import render_notebook_html

            html_rel = f"{attempt}/executed_notebook.html"
            (files / html_rel).write_text(render_notebook_html(notebook))
            artifacts["executed_notebook_html"] = html_rel
        except Exception as exc:  # noqa: BLE001 - feedback only: the scores still count
            log.warning("could not render the executed notebook of %s: %s", sid, exc)
    detailed = combined.get("detailed_results")
    if detailed and Path(detailed).is_file():
        rel = f"{attempt}/detailed_results.html"
        shutil.copyfile(detailed, files / rel)
        artifacts["detailed_results"] = rel
    return {
        "status": combined["status"],
        "scores": combined.get("scores", {}),
        "error": combined.get("error"),
        "worker": worker,
        "tasks": tasks,
        "artifacts": artifacts,
        "warnings": combined.get("warnings", []),
        "worker_elapsed": round(time.monotonic() - started, 3),
    }
