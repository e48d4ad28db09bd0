"""Execute a participant's notebook with papermill and report how it went.

This script is the prediction step of a notebook submission.  The Docker
executor runs it inside the runtime image (mounted read-only at
`/app/.runner/run_notebook.py`), the process executor imports it and calls
`execute` in the worker process.  It therefore imports nothing of this
project: only the standard library, papermill and nbformat.

    python3 run_notebook.py --notebook NB --input-dir DIR --output-dir DIR \
        --executed OUT.ipynb --report REPORT.json [--cell-timeout S]

The notebook receives `input_dir` and `output_dir` as papermill parameters
(in the cell tagged `parameters`, or in a cell papermill adds at the top).
The executed notebook is always written, also when a cell fails, because it
is the participant's best feedback.  The report is a JSON object:

    {"ok": bool, "cell_index": int|None, "execution_count": int|None,
     "ename": str|None, "evalue": str|None, "traceback": [str],
     "timeout": bool}

`cell_index` counts the cells of the notebook as submitted (0-based, the
cells papermill adds are not counted).  Exit code 0 when every cell ran,
1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional

# Tags papermill puts on the cells it adds to the executed notebook.
_ADDED_CELL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def _participant_cells(nb: Any) -> list:
    """The cells of the notebook as the participant wrote it."""
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if not tags & _ADDED_CELL_TAGS:
            cells.append(cell)
    return cells


def _locate_failure(executed: Path, timeout: bool) -> tuple[Optional[int], Optional[int], Any]:
    """(cell_index, execution_count, cell) of the cell where execution stopped.

    A raising cell is marked `exception: true` by papermill; a cell stopped
    by a time-out or a dying kernel is not marked, so it is the last cell
    that was started.
    """
    # Start-up cost: the runner's --help and argument errors answer before the notebook libraries load.
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - a missing or broken file only loses the location
        return None, None, None
    found: tuple[Optional[int], Optional[int], Any] = (None, None, None)
    for index, cell in enumerate(_participant_cells(nb)):
        meta = cell.get("metadata", {}).get("papermill", {})
        if not timeout and meta.get("exception") is True:
            return index, cell.get("execution_count"), cell
        if meta.get("start_time"):
            found = (index, cell.get("execution_count"), cell)
    return found if timeout else (None, None, None)


def _ensure_executed_exists(notebook: Path, executed: Path, reason: str) -> None:
    """Leave a notebook at `executed` even when papermill never wrote one."""
    if executed.exists():
        return
    # Start-up cost: the runner's --help and argument errors answer before the notebook libraries load.
    import nbformat

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except Exception:  # noqa: BLE001 - the notebook itself is unreadable
        nb = nbformat.v4.new_notebook()
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**This notebook could not be run:** {reason}"))
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(executed))


def execute(
    notebook: str | os.PathLike,
    input_dir: str,
    output_dir: str,
    executed: str | os.PathLike,
    report: str | os.PathLike | None = None,
    cell_timeout: Optional[float] = None,
    kernel_name: str = "python3",
    language: str = "python",
    **engine_kwargs: Any,
) -> dict:
    """Run the notebook, write the executed notebook (and the report); return the report.

    `engine_kwargs` go to papermill's engine and from there to nbclient
    (for example `km=` to run on a kernel that is already started).
    """
    # Start-up cost: papermill takes seconds to import; loaded only to execute.
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    notebook, executed = Path(notebook), Path(executed)
    executed.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "ok": False,
        "cell_index": None,
        "execution_count": None,
        "ename": None,
        "evalue": None,
        "traceback": [],
        "timeout": False,
    }
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters={"input_dir": input_dir, "output_dir": output_dir},
            kernel_name=kernel_name,
            # Notebooks written by tools other than Jupyter may lack language metadata.
            language=language,
            # nbclient takes whole seconds; round up so a limit is never shortened.
            execution_timeout=max(1, math.ceil(cell_timeout)) if cell_timeout else None,
            progress_bar=False,
            log_output=False,
            **engine_kwargs,
        )
        result["ok"] = True
    except PapermillExecutionError as error:
        index, count, _ = _locate_failure(executed, timeout=False)
        result.update(
            cell_index=index,
            execution_count=count if count is not None else error.exec_count,
            ename=error.ename,
            evalue=error.evalue,
            traceback=list(error.traceback or []),
        )
    except CellTimeoutError:
        index, count, _ = _locate_failure(executed, timeout=True)
        limit = f"{cell_timeout:g} s" if cell_timeout else "its limit"
        result.update(
            cell_index=index,
            execution_count=count,
            ename="CellTimeoutError",
            evalue=f"the cell did not finish within the per-cell time limit of {limit}",
            timeout=True,
        )
    except DeadKernelError:
        index, count, _ = _locate_failure(executed, timeout=True)
        result.update(
            cell_index=index,
            execution_count=count,
            ename="DeadKernelError",
            evalue="the kernel died while running this cell (killed, out of memory, or crashed)",
        )
    except Exception as error:  # noqa: BLE001 - anything else is still the participant's to see
        result.update(ename=type(error).__name__, evalue=str(error) or repr(error))
    if not result["ok"]:
        _ensure_executed_exists(notebook, executed, f"{result['ename']}: {result['evalue']}")
    if report is not None:
        Path(report).parent.mkdir(parents=True, exist_ok=True)
        Path(report).write_text(json.dumps(result, indent=1))
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook submission with papermill.")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--input-dir", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--executed", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    report = execute(
        args.notebook,
        args.input_dir,
        args.output_dir,
        args.executed,
        args.report,
        cell_timeout=args.cell_timeout,
        kernel_name=args.kernel,
    )
    if not report["ok"]:
        where = "" if report["cell_index"] is None else f"cell {report['cell_index'] + 1} "
        print(f"{where}raised {report['ename']}: {report['evalue']}", file=sys.stderr)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
