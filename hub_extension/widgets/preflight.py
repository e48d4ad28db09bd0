"""Run a notebook as the judge would, before submitting it: "Run as the judge would" of the Submit box.

`Preflight` runs a notebook from its first cell to its last, as the platform
runs a notebook submission, and tells what the participant would learn only
after spending a submission: a timeout or a failing cell.  Nothing is uploaded.

How it runs, and how that compares with the judge:

- **The kernel.**  The judge kernel installed for the phase's image (the
  phase's `image` in the competition API; `compete kernel list` shows the
  installed ones), when there is one that can start.  When the box itself
  runs in a judge kernel of that image, a fresh kernel of the same container
  (the judge's Python and packages).  Otherwise the Python of the kernel the
  box runs in, and the result says so: a package missing there may be
  present in the judge's image, and the reverse.
- **The parameters.**  As the judge's runner (papermill) does, a cell setting
  `input_dir` and `output_dir` is put after the cell tagged `parameters` (at
  the top without one).  `input_dir` is the public data: the `data` folder
  next to the notebook, where "Open in JupyterLab" puts it (without one the
  notebook keeps its own `input_dir`, and the result says so).  `output_dir`
  is a fresh `.preflight/output/` next to the notebook, so the predictions
  the notebook already wrote stay as they are; the files written there are
  listed.  The executed notebook is kept as `.preflight/executed.ipynb`.
- **The environment.**  The hub's token and the service's address are taken
  out of the kernel's environment, as in the judge: cells that need them
  (the Submit box, the leaderboard) do nothing, as there.
- **The time limit.**  The phase's `execution_time_limit` (seconds), counted
  from the first cell (starting the kernel is not counted); the run is
  stopped when it is reached, and the cell that was running is named.
- **Cells** are numbered as on the submission's page: 1 is the notebook's
  first cell, markdown included, the added parameters cell not counted.

The notebook runs with nbclient on a thread of its own (its own event loop),
so the box stays responsive; `stop()` ends a run early.  `PreflightState`
holds what is shown, `to_html()` draws it.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .common import _esc, log

PUBLIC_DATA_FOLDER = "data"      # where "Open in JupyterLab" puts the public data, next to the notebook
WORK_FOLDER = ".preflight"       # next to the notebook: output/ and executed.ipynb
# Taken out of the kernel's environment: the judge has no hub token and no service to talk to.
JUDGE_HIDES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "COMPETE_SERVICE_URL", "JPY_SESSION_NAME")
INJECTED_TAG = "injected-parameters"
# Set in the environment of a judge kernel (kernels/judge_kernel.py) to the image it runs in.
JUDGE_KERNEL_MARK = "JUPYTER_COMPETE_JUDGE_KERNEL"
KERNEL_START_TIMEOUT = 120
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# -- which kernel --------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelChoice:
    """The kernel a preflight runs in: a judge kernel (`name`), or this kernel's Python (`name` None)."""

    name: Optional[str]
    judge: bool
    note: str  # what the page says about it


def installed_judge_kernels() -> list[dict[str, Any]]:
    """The judge kernels installed here (as `compete kernel list` lists them); [] when that cannot be told."""
    try:
        # Start-up cost: listing kernel specs loads jupyter_client's, needed only when a preflight starts.
        from ..judge_specs import judge_kernels

        return list(judge_kernels())
    except Exception:  # noqa: BLE001 - no kernel machinery here: no judge kernel either
        log.exception("could not list the judge kernels")
        return []


def this_python() -> str:
    return f"Python {sys.version.split()[0]} at {sys.executable}"


def choose_kernel(image: Optional[str], kernels: Optional[list[dict[str, Any]]] = None) -> KernelChoice:
    """The judge kernel of `image` when one is installed and can start, else this kernel's Python (said why)."""
    inside = os.environ.get(JUDGE_KERNEL_MARK)
    if inside and (not image or inside == image):
        # This box runs in a judge kernel of the phase's image: its own Python is the judge's.
        return KernelChoice(None, True, f"in a fresh kernel of this judge kernel's container (image {inside}: "
                                        "the judge's Python and packages; its memory is shared with this kernel)")
    kernels = installed_judge_kernels() if kernels is None else kernels
    if inside:
        # The other image's judge kernel is not reachable from inside a container.
        return KernelChoice(None, False, f"in this judge kernel's container (image {inside}), not the phase's "
                                         f"image {image}: open the notebook with the kernel of {image}")
    if image:
        for kernel in kernels:
            if kernel.get("image") == image and not kernel.get("problem"):
                return KernelChoice(kernel["name"], True,
                                    f"in the judge kernel \u201c{kernel.get('display_name') or kernel['name']}\u201d "
                                    f"(image {image})")
        broken = [k for k in kernels if k.get("image") == image and k.get("problem")]
        why = (f"the judge kernel {broken[0]['name']} of image {image} cannot start ({broken[0]['problem']})"
               if broken else f"no judge kernel is installed for the phase's image {image} "
                              f"(`compete kernel install --image {image}` installs one)")
    else:
        why = "the service does not say which image the judge runs"
    return KernelChoice(None, False, f"in this kernel's environment ({this_python()}), not the judge's: {why}. "
                                     "A package missing here may be there, and the reverse")


# -- the notebook as the judge runs it ---------------------------------------------------------------
def parameterized(nb: Any, parameters: dict[str, str]) -> int:
    """Put a cell setting `parameters` after the cell tagged `parameters` (at the top without one), as papermill does.

    Returns the index of the added cell.
    """
    # Start-up cost: nbformat loads only when a preflight runs.
    import nbformat

    lines = [f"{name} = {json.dumps(value)}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("# Parameters\n" + "\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    at = 0
    for index, existing in enumerate(nb.cells):
        if "parameters" in (existing.get("metadata", {}).get("tags") or []):
            at = index + 1
            break
    nb.cells.insert(at, cell)
    return at


def _plain(text: str) -> str:
    return _ANSI.sub("", text or "")


# -- the state ---------------------------------------------------------------------------------------
class PreflightState:
    """One preflight, with no front end.

    `stage`: `idle`, `running`, then `passed`, `failed` (a cell raised, or the
    kernel died), `timeout` (over the phase's limit), `stopped` or `error`
    (it could not run).  `cell` is the 1-based number of the cell running or
    that failed, `elapsed` the seconds since the first cell, `limit` the
    phase's limit (None: none).
    """

    def __init__(self) -> None:
        self.stage = "idle"
        self.notebook: Optional[Path] = None
        self.kernel: Optional[KernelChoice] = None
        self.limit: Optional[float] = None
        self.elapsed = 0.0
        self.kernel_start: Optional[float] = None
        self.cell: Optional[int] = None
        self.cells = 0
        self.ename: Optional[str] = None
        self.evalue: Optional[str] = None
        self.traceback = ""
        self.error: Optional[str] = None
        self.notes: list[str] = []
        self.written: list[str] = []
        self.executed: Optional[Path] = None
        self.listeners: list[Callable[["PreflightState"], None]] = []

    @property
    def busy(self) -> bool:
        return self.stage == "running"

    def changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener(self)
            except Exception:  # noqa: BLE001 - drawing must not break the run
                log.exception("a preflight listener failed")

    # -- what is shown -------------------------------------------------------------------------
    def _time_text(self) -> str:
        if self.limit is None:
            return f"{self.elapsed:.1f} s (this phase has no time limit)"
        share = 100 * self.elapsed / self.limit if self.limit else 100.0
        return f"{self.elapsed:.1f} s of the phase's {self.limit:g} s limit ({share:.0f}%)"

    def summary(self) -> str:
        """One line: how it ended (or where it is)."""
        if self.stage == "idle":
            return ""
        if self.stage == "error":
            return f"The notebook could not be run: {self.error}"
        if self.stage == "running":
            if self.cell is None:
                return "Starting the kernel\u2026"
            return f"Running cell {self.cell} of {self.cells}: {self._time_text()}."
        if self.stage == "passed":
            return f"Every cell ran: {self._time_text()}."
        if self.stage == "timeout":
            return (f"Over the time limit: {self.elapsed:.1f} s elapsed, the phase allows {self.limit:g} s; cell "
                    f"{self.cell} was running. The judge would stop this submission: make the notebook faster "
                    "before you submit it.")
        if self.stage == "stopped":
            return f"Stopped at cell {self.cell} after {self.elapsed:.1f} s."
        where = f"Cell {self.cell}" if self.cell is not None else "The notebook"
        return f"{where} raised {self.ename}: {self.evalue}" + (f" (after {self._time_text()})" if self.cell else "")

    def to_html(self) -> str:
        if self.stage == "idle":
            return ""
        color = {"passed": "#1b7f3b", "failed": "#b00020", "timeout": "#b00020", "error": "#b00020"}.get(self.stage)
        style = f' style="color: {color};"' if color else ""
        out = [f'<div class="compete-preflight-result" data-result="{_esc(self.stage)}"'
               + (f' data-cell="{self.cell}"' if self.cell is not None and self.stage != "passed" else "") + ">"]
        if self.notebook is not None and self.kernel is not None:
            out.append(f"<p>{_esc(self.notebook.name)} as the judge would run it, "
                       f"{_esc(self.kernel.note)}.</p>")
        out.append(f'<p class="compete-preflight-summary"{style}><b>{_esc(self.summary())}</b></p>')
        if self.stage == "failed" and self.traceback.strip():
            out.append('<pre class="compete-preflight-traceback" style="white-space: pre-wrap; max-height: 20em; '
                       f'overflow: auto;">{_esc(self.traceback.strip())}</pre>')
        if self.stage == "passed":
            wrote = ", ".join(self.written[:10]) + (" \u2026" if len(self.written) > 10 else "")
            out.append(f"<p>It wrote {_esc(wrote)} to output_dir.</p>" if self.written
                       else "<p>It wrote nothing to output_dir: the judge would score no predictions.</p>")
        for note in self.notes:
            out.append(f'<p class="compete-preflight-note"><i>{_esc(note)}</i></p>')
        if self.stage not in ("running",):
            out.append("<p><i>Nothing was submitted.</i></p>")
        out.append("</div>")
        return "".join(out)

    def to_text(self) -> str:
        lines = [self.summary()]
        if self.kernel is not None:
            lines.append(f"ran {self.kernel.note}")
        if self.stage == "failed" and self.traceback.strip():
            lines.append(self.traceback.strip())
        return "\n".join(line for line in lines if line)


# -- the run -----------------------------------------------------------------------------------------
class Preflight:
    """Runs a notebook as the judge would, on a thread; `state` says how far it got and how it ended."""

    tick = 0.2  # seconds between two updates of the elapsed time

    def __init__(self, state: Optional[PreflightState] = None):
        self.state = state or PreflightState()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, notebook: str | os.PathLike, *, limit: Optional[float], image: Optional[str] = None,
              kernel: Optional[KernelChoice] = None) -> None:
        """Run `notebook` (as saved on disk) with the phase's time `limit` (seconds) and image."""
        if self.busy:
            return
        state = self.state
        listeners = state.listeners
        state.__init__()  # a fresh result; the listeners stay
        state.listeners = listeners
        state.notebook = Path(notebook)
        state.limit = float(limit) if limit else None
        state.stage = "running"
        self._stop.clear()
        state.changed()
        self._thread = threading.Thread(target=self._run, args=(Path(notebook), image, kernel), daemon=True,
                                        name="compete-preflight")
        self._thread.start()

    def stop(self) -> None:
        """End a run now (its kernel is shut down)."""
        self._stop.set()

    def wait(self, timeout: Optional[float] = None) -> PreflightState:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.state

    def _run(self, notebook: Path, image: Optional[str], kernel: Optional[KernelChoice]) -> None:
        state = self.state
        try:
            state.kernel = kernel or choose_kernel(image)
            state.changed()
            asyncio.run(self._execute(notebook, state.kernel))
        except Exception as exc:  # noqa: BLE001 - shown on the page, never raised in the notebook
            log.exception("the preflight failed")
            state.error = f"{type(exc).__name__}: {exc}"
            state.stage = "error"
        finally:
            state.changed()

    async def _execute(self, notebook: Path, kernel: KernelChoice) -> None:
        # Start-up cost: nbformat, nbclient and jupyter_client load only when a preflight runs.
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, DeadKernelError

        state = self.state
        folder = notebook.resolve().parent
        nb = nbformat.read(str(notebook), as_version=4)
        work = folder / WORK_FOLDER
        output = work / "output"
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        parameters = {"output_dir": str(output)}
        data = folder / PUBLIC_DATA_FOLDER
        if data.is_dir():
            parameters = {"input_dir": str(data), **parameters}
        else:
            state.notes.append(f"No public data next to the notebook ({PUBLIC_DATA_FOLDER}/): input_dir kept the "
                               "notebook's own value. \u201cOpen in JupyterLab\u201d on the competition page puts it "
                               "there.")
        added = parameterized(nb, parameters)
        state.cells = len(nb.cells) - 1
        env = {k: v for k, v in os.environ.items() if k not in JUDGE_HIDES}
        client = NotebookClient(nb, kernel_name=kernel.name or "python3", resources={"metadata": {"path": str(folder)}},
                                timeout=None, allow_errors=False, shutdown_kernel="immediate",
                                startup_timeout=KERNEL_START_TIMEOUT)
        client.km = client.create_kernel_manager()
        if kernel.name is None:
            client.km.kernel_spec_manager = _this_python_manager()
        started = time.monotonic()
        try:
            async with client.async_setup_kernel(env=env):
                state.kernel_start = time.monotonic() - started
                begin = time.monotonic()
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    state.cell = index + 1 - (1 if index > added else 0)
                    state.changed()
                    task = asyncio.ensure_future(client.async_execute_cell(cell, index))
                    try:
                        while not task.done():
                            await asyncio.wait({task}, timeout=self.tick)
                            state.elapsed = time.monotonic() - begin
                            if state.limit is not None and state.elapsed >= state.limit:
                                state.stage = "timeout"
                            elif self._stop.is_set():
                                state.stage = "stopped"
                            if state.stage != "running":
                                task.cancel()
                                await asyncio.wait({task}, timeout=5)
                                if task.done() and not task.cancelled():
                                    task.exception()  # retrieved: the kernel is shut down below anyway
                                break
                            state.changed()
                        if state.stage != "running":
                            break
                        task.result()
                    except CellExecutionError as exc:
                        state.stage, state.ename, state.evalue = "failed", exc.ename, _plain(exc.evalue)
                        errors = [o for o in cell.get("outputs") or [] if o.get("output_type") == "error"]
                        state.traceback = _plain("\n".join(errors[-1].get("traceback") or []) if errors
                                                 else exc.traceback)
                        break
                    except DeadKernelError:
                        state.stage, state.ename = "failed", "DeadKernelError"
                        state.evalue = "the kernel died while running this cell (killed, out of memory, or crashed)"
                        break
                    finally:
                        state.elapsed = time.monotonic() - begin
                else:
                    state.stage = "passed"
        finally:
            work.mkdir(parents=True, exist_ok=True)
            nb.cells.pop(added)
            try:
                state.executed = work / "executed.ipynb"
                nbformat.write(nb, str(state.executed))
            except OSError:
                state.executed = None
            state.written = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
            if state.stage == "running":
                state.stage = "stopped"


def _this_python_manager() -> Any:
    """A kernel spec manager that knows one kernel: this kernel's own Python (ipykernel), whatever is installed."""
    # Start-up cost: jupyter_client loads only when a preflight runs.
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name=f"Python ({sys.executable})", language="python")

    return ThisPython()
