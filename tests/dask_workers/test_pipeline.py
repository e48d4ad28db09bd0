"""The run pipeline on the process executor: results, code and notebook submissions end to end."""
from __future__ import annotations

import json
import os
import stat
import threading
import time
import zipfile
from pathlib import Path

import pytest

from dask_workers.notebook import render_notebook_html
from dask_workers.pipeline import TaskRun, combine_task_results, run_task
from dask_workers.spec import Limits
from dask_workers.workdir import DatasetError, unpack_dataset

from .conftest import FAST, PYTHON, write_notebook, write_program


@pytest.fixture
def executor(process_executor):
    return process_executor


def make_run(tmp_path: Path, kind: str, submission: Path, scoring: Path, reference: Path, **extra) -> TaskRun:
    return TaskRun(
        submission_id=extra.pop("submission_id", 7), task_index=extra.pop("task_index", 0), kind=kind,
        submission_dir=str(submission), scoring_program_dir=str(scoring), reference_data_dir=str(reference),
        work_dir=str(tmp_path / f"work-{kind}-{len(list(tmp_path.iterdir()))}"), limits=extra.pop("limits", FAST),
        **extra,
    )


def results_submission(tmp_path: Path, answer: str = "42") -> Path:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "answer.txt").write_text(answer + "\n")
    return folder


# -- results submissions --------------------------------------------------------

def test_codalab_results_submission_is_scored(tmp_path, executor, scoring_program, reference):
    statuses: list[str] = []
    run = make_run(tmp_path, "results", results_submission(tmp_path), scoring_program, reference)
    result = run_task(run, executor, on_status=statuses.append)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}
    assert statuses == ["Scoring"]  # no prediction step for results
    assert [step["name"] for step in result["steps"]] == ["scoring"]
    json.dumps(result)  # plain data, ready to travel back from the worker
    metadata = (Path(result["outputs"]["scoring_output"]) / "metadata").read_text()
    assert "exitCode: 0" in metadata


def test_wrong_answer_scores_zero_and_detailed_results_found(tmp_path, executor, reference):
    scoring = write_program(
        tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output",
        **{"score.py": """\
            import json, os, sys
            res = open(os.path.join(sys.argv[1], 'res', 'answer.txt')).read().strip()
            json.dump({'correct': float(res == '42')}, open(os.path.join(sys.argv[2], 'scores.json'), 'w'))
            open(os.path.join(sys.argv[2], 'a_page.html'), 'w').write('<p>details</p>')
        """},
    )
    run = make_run(tmp_path, "results", results_submission(tmp_path, "41"), scoring, reference)
    result = run_task(run, executor)
    assert result["scores"] == {"correct": 0.0}
    assert result["detailed_results"].endswith("a_page.html")


# -- code submissions -------------------------------------------------------------

INGESTION_PY = """\
    import os, sys
    input_dir, output_dir, program_dir, submission_dir = sys.argv[1:5]
    sys.path[:0] = [program_dir, submission_dir]
    import model
    data = open(os.path.join(input_dir, 'x.txt')).read().strip()
    open(os.path.join(output_dir, 'answer.txt'), 'w').write(model.predict(data))
"""


@pytest.fixture
def input_data(tmp_path: Path) -> Path:
    folder = tmp_path / "input_data"
    folder.mkdir()
    (folder / "x.txt").write_text("21\n")
    return folder


@pytest.fixture
def ingestion_program(tmp_path: Path) -> Path:
    return write_program(
        tmp_path / "ingestion_program",
        f"{PYTHON} $program/ingestion.py $input $output $program $submission_program",
        **{"ingestion.py": INGESTION_PY},
    )


def test_codabench_code_submission_runs_through_ingestion(tmp_path, executor, scoring_program, reference,
                                                          input_data, ingestion_program):
    submission = write_program(tmp_path / "code", None, **{"model.py": "def predict(x):\n    return str(2 * int(x))\n"})
    statuses: list[str] = []
    run = make_run(tmp_path, "code", submission, scoring_program, reference,
                   ingestion_program_dir=str(ingestion_program), input_data_dir=str(input_data))
    result = run_task(run, executor, on_status=statuses.append)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}
    assert statuses == ["Running", "Scoring"]
    assert [step["name"] for step in result["steps"]] == ["prediction", "scoring"]
    # The prediction step's metadata reaches the scoring program as input/res/metadata.
    assert "ingestionExitCode: 0" in (Path(result["outputs"]["predictions"]) / "metadata").read_text()


def test_code_submission_with_its_own_command(tmp_path, executor, scoring_program, reference, input_data):
    submission = write_program(
        tmp_path / "code", f"{PYTHON} $program/predict.py $input $output",
        **{"predict.py": """\
            import os, sys
            x = int(open(os.path.join(sys.argv[1], 'x.txt')).read())
            open(os.path.join(sys.argv[2], 'answer.txt'), 'w').write(str(x * 2))
        """},
    )
    run = make_run(tmp_path, "code", submission, scoring_program, reference, input_data_dir=str(input_data))
    result = run_task(run, executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}


def test_failed_prediction_is_never_scored(tmp_path, executor, scoring_program, reference, input_data):
    submission = write_program(
        tmp_path / "code", f"{PYTHON} $program/predict.py",
        **{"predict.py": "import sys\nprint('loading the model', file=sys.stderr)\nraise SystemExit('model file missing')\n"},
    )
    statuses: list[str] = []
    run = make_run(tmp_path, "code", submission, scoring_program, reference, input_data_dir=str(input_data))
    result = run_task(run, executor, on_status=statuses.append)
    assert result["status"] == "Failed"
    assert result["scores"] == {}
    assert "exited with code 1" in result["error"] and "model file missing" in result["error"]
    assert statuses == ["Running"]
    assert not (Path(result["outputs"]["scoring_output"]) / "ran").exists()  # the scoring program never ran
    assert not (Path(run.work_dir) / "input" / "ref").exists()  # nor was the reference put in place


def test_prediction_time_limit_fails_the_submission(tmp_path, executor, scoring_program, reference):
    submission = write_program(tmp_path / "code", "sleep 30")
    run = make_run(tmp_path, "code", submission, scoring_program, reference, limits=Limits(time_limit=1))
    started = time.monotonic()
    result = run_task(run, executor)
    assert time.monotonic() - started < 10
    assert result["status"] == "Failed"
    assert "time limit of 1 s" in result["error"]
    assert result["steps"][0]["timed_out"] is True


def test_submission_without_command_says_what_to_add(tmp_path, executor, scoring_program, reference):
    run = make_run(tmp_path, "code", results_submission(tmp_path), scoring_program, reference)
    result = run_task(run, executor)
    assert result["status"] == "Failed"
    assert "metadata" in result["error"] and "command:" in result["error"]


def test_failing_scoring_program_fails_with_its_stderr(tmp_path, executor, reference):
    scoring = write_program(tmp_path / "scoring", f"{PYTHON} -c \"raise KeyError('no column acc')\"")
    run = make_run(tmp_path, "results", results_submission(tmp_path), scoring, reference)
    result = run_task(run, executor)
    assert result["status"] == "Failed"
    assert result["error"].startswith("the scoring program exited with code 1")
    assert "KeyError: 'no column acc'" in result["error"]


def test_scoring_program_without_scores_fails(tmp_path, executor, reference):
    scoring = write_program(tmp_path / "scoring", "echo computing...")
    run = make_run(tmp_path, "results", results_submission(tmp_path), scoring, reference)
    result = run_task(run, executor)
    assert result["status"] == "Failed"
    assert "wrote no usable scores" in result["error"] and "scores.txt" in result["error"]


# -- ingestion during scoring (Codabench) ---------------------------------------------------

WAITING_SCORE_PY = """\
    import json, os, sys, time
    input_dir, output_dir, shared = sys.argv[1:4]
    done = os.path.join(shared, 'done')
    deadline = time.time() + 30
    while not os.path.exists(done) and time.time() < deadline:
        time.sleep(0.05)
    res = open(os.path.join(input_dir, 'res', 'answer.txt')).read().strip()
    ref = open(os.path.join(input_dir, 'ref', 'answer.txt')).read().strip()
    json.dump({'correct': float(res == ref), 'waited': 1.0}, open(os.path.join(output_dir, 'scores.json'), 'w'))
"""


def test_ingestion_only_during_scoring_runs_both_together(tmp_path, executor, reference, input_data):
    ingestion = write_program(
        tmp_path / "ingestion", f"{PYTHON} $program/ingest.py $input $output $shared",
        **{"ingest.py": """\
            import os, sys, time
            input_dir, output_dir, shared = sys.argv[1:4]
            time.sleep(0.3)  # the scoring program is already waiting
            x = int(open(os.path.join(input_dir, 'x.txt')).read())
            open(os.path.join(output_dir, 'answer.txt'), 'w').write(str(2 * x))
            open(os.path.join(shared, 'done'), 'w').write('1')
        """},
    )
    scoring = write_program(tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output $shared",
                            **{"score.py": WAITING_SCORE_PY})
    submission = write_program(tmp_path / "code", None, **{"model.py": ""})
    run = make_run(tmp_path, "code", submission, scoring, reference, ingestion_program_dir=str(ingestion),
                   input_data_dir=str(input_data), ingestion_only_during_scoring=True)
    result = run_task(run, executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0, "waited": 1.0}
    assert sorted(step["name"] for step in result["steps"]) == ["ingestion", "scoring"]


def test_failing_ingestion_during_scoring_stops_scoring_and_fails(tmp_path, executor, reference, input_data):
    ingestion = write_program(tmp_path / "ingestion", f"{PYTHON} -c \"raise SystemExit('bad model')\"")
    scoring = write_program(tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output $shared",
                            **{"score.py": WAITING_SCORE_PY})
    submission = write_program(tmp_path / "code", None, **{"model.py": ""})
    run = make_run(tmp_path, "code", submission, scoring, reference, ingestion_program_dir=str(ingestion),
                   input_data_dir=str(input_data), ingestion_only_during_scoring=True)
    started = time.monotonic()
    result = run_task(run, executor)
    assert time.monotonic() - started < 15  # scoring was not left waiting for its 30 s
    assert result["status"] == "Failed"
    assert "ingestion step" in result["error"] and "bad model" in result["error"]
    assert result["scores"] == {}


# -- notebook submissions -------------------------------------------------------------------

def test_notebook_predictions_get_scored(tmp_path, executor, scoring_program, reference, input_data):
    submission = tmp_path / "nb"
    write_notebook(
        submission / "solution.ipynb",
        "import os\nx = int(open(os.path.join(input_dir, 'x.txt')).read())\nprint('x is', x)",
        "open(os.path.join(output_dir, 'answer.txt'), 'w').write(str(2 * x))",
    )
    statuses: list[str] = []
    run = make_run(tmp_path, "notebook", submission, scoring_program, reference, input_data_dir=str(input_data))
    result = run_task(run, executor, on_status=statuses.append)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}
    assert statuses == ["Running", "Scoring"]
    executed = Path(result["executed_notebook"])
    assert executed.is_file() and executed.parent == Path(result["outputs"]["logs"])
    # The executed notebook and the report are not among the predictions the scoring program saw.
    assert sorted(p.name for p in Path(result["outputs"]["predictions"]).iterdir()) == ["answer.txt", "metadata"]
    html = render_notebook_html(executed)
    assert "x is" in html


def test_failing_cell_fails_with_cell_number_and_traceback(tmp_path, executor, scoring_program, reference):
    submission = tmp_path / "nb"
    write_notebook(submission / "solution.ipynb", "a = 1", "def f():\n    return 1 / 0\nf()")
    run = make_run(tmp_path, "notebook", submission, scoring_program, reference)
    result = run_task(run, executor)
    assert result["status"] == "Failed"
    # Cells of the notebook as submitted: parameters (1), a = 1 (2), the failing one (3).
    assert result["error"].startswith("the notebook failed: cell 3 raised ZeroDivisionError: division by zero")
    assert "return 1 / 0" in result["error"] and "\x1b[" not in result["error"]
    assert not (Path(result["outputs"]["scoring_output"]) / "ran").exists()
    assert Path(result["executed_notebook"]).is_file()  # kept also on failure


def test_cell_timeout_fails_the_submission(tmp_path, executor, scoring_program, reference):
    submission = tmp_path / "nb"
    write_notebook(submission / "solution.ipynb", "import time", "time.sleep(30)")
    run = make_run(tmp_path, "notebook", submission, scoring_program, reference,
                   limits=Limits(time_limit=60, cell_timeout=1))
    started = time.monotonic()
    result = run_task(run, executor)
    assert time.monotonic() - started < 15
    assert result["status"] == "Failed"
    assert "cell 3 timed out" in result["error"] and "per-cell time limit of 1 s" in result["error"]


def test_notebook_choice(tmp_path, executor, scoring_program, reference):
    submission = tmp_path / "nb"
    write_notebook(submission / "a.ipynb", "pass")
    write_notebook(submission / "b.ipynb", "pass")
    run = make_run(tmp_path, "notebook", submission, scoring_program, reference)
    result = run_task(run, executor)
    assert result["status"] == "Failed" and "a.ipynb, b.ipynb" in result["error"]


# -- cancel ------------------------------------------------------------------------------

def test_cancel_stops_the_run(tmp_path, executor, scoring_program, reference):
    submission = write_program(tmp_path / "code", "sleep 30")
    run = make_run(tmp_path, "code", submission, scoring_program, reference, submission_id=4242)
    results: list[dict] = []
    worker = threading.Thread(target=lambda: results.append(run_task(run, executor)))
    worker.start()
    deadline = time.monotonic() + 10
    while not executor.cancel(4242):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    worker.join(timeout=10)
    assert results and results[0]["status"] == "Cancelled"
    assert results[0]["scores"] == {}


# -- several tasks ---------------------------------------------------------------------------

def _task(index: int, status: str = "Finished", **scores: float) -> dict:
    return {"submission_id": 1, "task_index": index, "status": status, "scores": scores,
            "error": None if status == "Finished" else "boom", "steps": [{"name": "scoring"}],
            "outputs": {"logs": f"/w/{index}"}, "detailed_results": None, "executed_notebook": None}


def test_combine_tasks_unions_scores_and_later_task_wins():
    combined = combine_task_results([_task(1, acc=0.9, f1=0.5), _task(0, acc=0.7, auc=0.6)])
    assert combined["status"] == "Finished"
    assert combined["scores"] == {"acc": 0.9, "f1": 0.5, "auc": 0.6}
    assert combined["warnings"] == ["score 'acc' written by tasks 0 and 1: the value of task 1 is kept on the "
                                    "leaderboard; each task's own value is in its scores per task"]
    # Each task's own scores stay in its result; with an aggregation step coming, no union and no clash.
    assert [t["scores"] for t in combined["tasks"]] == [{"acc": 0.7, "auc": 0.6}, {"acc": 0.9, "f1": 0.5}]
    aggregated = combine_task_results([_task(1, acc=0.9, f1=0.5), _task(0, acc=0.7, auc=0.6)], aggregated=True)
    assert (aggregated["status"], aggregated["scores"], aggregated["warnings"]) == ("Finished", {}, [])
    assert [step["task_index"] for step in combined["steps"]] == [0, 1]
    assert set(combined["outputs"]["tasks"]) == {"0", "1"}


def test_combine_tasks_fails_naming_the_task():
    combined = combine_task_results([_task(0, acc=0.7), _task(1, "Failed"), _task(2, "Cancelled")])
    assert combined["status"] == "Failed"
    assert combined["error"] == "task 1: boom"
    assert combined["scores"] == {}
    assert combine_task_results([_task(0), _task(1, "Cancelled")])["status"] == "Cancelled"
    with pytest.raises(ValueError):
        combine_task_results([])


# -- run spec and datasets ----------------------------------------------------------------------

def test_task_run_round_trips_through_json(tmp_path):
    run = TaskRun(submission_id=1, task_index=2, kind="notebook", submission_dir="/s", scoring_program_dir="/p",
                  work_dir="/w", limits=Limits(time_limit=5, cell_timeout=2), ingestion_only_during_scoring=True)
    assert TaskRun.from_json(run.to_json()) == run
    with pytest.raises(ValueError, match="kind"):
        TaskRun.from_dict({**run.to_dict(), "kind": "docker"})


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] = {}) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, target)
    return path


def test_unpack_dataset_once_read_only(tmp_path):
    archive = _zip(tmp_path / "ref.zip", {"answer.txt": b"42", "sub/more.txt": b"x"})
    first = unpack_dataset(archive, tmp_path / "cache")
    assert (first / "answer.txt").read_text() == "42" and (first / "sub" / "more.txt").is_file()
    assert not os.stat(first / "answer.txt").st_mode & 0o222
    (tmp_path / "cache" / "marker").write_text("")
    assert unpack_dataset(archive, tmp_path / "cache") == first  # already there: not unpacked again
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.parametrize("members,links,message", [
    ({"../evil.txt": b"x"}, {}, "outside the archive"),
    ({"/etc/evil": b"x"}, {}, "absolute"),
    ({"ok.txt": b"x"}, {"link": "/etc/passwd"}, "symbolic link"),
])
def test_unpack_dataset_refuses_unsafe_archives(tmp_path, members, links, message):
    archive = _zip(tmp_path / "bad.zip", members, links)
    with pytest.raises(DatasetError, match=message):
        unpack_dataset(archive, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-unpacked stays behind


def test_unpack_dataset_bounds_size(tmp_path):
    archive = _zip(tmp_path / "big.zip", {"big.bin": b"0" * 10_000})
    with pytest.raises(DatasetError, match="more than 1000 bytes"):
        unpack_dataset(archive, tmp_path / "cache", max_bytes=1000)
    with pytest.raises(DatasetError, match="not a readable ZIP"):
        unpack_dataset(_not_zip(tmp_path), tmp_path / "cache")


def _not_zip(tmp_path: Path) -> Path:
    path = tmp_path / "notzip.zip"
    path.write_bytes(b"hello")
    return path
