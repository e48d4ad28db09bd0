"""The wire contract: what the platform, its workers and the participant's client agree on.

Standard library only, so that every side can import it: the service and the
dispatcher, `compete worker` on an organizer's machine, and the client and
widgets in a participant's kernel.  It holds

- the submission statuses and which of them are final (`Status`);
- the Dask event topics a worker reports on (`STATUS_TOPIC`, `RESULT_TOPIC`);
- the job a worker runs (`Job`, one `TaskJob` per task, and the optional
  aggregation step over their scoring outputs) as typed, JSON-able data;
- the result a worker sends back (`JobResult`, with `StepReport` and
  `TaskReport`), and `JobResult.from_untrusted`, which reduces whatever a
  worker sent to that shape: a worker runs on machines the platform does not
  control, so its result is checked field by field before it is recorded;
- the store's layout below its root (`StoreLayout`): where datasets, a
  submission's logs and outputs live, by key or path relative to the root.

Everything that crosses a process boundary is plain data (`to_wire()` gives
dicts, lists, strings, numbers and bytes); none of it is code.
"""
from __future__ import annotations

import dataclasses
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional


# -- statuses ------------------------------------------------------------------------
class Status:
    """Statuses of a submission, in the order a run goes through them."""

    SUBMITTED = "Submitted"
    PREPARING = "Preparing"
    RUNNING = "Running"
    SCORING = "Scoring"
    FINISHED = "Finished"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    ALL = (SUBMITTED, PREPARING, RUNNING, SCORING, FINISHED, FAILED, CANCELLED)
    # A submission in one of these never changes again (a rerun is a new attempt).
    TERMINAL = (FINISHED, FAILED, CANCELLED)
    # The stages a participant watches a run go through before it ends.
    STEPS = (SUBMITTED, PREPARING, RUNNING, SCORING)
    # What a worker reports while it runs (the platform decides Submitted).
    REPORTED = (PREPARING, RUNNING, SCORING)


# -- events ----------------------------------------------------------------------------
# A worker reports on these Dask event topics; the platform never gathers what a task returned.
STATUS_TOPIC = "compete-status"
RESULT_TOPIC = "compete-result"

# The queue every competition runs on unless it names one of its own.
DEFAULT_QUEUE = "default"

# Kinds of data a task mounts, by the key of the stored archive.
TASK_DATA_KINDS = ("scoring_program", "ingestion_program", "reference_data", "input_data")
SUBMISSION_KINDS = ("notebook", "code", "results")


def _from_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The items of `data` that are fields of the dataclass `cls` (unknown keys are ignored)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


# -- the job ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepLimits:
    """What one step may use; enforced by the executor, by killing the container."""

    time_limit: Optional[float] = None  # seconds
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    network: bool = False
    gpus: int = 0


@dataclass(frozen=True)
class UnpackCaps:
    """Caps on unpacking a zip (members, sizes, ratio): a zip's headers can lie, so workers check again."""

    max_members: int = 20000
    max_total_bytes: int = 4 * 1024**3
    max_file_bytes: int = 2 * 1024**3
    max_ratio: float = 100.0


@dataclass(frozen=True)
class TaskJob:
    """One task of a job: the stored keys of its programs and data, and the images they run in."""

    index: int
    name: str = ""
    scoring_program: Optional[str] = None
    ingestion_program: Optional[str] = None
    reference_data: Optional[str] = None
    input_data: Optional[str] = None
    ingestion_only_during_scoring: bool = False
    scoring_image: Optional[str] = None
    ingestion_image: Optional[str] = None
    # kind -> path on the queue's workers, for data that never leaves them
    worker_data: dict[str, str] = field(default_factory=dict)
    # The CodaLab 1.8 child phase the task was read from: the job's aggregation step sees
    # this task's scoring output as input/res_<phase_number> (None: res_<index>).
    phase_number: Optional[int] = None

    @property
    def result_folder(self) -> str:
        """The folder of the aggregation step's input that holds this task's scoring output."""
        return f"res_{self.phase_number if self.phase_number is not None else self.index}"

    def data_keys(self) -> list[str]:
        """Keys of the stored archives this task mounts (data kept on the workers excluded)."""
        return [getattr(self, kind) for kind in TASK_DATA_KINDS
                if getattr(self, kind) and kind not in self.worker_data]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run one submission, self-contained and JSON-able."""

    submission_id: int
    queue: str
    kind: str  # one of SUBMISSION_KINDS
    filename: str
    submission: str  # key of the stored submission archive
    tasks: tuple[TaskJob, ...]
    limits: StepLimits = StepLimits()
    unpack_limits: UnpackCaps = UnpackCaps()
    executor: str = "auto"
    # The platform's settings of executor classes, by class name: {"DockerExecutor": {"user": "1000:1000"}}
    executor_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_image: Optional[str] = None
    image_aliases: dict[str, str] = field(default_factory=dict)
    store_root: Optional[str] = None  # the shared store's root, when the workers see it
    # Dataset key -> URL the worker fetches it from, when the workers do not see the store's root
    # (a per-run link of the service, or an object store's presigned URL).
    data_urls: dict[str, str] = field(default_factory=dict)
    step_output_mb: Optional[int] = None
    dataset_cache_mb: Optional[int] = None
    key: Optional[str] = None  # the Dask key this attempt was sent under
    work_root: Optional[str] = None
    # Run once every task finished: its scoring program (with its reference data in
    # input/ref) reads each task's scoring output in input/res_<n> and writes the
    # submission's scores (a CodaLab 1.8 parallel parent's own scoring program).
    aggregation: Optional[TaskJob] = None

    def data_keys(self) -> list[str]:
        """Keys of every stored archive the job needs, the submission first, each once."""
        keys = [self.submission]
        for task in self.tasks:
            keys += task.data_keys()
        if self.aggregation is not None:
            keys += self.aggregation.data_keys()
        return list(dict.fromkeys(keys))

    def with_changes(self, **changes: Any) -> "Job":
        return dataclasses.replace(self, **changes)

    def to_wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"tasks": [dataclasses.asdict(t) for t in self.tasks]}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> "Job":
        values = _from_fields(cls, data)
        values["tasks"] = tuple(TaskJob(**_from_fields(TaskJob, t)) for t in data.get("tasks") or ())
        aggregation = data.get("aggregation")
        values["aggregation"] = TaskJob(**_from_fields(TaskJob, aggregation)) \
            if isinstance(aggregation, Mapping) else None
        values["limits"] = StepLimits(**_from_fields(StepLimits, data.get("limits") or {}))
        values["unpack_limits"] = UnpackCaps(**_from_fields(UnpackCaps, data.get("unpack_limits") or {}))
        values["image_aliases"] = dict(data.get("image_aliases") or {})
        values["data_urls"] = {str(k): str(v) for k, v in (data.get("data_urls") or {}).items()}
        values["executor_config"] = {str(k): dict(v) for k, v in (data.get("executor_config") or {}).items()
                                     if isinstance(v, Mapping)}
        return cls(**values)


# -- the store's layout ----------------------------------------------------------------------
class StoreLayout:
    """Paths below a store's root: one place that says where every artifact lives.

    Datasets and programs are content-addressed (`datasets/ab/abcdef…`); a
    submission's files live in `files/submissions/<id>/<attempt>/…`, one
    folder per attempt of a run, so that a rerun never overwrites the record
    of an earlier one.
    """

    DATASETS = "datasets"
    FILES = "files"
    SUBMISSIONS = "submissions"  # below FILES: one folder per submission, named by its id
    EXECUTED_NOTEBOOK = "executed_notebook.ipynb"
    EXECUTED_NOTEBOOK_HTML = "executed_notebook.html"
    DETAILED_RESULTS = "detailed_results.html"
    RUN_LOG = "run.log"
    # The sides of a task's run whose output folders are kept (`step_output`).
    OUTPUT_SIDES = ("prediction", "scoring")

    @staticmethod
    def is_dataset_key(value: str) -> bool:
        return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)

    @classmethod
    def dataset(cls, key: str) -> str:
        if not cls.is_dataset_key(key):
            raise KeyError(f"not a dataset key: {key!r}")
        return f"{cls.DATASETS}/{key[:2]}/{key}"

    @classmethod
    def file(cls, rel: str) -> str:
        """Path below the root of a file named by its path below `files/`."""
        return f"{cls.FILES}/{rel}"

    @staticmethod
    def submission_files(submission_id: int) -> str:
        return f"{StoreLayout.SUBMISSIONS}/{submission_id}"

    @classmethod
    def attempt(cls, submission_id: int, stamp: str) -> str:
        """The folder (below `files/`) of one attempt of a run; `stamp` makes it unique."""
        return f"{cls.submission_files(submission_id)}/{stamp}"

    @staticmethod
    def step_logs(attempt: str, task_index: int, step: str) -> str:
        return f"{attempt}/task-{task_index}/{step}"

    @classmethod
    def step_output(cls, attempt: str, task_index: int, side: str) -> str:
        """The folder (below `files/`) of what a task's prediction or scoring step wrote: `…/prediction_output`."""
        if side not in cls.OUTPUT_SIDES:
            raise KeyError(f"not an output side: {side!r}")
        return f"{attempt}/task-{task_index}/{side}_output"

    @staticmethod
    def attempt_of(log_path: str) -> str:
        """The attempt folder of a step's log folder (`StoreLayout.step_logs`)."""
        return log_path.rsplit("/", 2)[0]

    @classmethod
    def task_run_log(cls, attempt: str, task_index: int) -> str:
        return f"{attempt}/task-{task_index}/{cls.RUN_LOG}"

    @staticmethod
    def is_own_path(submission_id: int, value: Any) -> bool:
        """True when `value` is a plain path below `files/` among the files of this submission."""
        if not isinstance(value, str) or len(value) > 500 or "\\" in value:
            return False
        parts = value.split("/")
        return parts[:2] == ["submissions", str(submission_id)] and len(parts) > 2 \
            and not any(p in ("", ".", "..") for p in parts)

    @staticmethod
    def label(submission_id: int, rel: str) -> str:
        """The name an organizer knows a result file by: its path inside the run's attempt."""
        parts = rel.split("/")
        return "/".join(parts[3:]) if len(parts) > 3 and parts[:2] == ["submissions", str(submission_id)] \
            else parts[-1]


# -- the result ------------------------------------------------------------------------------
RESULT_FILES_MAX_BYTES = 64 * 1024 * 1024
RESULT_WARNINGS_MAX = 100
# Keys of one task's own scores kept from a result.
TASK_SCORES_MAX = 1000
_TEMP_WORK = re.compile(r"(?:/[\w.@+-]+)*/jupyter-compete[\w.-]*(?:/[^\s'\"`<>|;,)\]]*)?")


def without_host_paths(text: Optional[str], roots: Iterable[Any] = ()) -> Optional[str]:
    """`text` with the host paths it names reduced to their last component.

    Paths under the platform's home and store, and work folders of workers
    (`.../jupyter-compete*/...`, on the platform's machine or an organizer's),
    say where things live on a host: a participant sees `…/predictions.csv`.
    """
    if not text:
        return text

    def short(match: re.Match) -> str:
        tail = match.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{tail}" if tail else "…"

    for root in sorted({str(r).rstrip("/") for r in roots if r and str(r).strip("/")}, key=len, reverse=True):
        text = re.sub(re.escape(root) + r"(?![\w.-])(?:/[^\s'\"`<>|;,)\]]*)?", short, text)
    return _TEMP_WORK.sub(short, text)


def _text(value: Any, limit: int) -> Optional[str]:
    return None if value is None else str(value)[:limit]


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _items(value: Any) -> list:
    """The items of a list, or of a tuple (what a list becomes on Dask's event wire), else none."""
    return list(value) if isinstance(value, (list, tuple)) else []


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def plain_facts(value: Any, depth: int = 4) -> Any:
    """`value` reduced to bounded plain data (dicts of at most 50 keys, lists of at most 50 items,
    strings of at most 300 characters, finite numbers, booleans, None), at most `depth` levels deep."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else None
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return value[:300]
    if depth <= 0:
        return None
    if isinstance(value, dict):
        return {str(k)[:100]: plain_facts(v, depth - 1) for k, v in list(value.items())[:50]}
    if isinstance(value, (list, tuple)):
        return [plain_facts(v, depth - 1) for v in list(value)[:50]]
    return None


@dataclass
class StepReport:
    """One step (prediction or scoring) of one task, as the worker ran it."""

    step: str
    exit_code: Optional[int] = None
    elapsed: Optional[float] = None
    image: Optional[str] = None
    image_digest: Optional[str] = None
    error: Optional[str] = None
    log_path: Optional[str] = None  # below files/: the folder of its stdout.txt and stderr.txt

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.error


@dataclass
class TaskReport:
    task_index: int
    steps: list[StepReport] = field(default_factory=list)
    status: Optional[str] = None
    error: Optional[str] = None
    run_log: Optional[str] = None  # below files/
    # The scores this task's scoring program wrote (the job's `scores` may be their
    # union, or what the aggregation step wrote from them).
    scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class DroppedFile:
    """An output the result does not carry, and why."""

    name: str
    bytes: Optional[int]
    reason: str


@dataclass
class JobResult:
    """What a worker sends back when a run ends: plain, bounded data.

    `files` carries outputs inline (path below `files/` -> bytes) when the
    queue's workers do not share the platform's store.  `artifacts` names
    the files a person can open (`executed_notebook`, `detailed_results`, …).
    """

    status: Optional[str]
    scores: dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    worker: Optional[str] = None
    tasks: list[TaskReport] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    dropped: list[DroppedFile] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    worker_elapsed: Optional[float] = None
    # Where and with what it ran, as the worker saw it: machine, executor, package lists, times
    # (`dask_workers.provenance`); plain, bounded data (`plain_facts`).
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def failure(cls, error: str) -> "JobResult":
        return cls(status=Status.FAILED, error=error)

    @classmethod
    def from_untrusted(cls, submission_id: int, raw: Any, host_roots: Iterable[Any] = (),
                       files_max_bytes: int = RESULT_FILES_MAX_BYTES) -> "JobResult":
        """Reduce what a worker sent to a `JobResult`: every field checked, nothing trusted.

        Each field is checked for its type, strings are bounded, paths must
        stay among the submission's own files, and inline files are capped at
        `files_max_bytes` in all (what fits is kept; each file left out is
        listed in `dropped` and said in `warnings`).  Host paths (under
        `host_roots`, or a worker's work folders) are taken out of every
        message a participant or organizer reads.  The status is kept as sent
        (the recorder decides what an unknown one means).
        """
        if not isinstance(raw, dict):
            return cls.failure("the worker returned no result")
        roots = tuple(host_roots)

        def message(value: Any, limit: int) -> Optional[str]:
            return without_host_paths(_text(value, limit), roots)

        def own(value: Any) -> Optional[str]:
            return value if StoreLayout.is_own_path(submission_id, value) else None

        result = cls(
            status=raw.get("status") if isinstance(raw.get("status"), str) else None,
            scores=dict(raw["scores"]) if isinstance(raw.get("scores"), dict) else {},
            error=message(raw.get("error"), 20000),
            worker=_text(raw.get("worker"), 300),
            worker_elapsed=_number(raw.get("worker_elapsed")),
        )
        facts = plain_facts(raw.get("provenance"))
        result.provenance = facts if isinstance(facts, dict) else {}
        raw_warnings = raw.get("warnings")
        result.warnings = [
            message(w, 1000) for w in _items(raw_warnings)[:RESULT_WARNINGS_MAX]
            if isinstance(w, str) and w.strip()
        ]
        raw_dropped = raw.get("dropped")
        result.dropped = [
            DroppedFile(name=message(d.get("name"), 300) or "?", bytes=_int(d.get("bytes")),
                        reason=message(d.get("reason"), 500) or "")
            for d in _items(raw_dropped)[:RESULT_WARNINGS_MAX]
            if isinstance(d, dict)
        ]
        raw_tasks = raw.get("tasks")
        for task in _items(raw_tasks):
            if not isinstance(task, dict):
                continue
            raw_steps = task.get("steps")
            steps = [
                StepReport(
                    step=_text(step.get("step"), 20) or "?",
                    exit_code=_int(step.get("exit_code")),
                    elapsed=_number(step.get("elapsed")),
                    image=_text(step.get("image"), 300),
                    image_digest=_text(step.get("image_digest"), 300),
                    error=message(step.get("error"), 20000),
                    log_path=own(step.get("log_path")),
                )
                for step in _items(raw_steps) if isinstance(step, dict)
            ]
            raw_scores = task.get("scores")
            task_scores = {
                str(k)[:200]: float(v) for k, v in
                list(raw_scores.items() if isinstance(raw_scores, dict) else [])[:TASK_SCORES_MAX]
                if _number(v) is not None
            }
            result.tasks.append(TaskReport(
                task_index=_int(task.get("task_index")) or 0, steps=steps,
                status=_text(task.get("status"), 20), error=message(task.get("error"), 20000),
                run_log=own(task.get("run_log")), scores=task_scores,
            ))
        artifacts = raw.get("artifacts")
        result.artifacts = {
            str(k)[:100]: path for k, v in (artifacts.items() if isinstance(artifacts, dict) else [])
            if (path := own(v))
        }
        total = 0
        raw_files = raw.get("files")
        for rel, data in (raw_files.items() if isinstance(raw_files, dict) else []):
            path = own(rel)
            if path is None or not isinstance(data, (bytes, bytearray)):
                continue
            if total + len(data) > files_max_bytes:
                # Keep what fits: a later, smaller file may still.
                name = StoreLayout.label(submission_id, path)
                reason = f"the files of one result are kept up to {_megabytes(files_max_bytes)} in all"
                result.dropped.append(DroppedFile(name=name, bytes=len(data), reason=reason))
                result.warnings.append(f"{name} ({_megabytes(len(data))}) was not kept: {reason}")
                continue
            total += len(data)
            result.files[path] = bytes(data)
        return result


# The files whose presence makes a submission code (CodaLab's convention).
CODE_MARKERS = frozenset({"metadata", "metadata.yaml"})


def submission_kind_of(path: "str | Path") -> Optional[str]:
    """What a submission at `path` is: `notebook` (.ipynb), `code` (a folder with a `metadata` file at
    its top, a zip with one at its top or one folder down), `results` (anything else readable), or None
    (neither a folder nor a zip).  The service's rule, and what the participant's widgets check first."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return "notebook"
    if path.is_dir():
        return "code" if any((path / name).is_file() for name in CODE_MARKERS) else "results"
    try:
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).name for n in zf.namelist() if n.count("/") <= 1}
    except (OSError, zipfile.BadZipFile):
        return None
    return "code" if names & CODE_MARKERS else "results"
