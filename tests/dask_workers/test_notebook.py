"""The notebook runner script (as the Docker executor calls it) and its helpers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from dask_workers.notebook import (
    EXECUTED_NAME, REPORT_NAME, RUNNER_PATH, describe_failure, render_notebook_html, runner_argv,
)

from .conftest import write_notebook


def run_cli(tmp_path: Path, notebook: Path, *extra: str) -> tuple[int, dict, Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    argv = runner_argv(str(notebook), str(tmp_path), str(out), python=sys.executable, runner=str(RUNNER_PATH))
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=120)
    return done.returncode, json.loads((out / REPORT_NAME).read_text()), out / EXECUTED_NAME


def test_runner_is_stand_alone():
    # It runs inside the runtime image, where this project is not installed.
    source = RUNNER_PATH.read_text()
    assert "dask_workers" not in source.replace("dask_workers/", "") and "from ." not in source


def test_cli_injects_parameters_without_a_parameters_cell(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb",
                              "open(output_dir + '/p.txt', 'w').write(input_dir)", parameters=False)
    code, report, executed = run_cli(tmp_path, notebook)
    assert code == 0 and report["ok"] is True
    assert (tmp_path / "out" / "p.txt").read_text() == str(tmp_path)
    tags = [cell.metadata.get("tags", []) for cell in nbformat.read(str(executed), as_version=4).cells]
    assert ["injected-parameters"] in tags


def test_cli_reports_a_failing_cell_and_keeps_the_executed_notebook(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", "print('before')", "1 / 0", "print('never')")
    code, report, executed = run_cli(tmp_path, notebook)
    assert code == 1
    assert report["ok"] is False
    assert report["cell_index"] == 2  # parameters cell, print, then the failing cell
    assert report["ename"] == "ZeroDivisionError" and report["evalue"] == "division by zero"
    assert any("ZeroDivisionError" in line for line in report["traceback"])
    nb = nbformat.read(str(executed), as_version=4)
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert any(out.get("text") == "before\n" for out in outputs)
    assert not any(out.get("text") == "never\n" for out in outputs)


def test_cli_reports_a_cell_timeout(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", "import time\ntime.sleep(30)")
    code, report, executed = run_cli(tmp_path, notebook, "--cell-timeout", "1")
    assert code == 1
    assert report["timeout"] is True and report["ename"] == "CellTimeoutError" and report["cell_index"] == 1
    assert executed.is_file()


def test_cli_on_an_unreadable_notebook_still_writes_both_files(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    code, report, executed = run_cli(tmp_path, broken)
    assert code == 1 and report["ok"] is False and report["cell_index"] is None
    assert executed.is_file()
    assert describe_failure(report).startswith("the notebook could not be run:")


def test_describe_failure_strips_colours():
    report = {"ok": False, "cell_index": 2, "ename": "ZeroDivisionError", "evalue": "division by zero",
              "traceback": ["\x1b[31mZeroDivisionError\x1b[39m Traceback", "\x1b[32m----> 1\x1b[39m 1/0"]}
    assert describe_failure(report) == (
        "cell 3 raised ZeroDivisionError: division by zero\nZeroDivisionError Traceback\n----> 1 1/0"
    )
    assert describe_failure({"ok": True}) == "the notebook ran without errors"
    timeout = {"ok": False, "cell_index": 0, "ename": "CellTimeoutError", "evalue": "too slow", "timeout": True}
    assert describe_failure(timeout) == "cell 1 timed out: too slow"


def test_render_html_shows_outputs_and_drops_scripts(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.93\n"),
        nbformat.v4.new_output("display_data", data={"text/html": "<b>bold</b><script>alert('pwned')</script>"}),
    ]
    nb.cells.append(cell)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, str(path))
    html = render_notebook_html(path)
    assert "accuracy 0.93" in html and "<b>bold</b>" in html
    assert "<script>alert('pwned')" not in html  # escaped or removed, never run


def test_executed_notebook_is_written_a_few_times_not_at_every_cell(tmp_path, monkeypatch):
    # papermill writes (and validates) the whole notebook when each cell starts and ends;
    # the runner spaces those writes out and always writes the final state.
    import papermill.engines

    from dask_workers import run_notebook

    writes = []
    real_write = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), real_write(nb, path)))
    notebook = write_notebook(tmp_path / "nb.ipynb", *[f"value_{i} = {i}\nprint(value_{i})" for i in range(40)])
    executed = tmp_path / "out" / EXECUTED_NAME

    report = run_notebook.execute(notebook, str(tmp_path), str(tmp_path / "out"), executed)

    assert report["ok"] is True
    assert 1 <= len(writes) <= 10  # unspaced: 86 (two per cell, the start and the end)
    cells = nbformat.read(str(executed), as_version=4).cells
    # A busy kernel may send one print as two stream messages: compare the whole text.
    printed = "".join("".join(o.get("text", "")) for cell in cells for o in cell.get("outputs", []))
    assert printed == "".join(f"{i}\n" for i in range(40))
    assert all(cell.metadata.papermill["status"] == "completed" for cell in cells)


def test_timed_out_cell_after_many_quick_cells_is_located(tmp_path):
    notebook = write_notebook(tmp_path / "nb.ipynb", *[f"x_{i} = {i}" for i in range(30)], "import time",
                              "time.sleep(30)")
    code, report, executed = run_cli(tmp_path, notebook, "--cell-timeout", "1")
    assert code == 1
    assert report["timeout"] is True
    assert report["cell_index"] == 32  # the parameters cell, 30 quick cells, the import, then the sleep
    assert describe_failure(report).startswith("cell 33 timed out")
