"""The submit box: `SubmitState` (no front end) and `Submit` (ipywidgets).

"This notebook, saved first" asks the front end to save the notebook with
the script `save_notebook.js` (shipped beside this module; see the package's
docstring for how it works), and submits once it answers.

What the box offers, besides this notebook and the zips, notebooks and
folders next to it:

- **The predictions this notebook wrote** (a kit that writes predictions):
  the folder the notebook writes to, zipped.  Which folder: the `output_dir`
  that the notebook's cell tagged `parameters` sets (a string, relative to the
  notebook's folder), else the first of `PREDICTION_FOLDERS` next to the
  notebook; offered once it holds a file.  The judge runs the notebook with
  its own `output_dir`; this is the same folder as the notebook fills it in Lab.
- **The code folder** (a code kit): the notebook's folder when it holds a
  `metadata` file, else the first folder next to the notebook that does; zipped.

Before anything is saved or uploaded, the kind of the choice (notebook,
results or code: `hub_extension.client.submission_kind`, the service's rule)
is checked against what the phase accepts (`accepts` of the phase in the
competition API); a choice that does not fit is refused with why and what to
choose instead.  "Run as the judge would" runs the notebook first without
submitting it (`preflight.py`).
"""
from __future__ import annotations

import ast
import datetime as dt
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import ipywidgets as widgets
from IPython.display import Javascript

from ..client import SKIPPED_FOLDERS, CompeteClient, CompeteError, current_notebook_path, submission_kind
from ..contract import Status
from .common import (
    STEPS,
    TERMINAL,
    _describe,
    _esc,
    _fmt_score,
    _fmt_time,
    _make_client,
    _widget_bundle,
    log,
    refresh_open_boards,
)
from .fact_sheet import FactSheetFields
from .preflight import Preflight

# A function expression `(element, token, issued)`; `save_script` adds the call.
SAVE_SCRIPT = (Path(__file__).with_name("save_notebook.js")).read_text()


# Said while a finished submission's leaderboards are still to be ranked with it (`on_leaderboard` false).
BOARD_LATE = "The leaderboard is being ranked again with this result: it shows there in a moment."


def save_script(token: str, issued_ms: int) -> str:
    """The script that saves the notebook holding `element` and answers with `token` (issued at `issued_ms`)."""
    return (f"var token = {json.dumps(token)}, issued = {int(issued_ms)};\n"
            f"{SAVE_SCRIPT.rstrip()}(element, token, issued);\n")


# -- what there is to submit ------------------------------------------------------------------------
# Folders a kit writes its predictions to, looked for next to the notebook when its parameters cell sets
# no `output_dir` (CodaLab's `res`, the usual others).
PREDICTION_FOLDERS = ("predictions", "submission", "res", "output", "outputs")
KIND_WORDS = {"results": "predictions (results)", "code": "code", "notebook": "a notebook"}
CODE_FILES = ("metadata", "metadata.yaml")


def notebook_output_dir(notebook: Optional[Path]) -> Optional[str]:
    """The `output_dir` the notebook's cell tagged `parameters` sets to a string, or None."""
    if notebook is None:
        return None
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells") or []
    except (OSError, ValueError, AttributeError):
        return None
    for cell in cells:
        if "parameters" not in ((cell.get("metadata") or {}).get("tags") or []):
            continue
        source = "".join(cell.get("source") or []) if isinstance(cell.get("source"), list) else str(cell.get("source") or "")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return None
        for node in tree.body:
            if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "output_dir" for t in node.targets)
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                return node.value.value
        return None
    return None


def _has_files(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(p.is_file() for p in folder.rglob("*") if SKIPPED_FOLDERS.isdisjoint(p.parts))
    except OSError:
        return False


def predictions_folder(notebook: Optional[Path], folder: Path) -> tuple[Optional[Path], Optional[Path]]:
    """(where the notebook writes its predictions, that folder if it holds a file now).

    The `output_dir` of the notebook's parameters cell (relative to `folder`),
    else the first of `PREDICTION_FOLDERS` in `folder` that holds a file.
    """
    declared = notebook_output_dir(notebook)
    if declared:
        target = (folder / declared) if not Path(declared).is_absolute() else Path(declared)
        return target, (target if _has_files(target) else None)
    for name in PREDICTION_FOLDERS:
        if _has_files(folder / name):
            return folder / name, folder / name
    return None, None


def code_folder(folder: Path) -> Optional[Path]:
    """The notebook's folder when it holds a `metadata` file, else the first folder in it that does."""
    if any((folder / name).is_file() for name in CODE_FILES):
        return folder
    try:
        entries = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name.lower())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.startswith(".") and entry.name not in SKIPPED_FOLDERS and \
                any((entry / name).is_file() for name in CODE_FILES):
            return entry
    return None


def _shown(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix() or "."
    except ValueError:
        return str(path)


def refusal(kind: str, phase: Optional[dict[str, Any]], *, predictions: Optional[Path], writes_to: Optional[Path],
            code: Optional[Path], notebook: Optional[Path], base: Path) -> Optional[str]:
    """Why the phase does not take a submission of `kind`, with what to submit instead; None when it does."""
    if not phase:
        return None
    accepts = phase.get("accepts")
    if accepts is None:
        accepts = ["results"] if phase.get("results_only") else ["results", "code", "notebook"]
    if kind in accepts:
        return None
    name = f"phase {phase.get('number')} ({phase.get('name')})"
    head = (f"{name} accepts {' or '.join(KIND_WORDS.get(k, k) for k in accepts)} only, not {KIND_WORDS.get(kind, kind)}"
            + (" (a zip or folder with a metadata file)" if kind == "code" else ""))
    if "results" in accepts:
        if predictions is not None:
            todo = f"choose \u201cThe predictions this notebook wrote ({_shown(predictions, base)}/)\u201d"
        elif writes_to is not None:
            todo = (f"run the notebook first: it writes its predictions to {_shown(writes_to, base)}/; then choose "
                    "\u201cThe predictions this notebook wrote\u201d")
        else:
            todo = ("run your code yourself, then submit the files it predicts: zip them (or put them in a folder "
                    "next to this notebook) and choose or type that path")
    elif "notebook" in accepts and notebook is not None:
        todo = "choose \u201cThis notebook\u201d: the judge runs it and scores what it writes to output_dir"
    elif "code" in accepts and code is not None:
        todo = f"choose the code folder {_shown(code, base)}/"
    else:
        todo = "submit " + " or ".join(KIND_WORDS.get(k, k) for k in accepts)
    return f"{head}: {todo}. Nothing was submitted."


# -- submitting -----------------------------------------------------------------------------------
class SubmitState:
    """A submission from the widget, with no front end: a tested, plain object.

    `stage` is `ready`, `saving`, `uploading`, then the submission's status
    (Submitted, Preparing, Running, Scoring, and Finished, Failed or
    Cancelled), or `error` when the client refused or could not reach the
    service.  `stages` lists every stage seen, in order.  `listeners` are
    called after each change.
    """

    def __init__(self, client: Optional[CompeteClient], competition: str, phase: Optional[int] = None):
        self.client = client
        self.competition = competition
        self.phase = phase
        self.title = competition
        self.phase_name: Optional[str] = None
        self.phase_info: Optional[dict[str, Any]] = None  # the phase as the competition API describes it
        self.registration: Optional[str] = None
        self.organizer = False  # organizers do not register: their first submission enters them
        self.columns: dict[str, dict[str, Any]] = {}
        self.fact_sheet: list[dict[str, Any]] = []  # the questions asked with each submission
        self.stage = "ready"
        self.stages: list[str] = []
        self.info: Optional[dict[str, Any]] = None
        self.error: Optional[str] = None
        self.note: Optional[str] = None
        self.target: Optional[str] = None
        self.left: Optional[dict[str, Any]] = None
        self.closed_phase: Optional[str] = None
        self.last_submission: Optional[dict[str, Any]] = None
        self.interval = 1.0
        self.stop_event = threading.Event()
        self.listeners: list[Callable[["SubmitState"], None]] = []
        self._lock = threading.RLock()

    @property
    def busy(self) -> bool:
        return self.stage in ("saving", "uploading", *STEPS)

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener(self)
            except Exception:  # noqa: BLE001 - drawing must not break the submission
                log.exception("a submit listener failed")

    def set_stage(self, stage: str, *, note: Optional[str] = None) -> None:
        with self._lock:
            self.stage = stage
            self.note = note
            if stage != "error":
                self.error = None
            if not self.stages or self.stages[-1] != stage:
                self.stages.append(stage)
        self._changed()

    def fail(self, problem: Any) -> None:
        with self._lock:
            self.error = _describe(problem) if isinstance(problem, BaseException) else str(problem)
            self.stage = "error"
            self.stages.append("error")
        self._changed()

    def load(self) -> None:
        """The competition's title, the phase, your registration and the submissions you have left."""
        if self.client is None:
            return
        try:
            detail = self.client.competition(self.competition)
        except CompeteError as exc:
            self.fail(exc)
            return
        self.title = detail.get("title") or self.competition
        self.registration = detail.get("registration")
        self.organizer = bool(detail.get("is_organizer"))
        self.fact_sheet = list(detail.get("fact_sheet") or [])
        number = self.phase or detail.get("current_phase")
        phase = next((p for p in detail.get("phases") or [] if p.get("number") == number), None)
        self.phase_name = phase.get("name") if phase else None
        self.phase_info = phase
        self.closed_phase = None
        if phase is None:
            upcoming = [p for p in detail.get("phases") or [] if p.get("state") == "future"]
            self.closed_phase = "no phase is open for submissions now"
            if upcoming:
                self.closed_phase += (f"; phase {upcoming[0]['number']} ({upcoming[0]['name']}) opens "
                                      f"{_fmt_time(upcoming[0].get('start'))} UTC")
        elif not phase.get("open"):
            name = f"phase {number} ({phase.get('name')})"
            if phase.get("state") == "future":
                self.closed_phase = f"{name} opens {_fmt_time(phase.get('start'))} UTC"
            else:
                self.closed_phase = f"{name} is closed" + (f" since {_fmt_time(phase['end'])} UTC"
                                                           if phase.get("end") else "")
        try:
            board = self.client.leaderboard_json(self.competition, self.phase)
            self.columns = {c["key"]: c for c in board.get("columns") or []}
        except CompeteError:
            self.columns = {}
        self.refresh_left()

    def refresh_left(self) -> None:
        if self.client is None or self.registration not in ("approved", None):
            self.left = None
        else:
            try:
                self.left = self.client.submissions_left(self.competition, self.phase)
            except CompeteError:
                self.left = None
        self._changed()

    def update(self, info: dict[str, Any]) -> None:
        """A fresh answer about the submission (from `CompeteClient.follow`)."""
        with self._lock:
            self.info = info
            status = str(info.get("status") or Status.SUBMITTED)
            self.stage = status
            if not self.stages or self.stages[-1] != status:
                self.stages.append(status)
            if status in TERMINAL:
                self.last_submission = info
        self._changed()

    def run(self, path: Path, description: str = "",
            fact_sheet: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
        """Upload `path`, then follow the submission to its end; returns the final answer (or None)."""
        if self.client is None:
            self.fail("no competition service to submit to")
            return None
        self.stop_event.clear()
        with self._lock:
            self.info = None
            self.target = Path(path).name
        self.set_stage("uploading")
        try:
            info = self.client.submit(self.competition, path, phase=self.phase, description=description,
                                      fact_sheet=fact_sheet or None)
            self.update(info)
            self.refresh_left()  # one fewer left, shown while it runs
            if info.get("status") in TERMINAL:
                return info
            final = self.client.follow(info["id"], interval=self.interval, on_change=self.update,
                                       stop=self.stop_event)
            self.update(final)
            return final
        except CompeteError as exc:
            self.fail(exc)
            return None
        finally:
            self.refresh_left()

    # -- what is shown ----------------------------------------------------------------------
    def left_text(self) -> str:
        if self.closed_phase:
            return self.closed_phase[0].upper() + self.closed_phase[1:] + "."
        if self.registration == "none" and self.organizer:
            return f"You organize {self.title}: your first submission enters you."
        if self.registration == "none":
            return f"You are not registered to {self.title} yet: register on the competition page first."
        if self.registration in ("pending", "denied", "removed", "banned"):
            return f"Your registration to {self.title} is {self.registration}."
        if self.left is None:
            return ""
        today, total = self.left.get("today"), self.left.get("total")
        if today is None and total is None:
            return "No limit on submissions in this phase."
        parts = []
        if today is not None:
            parts.append(f"{today} today")
        if total is not None:
            parts.append(f"{total} in total")
        return "Submissions left: " + ", ".join(parts) + "."

    def _failed_step(self) -> Optional[str]:
        for status in reversed([h.get("status") for h in (self.info or {}).get("history") or []]):
            if status in STEPS:
                return status
        for stage in reversed(self.stages):
            if stage in STEPS:
                return stage
        return None

    def _detail(self) -> str:
        info = self.info or {}
        status = self.stage
        if status == Status.SUBMITTED:
            waiting = info.get("waiting") or {}
            if waiting.get("position"):
                note = f" \u2014 {waiting['note']}" if waiting.get("note") else ""
                start = _start_text(info.get("estimated_start"))
                return f"Waiting in the queue: position {waiting['position']}{note}." + (
                    f" Expected to start about {start}." if start else "")
            return "Waiting to be sent to a worker."
        if status == Status.PREPARING:
            return "A worker is preparing the run."
        if status == Status.RUNNING:
            running = info.get("running_time")
            return f"Running ({running:.0f} s so far)." if isinstance(running, (int, float)) else "Running."
        if status == Status.SCORING:
            return "Computing the scores."
        return ""

    def to_html(self, prefix: str = "") -> str:
        """The status box as an HTML fragment: progress, then scores or the failure."""
        stage = self.stage
        out = [f'<div class="compete-submit-progress" data-status="{_esc(stage)}">']
        if stage == "ready":
            out.append("<p>Choose what to submit, then click <b>Submit</b>.</p>")
        elif stage == "saving":
            out.append("<p>Saving the notebook\u2026</p>")
        elif stage == "uploading":
            out.append(f"<p>Uploading {_esc(self.target)}\u2026</p>")
        elif stage == "error":
            out.append(f'<p class="compete-submit-error" style="color: #b00020;">{_esc(self.error)}</p>')
        else:
            out.append(self._steps_html())
            detail = self._detail()
            if detail:
                out.append(f'<p class="compete-submit-detail">{_esc(detail)}</p>')
            if stage == Status.FINISHED:
                out.append(self._scores_html())
            elif stage in (Status.FAILED, Status.CANCELLED):
                out.append(self._failure_html())
        if self.note:
            out.append(f'<p class="compete-submit-note"><i>{_esc(self.note)}</i></p>')
        info = self.info or {}
        if info.get("id") is not None and prefix:
            out.append(f'<p><a href="{_esc(prefix)}submissions/{int(info["id"])}" target="_blank" '
                       f'rel="noopener">Submission {int(info["id"])}: details, logs and the executed notebook</a></p>')
        out.append("</div>")
        return "".join(out)

    def _steps_html(self) -> str:
        stage = self.stage
        failed_at = self._failed_step() if stage in (Status.FAILED, Status.CANCELLED) else None
        reached = set(self.stages) | {h.get("status") for h in (self.info or {}).get("history") or []}
        cells = []
        for step in (*STEPS, Status.FINISHED if stage not in (Status.FAILED, Status.CANCELLED) else stage):
            if step == stage and stage in TERMINAL:
                mark, style = ("\u2713", "color: #1b7f3b; font-weight: bold;") if stage == Status.FINISHED else \
                    ("\u2717", "color: #b00020; font-weight: bold;")
            elif step == stage:
                mark, style = "\u25cf", "font-weight: bold;"
            elif step == failed_at:
                mark, style = "\u2717", "color: #b00020;"
            elif step in reached or stage in TERMINAL and stage == Status.FINISHED:
                mark, style = "\u2713", "opacity: 0.8;"
            else:
                mark, style = "\u25cb", "opacity: 0.5;"
            if step == Status.SUBMITTED and stage == Status.SUBMITTED:
                position = ((self.info or {}).get("waiting") or {}).get("position")
                label = f"Submitted (#{position} in queue)" if position else Status.SUBMITTED
            else:
                label = step
            cells.append(f'<span class="compete-step" data-step="{_esc(step)}" style="{style}">{mark} {_esc(label)}</span>')
        return '<p class="compete-steps">' + " \u2192 ".join(cells) + "</p>"

    def _scores_html(self) -> str:
        info = self.info or {}
        if info.get("results_hidden"):
            return ('<p class="compete-scores-hidden">Finished. The scores of this phase are hidden: the organizers '
                    'publish them later.</p>')
        scores = info.get("scores") or {}
        if not scores:
            return '<p class="compete-scores-hidden">Finished, with no score you may see.</p>'
        elapsed = info.get("elapsed")
        head = f"<p>Finished in {elapsed:.1f} s.</p>" if isinstance(elapsed, (int, float)) else ""
        rows = []
        ordered = [k for k in self.columns if k in scores] + sorted(k for k in scores if k not in self.columns)
        for key in ordered:
            column = self.columns.get(key, {})
            rows.append(f'<tr data-score="{_esc(key)}"><td style="padding: 2px 8px;">{_esc(column.get("title") or key)}'
                        f'</td><td style="padding: 2px 8px;"><b>{_esc(_fmt_score(scores[key], column.get("precision")))}'
                        f"</b></td></tr>")
        late = f'<p class="compete-board-late">{_esc(BOARD_LATE)}</p>' if info.get("on_leaderboard") is False else ""
        return head + '<table class="compete-scores">' + "".join(rows) + "</table>" + late

    def _failure_html(self) -> str:
        error = str((self.info or {}).get("error") or ("cancelled" if self.stage == Status.CANCELLED else "no reason given"))
        first, _, rest = error.partition("\n")
        out = [f'<p class="compete-submit-error" style="color: #b00020;"><b>{_esc(self.stage)}</b>: {_esc(first)}</p>']
        if rest.strip():
            out.append(f'<pre class="compete-traceback" style="white-space: pre-wrap; max-height: 24em; '
                       f'overflow: auto;">{_esc(rest.strip())}</pre>')
        return "".join(out)

    def to_text(self) -> str:
        lines = [f"Submit to {self.title}" + (f", phase {self.phase_name}" if self.phase_name else "")]
        if self.left_text():
            lines.append(self.left_text())
        info = self.info or {}
        if self.stage == "error":
            lines.append(f"error: {self.error}")
        elif self.stage in TERMINAL:
            lines.append(f"submission {info.get('id')}: {self.stage}")
            if self.stage == Status.FINISHED:
                for key, value in (info.get("scores") or {}).items():
                    column = self.columns.get(key, {})
                    lines.append(f"  {column.get('title') or key}: {_fmt_score(value, column.get('precision'))}")
                if info.get("results_hidden"):
                    lines.append("  (the scores of this phase are hidden)")
                if info.get("on_leaderboard") is False:
                    lines.append(f"  ({BOARD_LATE})")
            else:
                lines.append(str(info.get("error") or ""))
        elif self.stage != "ready":
            lines.append(f"{self.stage}: {self._detail()}".rstrip(": "))
        return "\n".join(lines)


def _mtime(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class Submit(widgets.VBox):
    """Submit to a competition from a notebook and watch the submission to its end.

    What to submit: this notebook (saved first), this notebook as last saved,
    the predictions it wrote, the code folder, or a zip, notebook or folder
    next to it; `path` preselects one, else the first the phase accepts.  A
    choice the phase does not accept is refused before anything is sent.
    Shows the submissions left, then the progress (queue position, Preparing,
    Running, Scoring) and the scores or the failing cell with its traceback.
    `last_submission` is the final answer of the last submission.  "Run as
    the judge would" (`preflight`) runs the notebook first, uploading nothing.
    """

    save_timeout = 20.0   # seconds for the front end to answer the save request
    save_settle = 10.0    # seconds for a save by shortcut to reach the disk
    follow_interval = 1.0

    def __init__(self, competition: str, *, phase: Optional[int] = None, client: Optional[CompeteClient] = None,
                 path: Optional[str | os.PathLike] = None, description: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.add_class("compete-submit")
        self.client, problem = _make_client(client)
        self.state = SubmitState(self.client, competition, phase)
        self.state.interval = self.follow_interval
        self._closed = False
        self._pending: Optional[dict[str, Any]] = None
        self._timer: Optional[threading.Timer] = None
        self._worker: Optional[threading.Thread] = None
        try:
            self.notebook: Optional[Path] = current_notebook_path()
        except CompeteError:
            self.notebook = None
        self._title = widgets.HTML()
        self._left = widgets.HTML()
        self._left.add_class("compete-submissions-left")
        options = self._choices(path)
        self._what = widgets.Dropdown(description="What", options=options,
                                      layout=widgets.Layout(width="auto"), style={"description_width": "initial"})
        listed = path is not None and f"path:{Path(path)}" in [value for _, value in options]
        self._path = widgets.Text(placeholder="or a path: predictions.zip, my_code/, other.ipynb",
                                  value=str(path) if path is not None and not listed else "",
                                  layout=widgets.Layout(width="32em"))
        self._description = widgets.Text(placeholder="a note for yourself (optional)", value=description,
                                         layout=widgets.Layout(width="32em"))
        self._button = widgets.Button(description="Submit", button_style="primary", icon="upload",
                                      tooltip="Submit to the competition")
        self._button.add_class("compete-submit-button")
        self._status = widgets.HTML()
        self._status.add_class("compete-submit-status")
        self.preflight = Preflight()
        self._preflight_button = widgets.Button(description="Run as the judge would", icon="play",
                                                tooltip="Run the notebook (as saved) in the judge's kernel, with the "
                                                        "phase's time limit, on the public data; nothing is submitted",
                                                layout=widgets.Layout(width="auto"))
        self._preflight_button.add_class("compete-preflight-button")
        self._preflight_status = widgets.HTML()
        self._preflight_status.add_class("compete-preflight-status")
        # Hidden: the front end's answer to a save request, and where the save script runs.
        self._reply = widgets.Text(layout=widgets.Layout(display="none"))
        self._reply.add_class("compete-save-reply")
        self._script = widgets.Output(layout=widgets.Layout(display="none"))
        self._script.add_class("compete-save-script")
        self.children = [self._title, self._left, self._what, self._path, self._description,
                         widgets.HBox([self._button, self._preflight_button]), self._status, self._preflight_status,
                         self._reply, self._script]
        self.state.listeners.append(lambda _state: self._render())
        self.preflight.state.listeners.append(lambda _state: self._render_preflight())
        self._preflight_button.on_click(self._on_preflight)
        if problem:
            self.state.fail(problem)
        else:
            self.state.load()
        self._fact_sheet = FactSheetFields(self.state.fact_sheet)
        self.children = [*self.children[:5], self._fact_sheet, *self.children[5:]]
        if path is None:
            self._what.value = self._first_accepted(options)
        self._button.on_click(self._on_click)
        self._reply.observe(self._on_reply, names="value")
        self._render()

    # -- what to submit ------------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        """The notebook's folder (the kernel's working folder when the notebook is not known)."""
        return self.notebook.parent if self.notebook is not None else Path.cwd()

    def _kit(self) -> tuple[Optional[Path], Optional[Path], Optional[Path]]:
        """(where the notebook writes predictions, that folder when it holds files, the code folder)."""
        writes_to, predictions = predictions_folder(self.notebook, self.folder)
        return writes_to, predictions, code_folder(self.folder)

    def _choices(self, preselect: Any = None) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        if self.notebook is not None:
            options.append((f"This notebook ({self.notebook.name}), saved first", "notebook"))
            options.append((f"This notebook ({self.notebook.name}), as last saved", "notebook-disk"))
        folder = self.folder
        _, predictions, code = self._kit()
        offered: set[Path] = set()
        if predictions is not None:
            options.append((f"The predictions this notebook wrote ({_shown(predictions, folder)}/, zipped)",
                            f"predictions:{_shown(predictions, folder)}"))
            offered.add(predictions.resolve())
        if code is not None:
            options.append((f"The code folder ({_shown(code, folder)}/, zipped)", f"code:{_shown(code, folder)}"))
            offered.add(code.resolve())
        found: list[tuple[str, str]] = []
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
        except OSError:
            entries = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
                continue
            if self.notebook is not None and entry.resolve() == self.notebook or entry.resolve() in offered:
                continue
            if entry.is_dir():
                found.append((f"{entry.name}/ (folder, zipped)", f"path:{entry.name}"))
            elif entry.suffix in (".zip", ".ipynb"):
                found.append((entry.name, f"path:{entry.name}"))
        options += found[:50]
        if preselect is not None:
            wanted = f"path:{Path(preselect)}"
            listed = [o for o in options if o[1] == wanted]
            if listed:
                options.remove(listed[0])
                options.insert(0, listed[0])
        if not options:
            options.append(("(type a path below)", "none"))
        return options

    def _first_accepted(self, options: list[tuple[str, str]]) -> str:
        """The first of `options` the phase accepts (the first one when it accepts none of them)."""
        for _, value in options:
            kind = self._kind_of(value)
            if kind is not None and self._refusal(kind) is None:
                return value
        return options[0][1]

    def _kind_of(self, value: str) -> Optional[str]:
        if value in ("notebook", "notebook-disk"):
            return "notebook"
        if value.startswith("predictions:"):
            return "results"
        if value.startswith("code:"):
            return "code"
        if value.startswith("path:"):
            path = self.folder / value[len("path:"):]
            return submission_kind(path) if path.exists() else None
        return None

    def _refusal(self, kind: str) -> Optional[str]:
        writes_to, predictions, code = self._kit()
        return refusal(kind, self.state.phase_info, predictions=predictions, writes_to=writes_to, code=code,
                       notebook=self.notebook, base=self.folder)

    def _choice(self) -> tuple[str, Any]:
        typed = self._path.value.strip()
        base = self.folder
        if typed:
            path = Path(typed).expanduser()
            return "path", path if path.is_absolute() else base / path
        value = self._what.value
        if value in ("notebook", "notebook-disk"):
            if self.notebook is None:
                return "error", "cannot tell which notebook this is: type its path"
            return ("save", self.notebook) if value == "notebook" else ("path", self.notebook)
        for prefix in ("path:", "predictions:", "code:"):
            if value and value.startswith(prefix):
                return "path", base / value[len(prefix):]
        return "error", "choose what to submit, or type a path"

    # -- clicking ------------------------------------------------------------------------------
    def _on_click(self, _button: Any = None) -> None:
        if self.state.busy or self._closed:
            return
        kind, target = self._choice()
        refused = None
        if kind in ("save", "path") and (kind == "save" or Path(target).exists()):
            refused = self._refusal("notebook" if kind == "save" else submission_kind(target))
        if self.client is None:
            self.state.fail(self.state.error or "no competition service to submit to")
        elif kind == "error":
            self.state.fail(target)
        elif refused:
            self.state.fail(refused)
        elif self._fact_sheet.missing():
            self.state.fail(self._fact_sheet.missing())
        elif kind == "save":
            self._request_save(target)
        else:
            self._start(target)

    def _request_save(self, notebook: Path) -> None:
        token = uuid.uuid4().hex
        self._pending = {"token": token, "path": notebook, "mtime": _mtime(notebook)}
        self.state.set_stage("saving")
        script = save_script(token, int(time.time() * 1000))
        self._script.outputs = ()
        self._script.append_display_data(Javascript(script))
        self._timer = threading.Timer(self.save_timeout, self._save_timed_out, args=(token,))
        self._timer.daemon = True
        self._timer.start()

    def _on_reply(self, change: dict[str, Any]) -> None:
        try:
            answer = json.loads(change["new"] or "{}")
        except ValueError:
            return
        pending = self._pending
        if not isinstance(answer, dict) or pending is None or answer.get("token") != pending["token"]:
            return
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
        self._script.outputs = ()
        status = answer.get("status")
        if status == "saved":
            self._start(pending["path"])
        elif status == "requested":
            self._start(pending["path"], settle=pending["mtime"])
        else:
            self.state.fail(f"the notebook could not be saved ({answer.get('detail') or 'no reason given'}): "
                            "save it (Ctrl+S), choose \"as last saved\" and click Submit again")

    def _save_timed_out(self, token: str) -> None:
        if self._pending is None or self._pending["token"] != token:
            return
        self._pending = None
        self._script.outputs = ()
        self.state.fail("the notebook was not saved: this front end did not run the save request. Save the "
                        "notebook (Ctrl+S or File > Save), choose \"as last saved\" and click Submit again")

    def _start(self, path: Path, *, settle: Optional[int] = -1) -> None:
        """Submit `path` on a thread; with `settle`, first wait for the file's mtime to move past it."""
        self._button.disabled = True
        self.state.set_stage("saving" if settle != -1 else "uploading")
        self._worker = threading.Thread(target=self._run, args=(Path(path), settle), daemon=True,
                                        name="compete-submit")
        self._worker.start()

    def _run(self, path: Path, settle: Optional[int]) -> None:
        try:
            if settle != -1:
                deadline = time.monotonic() + self.save_settle
                while _mtime(path) == settle and time.monotonic() < deadline and not self._closed:
                    time.sleep(0.1)
                if self._closed:
                    return
                if _mtime(path) == settle:
                    self.state.fail("the notebook was not saved (its file did not change): save it (Ctrl+S), "
                                    "choose \"as last saved\" and click Submit again")
                    return
            final = self.state.run(path, self._description.value.strip(), self._fact_sheet.answers())
            if final is not None and final.get("status") == Status.FINISHED:
                refresh_open_boards(self.state.competition)
        finally:
            self._button.disabled = self._closed
            if not self._closed:
                self._refresh_choices()

    def _refresh_choices(self) -> None:
        current = self._what.value
        options = self._choices()
        if list(self._what.options) != options:
            self._what.options = options
            if current in [v for _, v in options]:
                self._what.value = current

    # -- running as the judge would ---------------------------------------------------------------
    def preflight_target(self) -> Optional[Path]:
        """The notebook "Run as the judge would" runs: the chosen one when it is a notebook, else this one."""
        kind, target = self._choice()
        if kind == "save":
            return Path(target)
        if kind == "path" and Path(target).suffix == ".ipynb" and Path(target).is_file():
            return Path(target)
        return self.notebook

    def _on_preflight(self, _button: Any = None) -> None:
        """Run the notebook (as saved) as the judge would: its kernel, the phase's time limit, the public data."""
        if self.preflight.busy:
            self.preflight.stop()
            return
        if self._closed:
            return
        target = self.preflight_target()
        state = self.preflight.state
        if target is None:
            state.stage, state.error = "error", "cannot tell which notebook this is: choose or type a notebook (.ipynb)"
            state.changed()
            return
        phase = self.state.phase_info or {}
        self.preflight.start(target, limit=phase.get("execution_time_limit"), image=phase.get("image"))

    def _render_preflight(self) -> None:
        state = self.preflight.state
        running = state.busy
        self._preflight_button.description = "Stop the run" if running else "Run as the judge would"
        self._preflight_button.icon = "stop" if running else "play"
        self._preflight_status.value = state.to_html()

    # -- life -------------------------------------------------------------------------------
    @property
    def last_submission(self) -> Optional[dict[str, Any]]:
        """The final answer about the last submission made here (None before one ends)."""
        return self.state.last_submission

    def wait(self, timeout: Optional[float] = None) -> Optional[dict[str, Any]]:
        """Block until the running submission (if any) ends; returns `last_submission`."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self.last_submission

    def close(self) -> None:
        """Stop following (the submission itself goes on), then close the widget."""
        self._closed = True
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
        self.state.stop_event.set()
        self.preflight.stop()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(10)
        super().close()

    # -- drawing -----------------------------------------------------------------------------
    def _render(self) -> None:
        state = self.state
        phase = f" \u2014 phase {state.phase_name}" if state.phase_name else ""
        self._title.value = f"<b>Submit to {_esc(state.title)}</b>{_esc(phase)}"
        left = state.left_text()
        if state.registration == "none" and not state.organizer and self.client is not None:
            link = f"{self.client.prefix}competitions/{state.competition}"
            self._left.value = (f'<span>{_esc(left)} <a href="{_esc(link)}" target="_blank" rel="noopener">'
                                "Open the competition page</a></span>")
        else:
            self._left.value = f"<span>{_esc(left)}</span>" if left else ""
        self._button.disabled = state.busy or self._closed
        prefix = self.client.prefix if self.client is not None else ""
        self._status.value = state.to_html(prefix)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = _widget_bundle(self, **kwargs)
        prefix = self.client.prefix if self.client is not None else ""
        left = self.state.left_text()
        bundle["text/html"] = (f"<div><b>Submit to {_esc(self.state.title)}</b>"
                               + (f"<p>{_esc(left)}</p>" if left else "")
                               + self.state.to_html(prefix) + "</div>")
        bundle["text/plain"] = self.state.to_text()
        return bundle

    def __repr__(self) -> str:
        return f"<Submit {self.state.competition}: {self.state.stage}>"


def _start_text(moment: Any) -> Optional[str]:
    """An estimated start (ISO text, UTC) as the status line says it: `HH:MM UTC`, with the date when
    it is not today; None when there is no estimate."""
    if not isinstance(moment, str) or not moment:
        return None
    try:
        when = dt.datetime.fromisoformat(moment)
    except ValueError:
        return None
    today = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).date()
    return when.strftime("%H:%M UTC" if when.date() == today else "%Y-%m-%d %H:%M UTC")
