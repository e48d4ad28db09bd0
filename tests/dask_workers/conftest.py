"""Fixtures of the worker tests: a process executor and small programs and notebooks.

Programs are written the way bundles write them: a folder with a `metadata`
file holding `command:` with `$placeholders`, and Python scripts run by the
worker's own Python.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from dask_workers.executors.process import UnsafeProcessExecutor
from dask_workers.spec import Limits

PYTHON = sys.executable
FAST = Limits(time_limit=60, memory_mb=2048)


@pytest.fixture(scope="session")
def process_executor():
    """One process executor for the session, as on a worker (with its warm kernel)."""
    made = UnsafeProcessExecutor()
    yield made
    made.close()


def write_program(folder: Path, command: str | None, **files: str) -> Path:
    """A program folder: `metadata` with `command` (None: no metadata) and the given files."""
    folder.mkdir(parents=True, exist_ok=True)
    if command is not None:
        (folder / "metadata").write_text(f"command: {command}\n")
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def write_notebook(path: Path, *sources: str, parameters: bool = True) -> Path:
    """A notebook with a cell tagged `parameters` (unless told not to) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters:
        cell = nbformat.v4.new_code_cell("input_dir = ''\noutput_dir = ''")
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# A CodaLab-style scoring program: compares res/answer.txt with ref/answer.txt
# and writes `correct:1` (no space, as CodaLab allows) into scores.txt; it
# leaves `ran` in its output so tests can tell whether it ran at all.
SCORE_PY = """\
    import os, sys
    input_dir, output_dir = sys.argv[1], sys.argv[2]
    open(os.path.join(output_dir, 'ran'), 'w').write('yes')
    ref = open(os.path.join(input_dir, 'ref', 'answer.txt')).read().strip()
    res = open(os.path.join(input_dir, 'res', 'answer.txt')).read().strip()
    open(os.path.join(output_dir, 'scores.txt'), 'w').write('correct:%d\\n' % (ref == res))
"""


@pytest.fixture
def scoring_program(tmp_path: Path) -> Path:
    return write_program(tmp_path / "scoring_program", f"{PYTHON} $program/score.py $input $output",
                         **{"score.py": SCORE_PY})


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "answer.txt").write_text("42\n")
    return folder
