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

    python3 run_notebook.py --warm CONTROL.json [--preload numpy,pandas]

is the same run started ahead of time (a warm judge of the Docker
executor): papermill and nbclient are imported and a kernel is started and
answering, then the script waits for CONTROL.json to appear (written at
once, by a rename, when a submission is handed over).  The file holds the
arguments above by name (`notebook`, `input_dir`, `output_dir`, `executed`,
`report`, `cell_timeout`, `kernel`); it is deleted as soon as it is read,
and the notebook runs on the kernel that is already up (which has
imported the `--preload` modules, if any, without binding their names).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

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


# papermill writes the executed notebook when each cell starts and ends (the
# whole notebook, validated, each time: quadratic in the number of cells).
# Here it is written at most once per this many seconds while cells run, and
# always at the end, also when a cell failed, timed out or the kernel died.
SAVE_INTERVAL = 1.0
_ENGINE = "jupyter-compete"


def _register_engine() -> str:
    """The name of papermill's nbclient engine with its notebook writes spaced out (`SAVE_INTERVAL`)."""
    # Start-up cost: papermill takes seconds to import; loaded only to execute.
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    if _ENGINE in papermill_engines._engines:
        return _ENGINE

    class SpacedSavesManager(NotebookExecutionManager):
        _final = False
        _saved_at = float("-inf")

        def save(self, **kwargs: Any) -> None:
            now = time.monotonic()
            if self._final or now - self._saved_at >= SAVE_INTERVAL:
                super().save(**kwargs)
                self._saved_at = now

        def notebook_complete(self, **kwargs: Any) -> None:
            self._final = True
            super().notebook_complete(**kwargs)

    class SpacedSavesEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):  # type: ignore[override]
            # Engine.execute_notebook with the manager above.
            nb_man = SpacedSavesManager(nb, output_path=output_path, progress_bar=progress_bar,
                                        log_output=log_output, autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(_ENGINE, SpacedSavesEngine)
    return _ENGINE


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
            engine_name=_register_engine(),
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


def _quick_ready_client_class() -> type:
    """A kernel client that is ready as soon as the kernel answers one silent execution.

    jupyter_client's own `wait_for_ready` waits a further 0.2 s for IOPub to
    fall silent.  Here the reply to a silent `pass` proves the shell channel
    and its `idle` status proves IOPub is subscribed; `pass` is sent again
    until both arrive.
    """
    # Start-up cost: loaded with the notebook libraries, by the warm runner only.
    from queue import Empty
    from jupyter_client.asynchronous import AsyncKernelClient

    class QuickReadyClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: Optional[float] = None) -> None:  # type: ignore[override]
            deadline = time.monotonic() + (timeout or 60)
            while time.monotonic() < deadline:
                msg_id = self.execute("pass", silent=True, store_history=False)
                while True:
                    reply = await self.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                try:
                    while True:
                        msg = await self.iopub_channel.get_msg(timeout=0.05)
                        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                                and msg["content"].get("execution_state") == "idle"):
                            return
                except Empty:
                    continue  # IOPub was not subscribed yet: the status went unseen
            raise RuntimeError(f"the kernel did not answer within {timeout or 60:g} s")

    return QuickReadyClient


def preload_code(modules: Sequence[str]) -> str:
    """Code importing `modules` in a namespace of its own (no name of the notebook's is bound); failures skipped."""
    return ("exec('for name in names:\\n    try:\\n        __import__(name)\\n"
            "    except Exception:\\n        pass', {'names': %r})" % (list(modules),))


def preload_in(client: Any, modules: Sequence[str], timeout: float = 120) -> None:
    """Import `modules` in the kernel of a started, ready blocking `client`; return once it has."""
    msg_id = client.execute(preload_code(modules), silent=True, store_history=False)
    while client.get_shell_msg(timeout=timeout)["parent_header"].get("msg_id") != msg_id:
        pass


def _start_kernel(kernel_name: str, preload: tuple[str, ...] = ()) -> Any:
    """A started kernel answering requests, its manager handing out quick-ready clients; None on failure.

    The modules of `preload` are imported in the kernel, silently and in a
    namespace of their own: the notebook's names are untouched, its imports
    of them are then instant.  A module that cannot be imported is skipped.
    """
    # Start-up cost: loaded with the notebook libraries, by the warm runner only.
    from jupyter_client.blocking import BlockingKernelClient
    from jupyter_client.manager import KernelManager

    try:
        km = KernelManager(kernel_name=kernel_name)
        km.start_kernel()
        probe = BlockingKernelClient(connection_file=km.connection_file)
        probe.load_connection_file()
        probe.start_channels()
        try:
            probe.wait_for_ready(timeout=60)
            if preload:
                preload_in(probe, preload)
        finally:
            probe.stop_channels()
        km.client_factory = _quick_ready_client_class()
        return km
    except Exception as error:  # noqa: BLE001 - the run then starts its own kernel, and reports
        print(f"the kernel could not be started ahead of time: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def _rehearse(kernel_name: str) -> None:
    """Prepare (not run) a one-cell notebook, so that papermill's first-use work is done before the run.

    The notebook schema's validator is compiled on first use (a fifth of a
    second); papermill's reading, parameterizing and writing load the rest.
    """
    # Start-up cost: loaded with the notebook libraries, by the warm runner only.
    import tempfile
    import nbformat
    import papermill

    try:
        with tempfile.TemporaryDirectory(prefix="rehearsal-") as folder:
            nb = nbformat.v4.new_notebook(cells=[
                nbformat.v4.new_code_cell("input_dir = ''\noutput_dir = ''", metadata={"tags": ["parameters"]})])
            source, target = Path(folder) / "in.ipynb", Path(folder) / "out.ipynb"
            nbformat.write(nb, str(source))
            papermill.execute_notebook(str(source), str(target), parameters={"input_dir": "", "output_dir": ""},
                                       kernel_name=kernel_name, language="python", prepare_only=True,
                                       progress_bar=False, log_output=False)
            nbformat.read(str(target), as_version=4)
        # Validators are compiled per minor version and strictness: those of
        # the notebooks Jupyter writes today (4.4, 4.5), strict and relaxed.
        from nbformat.validator import get_validator

        for minor in (4, 5):
            for relax in (False, True):
                get_validator(4, minor, relax_add_props=relax)
    except Exception as error:  # noqa: BLE001 - a rehearsal only saves time
        print(f"the runner's rehearsal failed: {type(error).__name__}: {error}", file=sys.stderr)


def serve_warm(control: str | os.PathLike, kernel_name: str = "python3", poll: float = 0.005,
               preload: tuple[str, ...] = ()) -> int:
    """Start a kernel, wait for the run's description at `control`, run it; the exit code of `main`.

    The kernel is left running: the caller ends the process, and the container with it.
    """
    # Start-up cost: imported now, before the run is handed over.
    import nbclient  # noqa: F401
    import papermill  # noqa: F401

    km = _start_kernel(kernel_name, preload)
    _rehearse(kernel_name)
    control = Path(control)
    while not control.exists():
        time.sleep(poll)
    run = json.loads(control.read_text())
    control.unlink()
    kernel = str(run.get("kernel") or "python3")
    extra = {"km": km} if km is not None and kernel == kernel_name else {}
    report = execute(
        run["notebook"], run["input_dir"], run["output_dir"], run["executed"], run["report"],
        cell_timeout=run.get("cell_timeout"), kernel_name=kernel, **extra,
    )
    return _exit_code(report)


def _exit_code(report: dict) -> int:
    if not report["ok"]:
        where = "" if report["cell_index"] is None else f"cell {report['cell_index'] + 1} "
        print(f"{where}raised {report['ename']}: {report['evalue']}", file=sys.stderr)
    return 0 if report["ok"] else 1


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Execute a notebook submission with papermill.")
    parser.add_argument("--warm", metavar="CONTROL", default=None,
                        help="start a kernel now and run the notebook described by CONTROL once it appears")
    parser.add_argument("--preload", default="",
                        help="with --warm: comma-separated modules imported in the kernel beforehand")
    parser.add_argument("--notebook")
    parser.add_argument("--input-dir")
    parser.add_argument("--output-dir")
    parser.add_argument("--executed")
    parser.add_argument("--report")
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)
    if args.warm:
        preload = tuple(name.strip() for name in args.preload.split(",") if name.strip())
        code = serve_warm(args.warm, args.kernel, preload=preload)
        # The container ends with this process, and its kernel with it: the
        # interpreter's own shutdown and the kernel's are time the step would wait.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    missing = [name for name in ("notebook", "input_dir", "output_dir", "executed", "report")
               if getattr(args, name) is None]
    if missing:
        parser.error("the following arguments are required: "
                     + ", ".join("--" + name.replace("_", "-") for name in missing))
    report = execute(
        args.notebook,
        args.input_dir,
        args.output_dir,
        args.executed,
        args.report,
        cell_timeout=args.cell_timeout,
        kernel_name=args.kernel,
    )
    return _exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
