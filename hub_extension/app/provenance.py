"""Run provenance: what each run of a submission ran with, where, and when, kept with the run.

When a run's result is recorded (`runs.Runs.record_result`), each of its
steps gets `Run.provenance`, joined from two sides:

- the job the platform sent (`job_facts`, noted on the runs waiting for the
  result when the job is sent, so that a later change of a task does not
  rewrite history): the submission's content key, each task's programs and
  datasets by content key, the images asked for, the executor and the
  step limits (time, memory, CPU, processes, network, GPUs), the queue;
- what the worker said (`JobResult.provenance`, see
  `dask_workers.provenance`): the worker (queue, name, host, CPU model,
  GPUs and driver), the sha256 of each image's Python package list, and the
  start and end times; with the step's own image, image digest, exit code
  and elapsed time.

Organizers see it (a `provenance` key per run of a submission, the
"Provenance" table of its page, the signed manifest); participants never do.
A reproduction is pinned to what an original's provenance says
(`reproduce.pins_of`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from ..contract import Job, TaskJob, plain_facts

# The datasets of a task, by kind (programs are listed apart).
DATA_KINDS = ("reference_data", "input_data")
PROGRAM_KINDS = ("scoring_program", "ingestion_program")


def _task_facts(task: TaskJob) -> dict[str, Any]:
    return {
        "programs": {kind: getattr(task, kind) for kind in PROGRAM_KINDS},
        "datasets": {kind: getattr(task, kind) for kind in DATA_KINDS},
        # Data that never leaves the queue's workers: named by its path there, it has no key.
        "worker_data": dict(task.worker_data or {}),
        "images": {"scoring": task.scoring_image, "prediction": task.ingestion_image},
    }


def job_facts(job: Job) -> dict[str, Any]:
    """The platform's side of a run's provenance: what the job it sent said."""
    tasks = {str(t.index): _task_facts(t) for t in job.tasks}
    if job.aggregation is not None:
        tasks[str(job.aggregation.index)] = {**tasks.get(str(job.aggregation.index), {}),
                                             **_task_facts(job.aggregation)}
    return {
        "queue": job.queue,
        "submission": {"key": job.submission, "kind": job.kind, "filename": job.filename},
        "tasks": tasks,
        "aggregation": job.aggregation.index if job.aggregation is not None else None,
        "executor": {"name": job.executor, "limits": dataclasses.asdict(job.limits),
                     "output_mb": job.step_output_mb},
        "default_image": job.default_image,
        "data_keys": job.data_keys(),
    }


def _packages(worker: dict[str, Any], digest: Optional[str]) -> dict[str, Any]:
    packages = worker.get("packages") if isinstance(worker.get("packages"), dict) else {}
    facts = packages.get(digest or "worker") or (packages.get("worker") if digest is None else None) or {}
    return facts if isinstance(facts, dict) else {}


def run_provenance(job: dict[str, Any], worker: dict[str, Any], *, task_index: int, step: str,
                   image: Optional[str], image_digest: Optional[str], exit_code: Optional[int],
                   elapsed: Optional[float], program_key: Optional[str]) -> dict[str, Any]:
    """One run's provenance, from the job's facts (`job_facts`) and the worker's (`JobResult.provenance`)."""
    task = (job.get("tasks") or {}).get(str(task_index)) or {}
    executor = dict(job.get("executor") or {})
    if worker.get("executor"):
        # The worker's owner may run steps otherwise than the platform asked (`compete worker --executor`).
        executor["name"] = worker["executor"]
    packages = _packages(worker, image_digest)
    return plain_facts({
        "image": {"name": image, "digest": image_digest,
                  "requested": (task.get("images") or {}).get("scoring" if step != "prediction" else "prediction")},
        "submission": job.get("submission") or {},
        "program": program_key,
        "programs": task.get("programs") or {},
        "datasets": task.get("datasets") or {},
        "worker_data": task.get("worker_data") or {},
        "data_keys": list(job.get("data_keys") or []),
        "executor": executor,
        "queue": job.get("queue"),
        "worker": worker.get("worker") or {},
        "packages_sha256": packages.get("sha256"),
        "packages_count": packages.get("count"),
        "packages_error": packages.get("error"),
        "started_at": worker.get("started_at"),
        "ended_at": worker.get("ended_at"),
        "exit_code": exit_code,
        "elapsed": elapsed,
    }, depth=6) or {}


def _limits_text(limits: dict[str, Any]) -> str:
    """A step's limits as a person reads them: `600 s, 2048 MB, 1 CPU, 256 processes, no network`."""
    parts = []
    for name, unit in (("time_limit", "s"), ("memory_mb", "MB"), ("cpus", "CPU"), ("pids", "processes"),
                       ("gpus", "GPU")):
        value = limits.get(name)
        if value is not None and not (name == "gpus" and not value):
            parts.append(f"{value:g} {unit}" if isinstance(value, float) else f"{value} {unit}")
    if "network" in limits:
        parts.append("network" if limits["network"] else "no network")
    return ", ".join(parts) or "-"


def provenance_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the "Provenance" table of a submission's page: one per run, the facts as short text."""
    rows = []
    for run in runs:
        p = run.get("provenance") or {}
        if not p:
            continue
        worker = p.get("worker") or {}
        limits = (p.get("executor") or {}).get("limits") or {}
        gpus = ", ".join(f"{g.get('model')} ({g.get('driver')})" for g in worker.get("gpus") or [] if isinstance(g, dict))
        rows.append({
            "run": f"task {run.get('task')} {run.get('step')}",
            "image": (p.get("image") or {}).get("name") or "-",
            "digest": (p.get("image") or {}).get("digest") or "-",
            "program": p.get("program") or "-",
            "datasets": ", ".join(f"{k.replace('_', ' ')} {str(v)[:12]}" for k, v in (p.get("datasets") or {}).items()
                                  if v) or "-",
            "executor": (p.get("executor") or {}).get("name") or "-",
            "limits": _limits_text(limits),
            "worker": " / ".join(str(x) for x in (worker.get("queue"), worker.get("name"), worker.get("host")) if x)
                      or "-",
            "cpu": f"{worker.get('cpu_model') or '?'} × {worker.get('cpu_count') or '?'}",
            "gpu": gpus or "-",
            "packages": p.get("packages_sha256") or p.get("packages_error") or "-",
            "times": f"{p.get('started_at') or '?'} → {p.get('ended_at') or '?'}",
            "exit_code": "-" if p.get("exit_code") is None else p.get("exit_code"),
        })
    return rows


__all__ = ["DATA_KINDS", "PROGRAM_KINDS", "job_facts", "provenance_rows", "run_provenance"]
