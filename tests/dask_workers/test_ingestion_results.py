"""Results submissions in tasks with an ingestion program, and the `$placeholder` table of commands.

The pipeline runs on the process executor (real processes); the end-to-end
runs in Docker are in tests/hub_extension/bundles/test_ingestion_end_to_end.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from dask_workers.executors.base import substitute_placeholders
from dask_workers.pipeline import PLATFORM_MARK, TaskRun, combine_task_results, run_task
from dask_workers.spec import (CODABENCH_PLACEHOLDERS, CODALAB_PLACEHOLDERS, PLACEHOLDERS, Limits, StepSpec,
                               resolve_command)

from .conftest import FAST, PYTHON, write_program

# -- the placeholder table ----------------------------------------------------------------------

EVERY = set(CODABENCH_PLACEHOLDERS)
TABLE = [
    ("prediction", "program", "/app/program"),
    ("prediction", "ingestion_program", "/app/program"),
    ("prediction", "submission_program", "/app/ingested_program"),
    ("prediction", "input", "/app/input_data"),
    ("prediction", "output", "/app/output"),
    ("prediction", "tmp", "/app/output"),
    ("prediction", "predictions", "/app/output"),
    ("prediction", "shared", "/app/shared"),
    ("prediction", "hidden", "/app/input/ref"),
    ("scoring", "program", "/app/program"),
    ("scoring", "ingestion_program", "/app/program"),
    ("scoring", "submission_program", "/app/ingested_program"),
    ("scoring", "input", "/app/input"),
    ("scoring", "output", "/app/output"),
    ("scoring", "tmp", "/app/output"),
    ("scoring", "predictions", "/app/input/res"),
    ("scoring", "hidden", "/app/input/ref"),
    ("scoring", "shared", "/app/shared"),
]


def test_both_workers_know_the_same_nine_placeholders_and_every_step_maps_each():
    assert set(CODALAB_PLACEHOLDERS) == set(CODABENCH_PLACEHOLDERS)
    assert len(CODABENCH_PLACEHOLDERS) == 9
    for step in ("prediction", "ingestion", "scoring"):
        assert set(PLACEHOLDERS[step]) == EVERY
    assert {(step, name) for step, name, _ in TABLE} == {(s, n) for s in ("prediction", "scoring") for n in EVERY}


@pytest.mark.parametrize("step,name,path", TABLE)
def test_each_placeholder_becomes_its_container_path(step, name, path):
    command, notes = resolve_command(f"run ${name}/file ${{{name}}}", step, mounted=EVERY)
    assert command == f"run {path}/file {path}"
    assert len(notes) == (1 if name == "tmp" else 0)
    assert substitute_placeholders(f"run ${name}/file", step) == f"run {path}/file"
    if step == "prediction":
        assert resolve_command(f"${name}", "ingestion")[0] == path


def test_host_paths_replace_the_container_paths():
    command, _ = resolve_command("$program/score.py $input $output $hidden", "scoring",
                                 {"program": "/w/p", "input": "/w/in", "output": "/w/out", "hidden": "/w/in/ref"})
    assert command == "/w/p/score.py /w/in /w/out /w/in/ref"


def test_a_word_that_starts_with_a_placeholder_is_read_as_the_workers_read_it():
    command, notes = resolve_command("python a.py $input_data $programs", "prediction")
    assert command == "python a.py /app/input_data_data /app/programs"
    assert any("`$input_data` in the command is read as `$input` followed by `_data`" in n for n in notes)
    assert any("`$programs` in the command is read as `$program` followed by `s`" in n for n in notes)


def test_an_unknown_word_is_left_to_the_shell_and_said():
    command, notes = resolve_command("PYTHONPATH=$PYTHONPATH:$program python $model_dir/x.py ${data}",
                                     "prediction")
    assert command == "PYTHONPATH=$PYTHONPATH:/app/program python $model_dir/x.py ${data}"
    assert len(notes) == 3
    for word in ("$PYTHONPATH", "$model_dir", "$data"):
        assert any(n.startswith(f"`{word}` in the command is no placeholder of CodaLab or Codabench") for n in notes)
    assert "left to the shell" in notes[0]


def test_shell_syntax_that_is_no_word_is_untouched():
    text = "sh -c 'echo $1 $@ $$ $? $(pwd)' && exit $?"
    assert resolve_command(text, "scoring") == (text, [])


def test_a_placeholder_whose_folder_the_step_lacks_is_said():
    _, notes = resolve_command("$hidden $shared $program", "prediction", mounted={"program", "output"})
    assert "`$hidden` names /app/input/ref, which the prediction step does not have: the reference data " \
           "reaches the scoring step only" in notes
    assert "`$shared` names /app/shared, which the prediction step does not have" in notes
    _, notes = resolve_command("$submission_program", "scoring", mounted={"program"})
    assert notes == ["`$submission_program` names /app/ingested_program, which the scoring step does not have"]


def test_tmp_is_said_to_be_the_output_folder():
    command, notes = resolve_command("$tmp", "prediction")
    assert command == "/app/output"
    assert notes and "CodaLab gave a scratch folder of its own" in notes[0]


def test_the_folders_a_step_has():
    prediction = StepSpec(submission_id=1, task_index=0, step="prediction", image="i", program_dir="/p",
                          output_dir="/o", input_dir="/i", ingested_program_dir="/s", shared_dir="/sh")
    assert prediction.mounted() == EVERY - {"hidden"}
    bare = StepSpec(submission_id=1, task_index=0, step="prediction", image="i", program_dir="/p", output_dir="/o")
    assert bare.mounted() == {"program", "ingestion_program", "output", "tmp", "predictions"}
    scoring = StepSpec(submission_id=1, task_index=0, step="scoring", image="i", program_dir="/p",
                       output_dir="/o", input_dir="/in", shared_dir="/sh")
    assert scoring.mounted() == EVERY - {"submission_program"}


# -- results submissions with an ingestion program ---------------------------------------------

# Imports the participant's model, as Codabench ingestion programs do: fails on predictions.
INGESTION_PY = """\
    import os, sys
    input_dir, output_dir, program_dir, submission_dir = sys.argv[1:5]
    sys.path.append(submission_dir)
    from model import Model
    question = open(os.path.join(input_dir, 'q.txt')).read()
    open(os.path.join(output_dir, 'answer.txt'), 'w').write(Model().predict(question))
"""
MODEL_PY = "class Model:\n    def predict(self, question):\n        return '42'\n"
RAISING_MODEL_PY = "class Model:\n    def predict(self, question):\n        raise RuntimeError('model exploded')\n"
INGESTION_COMMAND = f"{PYTHON} $program/ingestion.py $input $output $program $submission_program"


@pytest.fixture
def ingestion(tmp_path: Path) -> Path:
    return write_program(tmp_path / "ingestion", INGESTION_COMMAND, **{"ingestion.py": INGESTION_PY})


@pytest.fixture
def input_data(tmp_path: Path) -> Path:
    folder = tmp_path / "input_data"
    folder.mkdir()
    (folder / "q.txt").write_text("the answer?")
    return folder


def folder_with(path: Path, **files: str) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def task_run(tmp_path: Path, kind: str, submission: Path, scoring: Path, reference: Path, **extra) -> TaskRun:
    return TaskRun(submission_id=3, task_index=0, kind=kind, submission_dir=str(submission),
                   scoring_program_dir=str(scoring), reference_data_dir=str(reference),
                   work_dir=str(tmp_path / f"work-{kind}-{len(list(tmp_path.iterdir()))}"),
                   limits=extra.pop("limits", FAST), **extra)


def step_log(result: dict, name: str, stream: str = "stdout") -> str:
    step = next(s for s in result["steps"] if s["name"] == name)
    return Path(step[f"{stream}_path"]).read_text()


NOT_HELD = ("the ingestion program exited with code 1: not held against this submission, because it has no "
            "`metadata` file and its files were taken as the predictions; they are scored as they are")


def test_results_zip_is_scored_though_the_ingestion_program_fails(tmp_path, process_executor, scoring_program,
                                                                   reference, ingestion, input_data):
    submission = folder_with(tmp_path / "submission", **{"answer.txt": "42\n"})
    statuses: list[str] = []
    run = task_run(tmp_path, "results", submission, scoring_program, reference,
                   ingestion_program_dir=str(ingestion), input_data_dir=str(input_data))
    result = run_task(run, process_executor, on_status=statuses.append)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}
    assert statuses == ["Running", "Scoring"]
    assert [s["name"] for s in result["steps"]] == ["prediction", "scoring"]
    assert result["steps"][0]["exit_code"] == 1
    assert "No module named 'model'" in step_log(result, "prediction", "stderr")
    assert result["notices"] == [NOT_HELD]
    log = step_log(result, "prediction").splitlines()
    assert log[0].startswith(PLATFORM_MARK + "the submission has no `metadata` file, so its files were taken as "
                             "the predictions and copied into the prediction output; the ingestion program runs "
                             "beside them all the same, as on Codabench (CodaLab v1.5 did not run it")
    assert log[-1] == PLATFORM_MARK + NOT_HELD
    run_log = Path(result["outputs"]["run_log"]).read_text()
    assert "prediction step: " + NOT_HELD in run_log
    metadata = (Path(result["outputs"]["predictions"]) / "metadata").read_text()
    assert "ingestionExitCode: 1" in metadata
    # The warnings of the submission carry the notice.
    assert NOT_HELD in combine_task_results([result])["warnings"]


def test_what_the_ingestion_program_writes_joins_the_copies_and_never_reaches_the_submission(
        tmp_path, process_executor, scoring_program, reference, input_data):
    # An ingestion program that needs no model: it sees the copies in $output and writes over them.
    ingestion = write_program(tmp_path / "ingestion", f"{PYTHON} $program/over.py $output $submission_program",
                              **{"over.py": """\
                                  import os, sys
                                  output_dir, submission_dir = sys.argv[1:3]
                                  seen = sorted(os.listdir(output_dir)), sorted(os.listdir(submission_dir))
                                  open(os.path.join(output_dir, 'seen.txt'), 'w').write(repr(seen))
                                  open(os.path.join(output_dir, 'answer.txt'), 'w').write('41')
                                  """})
    submission = folder_with(tmp_path / "submission", **{"answer.txt": "42\n", "notes.txt": "mine"})
    run = task_run(tmp_path, "results", submission, scoring_program, reference,
                   ingestion_program_dir=str(ingestion), input_data_dir=str(input_data))
    result = run_task(run, process_executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 0.0}  # its answer replaced the participant's, as on Codabench
    predictions = Path(result["outputs"]["predictions"])
    assert (predictions / "seen.txt").read_text() == repr((["answer.txt", "notes.txt"],
                                                           ["answer.txt", "notes.txt"]))
    assert (predictions / "notes.txt").read_text() == "mine"
    assert (submission / "answer.txt").read_text() == "42\n"  # copies, never links to the submission
    assert result["notices"] == []
    assert step_log(result, "prediction").splitlines()[-1] == PLATFORM_MARK + "the ingestion program exited with code 0"


def test_a_results_zip_still_fails_when_the_ingestion_program_runs_out_of_time(
        tmp_path, process_executor, scoring_program, reference, input_data):
    ingestion = write_program(tmp_path / "ingestion", f"{PYTHON} -c \"import time; time.sleep(30)\"")
    submission = folder_with(tmp_path / "submission", **{"answer.txt": "42\n"})
    run = task_run(tmp_path, "results", submission, scoring_program, reference, limits=Limits(time_limit=2),
                   ingestion_program_dir=str(ingestion), input_data_dir=str(input_data))
    result = run_task(run, process_executor)
    assert result["status"] == "Failed"
    assert result["error"].startswith("the ingestion step")
    assert [s["name"] for s in result["steps"]] == ["prediction"]  # never scored


def test_a_code_submission_whose_model_fails_fails(tmp_path, process_executor, scoring_program, reference,
                                                   ingestion, input_data):
    submission = folder_with(tmp_path / "submission", **{"model.py": RAISING_MODEL_PY, "metadata": "x: 1\n"})
    run = task_run(tmp_path, "code", submission, scoring_program, reference,
                   ingestion_program_dir=str(ingestion), input_data_dir=str(input_data))
    result = run_task(run, process_executor)
    assert result["status"] == "Failed"
    assert "the prediction step exited with code 1" in result["error"]
    assert "model exploded" in result["error"]
    assert [s["name"] for s in result["steps"]] == ["prediction"]
    assert result["notices"] == []
    assert PLATFORM_MARK not in step_log(result, "prediction")


def test_a_model_only_zip_is_run_by_the_ingestion_program(tmp_path, process_executor, scoring_program,
                                                          reference, ingestion, input_data):
    # Codabench's usual code submission: model.py without `metadata`, taken as results here.
    submission = folder_with(tmp_path / "submission", **{"model.py": MODEL_PY})
    run = task_run(tmp_path, "results", submission, scoring_program, reference,
                   ingestion_program_dir=str(ingestion), input_data_dir=str(input_data))
    result = run_task(run, process_executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}


def test_results_zip_with_ingestion_during_scoring(tmp_path, process_executor, reference, ingestion, input_data):
    scoring = write_program(tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output",
                            **{"score.py": """\
                                import os, sys, time
                                input_dir, output_dir = sys.argv[1:3]
                                time.sleep(1)
                                res = open(os.path.join(input_dir, 'res', 'answer.txt')).read().strip()
                                open(os.path.join(output_dir, 'scores.txt'), 'w').write('correct:%d' % (res == '42'))
                                """})
    submission = folder_with(tmp_path / "submission", **{"answer.txt": "42\n"})
    run = task_run(tmp_path, "results", submission, scoring, reference, ingestion_program_dir=str(ingestion),
                   input_data_dir=str(input_data), ingestion_only_during_scoring=True)
    result = run_task(run, process_executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"correct": 1.0}
    assert sorted(s["name"] for s in result["steps"]) == ["ingestion", "scoring"]
    assert result["notices"] == [NOT_HELD]
    assert step_log(result, "ingestion").splitlines()[-1] == PLATFORM_MARK + NOT_HELD


def test_an_unknown_word_in_a_command_is_said_in_the_steps_log(tmp_path, process_executor, reference):
    scoring = write_program(tmp_path / "scoring", f"{PYTHON} $program/score.py $input $output $answer_key",
                            **{"score.py": """\
                                import os, sys
                                open(os.path.join(sys.argv[2], 'scores.txt'), 'w').write('n:%d' % len(sys.argv))
                                """})
    submission = folder_with(tmp_path / "submission", **{"answer.txt": "42\n"})
    result = run_task(task_run(tmp_path, "results", submission, scoring, reference), process_executor)
    assert result["status"] == "Finished", result["error"]
    assert result["scores"] == {"n": 3.0}  # the shell replaced $answer_key by nothing
    first = step_log(result, "scoring").splitlines()[0]
    assert first.startswith(PLATFORM_MARK + "`$answer_key` in the command is no placeholder of CodaLab or Codabench")
    assert "scoring step: `$answer_key` in the command" in Path(result["outputs"]["run_log"]).read_text()
