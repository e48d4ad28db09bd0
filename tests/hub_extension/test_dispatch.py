"""Submissions end to end on the default queue: its real process (scheduler and workers), real executors.

The demo competition's own scoring program computes the expected scores: the
test runs it directly on the same predictions and compares.
"""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"
NOTEBOOK = DEMO / "starting_kit" / "starting_kit.ipynb"


def expected_scores(predictions_dir: Path, tmp_path: Path) -> dict:
    """What the demo's scoring program says of these predictions, run by hand."""
    case = tmp_path / "by-hand"
    (case / "ref").mkdir(parents=True)
    (case / "res").mkdir()
    (case / "ref" / "labels.csv").write_bytes((DEMO / "reference_data" / "labels.csv").read_bytes())
    (case / "res" / "predictions.csv").write_bytes((predictions_dir / "predictions.csv").read_bytes())
    subprocess.run([sys.executable, str(DEMO / "scoring_program" / "score.py"), str(case), str(case / "out")], check=True)
    return json.loads((case / "out" / "scores.json").read_text())


def zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return target


class Stack:
    def __init__(self, home: Path, executor: str):
        from hub_extension.dispatch import Dispatcher

        self.platform = Platform(home=str(home))
        self.platform.config.executor = executor
        self.slug, _ = self.platform.create_competition(DEMO, LOCAL_ADMIN)
        self.dispatcher = Dispatcher(self.platform)
        self.users = 0

    def run(self, path: Path, timeout: float = 300) -> dict:
        self.users += 1
        user = f"user{self.users}"
        self.platform.register(self.slug, user, LOCAL_ADMIN)
        sid = self.platform.submit(self.slug, path, username=user, actor=LOCAL_ADMIN)
        assert self.dispatcher.dispatch(sid)
        return self.dispatcher.wait(sid, timeout)

    def close(self):
        self.dispatcher.close()
        self.platform.close()


@pytest.fixture(scope="module")
def process_stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("process-home"), "process")
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory, request):
    request.getfixturevalue("runtime_image")
    stack = Stack(tmp_path_factory.mktemp("docker-home"), "docker")
    yield stack
    stack.close()


@pytest.fixture(params=["process", "docker"])
def stack(request):
    return request.getfixturevalue(f"{request.param}_stack")


def test_results_submission_gets_its_scoring_programs_scores(stack, tmp_path):
    preds = DEMO / "sample_submissions" / "petal_rule"
    info = stack.run(zip_of(preds, tmp_path / "p.zip"))
    assert info["status"] == m.FINISHED, info["error"]
    want = expected_scores(preds, tmp_path)
    assert info["scores"] == pytest.approx(want)
    assert [h["status"] for h in info["history"]][0] == m.SUBMITTED
    assert info["history"][-1]["status"] == m.FINISHED
    board = stack.platform.leaderboard(stack.slug)
    assert info["id"] in [row["submission"] for row in board["rows"]]


def test_notebook_submission_is_scored_and_rendered(stack, tmp_path):
    info = stack.run(NOTEBOOK)
    assert info["status"] == m.FINISHED, info["error"]
    assert 0.5 < info["scores"]["accuracy"] <= 1.0
    html = stack.platform.store.file_path(info["artifacts"]["executed_notebook_html"])
    assert "<html" in html.read_text().lower() and "wrote 45 predictions" in html.read_text()
    states = [h["status"] for h in info["history"]]
    assert states.index(m.RUNNING) < states.index(m.SCORING) < states.index(m.FINISHED)


def test_failing_notebook_cell_fails_the_submission_with_the_cell(stack, tmp_path):
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, str(bad))
    info = stack.run(bad)
    assert info["status"] == m.FAILED
    assert "ZeroDivisionError" in info["error"] and "cell" in info["error"]
    assert info["scores"] == {}


def test_failed_prediction_is_never_scored(stack, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "metadata").write_text("command: python3 -c 'import sys; sys.exit(3)'\n")
    info = stack.run(zip_of(code, tmp_path / "code.zip"))
    assert info["status"] == m.FAILED
    assert info["scores"] == {}
    with stack.platform.db.session() as s:
        steps = [r.step for r in s.query(m.Run).filter_by(submission_id=info["id"])]
    assert "scoring" not in steps and steps, steps


def test_the_platforms_output_cap_stops_a_step_that_writes_too_much(stack, tmp_path):
    """c.Compete.step_output_mb travels with the job and the worker enforces it."""
    code = tmp_path / "flood"
    code.mkdir()
    (code / "metadata").write_text(
        "command: python3 -c \"import sys, time; open(sys.argv[1] + '/big.bin', 'wb').write(b'0' * 8000000); "
        "time.sleep(3)\" $output\n")
    before = stack.platform.config.step_output_mb
    stack.platform.config.step_output_mb = 3
    try:
        info = stack.run(zip_of(code, tmp_path / "flood.zip"))
    finally:
        stack.platform.config.step_output_mb = before
    assert info["status"] == m.FAILED
    assert "output over 3 MB" in info["error"], info["error"]
    assert info["scores"] == {}


def test_docker_runs_record_the_image_and_its_digest(docker_stack, tmp_path):
    info = docker_stack.run(zip_of(DEMO / "sample_submissions" / "constant", tmp_path / "c.zip"))
    assert info["status"] == m.FINISHED
    with docker_stack.platform.db.session() as s:
        runs = s.query(m.Run).filter_by(submission_id=info["id"]).all()
    assert runs and all(r.image and r.image_digest for r in runs)


def test_cli_submit_json_contract(tmp_path):
    home = tmp_path / "home"
    base = [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--executor", "process"]
    created = subprocess.run(base + ["competition", "create", str(DEMO)], capture_output=True, text=True, timeout=120)
    slug = created.stdout.strip().splitlines()[-1]
    preds = zip_of(DEMO / "sample_submissions" / "constant", tmp_path / "c.zip")
    proc = subprocess.run(base + ["submit", slug, str(preds), "--user", "dora", "--wait", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(last) == {"id", "status", "scores", "error", "elapsed"}
    assert last["status"] == "Finished" and last["error"] is None and last["elapsed"] > 0
    assert last["scores"] == pytest.approx(expected_scores(DEMO / "sample_submissions" / "constant", tmp_path))
    shown = subprocess.run(base + ["submission", "show", str(last["id"]), "--json", "--logs"],
                           capture_output=True, text=True, timeout=120)
    assert json.loads(shown.stdout)["participant"] == "dora"
