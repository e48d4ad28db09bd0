"""The Dask task of one submission: prepare, run every task of the phase, upload, report.

When the job has an `aggregation` (a CodaLab 1.8 parallel parent's own
scoring program), it runs once every task finished, on their scoring
outputs, and its scores are the submission's; each task's own scores go
back with the task (`TaskReport.scores`).

`run_submission_job(job)` runs on a worker.  `job` is a `contract.Job`, or
its wire form (`Job.to_wire()`, read with `Job.from_wire`): datasets by
content key, the artifact store's root (or, for workers that do not see
it, a URL per key: `data_urls`, fetched into the worker's cache by
`data_cache.DataCache`), limits, images, unpack caps
(applied to the submission and every dataset unpacked on the worker), the
cap on what one step writes (`step_output_mb`) and the size cap of the
worker's dataset cache (`dataset_cache_mb`).  The result is a
`contract.JobResult`, sent as plain data (`to_wire()`) on the event topic
`RESULT_TOPIC`; the platform checks it again (`JobResult.from_untrusted`).
Logs and outputs are put at the paths `contract.StoreLayout` gives.

Outputs carried inline in the result (no shared store) are capped at
`INLINE_FILES_MAX_BYTES`; the result lists what was left out in `dropped`
and says so in `warnings`.  Status changes (Preparing, Running, Scoring) go to
the platform as Dask events on the topic `STATUS_TOPIC` as they happen.

The executor is made once per worker process and kept, so that imports and
the notebook runner stay warm between submissions.  It is built from the
job's `executor` (a short name or an import string; `compete worker
--executor` overrides it) and configured with the job's `executor_config`
(the platform's settings of executor classes, by class name).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from hub_extension.contract import (RESULT_TOPIC, STATUS_TOPIC, DroppedFile, Job, JobResult, Status, StepReport,
                                    StoreLayout, TaskReport)

from .data_cache import DataCache
from .executors import executor_class, executor_config, make_executor, resolve_name
from .executors.base import Executor
from .notebook import RENDER_MAX_BYTES, render_notebook_html
from .provenance import run_facts
from .pipeline import AggregationRun, TaskRun, add_aggregation, combine_task_results, run_aggregation, run_task
from .safe_files import (FileTooLargeError, copy_beneath, file_size_beneath, neutral_paths, read_beneath,
                         regular_files)
from .spec import Limits
from .workdir import CacheUse, DatasetError, UnpackLimits, evict_cache, unpack_dataset

log = logging.getLogger(__name__)

# Outputs carried inside a result (organizer queues have no shared store) hold at
# most this many bytes together; the platform may import it to agree on the cap.
INLINE_FILES_MAX_BYTES = 64 * 1024 * 1024
# The worker's dataset cache (<work_root>/datasets) is kept under this size
# unless the job says otherwise (`dataset_cache_mb`).
DATASET_CACHE_MAX_BYTES = 10 * 1024**3
# Of each output folder of a task (predictions, scoring output) at most this many files are kept,
# and at most the bytes a step may write (`output_mb`); the rest is listed in `dropped`.
OUTPUT_FILES_KEPT = 1000
# An executed notebook larger than this is kept but not rendered to HTML.

_executors: dict[tuple[str, str], Executor] = {}
_executors_lock = threading.Lock()
# Set by `compete worker --executor`: the machine's owner decides how steps run on it.
executor_override: Optional[str] = None
# Set by `compete worker` from the machine's configuration file (`c.DockerExecutor.*`, ...):
# over the platform's settings that come with each job, section by section, key by key.
worker_executor_config: dict[str, dict[str, Any]] = {}
# Set by `compete worker` from the machine's configuration (`c.Compete.dataset_cache_mb`): the size cap
# of this machine's dataset cache, over the one each job brings.
worker_cache_mb: Optional[int] = None


def merged_settings(platform: Mapping[str, Mapping[str, Any]],
                    machine: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The executor settings of a run: the platform's, with this machine's over them."""
    merged = {section: dict(values) for section, values in platform.items()}
    for section, values in machine.items():
        merged.setdefault(section, {}).update(values)
    return merged


def _worker():
    try:
        # Imported here: the task runs under Dask, but the module is also used without it (tests, `compete run`).
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


def executor_for(job: Job) -> Executor:
    """The executor of this worker process for `job`, made on first use with the job's settings and kept."""
    name = executor_override or job.executor or "auto"
    settings = merged_settings(job.executor_config or {}, worker_executor_config)
    # The job's images are part of the key: a platform whose image aliases changed is heard at once.
    cache_key = (name, json.dumps(settings, sort_keys=True, default=str), job.default_image,
                 json.dumps(list((job.image_aliases or {}).items())))
    with _executors_lock:
        executor = _executors.get(cache_key)
        if executor is None:
            resolved = resolve_name(name)
            traits = set(executor_class(resolved).class_trait_names())
            # The platform's images: how a step's image this worker lacks is replaced.
            # No worker_id: the default (host and pid) is unique, so a worker of
            # another cluster on this engine never takes our containers for orphans.
            options: dict[str, Any] = {}
            if "default_image" in traits:
                options["default_image"] = job.default_image
            if "image_aliases" in traits:
                options["image_aliases"] = dict(job.image_aliases or {})
            executor = make_executor(resolved, executor_config(settings), **options)
            removed = executor.cleanup_orphans()
            if removed:
                log.warning("removed %d orphaned containers", removed)
            _executors[cache_key] = executor
        return executor


_running: set[int] = set()


def running_submissions() -> list[int]:
    with _executors_lock:
        return sorted(_running)


def cleanup_orphans() -> int:
    """Remove step containers of this machine whose worker died; 0 without Docker."""
    # Read from the package at call time, so that a test can stand in for the engine check.
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
    """Where a job's datasets come from: the shared store, a URL per key, or bytes sent with the job.

    Fetched by URL (`Job.data_urls`), an archive is kept in the worker's
    cache by its key and verified on every use (`data_cache.DataCache`).

    Every archive is unpacked with the job's unpack limits into the
    worker's dataset cache and held in use (`CacheUse`) until the job ends;
    after each new unpack the cache is brought back under its size cap by
    evicting the least recently used entries no run holds.
    """

    def __init__(self, store_root: Optional[Path], data: Optional[dict[str, bytes]], cache: Path,
                 limits: Optional[UnpackLimits] = None, cache_max_bytes: int = DATASET_CACHE_MAX_BYTES,
                 urls: Optional[Mapping[str, str]] = None):
        self.store_root, self.data, self.cache = store_root, data or {}, cache
        self.urls = dict(urls or {})
        self.limits = limits or UnpackLimits()
        self.cache_max_bytes = cache_max_bytes
        self.use = CacheUse()

    def close(self) -> None:
        self.use.close()

    def archive(self, key: str) -> Path:
        if self.store_root is not None:
            return self.store_root / StoreLayout.dataset(key)
        url = self.urls.get(key)
        if url and key not in self.data:
            blob = DataCache(self.cache).fetch(key, url, self.use)
            self.evict()
            return blob
        blob = self.cache / "blobs" / key
        self.cache.mkdir(parents=True, exist_ok=True)
        blob.parent.mkdir(parents=True, exist_ok=True)
        self.use.hold(blob)
        if not blob.is_file():
            payload = self.data.get(key)
            if payload is None:
                raise DatasetError(f"dataset {key[:12]} was not sent with the job")
            if hashlib.sha256(payload).hexdigest() != key:
                raise DatasetError(f"dataset {key[:12]} arrived damaged (checksum mismatch)")
            partial = blob.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.part")
            partial.write_bytes(payload)
            os.replace(partial, blob)
            self.evict()
        return blob

    def unpack(self, key: str, what: str) -> Path:
        """The unpacked folder of the archive `key`; `what` names it in messages ("the submission")."""
        folder = unpack_dataset(self.archive(key), self.cache, limits=self.limits, label=what, use=self.use)
        self.evict()
        return folder

    def evict(self) -> None:
        try:
            evicted = evict_cache(self.cache, self.cache_max_bytes)
        except OSError as exc:
            log.warning("could not bring the dataset cache under its cap: %s", exc)
            return
        if evicted:
            log.info("evicted %d dataset cache entries (cap %d bytes)", len(evicted), self.cache_max_bytes)

    def folder(self, key: Optional[str], worker_path: Optional[str] = None, what: str = "a dataset") -> Optional[str]:
        if worker_path:
            path = Path(worker_path)
            if not path.is_dir():
                raise DatasetError(
                    f"{what} this task expects on the worker is not there; the organizers must place it "
                    "on every worker of the queue"
                )
            return str(path)
        if not key:
            return None
        return str(self.unpack(key, what))


def as_job(job: Union[Job, Mapping[str, Any]]) -> Job:
    """`job` as a `Job`: the typed job itself, or read from its wire form."""
    return job if isinstance(job, Job) else Job.from_wire(job)


def _work_paths(job: Job) -> tuple[Path, Path, Optional[Path]]:
    """(worker folder, dataset cache, artifact store) of a job, as paths of this machine."""
    base = Path(job.work_root or Path(tempfile.gettempdir()) / "jupyter-compete")
    store_root = Path(job.store_root) if job.store_root else None
    return base, base / "datasets", store_root


def _neutral_names(job: Job, work: Optional[Path] = None) -> dict[str, str]:
    base, cache, store_root = _work_paths(job)
    names = {str(base / "work"): "<work>", str(cache): "<dataset cache>", str(base): "<worker folder>"}
    if store_root is not None:
        names[str(store_root)] = "<artifact store>"
    if work is not None:
        names[str(work)] = "<run>"
    return names


def _utc_now() -> str:
    """Now, UTC, as ISO 8601 (the times a run's provenance records)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _limits_of(job: Job) -> Limits:
    """The step limits of a job: its `limits`, with `step_output_mb` as `output_mb`."""
    values = {name: value for name, value in dataclasses.asdict(job.limits).items() if value is not None}
    if job.step_output_mb is not None:
        values["output_mb"] = int(job.step_output_mb)
    return Limits(**values)


def run_submission_job(job: Union[Job, Mapping[str, Any]], data: Optional[dict[str, bytes]] = None) -> bool:
    """Run one submission and send its result as an event; True when a result was sent."""
    job = as_job(job)
    sid, key = int(job.submission_id), job.key
    with _executors_lock:
        _running.add(sid)
    try:
        result = _run(job, data)
    except Exception as exc:  # noqa: BLE001 - every failure must come back as a result
        log.exception("submission %s failed on this worker", sid)
        result = JobResult(status=Status.FAILED, worker=worker_name(),
                           error=f"the worker could not run it: {type(exc).__name__}: {exc}")
    finally:
        with _executors_lock:
            _running.discard(sid)
    # No message a participant reads shows where the worker keeps its files.
    names = _neutral_names(job)
    result.error = neutral_paths(result.error, names)
    result.warnings = [neutral_paths(w, names) for w in result.warnings]
    for task in result.tasks:
        task.error = neutral_paths(task.error, names)
        for step in task.steps:
            step.error = neutral_paths(step.error, names)
    emit_result(sid, key, result.to_wire())
    return True


def _run(job: Job, data: Optional[dict[str, bytes]]) -> JobResult:
    sid, key = int(job.submission_id), job.key
    started = time.monotonic()
    started_at = _utc_now()
    emit_status(sid, Status.PREPARING, key)
    base, cache, store_root = _work_paths(job)
    (base / "work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"submission-{sid}-", dir=base / "work"))
    name = worker_name()
    cache_mb = worker_cache_mb or job.dataset_cache_mb
    datasets = _Datasets(store_root, data, cache, UnpackLimits.from_job(dataclasses.asdict(job.unpack_limits)),
                         int(cache_mb) << 20 if cache_mb else DATASET_CACHE_MAX_BYTES, urls=job.data_urls)
    try:
        executor = executor_for(job)
        if job.kind == "notebook":
            submission_zip = datasets.archive(job.submission)
            submission_dir = work / "submission"
            submission_dir.mkdir()
            shutil.copyfile(submission_zip, submission_dir / Path(job.filename).name)
        else:
            submission_dir = datasets.unpack(job.submission, "the submission")
        limits = _limits_of(job)
        results = []
        for task in job.tasks:
            on_worker = task.worker_data or {}
            run = TaskRun(
                submission_id=sid,
                task_index=int(task.index),
                kind=job.kind,
                submission_dir=str(submission_dir),
                scoring_program_dir=datasets.folder(task.scoring_program, what="the scoring program") or "",
                work_dir=str(work / f"task-{task.index}"),
                reference_data_dir=datasets.folder(task.reference_data, on_worker.get("reference_data"),
                                                   what="the reference data"),
                ingestion_program_dir=datasets.folder(task.ingestion_program, what="the ingestion program"),
                input_data_dir=datasets.folder(task.input_data, on_worker.get("input_data"),
                                               what="the input data"),
                image=task.ingestion_image or job.default_image,
                scoring_image=task.scoring_image or job.default_image,
                limits=limits,
                ingestion_only_during_scoring=bool(task.ingestion_only_during_scoring),
            )
            if not run.scoring_program_dir:
                results.append({"task_index": run.task_index, "status": Status.FAILED, "scores": {}, "steps": [],
                                "error": "the task has no scoring program"})
                continue
            results.append(run_task(run, executor, on_status=lambda status: emit_status(sid, status, key)))
        aggregation = job.aggregation
        combined = combine_task_results(results, aggregated=aggregation is not None)
        if aggregation is not None and combined["status"] == Status.FINISHED:
            outputs = {int(r.get("task_index", 0)): (r.get("outputs") or {}).get("scoring_output")
                       for r in results}
            agg = AggregationRun(
                submission_id=sid,
                task_index=int(aggregation.index),
                scoring_program_dir=datasets.folder(aggregation.scoring_program,
                                                    what="the phase's own scoring program") or "",
                work_dir=str(work / "aggregation"),
                results={task.result_folder: outputs[int(task.index)] for task in job.tasks
                         if outputs.get(int(task.index))},
                reference_data_dir=datasets.folder(aggregation.reference_data,
                                                   (aggregation.worker_data or {}).get("reference_data"),
                                                   what="the phase's reference data"),
                image=aggregation.scoring_image or job.default_image,
                limits=limits,
            )
            combined = add_aggregation(combined, run_aggregation(
                agg, executor, on_status=lambda status: emit_status(sid, status, key)))
        result = _report(combined, store_root, sid, name, started, output_max_bytes=limits.output_mb << 20)
        ended_at = _utc_now()
        digests = [step.image_digest for task in result.tasks for step in task.steps]
        result.provenance = run_facts(executor, digests, queue=job.queue, worker=name,
                                      started_at=started_at, ended_at=ended_at)
        return result
    except DatasetError as exc:
        message = neutral_paths(str(exc), _neutral_names(job, work))
        return JobResult(status=Status.FAILED, error=f"the data of the run could not be prepared: {message}",
                         worker=name)
    finally:
        datasets.close()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Item:
    """One file of a run's outputs on its way to the platform."""

    rel: str  # path in the store, below files/
    what: str  # for people: "the executed notebook"
    priority: int  # lower goes first when the inline budget is short
    size: int
    artifact: Optional[str] = None
    source: Optional[tuple[Path, str]] = None  # (worker-made folder, relative path below it)
    data: Optional[bytes] = None


def _source_of(path: str | Path, roots: list[Path]) -> tuple[Path, str]:
    """(root, relative path) of a worker path: below the deepest known root, else its own folder."""
    path = Path(path)
    for root in sorted(roots, key=lambda r: len(str(r)), reverse=True):
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        if rel.parts:
            return root, rel.as_posix()
    return path.parent, path.name


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


class _Outbox:
    """Logs and outputs of a run: written to the shared store, or carried in the result.

    Every file is read as a regular file reached without a link below the
    worker-made folder it lies in (`safe_files`).  Carried in the result
    (organizer queues, no shared store), the files together hold at most
    `inline_max` bytes: what fits is kept in order of priority (logs, then
    the executed notebook and its HTML, then detailed results) and every
    output left out is listed in `dropped`, with a sentence in `warnings`.
    """

    def __init__(self, store_root: Optional[Path], inline_max: int = INLINE_FILES_MAX_BYTES):
        self.root = store_root / StoreLayout.FILES if store_root is not None else None
        self.inline_max = inline_max
        self.items: list[_Item] = []
        self.inline: dict[str, bytes] = {}
        self.dropped: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.kept: set[str] = set()

    def add_file(self, source: tuple[Path, str], rel: str, what: str, priority: int,
                 artifact: Optional[str] = None) -> None:
        """Queue the file `source` (folder, relative path) as `rel`; unreadable or unsafe files are skipped."""
        try:
            size = file_size_beneath(*source)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("%s was not kept: %s", what, exc)
            self.warnings.append(f"{what} was not kept: it is not a regular file")
            return
        self.items.append(_Item(rel, what, priority, size, artifact, source=source))

    def add_bytes(self, data: bytes, rel: str, what: str, priority: int, artifact: Optional[str] = None) -> None:
        self.items.append(_Item(rel, what, priority, len(data), artifact, data=data))

    def _drop(self, item: _Item, reason: str) -> None:
        self.dropped.append({"name": item.what, "bytes": item.size, "reason": reason})
        self.warnings.append(f"{item.what} ({_megabytes(item.size)}) was not kept: {reason}")

    def finish(self) -> dict[str, str]:
        """Write or carry the queued files; returns the artifacts kept (name -> store path)."""
        artifacts: dict[str, str] = {}
        budget = self.inline_max
        over = f"a run on an organizer queue carries back at most {self.inline_max / (1 << 20):g} MB of outputs"
        for item in sorted(self.items, key=lambda i: i.priority):
            try:
                if self.root is not None:
                    target = self.root / item.rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if item.data is not None:
                        target.write_bytes(item.data)
                    else:
                        copy_beneath(item.source[0], item.source[1], target)  # type: ignore[index]
                else:
                    if item.size > budget:
                        self._drop(item, over)
                        continue
                    data = item.data if item.data is not None else read_beneath(
                        item.source[0], item.source[1], max_bytes=budget)  # type: ignore[index]
                    budget -= len(data)
                    self.inline[item.rel] = data
            except FileTooLargeError:
                self._drop(item, over)
                continue
            except OSError as exc:
                log.warning("%s was not kept: %s", item.what, exc)
                self._drop(item, "it could not be read as a regular file")
                continue
            self.kept.add(item.rel)
            if item.artifact:
                artifacts[item.artifact] = item.rel
        return artifacts


def _keep_outputs(files: _Outbox, folder: Optional[str], rel: str, what: str, max_bytes: int,
                  kept_already: frozenset[str] = frozenset()) -> None:
    """Queue the regular files below a worker-made output folder as `rel/<path>` (no link is followed).

    Kept up to `OUTPUT_FILES_KEPT` files and `max_bytes` in all, smallest priority
    of the outbox; what is left out is said in `warnings` and `dropped`.  Files
    kept as feedback already (`kept_already`, worker paths) are not kept twice.
    """
    if not folder:
        return
    root = Path(folder)
    names = [n for n in regular_files(root) if os.path.normpath(root / n) not in kept_already]
    total = 0
    for count, name in enumerate(names):
        try:
            size = file_size_beneath(root, name)
        except OSError:
            continue
        if count >= OUTPUT_FILES_KEPT or total + size > max_bytes:
            left = names[count:]
            files.dropped.append({"name": f"{what} ({len(left)} file(s) from {name})", "bytes": size,
                                  "reason": f"at most {OUTPUT_FILES_KEPT} files and {_megabytes(max_bytes)} "
                                            "of each output folder are kept"})
            files.warnings.append(f"{what}: {len(left)} of its {len(names)} files were not kept (at most "
                                  f"{OUTPUT_FILES_KEPT} files and {_megabytes(max_bytes)} are kept)")
            return
        total += size
        files.add_file((root, name), f"{rel}/{name}", f"{what}: {name}", 3)


def _report(combined: dict[str, Any], store_root: Optional[Path], sid: int, worker: str,
            started: float, inline_max: int = INLINE_FILES_MAX_BYTES,
            output_max_bytes: int = 1 << 30) -> JobResult:
    """Put logs and outputs where the platform reads them; return the result.

    Besides status, scores and error, the result names each task's steps
    with their log folder (and the task's `run_log` when kept), the
    `artifacts` (only files that were kept), `warnings`, `dropped` (outputs
    left out: name, bytes, reason) and `files` (inline files, without a
    shared store).
    """
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    attempt = StoreLayout.attempt(sid, stamp)
    files = _Outbox(store_root, inline_max)
    roots: list[Path] = []
    for task in combined.get("tasks", []):
        outputs = task.get("outputs") or {}
        roots += [Path(outputs[k]) for k in ("logs", "scoring_output") if outputs.get(k)]
    feedback = frozenset(os.path.normpath(combined[k]) for k in ("detailed_results", "executed_notebook")
                         if combined.get(k))
    tasks: list[TaskReport] = []
    for task in combined.get("tasks", []):
        index = task.get("task_index", 0)
        steps = []
        for step in task.get("steps", []):
            step_name = step.get("name", "step")
            log_rel = StoreLayout.step_logs(attempt, index, step_name)
            for stream in ("stdout", "stderr"):
                source = step.get(f"{stream}_path")
                if source:
                    files.add_file(_source_of(source, roots), f"{log_rel}/{stream}.txt",
                                   f"the {stream} of the {step_name} step of task {index}", 0)
            steps.append(StepReport(
                step=step.get("name"), exit_code=step.get("exit_code"), elapsed=step.get("elapsed"),
                image=step.get("image"), image_digest=step.get("image_digest"), error=step.get("error"),
                log_path=log_rel,
            ))
        entry = TaskReport(task_index=index, status=task.get("status"), error=task.get("error"), steps=steps,
                           scores=dict(task.get("scores") or {}))
        outputs = task.get("outputs") or {}
        for side, key in (("prediction", "predictions"), ("scoring", "scoring_output")):
            _keep_outputs(files, outputs.get(key), StoreLayout.step_output(attempt, index, side),
                          f"the {side} output of task {index}", output_max_bytes, feedback)
        run_log = outputs.get("run_log")
        if run_log:
            entry.run_log = StoreLayout.task_run_log(attempt, index)
            files.add_file(_source_of(run_log, roots), entry.run_log, f"the run log of task {index}", 0)
        tasks.append(entry)
    notebook = combined.get("executed_notebook")
    if notebook:
        source = _source_of(notebook, roots)
        files.add_file(source, f"{attempt}/{StoreLayout.EXECUTED_NOTEBOOK}", "the executed notebook", 1,
                       artifact="executed_notebook")
        rendered = combined.get("executed_notebook_html")
        try:
            if rendered:  # on the worker, while the scoring step ran
                files.add_file(_source_of(rendered, roots), f"{attempt}/{StoreLayout.EXECUTED_NOTEBOOK_HTML}",
                               "the executed notebook as HTML", 1, artifact="executed_notebook_html")
            else:
                html = render_notebook_html(read_beneath(*source, max_bytes=RENDER_MAX_BYTES)).encode()
                files.add_bytes(html, f"{attempt}/{StoreLayout.EXECUTED_NOTEBOOK_HTML}",
                                "the executed notebook as HTML", 1, artifact="executed_notebook_html")
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - feedback only: the scores still count
            log.warning("could not render the executed notebook of %s: %s", sid, exc)
    detailed = combined.get("detailed_results")
    if detailed:
        files.add_file(_source_of(detailed, roots), f"{attempt}/{StoreLayout.DETAILED_RESULTS}",
                       "the detailed results", 2, artifact="detailed_results")
    artifacts = files.finish()
    for entry in tasks:
        if entry.run_log and entry.run_log not in files.kept:
            entry.run_log = None
    return JobResult(
        status=combined["status"],
        scores=combined.get("scores", {}),
        error=combined.get("error"),
        worker=worker,
        tasks=tasks,
        artifacts=artifacts,
        warnings=list(combined.get("warnings", [])) + files.warnings,
        dropped=[DroppedFile(**d) for d in files.dropped],
        worker_elapsed=round(time.monotonic() - started, 3),
        files=files.inline,
    )
