"""Warm judges: notebook steps of the Docker executor handed to containers started ahead of time.

Each test runs real containers: the pool's are told apart by the
`jupyter-compete.warm` label and the executor's log line, never by timing.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import docker
import nbformat
import pytest

from dask_workers.executors.docker import LABEL_HOST, LABEL_PID, LABEL_WARM, LABEL_WORKER, DockerExecutor
from dask_workers.notebook import EXECUTED_NAME, REPORT_NAME
from dask_workers.spec import Limits, StepSpec

PARAMETERS = nbformat.v4.new_code_cell("input_dir = ''\noutput_dir = ''", metadata={"tags": ["parameters"]})


def notebook(*sources: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[PARAMETERS, *(nbformat.v4.new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


class Steps:
    """Notebook steps of one phase: every submission its own folders, one shared input folder."""

    def __init__(self, root: Path, image: str):
        self.root, self.image = root, image
        self.input = root / "input"
        self.input.mkdir(parents=True)
        (self.input / "x.txt").write_text("1 2 3")
        self.count = 0

    def make(self, source: str, submission_id: int | None = None, **limits) -> StepSpec:
        self.count += 1
        folder = self.root / f"submission{self.count}"
        (folder / "program").mkdir(parents=True)
        (folder / "output").mkdir()
        (folder / "program" / "submission.ipynb").write_text(source)
        return StepSpec(submission_id=submission_id or self.count, task_index=0, step="prediction",
                        image=self.image, program_dir=str(folder / "program"), output_dir=str(folder / "output"),
                        notebook="submission.ipynb", input_dir=str(self.input),
                        limits=Limits(**{"time_limit": 60, **limits}))


SUM = notebook(
    "import os, numpy as np\n"
    "values = np.loadtxt(os.path.join(input_dir, 'x.txt'))\n"
    "open(os.path.join(output_dir, 'predictions.txt'), 'w').write(str(values.sum()))")


@pytest.fixture
def steps(tmp_path, runtime_image) -> Steps:
    return Steps(tmp_path / "phase", runtime_image)


@pytest.fixture
def executor(runtime_image, docker_engine, tmp_path):
    """A Docker executor with a pool of one and its own slot folder; nothing of it may outlive the test."""
    made = DockerExecutor(worker_id=f"warm-{uuid.uuid4().hex[:8]}", warm_dir=str(tmp_path / "slots"),
                          warm_pool_size=1)
    yield made
    made.close()
    left = docker_engine.containers.list(all=True, filters={"label": f"{LABEL_WORKER}={made.worker_id}"})
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind: {[c.short_id for c in left]}"


def run(executor: DockerExecutor, spec: StepSpec):
    lines: list[str] = []
    result = executor.run_step(spec, log=lines.append)
    started = [line for line in lines if " started in " in line]
    assert len(started) == 1, lines
    return result, "warm" in started[0]


def pool_containers(docker_engine, executor: DockerExecutor) -> list:
    return docker_engine.containers.list(all=True, filters={"label": [f"{LABEL_WORKER}={executor.worker_id}",
                                                                        LABEL_WARM]})


def wait_for_pool(executor: DockerExecutor, spec: StepSpec) -> str:
    key, _ = executor.warm_template(spec, spec.image)
    assert executor.pool.wait_ready(key, timeout=120), "no warm container was started"
    return key


def test_first_step_of_a_kind_is_cold_and_the_next_runs_warm(executor, steps, docker_engine):
    first = steps.make(SUM)
    result, warm = run(executor, first)
    assert result.ok, (result.error, result.stderr)
    assert not warm

    key = wait_for_pool(executor, first)
    waiting = pool_containers(docker_engine, executor)
    assert [c.labels[LABEL_WARM] for c in waiting] == [key]
    assert waiting[0].status == "running"

    second = steps.make(SUM)
    result, warm = run(executor, second)
    assert result.ok, (result.error, result.stderr)
    assert warm
    assert Path(second.output_dir, "predictions.txt").read_text() == "6.0"
    assert Path(second.output_dir, "metadata").is_file()
    assert nbformat.read(os.path.join(second.output_dir, EXECUTED_NAME), as_version=4).cells
    # The container that ran it is gone; a replacement of the same kind waits.
    assert waiting[0].id not in {c.id for c in docker_engine.containers.list(all=True)}
    wait_for_pool(executor, second)
    assert executor.pool.taken == 1


def test_each_submission_gets_a_fresh_container(executor, steps):
    # Submission 1 leaves files in its working folder's neighbourhood, /tmp and its output;
    # submission 2, on the warm container that replaced 1's, sees none of them.
    leave = notebook(
        "import os\n"
        "open('/tmp/left-by-1', 'w').write('secret')\n"
        "open(os.path.join(output_dir, 'left-by-1'), 'w').write('secret')\n"
        "open(os.path.join(output_dir, 'predictions.txt'), 'w').write('1')")
    look = notebook(
        "import os, json\n"
        "seen = {'tmp': os.path.exists('/tmp/left-by-1'),\n"
        "        'output': sorted(set(os.listdir(output_dir)) - {'executed.ipynb'}),\n"
        "        'program': sorted(os.listdir('.'))}\n"
        "open(os.path.join(output_dir, 'seen.json'), 'w').write(json.dumps(seen))")
    first = steps.make(leave)
    result, _ = run(executor, first)
    assert result.ok, (result.error, result.stderr)
    wait_for_pool(executor, first)
    result, warm = run(executor, steps.make(leave))  # the first warm container: 1's files in it
    assert result.ok and warm
    wait_for_pool(executor, first)

    second = steps.make(look)
    result, warm = run(executor, second)
    assert result.ok, (result.error, result.stderr)
    assert warm
    seen = __import__("json").loads(Path(second.output_dir, "seen.json").read_text())
    assert seen == {"tmp": False, "output": [], "program": ["submission.ipynb"]}
    assert not Path(second.output_dir, "left-by-1").exists()


def test_time_limit_counts_from_the_hand_over(executor, steps):
    first = steps.make(SUM, time_limit=20)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    slow = steps.make(notebook("import time\ntime.sleep(60)"), time_limit=20)

    result, warm = run(executor, slow)

    assert warm
    assert result.timed_out
    assert result.error == "the step exceeded its time limit of 20 s and was stopped"
    assert 20 <= result.elapsed < 30


def test_a_dead_warm_container_is_replaced_and_the_step_still_runs(executor, steps, docker_engine):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    (dead,) = pool_containers(docker_engine, executor)
    dead.kill()

    second = steps.make(SUM)
    result, warm = run(executor, second)

    assert result.ok, (result.error, result.stderr)
    assert not warm  # the dead one was not used: the step ran cold
    assert Path(second.output_dir, "predictions.txt").read_text() == "6.0"
    assert executor.pool.discarded == 1
    assert dead.id not in {c.id for c in docker_engine.containers.list(all=True)}
    wait_for_pool(executor, second)
    result, warm = run(executor, steps.make(SUM))
    assert result.ok and warm


def test_a_replaced_input_folder_is_not_used_through_an_old_container(executor, steps, docker_engine):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    # The phase's data is unpacked again at the same path (a cache eviction).
    os.rename(steps.input, steps.root / "evicted")
    steps.input.mkdir()
    (steps.input / "x.txt").write_text("10 20")

    second = steps.make(SUM)
    result, warm = run(executor, second)

    assert result.ok, (result.error, result.stderr)
    assert not warm
    assert Path(second.output_dir, "predictions.txt").read_text() == "30.0"


def test_failing_cell_is_reported_from_a_warm_container(executor, steps):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    spec = steps.make(notebook("x = 1", "1 / 0"))

    result, warm = run(executor, spec)

    assert warm
    assert not result.ok
    assert result.error.startswith("cell 3 raised ZeroDivisionError")
    assert Path(spec.output_dir, REPORT_NAME).is_file()


def test_cancel_kills_a_step_running_on_a_warm_container(executor, steps):
    import threading
    import time

    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    spec = steps.make(notebook("import time\ntime.sleep(60)"), submission_id=777)
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(result=run(executor, spec)))
    runner.start()
    deadline = time.monotonic() + 30
    while not executor.cancel(777) and time.monotonic() < deadline:
        time.sleep(0.1)
    runner.join(60)

    result, warm = outcome["result"]
    assert warm
    assert result.cancelled
    assert result.error == "the step was cancelled"


def test_pool_containers_are_removed_at_close_and_the_executor_then_runs_cold(executor, steps, docker_engine):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    slots = Path(executor.warm_root())
    assert any(slots.iterdir())

    executor.close()

    assert pool_containers(docker_engine, executor) == []
    assert not slots.exists()
    result, warm = run(executor, steps.make(SUM))
    assert result.ok and not warm
    assert pool_containers(docker_engine, executor) == []


def test_pool_of_a_dead_worker_is_removed_by_cleanup_orphans(steps, docker_engine, runtime_image, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names a process that is gone
    gone = DockerExecutor(worker_id=f"warm-gone-{uuid.uuid4().hex[:8]}", warm_dir=str(tmp_path / "slots"),
                          warm_pool_size=1)
    gone.pid = dead.pid  # as if this executor had lived in that process
    first = steps.make(SUM)
    try:
        assert gone.run_step(first).ok
        wait_for_pool(gone, first)
        (left,) = pool_containers(docker_engine, gone)
        assert left.labels[LABEL_PID] == str(dead.pid) and left.labels[LABEL_HOST] == gone.host
        gone.pool._ready.clear()  # the process died: nobody removes them at close

        survivor = DockerExecutor(worker_id=f"warm-next-{uuid.uuid4().hex[:8]}", warm_dir=str(tmp_path / "slots"))
        removed = survivor.cleanup_orphans()
        survivor.close()

        assert removed >= 1
        with pytest.raises(docker.errors.NotFound):
            docker_engine.containers.get(left.id)
        assert not (tmp_path / "slots" / f"{gone.host}-{dead.pid}").exists()
    finally:
        gone.close()
        for container in pool_containers(docker_engine, gone):
            container.remove(force=True)


def test_pool_size_zero_turns_warm_judges_off(steps, docker_engine, runtime_image, tmp_path):
    executor = DockerExecutor(worker_id=f"warm-off-{uuid.uuid4().hex[:8]}", warm_pool_size=0,
                              warm_dir=str(tmp_path / "slots"))
    spec = steps.make(SUM)
    assert executor.warm_template(spec, spec.image) is None
    for _ in range(2):
        result, warm = run(executor, steps.make(SUM))
        assert result.ok and not warm
    assert pool_containers(docker_engine, executor) == []


def test_warm_container_has_the_hardening_of_a_step(executor, steps, docker_engine):
    first = steps.make(SUM, memory_mb=300, cpus=0.5, pids=80)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    (waiting,) = pool_containers(docker_engine, executor)
    attrs = waiting.attrs
    expected = executor.create_kwargs(first, first.image)
    host = attrs["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 300 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 80
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "none"
    assert attrs["Config"]["User"] == "1000:1000"
    assert attrs["Config"]["Env"] and set(f"{k}={v}" for k, v in expected["environment"].items()) <= set(
        attrs["Config"]["Env"])
    mounts = {m["Destination"]: (m["Mode"] or ("rw" if m["RW"] else "ro"), m["RW"]) for m in attrs["Mounts"]}
    wanted = {bind["bind"]: bind["mode"] == "rw" for bind in expected["volumes"].values()}
    assert {target: rw for target, (_, rw) in mounts.items()} == wanted
    assert waiting.labels[LABEL_WORKER] == executor.worker_id


def test_preloaded_modules_are_imported_without_binding_names(executor, steps):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    spec = steps.make(notebook(
        "import os, sys, json\n"
        "seen = {'loaded': 'pandas' in sys.modules, 'names': sorted(n for n in ('numpy', 'pandas', 'name', 'names')\n"
        "                                                      if n in globals())}\n"
        "open(os.path.join(output_dir, 'seen.json'), 'w').write(json.dumps(seen))"))

    result, warm = run(executor, spec)

    assert result.ok and warm, (result.error, result.stderr)
    assert __import__("json").loads(Path(spec.output_dir, "seen.json").read_text()) == {"loaded": True, "names": []}


def test_modules_the_previous_notebook_imported_are_imported_ahead_without_binding_names(executor, steps):
    first = steps.make(notebook("from sklearn.preprocessing import StandardScaler\nimport json"))
    assert run(executor, first)[0].ok
    wait_for_pool(executor, first)
    spec = steps.make(notebook(
        "import os, sys, json\n"
        "seen = {'loaded': [m for m in ('pandas', 'sklearn.preprocessing') if m in sys.modules],\n"
        "        'names': [n for n in ('sklearn', 'StandardScaler', 'name', 'names') if n in globals()]}\n"
        "open(os.path.join(output_dir, 'seen.json'), 'w').write(json.dumps(seen))"))

    result, warm = run(executor, spec)

    assert result.ok and warm, (result.error, result.stderr)
    seen = __import__("json").loads(Path(spec.output_dir, "seen.json").read_text())
    assert seen == {"loaded": ["pandas", "sklearn.preprocessing"], "names": []}


def test_a_step_arriving_while_its_warm_container_starts_waits_for_it(executor, steps):
    first = steps.make(SUM)
    assert run(executor, first)[0].ok
    # No wait for the pool: the replacement is still being made when the next step comes.
    result, warm = run(executor, steps.make(SUM))
    assert result.ok and warm, (result.error, result.stderr)
