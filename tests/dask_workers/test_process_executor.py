"""The process executor: placeholders, limits, output cap, metadata, cancel, executor choice."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
import yaml

from dask_workers import executors
from dask_workers.executors import make_executor
from dask_workers.executors.process import NO_ISOLATION, CappedBuffer, UnsafeProcessExecutor
from dask_workers.spec import Limits, StepSpec

from .conftest import FAST, PYTHON, write_notebook, write_program


@pytest.fixture
def executor(process_executor):
    return process_executor


def spec_for(tmp_path: Path, command: str | None = None, step: str = "prediction", **extra) -> StepSpec:
    program = extra.pop("program_dir", None) or write_program(tmp_path / "program", None)
    return StepSpec(submission_id=extra.pop("submission_id", 1), task_index=0, step=step, image="unused",
                    program_dir=str(program), output_dir=str(tmp_path / "output"), command=command,
                    limits=extra.pop("limits", FAST), **extra)


def test_placeholders_are_real_host_paths_in_prediction(tmp_path, executor):
    for name in ("input", "ingested", "shared"):
        (tmp_path / name).mkdir()
    spec = spec_for(
        tmp_path, "echo $program $ingestion_program $submission_program $input $output $tmp $predictions "
                  "$shared; pwd; echo $HOME_IS_KEPT",
        input_dir=str(tmp_path / "input"), ingested_program_dir=str(tmp_path / "ingested"),
        shared_dir=str(tmp_path / "shared"),
    )
    lines: list[str] = []
    result = executor.run_step(spec, log=lines.append)
    assert result.ok, result.stderr
    t = tmp_path
    expected = f"{t}/program {t}/program {t}/ingested {t}/input {t}/output {t}/output {t}/output {t}/shared"
    assert result.stdout.splitlines()[:2] == [expected, f"{t}/program"]  # cwd is the program folder
    assert lines[0] == NO_ISOLATION  # every step says it is not isolated


def test_placeholders_in_scoring_point_into_input(tmp_path, executor):
    (tmp_path / "input" / "ref").mkdir(parents=True)
    spec = spec_for(tmp_path, "echo $input $predictions $hidden $output", step="scoring",
                    input_dir=str(tmp_path / "input"))
    result = executor.run_step(spec)
    t = tmp_path
    assert result.stdout.strip() == f"{t}/input {t}/input/res {t}/input/ref {t}/output"


def test_environment_has_spec_variables_but_not_worker_secrets(tmp_path, executor, monkeypatch):
    monkeypatch.setenv("COMPETE_STORAGE_SECRET", "s3cr3t")
    spec = spec_for(tmp_path, "echo [$COMPETE_STORAGE_SECRET] [$PHASE]", env={"PHASE": "dev"})
    assert executor.run_step(spec).stdout.strip() == "[] [dev]"


def test_metadata_after_each_step(tmp_path, executor):
    prediction = executor.run_step(spec_for(tmp_path, "exit 3"))
    assert prediction.exit_code == 3 and not prediction.ok
    assert prediction.error == "exited with code 3"
    data = yaml.safe_load((tmp_path / "output" / "metadata").read_text())
    assert data["ingestionExitCode"] == 3 and data["exitCode"] == 3
    assert 0 <= data["ingestionElapsedTime"] < 10

    (tmp_path / "input").mkdir()
    scoring = spec_for(tmp_path, "true", step="scoring", input_dir=str(tmp_path / "input"))
    scoring.output_dir = str(tmp_path / "scoring_output")
    executor.run_step(scoring)
    data = yaml.safe_load((tmp_path / "scoring_output" / "metadata").read_text())
    assert data["exitCode"] == 0 and "ingestionExitCode" not in data


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def test_time_limit_kills_the_whole_process_group(tmp_path, executor):
    pid_file = tmp_path / "child.pid"
    spec = spec_for(tmp_path, f"sleep 60 & echo $! > {pid_file}; sleep 60", limits=Limits(time_limit=1))
    started = time.monotonic()
    result = executor.run_step(spec)
    assert time.monotonic() - started < 5
    assert result.timed_out and not result.ok
    assert result.error == "stopped after the time limit of 1 s"
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)  # the background child went with the step


def test_output_is_capped_keeping_head_and_tail(tmp_path, executor):
    spec = spec_for(tmp_path, f"{PYTHON} -c \"print('BEGIN' + 'x' * 500000 + 'END')\"; echo oops >&2",
                    limits=Limits(time_limit=30, output_bytes=1000))
    result = executor.run_step(spec)
    assert result.ok
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.startswith("BEGIN") and result.stdout.rstrip().endswith("END")
    assert len(result.stdout) < 1200 and "bytes left out" in result.stdout
    assert result.stderr == "oops\n"


def test_capped_buffer_never_holds_more_than_the_cap():
    buffer = CappedBuffer(10)
    for _ in range(1000):
        buffer.write(b"abcdefg")
    assert len(buffer.head) + buffer.tail_size <= 10 + 7
    assert buffer.text().startswith("abcde") and buffer.text().endswith("cdefg")
    assert buffer.total == 7000 and buffer.truncated


def test_memory_limit(tmp_path, executor):
    spec = spec_for(tmp_path, f"{PYTHON} -c \"x = bytearray(600 * 1024 * 1024)\"",
                    limits=Limits(time_limit=30, memory_mb=300))
    result = executor.run_step(spec)
    assert result.oom_killed and not result.ok
    assert result.error == "ran out of memory (the limit is 300 MB)"


def test_file_size_limit(tmp_path):
    small = UnsafeProcessExecutor(max_file_bytes=100_000, warm_kernel=False)
    spec = spec_for(tmp_path, f"{PYTHON} -c \"open('$output/big', 'wb').write(b'0' * 1_000_000)\"")
    result = small.run_step(spec)
    assert not result.ok
    assert "larger than 100000 bytes" in result.error


def test_cancel_kills_the_steps_of_that_submission(tmp_path, executor):
    spec = spec_for(tmp_path, "sleep 60", submission_id=99)
    results = []
    worker = threading.Thread(target=lambda: results.append(executor.run_step(spec)))
    started = time.monotonic()
    worker.start()
    while not executor.cancel(99):
        assert time.monotonic() - started < 10
        time.sleep(0.02)
    worker.join(timeout=10)
    assert results[0].cancelled and not results[0].ok and results[0].error == "cancelled"
    assert time.monotonic() - started < 10
    assert executor.cancel(99) is False  # nothing left to cancel


def test_notebook_step_runs_in_program_folder_with_spec_env(tmp_path, executor):
    program = tmp_path / "program"
    write_notebook(program / "nb.ipynb",
                   "import os\nopen(os.path.join(output_dir, 'where.txt'), 'w').write(os.getcwd() + '|' + os.environ['PHASE'])",
                   "print('training done')")
    spec = spec_for(tmp_path, None, program_dir=program, notebook="nb.ipynb", env={"PHASE": "final"})
    result = executor.run_step(spec)
    assert result.ok, result.stderr
    assert (tmp_path / "output" / "where.txt").read_text() == f"{program}|final"
    assert result.stdout == "training done\n"  # what the cells printed is the step's log
    assert (tmp_path / "output" / "executed.ipynb").is_file()
    assert (tmp_path / "output" / "notebook_report.json").is_file()


def test_notebook_step_time_limit_kills_the_kernel(tmp_path, executor):
    program = tmp_path / "program"
    write_notebook(program / "nb.ipynb", "import time\ntime.sleep(60)")
    spec = spec_for(tmp_path, None, program_dir=program, notebook="nb.ipynb", limits=Limits(time_limit=2))
    started = time.monotonic()
    result = executor.run_step(spec)
    assert time.monotonic() - started < 10
    assert result.timed_out and not result.ok
    assert result.error == "stopped after the time limit of 2 s"


def test_make_executor_by_name(monkeypatch, caplog):
    made = make_executor("process", warm_kernel=False)
    assert isinstance(made, UnsafeProcessExecutor) and made.isolates is False
    with pytest.raises(ValueError, match="choose one of docker, process, auto"):
        make_executor("podman")
    monkeypatch.setattr(executors, "docker_available", lambda timeout=2.0: False)
    with caplog.at_level(logging.WARNING):
        assert isinstance(make_executor("auto", warm_kernel=False), UnsafeProcessExecutor)
    assert "does NOT isolate" in caplog.text


def test_docker_available_answers_quickly_without_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    started = time.monotonic()
    assert executors.docker_available() is False
    assert time.monotonic() - started < 3


def test_warm_kernels_import_fixed_and_learned_modules_without_binding_names(tmp_path):
    made = UnsafeProcessExecutor(warm_kernels=1)
    try:
        program = tmp_path / "program"
        write_notebook(program / "nb.ipynb", "from sklearn.preprocessing import StandardScaler\nimport json")
        first = spec_for(tmp_path / "first", None, program_dir=program, notebook="nb.ipynb")
        assert made.run_step(first).ok
        # The kernel taken by the next step was started after the first notebook was read.
        check = tmp_path / "check"
        write_notebook(check / "nb.ipynb",
                       "import os, sys, json\n"
                       "seen = {'loaded': [m for m in ('pandas', 'sklearn.preprocessing') if m in sys.modules],\n"
                       "        'names': [n for n in ('numpy', 'pandas', 'sklearn', 'name', 'names') if n in globals()]}\n"
                       "open(os.path.join(output_dir, 'seen.json'), 'w').write(json.dumps(seen))")
        second = spec_for(tmp_path / "second", None, program_dir=check, notebook="nb.ipynb")
        result = made.run_step(second)
        assert result.ok, result.stderr
        seen = __import__("json").loads((tmp_path / "second" / "output" / "seen.json").read_text())
        assert seen == {"loaded": ["pandas", "sklearn.preprocessing"], "names": []}
    finally:
        made.close()
