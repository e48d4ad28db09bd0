"""Run one submission on one task on a worker: prediction, then scoring, then scores.

The dispatcher sends a `TaskRun` (plain JSON-able data) to a worker, which
calls `run_task` with its executor and gets back a plain dict: status,
scores, the reason of a failure, the steps as they ran, and where the
outputs are on the worker (the caller uploads them to the artifact store).

Rules, whatever the executor:
- a `results` submission (no `metadata` file) has its files as the predictions.
  Without an ingestion program there is no prediction step.  With one, the
  run does what Codabench's compute worker does: the files are copied into
  the prediction output, and the ingestion program runs beside them all the
  same (the submission at `$submission_program`, the copies in `$output`,
  where what it writes joins them); its exit code is recorded in the
  output's `metadata`, never held against the submission (a participant's
  `model.py`-only zip is code for such an ingestion program, predictions
  for the scoring program otherwise).  Stopped by the platform (time
  limit, output cap, cancelled), it still fails the run.  CodaLab v1.5 did
  not run the ingestion program for such a zip: the step's log says both;
- a `code` submission runs the ingestion program with the participant's code
  at `$submission_program` (`/app/ingested_program`), or, without an ingestion
  program, the participant's own `metadata` command;
- a `notebook` submission runs the notebook runner (papermill);
- a failed prediction (non-zero exit, time-out, memory, failing cell) of a
  code or notebook submission fails it with its reason and is NEVER scored;
- a command's `$placeholders` are replaced as `spec.resolve_command` says;
  what it could not replace, or replaced by a folder the step does not have,
  is said at the top of the step's stdout log (`[platform]` lines) and in the
  run log;
- the scoring step sees `input/ref` (reference data) and `input/res`
  (predictions, with the `metadata` the prediction step wrote); the
  reference data is put in place only after the prediction step ended;
- a phase with an aggregation step (a CodaLab 1.8 parallel parent's own
  scoring program) runs it after every task finished (`run_aggregation`):
  `input/res_<n>` holds each task's scoring output, `input/ref` the phase's
  reference data, `input/metadata` names them; its scores are the
  submission's (`add_aggregation`), each task's own stay in its result;
- with `ingestion_only_during_scoring` (Codabench), ingestion and scoring run
  at the same time; the scoring program waits for what ingestion writes.
  Each step has folders of its own, and a worker thread passes the regular
  files of the ingestion's output into `input/res` and of the two `shared`
  folders both ways (`mirror.FolderMirror`), so that a link left by the
  participant never resolves inside the scoring container;
- what a step wrote is data, never a path: after every step its writable
  folders lose every link and special file (each removal is a line of the
  run log), and the worker reads outputs only as regular files reached
  without a link (`safe_files`);
- messages never show the worker's own paths: folders of the run are named
  `<run>`, `<submission>`, `<scoring program>`, ...

Layout of `TaskRun.work_dir`:

    input/ref   reference data (hard links into the dataset cache)
    input/res   predictions: the output folder of the prediction step
    output/     the scoring program's output (scores, detailed results)
    shared/     shared by ingestion and scoring
    logs/       stdout/stderr of each step, the executed notebook and its report
    ingestion/  with ingestion_only_during_scoring: the ingestion's own output/ and shared/
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Literal, Optional

from hub_extension.contract import Status
from scoring.scores import ScoreFileError, read_scores

from .executors.base import Executor
from .mirror import FolderMirror, Route
from .notebook import EXECUTED_NAME, RENDER_MAX_BYTES, REPORT_NAME, describe_failure, read_report, render_notebook_html
from .safe_files import REMOVED_SUFFIX, copy_beneath, neutral_paths, read_file, regular_files, walk_entries
from .spec import Limits, StepResult, StepSpec, resolve_command
from .workdir import DatasetError, ProgramError, populate, read_program_command, unpack_dataset

__all__ = ["TaskRun", "AggregationRun", "run_task", "run_aggregation", "combine_task_results", "add_aggregation",
           "unpack_dataset"]

log = logging.getLogger(__name__)

Kind = Literal["results", "code", "notebook"]
StatusFn = Callable[[str], None]

DEFAULT_IMAGE = "codalab/codalab-legacy:py37"
# Lines the platform writes into a step's stdout log start with this.
PLATFORM_MARK = "[platform] "
# How much of a failing program's stderr goes into the error shown to people.
_TAIL_LINES = 25
_TAIL_CHARS = 3000


@dataclass
class TaskRun:
    """Everything a worker needs to run one submission on one task; paths are on the worker."""

    submission_id: int
    task_index: int
    kind: Kind
    submission_dir: str  # the unpacked submission (results, code, or the notebook's folder)
    scoring_program_dir: str
    work_dir: str  # a fresh folder for this run
    reference_data_dir: Optional[str] = None
    ingestion_program_dir: Optional[str] = None
    input_data_dir: Optional[str] = None
    notebook: Optional[str] = None  # the .ipynb in submission_dir; found when there is one
    image: str = DEFAULT_IMAGE  # prediction step
    scoring_image: Optional[str] = None  # defaults to `image`
    limits: Limits = field(default_factory=Limits)
    scoring_limits: Optional[Limits] = None  # defaults to `limits`
    ingestion_only_during_scoring: bool = False
    data_dir: Optional[str] = None  # optional read-only /app/data of the prediction step
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "TaskRun":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown task run fields: {sorted(unknown)}")
        data = dict(data)
        if data.get("kind") not in ("results", "code", "notebook"):
            raise ValueError(f"task run kind must be results, code or notebook, got {data.get('kind')!r}")
        data["limits"] = Limits(**data.get("limits") or {})
        if data.get("scoring_limits") is not None:
            data["scoring_limits"] = Limits(**data["scoring_limits"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "TaskRun":
        return cls.from_dict(json.loads(text))


class _RunFailed(Exception):
    """Ends a run early with a status and a reason for people."""

    def __init__(self, reason: str, status: str = Status.FAILED):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _stderr_tail(step: StepResult) -> str:
    lines = step.stderr.rstrip().splitlines()[-_TAIL_LINES:]
    text = "\n".join(lines)[-_TAIL_CHARS:]
    return text


def _what_happened(step: StepResult) -> str:
    """How a step ended, to follow its name: "exited with code 1: ModuleNotFoundError: ..."."""
    reason = step.error or f"exited with code {step.exit_code}"
    for start in ("the program ", "the step "):
        if reason.startswith(start):
            return reason[len(start):]
    return reason


def _not_held(step: StepResult) -> str:
    return (f"the ingestion program {_what_happened(step)}: not held against this submission, because it has "
            "no `metadata` file and its files were taken as the predictions; they are scored as they are")


def _with_tail(message: str, step: StepResult) -> str:
    tail = _stderr_tail(step)
    return f"{message}\n--- last lines of stderr ---\n{tail}" if tail else message


def _find_notebook(run: TaskRun) -> str:
    folder = Path(run.submission_dir)
    if run.notebook:
        if not (folder / run.notebook).is_file():
            raise _RunFailed(f"the submission has no notebook named {run.notebook}")
        return run.notebook
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
    if len(found) == 1:
        return found[0]
    if not found:
        raise _RunFailed("the submission holds no notebook (.ipynb); submit the notebook file itself")
    raise _RunFailed(
        f"the submission holds several notebooks ({', '.join(found)}); submit only the one to run"
    )


# One thread renders executed notebooks as HTML while the scoring step runs (it keeps its
# exporter, whose templates take a while to load).
_renderer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebook-html")


def _render_html(executed: Path, target: Path) -> Optional[str]:
    """Write the HTML page of the kept executed notebook to `target`; its path, or None if it failed."""
    try:
        html = render_notebook_html(read_file(executed, max_bytes=RENDER_MAX_BYTES))
        target.write_text(html, encoding="utf-8")
        return str(target)
    except Exception as exc:  # noqa: BLE001 - feedback only: the report renders it again, or says why not
        log.warning("could not render %s as HTML: %s", executed, exc)
        return None


class _Runner:
    """The state of one `run_task` call."""

    def __init__(self, run: TaskRun, executor: Executor, on_status: Optional[StatusFn]):
        self.run = run
        self.executor = executor
        self.on_status = on_status or (lambda status: None)
        work = Path(run.work_dir).resolve()
        self.work = work
        self.input = work / "input"
        self.ref = self.input / "ref"
        self.res = self.input / "res"
        self.output = work / "output"
        self.shared = work / "shared"
        self.logs = work / "logs"
        # Codabench's concurrent mode: the ingestion's own folders (see `concurrent`).
        self.ingestion_output = work / "ingestion" / "output"
        self.ingestion_shared = work / "ingestion" / "shared"
        self.messages: list[str] = []
        self.removed: list[str] = []
        self.rendering: Optional[concurrent.futures.Future] = None
        self.result: dict = {
            "submission_id": run.submission_id,
            "task_index": run.task_index,
            "status": Status.FAILED,
            "scores": {},
            "error": None,
            "steps": [],
            "outputs": {
                "work_dir": str(work),
                "predictions": str(self.res),
                "scoring_output": str(self.output),
                "logs": str(self.logs),
            },
            "detailed_results": None,
            "executed_notebook": None,
            "executed_notebook_html": None,
            "removed": self.removed,
            # What the submission should know about how it was run (shown with it).
            "notices": [],
        }
        # [platform] lines for the top and the end of each step's stdout log, by step name.
        self.preface: dict[str, list[str]] = {}
        self.epilogue: dict[str, list[str]] = {}
        self.neutral_names = {
            str(work): "<run>",
            run.submission_dir: "<submission>",
            run.scoring_program_dir: "<scoring program>",
            run.reference_data_dir or "": "<reference data>",
            run.ingestion_program_dir or "": "<ingestion program>",
            run.input_data_dir or "": "<input data>",
            run.data_dir or "": "<data>",
        }

    # -- helpers --------------------------------------------------------------

    def note(self, message: str) -> None:
        message = neutral_paths(message, self.neutral_names) or ""
        if message.endswith(REMOVED_SUFFIX) and message not in self.removed:
            # Links and special files taken out of a step's folders: also told in the result.
            self.removed.append(message)
        self.messages.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}")
        log.info("submission %s task %s: %s", self.run.submission_id, self.run.task_index, message)

    def prepare_folders(self) -> None:
        # A re-run in the same work dir starts clean: old predictions must not be scored.
        for folder in (self.input, self.output, self.shared, self.logs, self.work / "ingestion"):
            if folder.exists():
                shutil.rmtree(folder)
        for folder in (self.res, self.output, self.shared, self.logs):
            folder.mkdir(parents=True)

    def tell(self, name: str, message: str, *, after: bool = False, notice: bool = False) -> None:
        """Say `message` in the run log and in the step's stdout log (at its top, or its end).

        With `notice`, it is also one of the result's notices, shown with the submission.
        """
        self.note(f"{name} step: {message}")
        (self.epilogue if after else self.preface).setdefault(name, []).append(message)
        if notice:
            self.result["notices"].append(neutral_paths(message, self.neutral_names))

    def tell_command(self, spec: StepSpec, name: str) -> None:
        """Say what the step's command has that was not replaced as written."""
        if not spec.command:
            return
        for message in resolve_command(spec.command, spec.step, mounted=spec.mounted())[1]:
            self.tell(name, message)

    def record(self, name: str, step: StepResult) -> None:
        entry = {"name": name, **step.to_dict()}
        for stream in ("stdout", "stderr"):
            path = self.logs / f"{name}.{stream}.txt"
            text = getattr(step, stream)
            if stream == "stdout":
                before = "".join(f"{PLATFORM_MARK}{line}\n" for line in self.preface.get(name, []))
                after = "".join(f"{PLATFORM_MARK}{line}\n" for line in self.epilogue.get(name, []))
                if after and text and not text.endswith("\n"):
                    text += "\n"
                text = before + text + after
            path.write_text(text)
            entry[f"{stream}_path"] = str(path)
        self.result["steps"].append(entry)

    def command_of(self, program_dir: str, what: str) -> Optional[str]:
        try:
            return read_program_command(program_dir, what)
        except ProgramError as error:
            raise _RunFailed(str(error)) from None

    def prediction_spec(self, step: str = "prediction") -> StepSpec:
        run = self.run
        common = dict(
            submission_id=run.submission_id, task_index=run.task_index, step=step, image=run.image,
            output_dir=str(self.res), input_dir=run.input_data_dir, data_dir=run.data_dir,
            limits=run.limits, env=dict(run.env),
        )
        if run.kind == "notebook":
            return StepSpec(program_dir=run.submission_dir, notebook=_find_notebook(run), **common)
        if run.ingestion_program_dir:
            command = self.command_of(run.ingestion_program_dir, "the ingestion program")
            if not command:
                raise _RunFailed(
                    "the ingestion program has no `metadata` file with a `command:`; "
                    "the organizers must add one to the ingestion program"
                )
            return StepSpec(program_dir=run.ingestion_program_dir, ingested_program_dir=run.submission_dir,
                            command=command, shared_dir=str(self.shared), **common)
        command = self.command_of(run.submission_dir, "the submission")
        if not command:
            raise _RunFailed(
                "the submission has no `metadata` file with a `command:` line, so there is nothing to run; "
                "add one (for example `command: python $program/predict.py $input $output`) "
                "or submit the predictions themselves"
            )
        return StepSpec(program_dir=run.submission_dir, command=command, **common)

    def scoring_spec(self) -> StepSpec:
        run = self.run
        command = self.command_of(run.scoring_program_dir, "the scoring program")
        if not command:
            raise _RunFailed(
                "the scoring program has no `metadata` file with a `command:`; "
                "the organizers must add one to the scoring program"
            )
        return StepSpec(
            submission_id=run.submission_id, task_index=run.task_index, step="scoring",
            image=run.scoring_image or run.image, program_dir=run.scoring_program_dir,
            command=command, input_dir=str(self.input), output_dir=str(self.output),
            shared_dir=str(self.shared), limits=run.scoring_limits or run.limits, env=dict(run.env),
        )

    def place_reference(self) -> None:
        self.ref.mkdir(parents=True, exist_ok=True)
        if self.run.reference_data_dir:
            populate(self.run.reference_data_dir, self.ref)

    def keep_notebook_files(self) -> None:
        """Copy the executed notebook and the report out of the predictions into the logs, then drop them there.

        Both are read as regular files reached without a link; a link or
        anything else in their place is never followed (and was removed
        after the step already).
        """
        for name, kept, where in ((EXECUTED_NAME, "executed_notebook.ipynb", "executed_notebook"),
                                  (REPORT_NAME, "notebook_report.json", "notebook_report")):
            target = self.logs / kept
            try:
                copy_beneath(self.res, name, target)
            except FileNotFoundError:
                continue
            except OSError as error:
                self.note(f"{name} in the prediction output was not kept: {error.strerror or error}")
            else:
                if where == "executed_notebook":
                    self.result["executed_notebook"] = str(target)
                    # Rendered beside the scoring step rather than after it.
                    self.rendering = _renderer.submit(_render_html, target, self.logs / "executed_notebook.html")
                else:
                    self.result["outputs"]["notebook_report"] = str(target)
            try:
                if not (self.res / name).is_dir():
                    os.unlink(self.res / name)
            except FileNotFoundError:
                pass

    def prediction_failure(self, step: StepResult, name: str) -> _RunFailed:
        if step.cancelled:
            return _RunFailed("cancelled", status=Status.CANCELLED)
        if self.run.kind == "notebook":
            report = read_report(self.result["outputs"].get("notebook_report", ""))
            if step.timed_out:
                return _RunFailed(f"the notebook {step.error or 'exceeded its time limit'}")
            if report is not None and not report.get("ok"):
                return _RunFailed(f"the notebook failed: {describe_failure(report)}")
        return _RunFailed(_with_tail(f"the {name} step {_what_happened(step)}", step))

    def read_scores(self, step: StepResult) -> dict[str, float]:
        try:
            return read_scores(self.output)
        except ScoreFileError as error:
            raise _RunFailed(_with_tail(f"the scoring program wrote no usable scores: {error}", step)) from None

    def find_detailed_results(self) -> None:
        """The scoring output's HTML page: detailed_results.html, else the first .html on top, else below.

        Only regular files reached without a link count.
        """
        pages = [rel for rel in regular_files(self.output) if rel.lower().endswith(".html")]
        if not pages:
            return
        top = [rel for rel in pages if "/" not in rel]
        chosen = "detailed_results.html" if "detailed_results.html" in top else (top or pages)[0]
        self.result["detailed_results"] = str(self.output / chosen)

    # -- the two flows --------------------------------------------------------

    def step(self, spec: StepSpec, name: str) -> StepResult:
        self.tell_command(spec, name)
        self.note(f"{name} step starts")
        # Every executor removes links and special files from the step's
        # writable folders before it returns, noting each (`Executor.run_step`).
        result = self.executor.run_step(spec, log=self.note)
        self.note(f"{name} step ended: exit code {result.exit_code}, {result.elapsed:.2f} s"
                  + (f" ({result.error})" if result.error else ""))
        self.record(name, result)
        return result

    def score(self) -> None:
        spec = self.scoring_spec()
        # The predictions hold regular files and folders only: the prediction
        # step's executor cleaned them, `populate` copies nothing else.
        self.place_reference()
        self.on_status(Status.SCORING)
        step = self.step(spec, "scoring")
        self.finish_scoring(step)

    def finish_scoring(self, step: StepResult) -> None:
        if step.cancelled:
            raise _RunFailed("cancelled", status=Status.CANCELLED)
        if not step.ok:
            raise _RunFailed(_with_tail(f"the scoring program {_what_happened(step)}", step))
        self.result["scores"] = self.read_scores(step)
        self.find_detailed_results()
        self.result["status"] = Status.FINISHED

    def copy_results(self) -> None:
        """Copy the submission's regular files into the predictions (copies: the step may write over them).

        A hard link would let the step change the cached submission
        through the prediction output.
        """
        source = Path(self.run.submission_dir)
        for rel, st in walk_entries(source):
            if stat.S_ISDIR(st.st_mode):
                (self.res / rel).mkdir(parents=True, exist_ok=True)
            elif stat.S_ISREG(st.st_mode):
                copy_beneath(source, rel, self.res / rel)

    def results_with_ingestion(self) -> None:
        """A results submission in a task with an ingestion program: copied, then ingestion beside it."""
        self.copy_results()
        spec = self.prediction_spec()
        name = "prediction"
        self.tell(name, "the submission has no `metadata` file, so its files were taken as the predictions "
                        "and copied into the prediction output; the ingestion program runs beside them all the "
                        "same, as on Codabench (CodaLab v1.5 did not run it for such a zip): it sees the "
                        "submission at $submission_program (/app/ingested_program) and the copied predictions "
                        "in $output (/app/output), and whatever it writes there is scored with them. Its exit "
                        "code is recorded (`ingestionExitCode` in the output's metadata), not held against "
                        "the submission; a time-out still fails it")
        self.on_status(Status.RUNNING)
        step = self.step(spec, name)
        if step.cancelled or step.timed_out or step.output_over:
            raise self.prediction_failure(step, "ingestion")
        verdict = "the ingestion program exited with code 0" if step.ok else _not_held(step)
        self.tell(name, verdict, after=True, notice=not step.ok)
        # The step's log on disk was written before the verdict was known: write it again with it.
        self.result["steps"].pop()
        self.record(name, step)

    def sequential(self) -> None:
        run = self.run
        if run.kind == "results" and run.ingestion_program_dir:
            self.results_with_ingestion()
        elif run.kind == "results":
            populate(run.submission_dir, self.res)
        else:
            if run.kind == "notebook" and run.ingestion_program_dir:
                self.note("the ingestion program is not used for notebook submissions")
            spec = self.prediction_spec()
            self.on_status(Status.RUNNING)
            step = self.step(spec, "prediction")
            if run.kind == "notebook":
                self.keep_notebook_files()
            if not step.ok:
                raise self.prediction_failure(step, "prediction")
        self.score()

    def concurrent(self) -> None:
        """Codabench's ingestion_only_during_scoring: ingestion and scoring side by side.

        The ingestion writes into folders of its own; a `FolderMirror` passes
        their regular files on to the scoring step (`input/res`, `shared/`)
        while both run, and once more when the ingestion has ended (after
        its links were removed).  The scoring program's writes to `shared/`
        go back to the ingestion the same way.
        """
        results = self.run.kind == "results"
        ingestion = self.prediction_spec(step="ingestion")
        ingestion.output_dir = str(self.ingestion_output)
        ingestion.shared_dir = str(self.ingestion_shared)
        self.ingestion_output.mkdir(parents=True)
        self.ingestion_shared.mkdir(parents=True)
        scoring = self.scoring_spec()
        if results:
            self.copy_results()
            self.tell("ingestion", "the submission has no `metadata` file, so its files were taken as the "
                                   "predictions and copied into the scoring step's input; the ingestion program "
                                   "runs beside the scoring program all the same, as on Codabench (CodaLab v1.5 "
                                   "did not run it for such a zip): it sees the submission at $submission_program "
                                   "(/app/ingested_program), and what it writes in $output joins the predictions. "
                                   "Its exit code is not held against the submission; a time-out still fails it")
        self.tell_command(ingestion, "ingestion")
        self.tell_command(scoring, "scoring")
        self.place_reference()
        mirror = FolderMirror(
            outputs=[Route(self.ingestion_output, self.res, "the ingestion output")],
            shared=[Route(self.ingestion_shared, self.shared, "the ingestion's shared folder"),
                    Route(self.shared, self.ingestion_shared, "the scoring program's shared folder",
                          wins_ties=False)],
            log=self.note,
        )
        # No separate prediction phase: both statuses are passed at once.
        self.on_status(Status.RUNNING)
        self.on_status(Status.SCORING)
        mirror.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="step") as pool:
                self.note("ingestion and scoring start together")
                ingest_future = pool.submit(self.executor.run_step, ingestion, self.note)
                score_future = pool.submit(self.executor.run_step, scoring, self.note)
                ingest = ingest_future.result()
                try:
                    # The ingestion's links are gone (its executor removed them):
                    # pass on its final files.
                    mirror.stop()
                except BaseException:
                    self.executor.cancel(self.run.submission_id)
                    raise
                stopped = ingest.cancelled or ingest.timed_out or ingest.output_over
                if not ingest.ok and (stopped or not results):
                    # The scoring program would wait for predictions that never come.
                    self.executor.cancel(self.run.submission_id)
                score = score_future.result()
        finally:
            mirror.stop()
        if results and not ingest.ok and not stopped:
            self.tell("ingestion", _not_held(ingest), after=True, notice=True)
        self.record("ingestion", ingest)
        self.record("scoring", score)
        if not ingest.ok and (stopped or not results):
            raise self.prediction_failure(ingest, "ingestion")
        self.finish_scoring(score)

    def flow(self) -> None:
        if (self.run.ingestion_only_during_scoring and self.run.kind in ("code", "results")
                and self.run.ingestion_program_dir):
            self.concurrent()
        else:
            self.sequential()

    def go(self) -> dict:
        try:
            self.prepare_folders()
            self.flow()
        except _RunFailed as failure:
            self.result.update(status=failure.status, error=failure.reason, scores={})
        except (DatasetError, OSError) as error:
            self.result.update(status=Status.FAILED, error=f"the worker could not prepare the run: {error}", scores={})
        finally:
            if self.rendering is not None:
                self.result["executed_notebook_html"] = self.rendering.result()
        self.result["error"] = neutral_paths(self.result["error"], self.neutral_names)
        for entry in self.result["steps"]:
            entry["error"] = neutral_paths(entry.get("error"), self.neutral_names)
        if self.result["error"]:
            self.note(f"{self.result['status']}: {self.result['error']}")
        if self.logs.is_dir():
            (self.logs / "run.log").write_text("\n".join(self.messages) + "\n")
            self.result["outputs"]["run_log"] = str(self.logs / "run.log")
        return self.result


@dataclass
class AggregationRun:
    """The aggregation step of a submission: a phase's own scoring program over its tasks' scoring outputs.

    CodaLab 1.8 runs a parallel parent's scoring program once every child
    finished, with each child's scoring output (its `scores.txt`, detailed
    results, ...) in `input/res_<child phasenumber>` and the parent's
    reference data in `input/ref`; what it writes is the parent's scores.
    `results` maps those folder names to the tasks' scoring outputs on the
    worker.  Paths are on the worker.
    """

    submission_id: int
    task_index: int  # the phase's aggregation task
    scoring_program_dir: str
    work_dir: str
    results: dict[str, str]  # "res_2" -> a task's scoring output folder
    reference_data_dir: Optional[str] = None
    image: str = DEFAULT_IMAGE
    limits: Limits = field(default_factory=Limits)
    env: dict[str, str] = field(default_factory=dict)


class _Aggregator(_Runner):
    """Runs the aggregation step: the tasks' scoring outputs in, the scoring step's flow out."""

    STEP = "aggregation"

    def __init__(self, agg: AggregationRun, executor: Executor, on_status: Optional[StatusFn]):
        run = TaskRun(submission_id=agg.submission_id, task_index=agg.task_index, kind="results",
                      submission_dir="", scoring_program_dir=agg.scoring_program_dir, work_dir=agg.work_dir,
                      reference_data_dir=agg.reference_data_dir, image=agg.image, limits=agg.limits,
                      env=dict(agg.env))
        super().__init__(run, executor, on_status)
        self.results = dict(agg.results)

    def flow(self) -> None:
        # No input/res: the parent's program reads input/res_<n>, one per task, as on CodaLab.
        shutil.rmtree(self.res, ignore_errors=True)
        lines = []
        for folder, source in self.results.items():
            target = self.input / folder
            target.mkdir(parents=True)
            # Copies, read without following a link: the step may write over them.
            for rel, st in walk_entries(Path(source)):
                if stat.S_ISDIR(st.st_mode):
                    (target / rel).mkdir(parents=True, exist_ok=True)
                elif stat.S_ISREG(st.st_mode):
                    copy_beneath(Path(source), rel, target / rel)
            lines.append(f"{folder}: {folder}")
        self.place_reference()
        lines.append("ref: ref")
        # CodaLab's input bundle lists its folders in input/metadata; some parent programs read it.
        (self.input / "metadata").write_text("\n".join(lines) + "\n")
        spec = self.scoring_spec()
        self.tell(self.STEP, f"the phase's own scoring program runs on the tasks' scoring outputs, in "
                             f"{', '.join(f'$input/{name}' for name in self.results)} (with input/metadata "
                             "naming them, as on CodaLab), and the phase's reference data in $input/ref; "
                             "the scores it writes are the submission's")
        self.on_status(Status.SCORING)
        step = self.step(spec, self.STEP)
        if step.cancelled:
            raise _RunFailed("cancelled", status=Status.CANCELLED)
        if not step.ok:
            raise _RunFailed(_with_tail(f"the phase's own scoring program {_what_happened(step)}", step))
        self.result["scores"] = self.read_scores(step)
        self.find_detailed_results()
        self.result["status"] = Status.FINISHED


def run_aggregation(agg: AggregationRun, executor: Executor, on_status: Optional[StatusFn] = None) -> dict:
    """Run the aggregation step; the result has the shape of `run_task`'s (its one step is `aggregation`)."""
    return _Aggregator(agg, executor, on_status).go()


def run_task(run: TaskRun, executor: Executor, on_status: Optional[StatusFn] = None) -> dict:
    """Run the submission on the task and return a plain JSON-able result.

    `on_status("Running")` is called before the prediction step and
    `on_status("Scoring")` before the scoring step.  The result:
    `{"status": "Finished"|"Failed"|"Cancelled", "scores": {key: float},
    "error": str|None, "steps": [StepResult dicts + "name"], "outputs": {...paths...},
    "detailed_results": path|None, "executed_notebook": path|None,
    "submission_id", "task_index"}`.  Scores are empty unless Finished.
    """
    return _Runner(run, executor, on_status).go()


def combine_task_results(results: list[dict], *, aggregated: bool = False) -> dict:
    """The result of a submission from the results of its tasks (one run per task).

    - status: Failed if any task failed (the error names every failed task),
      else Cancelled if any was cancelled, else Finished;
    - scores: the union of the tasks' scores, empty unless Finished.  When two
      tasks write the same key, the task with the higher index wins and the
      clash is listed in `warnings`: keys are leaderboard column names, so
      they are kept as written rather than prefixed (each task's own scores
      stay in its result, under `tasks`).  With `aggregated` (the phase's
      aggregation step will write the scores, `add_aggregation`), no union;
    - steps: every step, each with its `task_index`;
    - warnings: also every link or special file removed from a step's folders,
      and the tasks' notices (an ingestion program's exit not held against a
      results submission);
    - outputs, detailed_results, executed_notebook: per task under `tasks`,
      and at the top the first task (by index) that has one.
    """
    if not results:
        raise ValueError("combine_task_results needs the result of at least one task")
    ordered = sorted(results, key=lambda r: r.get("task_index", 0))
    scores: dict[str, float] = {}
    origin: dict[str, int] = {}
    warnings: list[str] = []
    steps: list[dict] = []
    for result in ordered:
        index = result.get("task_index", 0)
        for key, value in ({} if aggregated else result.get("scores") or {}).items():
            if key in scores and scores[key] != value:
                warnings.append(
                    f"score {key!r} written by tasks {origin[key]} and {index}: the value of task {index} is kept "
                    "on the leaderboard; each task's own value is in its scores per task"
                )
            scores[key] = value
            origin[key] = index
        steps += [{**step, "task_index": index} for step in result.get("steps", [])]
        prefix = f"task {index}: " if len(ordered) > 1 else ""
        warnings += [prefix + line for line in result.get("removed") or []]
        warnings += [prefix + line for line in result.get("notices") or []]
    failed = [r for r in ordered if r.get("status") == Status.FAILED]
    cancelled = [r for r in ordered if r.get("status") == Status.CANCELLED]
    if failed:
        status = Status.FAILED
        error = "; ".join(f"task {r.get('task_index', 0)}: {r.get('error') or 'failed'}" for r in failed)
    elif cancelled:
        status, error = Status.CANCELLED, "cancelled"
    else:
        status, error = Status.FINISHED, None

    def first(name: str) -> Optional[str]:
        return next((r[name] for r in ordered if r.get(name)), None)

    return {
        "submission_id": ordered[0].get("submission_id"),
        "status": status,
        "scores": scores if status == Status.FINISHED else {},
        "error": error,
        "warnings": warnings,
        "steps": steps,
        "outputs": {"tasks": {str(r.get("task_index", 0)): r.get("outputs", {}) for r in ordered}},
        "detailed_results": first("detailed_results"),
        "executed_notebook": first("executed_notebook"),
        # The page of that same notebook, when it was rendered on the worker.
        "executed_notebook_html": next((r.get("executed_notebook_html") for r in ordered
                                        if r.get("executed_notebook")), None),
        "tasks": ordered,
    }


def add_aggregation(combined: dict, result: dict) -> dict:
    """`combined` (the tasks' results, `combine_task_results(..., aggregated=True)`) with the aggregation step's.

    The submission's status, error and scores become the step's; its step
    and outputs join the tasks' under its own task index; its detailed
    results, when it wrote some, are the submission's.
    """
    index = result.get("task_index", 0)
    status = result.get("status")
    error = None
    if status == Status.FAILED:
        error = f"the aggregation step (task {index}): {result.get('error') or 'failed'}"
    elif status == Status.CANCELLED:
        error = "cancelled"
    warnings = list(combined.get("warnings", []))
    warnings += [f"aggregation: {line}" for line in (result.get("removed") or []) + (result.get("notices") or [])]
    outputs = dict(combined.get("outputs") or {})
    outputs["tasks"] = {**outputs.get("tasks", {}), str(index): result.get("outputs", {})}
    return {
        **combined,
        "status": status,
        "scores": dict(result.get("scores") or {}) if status == Status.FINISHED else {},
        "error": error,
        "warnings": warnings,
        "steps": combined.get("steps", []) + [{**step, "task_index": index} for step in result.get("steps", [])],
        "outputs": outputs,
        "detailed_results": result.get("detailed_results") or combined.get("detailed_results"),
        "tasks": list(combined.get("tasks", [])) + [result],
    }
