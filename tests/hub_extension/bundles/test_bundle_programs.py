"""The fixture bundles' programs are real: they run with python3 and write scores.

Commands come from each program's `metadata`, with placeholders mapped to
host folders the way the process executor lays out a run.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tests.support.bundles import FIXTURES

GOOD = FIXTURES / "good"


def unpack(source: Path, target: Path) -> Path:
    if source.is_dir():
        return source
    with zipfile.ZipFile(source) as zf:
        zf.extractall(target)
    return target


def run(folder: Path, **paths: Path) -> None:
    meta_file = next(p for p in (folder / "metadata", folder / "metadata.yaml") if p.is_file())
    command = yaml.safe_load(meta_file.read_text())["command"]
    for name in sorted(paths, key=len, reverse=True):  # $ingestion_program before $program
        command = command.replace(f"${name}", str(paths[name]))
    argv = shlex.split(command)
    assert argv[0] == "python3"
    subprocess.run([sys.executable, *argv[1:]], check=True, timeout=30, cwd=folder)


def score(program: Path, ref: Path, res: Path, tmp: Path) -> Path:
    (tmp / "input").mkdir(parents=True)
    (tmp / "input" / "ref").symlink_to(ref)
    (tmp / "input" / "res").symlink_to(res)
    run(program, program=program, input=tmp / "input", output=tmp / "output")
    return tmp / "output"


def test_codalab_results_scoring_writes_colon_scores(tmp_path):
    program = unpack(GOOD / "codalab_results" / "scoring_program.zip", tmp_path / "program")
    ref = unpack(GOOD / "codalab_results" / "reference_dev.zip", tmp_path / "ref")
    res = unpack(GOOD / "codalab_results" / "starting_kit.zip", tmp_path / "res")
    out = score(program, ref, res, tmp_path / "run")
    assert (out / "scores.txt").read_text() == "correct:1\naccuracy:1.0000\n"


def test_codalab_code_ingestion_then_scoring(tmp_path):
    bundle = GOOD / "codalab_code"
    ingestion = unpack(bundle / "ingestion_program.zip", tmp_path / "ingestion")
    submission = unpack(bundle / "starting_kit.zip", tmp_path / "submission")
    data = unpack(bundle / "input_data.zip", tmp_path / "data")
    run(ingestion, ingestion_program=ingestion, submission_program=submission, input=data,
        output=tmp_path / "pred")
    program = unpack(bundle / "scoring_program.zip", tmp_path / "program")
    ref = unpack(bundle / "reference_data.zip", tmp_path / "ref")
    out = score(program, ref, tmp_path / "pred", tmp_path / "run")
    assert "correct:1" in (out / "scores.txt").read_text()


def test_codabench_code_ingestion_then_scoring(tmp_path):
    bundle = GOOD / "codabench_code"
    run(bundle / "ingestion_program", program=bundle / "ingestion_program", input=bundle / "input_data",
        output=tmp_path / "pred", submission_program=bundle / "starting_kit")
    out = score(bundle / "scoring_program", bundle / "reference_data", tmp_path / "pred", tmp_path / "run")
    assert json.loads((out / "scores.json").read_text()) == {"accuracy": 1.0, "errors": 0}


def test_codabench_results_scoring(tmp_path):
    bundle = GOOD / "codabench_results"
    out = score(bundle / "scoring_program", bundle / "reference_data", bundle / "starting_kit", tmp_path)
    scores = json.loads((out / "scores.json").read_text())
    assert scores == {"accuracy": 2 / 3, "errors": 1}
