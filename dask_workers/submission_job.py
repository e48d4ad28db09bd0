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

import hashlib
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
RESULT_TOPIC = "compete-result"
_executors: dict[str, Executor] = {}
_executors_lock = threading.Lock()
# Set by `compete worker --executor`: the machine's owner decides how steps run on it.
executor_override: Optional[str] = None


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


def _event(topic: str, msg: dict[str, Any]) -> None:
    worker = _worker()
    if worker is None:
        return
    worker.log_event(topic, msg)


def emit_status(submission_id: int, status: str, key: Optional[str] = None) -> None:
    try:
        _event(STATUS_TOPIC, {"submission": submission_id, "status": status, "worker_name": worker_name(), "key": key})
    except Exception:  # noqa: BLE001 - a status lost is not a run lost: the result still comes back
        log.exception("could not send status %s of submission %s", status, submission_id)


def emit_result(submission_id: int, key: Optional[str], result: dict[str, Any]) -> None:
    """The result goes back as an event of plain data: the platform never unpickles it."""
    _event(RESULT_TOPIC, {"submission": submission_id, "key": key, "result": result})


def executor_for(job: dict[str, Any]) -> Executor:
    name = executor_override or job.get("executor") or "auto"
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


_running: set[int] = set()


def running_submissions() -> list[int]:
    with _executors_lock:
        return sorted(_running)


def cleanup_orphans() -> int:
    """Remove step containers of this machine whose worker died; 0 without Docker."""
    from .executors import docker_available

    if executor_override == "process" or not docker_available():
        return 0
    return make_executor("docker").cleanup_orphans()


def cancel_on_worker(submission_id: int) -> bool:
    """Run on every worker by the dispatcher: kill the submission's steps here."""
    with _executors_lock:
        executors = list(_executors.values())
    return any([e.cancel(submission_id) for e in executors])


class _Datasets:
    """Where a job's datasets come from: the shared store, or bytes sent with the job."""

    def __init__(self, store_root: Optional[Path], data: Optional[dict[str, bytes]], cache: Path):
        self.store_root, self.data, self.cache = store_root, data or {}, cache

    def archive(self, key: str) -> Path:
        if self.store_root is not None:
            return self.store_root / "datasets" / key[:2] / key
        blob = self.cache / "blobs" / key
        if not blob.is_file():
            payload = self.data.get(key)
            if payload is None:
                raise DatasetError(f"dataset {key[:12]} was not sent with the job")
            if hashlib.sha256(payload).hexdigest() != key:
                raise DatasetError(f"dataset {key[:12]} arrived damaged (checksum mismatch)")
            blob.parent.mkdir(parents=True, exist_ok=True)
            partial = blob.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.part")
            partial.write_bytes(payload)
            os.replace(partial, blob)
        return blob

    def folder(self, key: Optional[str], worker_path: Optional[str] = None) -> Optional[str]:
        if worker_path:
            path = Path(worker_path)
            if not path.is_dir():
                raise DatasetError(f"the data this task expects on the worker is missing: {worker_path}")
            return str(path)
        if not key:
            return None
        return str(unpack_dataset(self.archive(key), self.cache))


def run_submission_job(job: dict[str, Any], data: Optional[dict[str, bytes]] = None) -> bool:
    """Run one submission and send its result as an event; True when a result was sent."""
    sid = int(job["submission_id"])
    key = job.get("key")
    with _executors_lock:
        _running.add(sid)
    try:
        result = _run(job, data)
    except Exception as exc:  # noqa: BLE001 - every failure must come back as a result
        log.exception("submission %s failed on this worker", sid)
        result = {"status": "Failed", "error": f"the worker could not run it: {type(exc).__name__}: {exc}",
                  "worker": worker_name()}
    finally:
        with _executors_lock:
            _running.discard(sid)
    emit_result(sid, key, result)
    return True


def _run(job: dict[str, Any], data: Optional[dict[str, bytes]]) -> dict[str, Any]:
    sid = int(job["submission_id"])
    key = job.get("key")
    started = time.monotonic()
    emit_status(sid, "Preparing", key)
    store_root = Path(job["store_root"]) if job.get("store_root") else None
    base = Path(job.get("work_root") or Path(tempfile.gettempdir()) / "jupyter-compete")
    cache = base / "datasets"
    (base / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"submission-{sid}-", dir=base / "work"))
    name = worker_name()
    datasets = _Datasets(store_root, data, cache)
    try:
        executor = executor_for(job)
        submission_zip = datasets.archive(job["submission"])
        if job["kind"] == "notebook":
            submission_dir = work / "submission"
            submission_dir.mkdir()
            shutil.copyfile(submission_zip, submission_dir / Path(job["filename"]).name)
        else:
            submission_dir = Path(unpack_dataset(submission_zip, cache))
        limits = Limits(**job.get("limits", {}))
        results = []
        for task in job["tasks"]:
            on_worker = task.get("worker_data") or {}
            run = TaskRun(
                submission_id=sid,
                task_index=int(task["index"]),
                kind=job["kind"],
                submission_dir=str(submission_dir),
                scoring_program_dir=datasets.folder(task["scoring_program"]) or "",
                work_dir=str(work / f"task-{task['index']}"),
                reference_data_dir=datasets.folder(task.get("reference_data"), on_worker.get("reference_data")),
                ingestion_program_dir=datasets.folder(task.get("ingestion_program")),
                input_data_dir=datasets.folder(task.get("input_data"), on_worker.get("input_data")),
                image=task.get("ingestion_image") or job.get("default_image"),
                scoring_image=task.get("scoring_image") or job.get("default_image"),
                limits=limits,
                ingestion_only_during_scoring=bool(task.get("ingestion_only_during_scoring")),
            )
            if not run.scoring_program_dir:
                results.append({"task_index": run.task_index, "status": "Failed", "scores": {}, "steps": [],
                                "error": "the task has no scoring program"})
                continue
            results.append(run_task(run, executor, on_status=lambda status: emit_status(sid, status, key)))
        combined = combine_task_results(results)
        return _report(combined, store_root, sid, name, started)
    except DatasetError as exc:
        return {"status": "Failed", "error": f"the data of the run could not be prepared: {exc}", "worker": name}
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Outbox:
    """Logs and outputs of a run: written to the shared store, or carried in the result."""

    def __init__(self, store_root: Optional[Path]):
        self.root = store_root / "files" if store_root is not None else None
        self.inline: dict[str, bytes] = {}

    def copy(self, source: str | Path, rel: str) -> None:
        if self.root is None:
            self.inline[rel] = Path(source).read_bytes()
        else:
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.root / rel)

    def write_text(self, rel: str, text: str) -> None:
        if self.root is None:
            self.inline[rel] = text.encode()
        else:
            (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.root / rel).write_text(text)


def _report(combined: dict[str, Any], store_root: Optional[Path], sid: int, worker: str,
            started: float) -> dict[str, Any]:
    """Put logs and outputs where the platform reads them; return the plain result."""
    attempt = f"submissions/{sid}/{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    files = _Outbox(store_root)
    tasks = []
    for task in combined.get("tasks", []):
        index = task.get("task_index", 0)
        steps = []
        for step in task.get("steps", []):
            log_rel = f"{attempt}/task-{index}/{step.get('name', 'step')}"
            for stream in ("stdout", "stderr"):
                source = step.get(f"{stream}_path")
                if source and Path(source).is_file():
                    files.copy(source, f"{log_rel}/{stream}.txt")
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
        files.copy(notebook, rel)
        artifacts["executed_notebook"] = rel
        try:
            from .notebook import render_notebook_html

            html_rel = f"{attempt}/executed_notebook.html"
            files.write_text(html_rel, render_notebook_html(notebook))
            artifacts["executed_notebook_html"] = html_rel
        except Exception as exc:  # noqa: BLE001 - feedback only: the scores still count
            log.warning("could not render the executed notebook of %s: %s", sid, exc)
    detailed = combined.get("detailed_results")
    if detailed and Path(detailed).is_file():
        rel = f"{attempt}/detailed_results.html"
        files.copy(detailed, rel)
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
        "files": files.inline,
    }
