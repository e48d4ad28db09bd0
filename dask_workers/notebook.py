"""Notebook submissions: where the runner script is, how to call it, how to show its outcome.

The runner itself (`run_notebook.py`, next to this module) is a stand-alone
script that executes the notebook with papermill inside the runtime image.
This module is the platform side of it:

- the contract between executors and the pipeline: an executor running a
  notebook step writes the executed notebook and the runner's JSON report
  into the step's output directory under `EXECUTED_NAME` and `REPORT_NAME`;
  the pipeline moves both out of the predictions before scoring;
- `runner_argv`, the command line of the runner for an executor, and
  `warm_runner_argv` / `warm_run_description` for a runner started ahead of
  time that waits for its run (the Docker executor's warm judges);
- `describe_failure` and `render_notebook_html`, to tell the participant what
  went wrong and to show the executed notebook.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Optional, Sequence

from .safe_files import read_file

RUNNER_PATH = Path(__file__).with_name("run_notebook.py")
CONTAINER_RUNNER_PATH = "/app/.runner/run_notebook.py"

# Names in the step's output directory; the pipeline moves both files out of
# the predictions before the scoring step sees them.
EXECUTED_NAME = "executed.ipynb"
REPORT_NAME = "notebook_report.json"
# The run's description handed to a warm runner, in the step's output
# directory; the runner deletes it as soon as it has read it.
WARM_CONTROL_NAME = ".compete-run.json"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_exporters = threading.local()  # the HTML exporter of each thread (render_notebook_html)


def runner_argv(
    notebook: str,
    input_dir: str,
    output_dir: str,
    cell_timeout: Optional[float] = None,
    python: str = "python3",
    runner: str = CONTAINER_RUNNER_PATH,
) -> list[str]:
    """The runner's command line; paths as the runner will see them (container paths by default)."""
    argv = [
        python,
        runner,
        "--notebook",
        notebook,
        "--input-dir",
        input_dir,
        "--output-dir",
        output_dir,
        "--executed",
        f"{output_dir.rstrip('/')}/{EXECUTED_NAME}",
        "--report",
        f"{output_dir.rstrip('/')}/{REPORT_NAME}",
    ]
    if cell_timeout:
        argv += ["--cell-timeout", f"{cell_timeout:g}"]
    return argv


def warm_runner_argv(
    output_dir: str,
    python: str = "python3",
    runner: str = CONTAINER_RUNNER_PATH,
    preload: Sequence[str] = (),
) -> list[str]:
    """The command line of a runner started ahead of time: it waits for `WARM_CONTROL_NAME` in `output_dir`.

    `preload`: modules its kernel imports while it waits.
    """
    argv = [python, runner, "--warm", f"{output_dir.rstrip('/')}/{WARM_CONTROL_NAME}"]
    if preload:
        argv += ["--preload", ",".join(preload)]
    return argv


def warm_run_description(
    notebook: str,
    input_dir: str,
    output_dir: str,
    cell_timeout: Optional[float] = None,
    kernel: str = "python3",
) -> dict:
    """What a warm runner is handed: the arguments of `runner_argv`, by name, as the runner will see them."""
    return {
        "notebook": notebook,
        "input_dir": input_dir,
        "output_dir": output_dir,
        "executed": f"{output_dir.rstrip('/')}/{EXECUTED_NAME}",
        "report": f"{output_dir.rstrip('/')}/{REPORT_NAME}",
        "cell_timeout": cell_timeout or None,
        "kernel": kernel,
    }


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


REPORT_MAX_BYTES = 4 << 20


def read_report(path: str | Path) -> Optional[dict]:
    """The runner's report, or None when it is missing, unreadable, a link or a special file.

    The report lies in a folder the notebook could write: it is read only as
    a regular file reached without a link, and at most `REPORT_MAX_BYTES`.
    """
    if not path:
        return None
    try:
        data = json.loads(read_file(path, max_bytes=REPORT_MAX_BYTES))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_failure(report: dict) -> str:
    """One line saying which cell failed and why, then the traceback without colours."""
    if report.get("ok"):
        return "the notebook ran without errors"
    index = report.get("cell_index")
    ename = report.get("ename") or "an error"
    evalue = strip_ansi(str(report.get("evalue") or ""))
    if index is None:
        head = f"the notebook could not be run: {ename}" + (f": {evalue}" if evalue else "")
    elif report.get("timeout"):
        head = f"cell {index + 1} timed out: {evalue}"
    else:
        head = f"cell {index + 1} raised {ename}" + (f": {evalue}" if evalue else "")
    lines = [strip_ansi(str(line)) for line in report.get("traceback") or []]
    return "\n".join([head, *lines]) if lines else head


# Largest executed notebook rendered as HTML.
RENDER_MAX_BYTES = 256 * 1024 * 1024


def render_notebook_html(executed: str | Path | bytes) -> str:
    """The executed notebook (a path, or its bytes) as a stand-alone HTML page.

    Outputs are participant-controlled, so scripts and unsafe markup in
    them are removed; the platform should still serve the page sandboxed.
    A path is read only as a regular file reached without a link.
    """
    # Start-up cost: nbconvert loads its templates and exporters, only when a page is rendered.
    import nbformat
    from nbconvert import HTMLExporter

    data = executed if isinstance(executed, bytes) else read_file(executed)
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    # A new exporter loads its templates again (about 0.15 s): each thread keeps one.
    exporter = getattr(_exporters, "html", None)
    if exporter is None:
        exporter = _exporters.html = HTMLExporter(template_name="lab", sanitize_html=True)
    body, _ = exporter.from_notebook_node(nb)
    return body
