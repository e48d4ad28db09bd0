"""The Docker executor with the real engine: mounts, limits, labels, cancel, orphans, notebooks."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time

import docker
import nbformat
import pytest
import yaml

from dask_workers.executors.docker import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_STEP,
    LABEL_SUBMISSION,
    LABEL_TASK,
    LABEL_WORKER,
    DockerExecutor,
)
from dask_workers.notebook import EXECUTED_NAME, REPORT_NAME
from dask_workers.spec import Limits, StepSpec

SCORE_PROGRAM = """\
import json, os, sys
input_dir, output_dir = sys.argv[1], sys.argv[2]
truth = open(os.path.join(input_dir, "ref", "truth.txt")).read().split()
pred = open(os.path.join(input_dir, "res", "predictions.txt")).read().split()
accuracy = sum(t == p for t, p in zip(truth, pred)) / len(truth)
with open(os.path.join(output_dir, "scores.txt"), "w") as f:
    f.write(f"accuracy: {accuracy}\\n")
print("scored", len(truth), "items")
"""


def scoring_step(make_step, **limits) -> StepSpec:
    return make_step(
        "scoring", "python3 $program/score.py $input $output",
        program={"score.py": SCORE_PROGRAM},
        inputs={"ref/truth.txt": "a b c d", "res/predictions.txt": "a b x d"}, **limits)


def test_scoring_program_reads_ref_and_res_and_writes_scores_and_metadata(docker_executor, make_step, runtime_image):
    spec = scoring_step(make_step)

    result = docker_executor.run_step(spec)

    assert result.ok, result
    assert result.error is None
    assert "scored 4 items" in result.stdout
    assert (open(os.path.join(spec.output_dir, "scores.txt")).read()) == "accuracy: 0.75\n"
    metadata = yaml.safe_load(open(os.path.join(spec.output_dir, "metadata")))
    assert metadata["exitCode"] == 0
    assert metadata["elapsedTime"] >= 0
    assert result.image == runtime_image
    assert result.image_digest == docker.from_env().images.get(runtime_image).id


def test_hard_coded_container_paths_work(docker_executor, make_step):
    # CodaLab programs often ignore their arguments and use /app/... directly.
    spec = make_step("scoring", "python3 /app/program/s.py",
                     program={"s.py": "open('/app/output/scores.txt','w').write(open('/app/input/res/p').read())"},
                     inputs={"ref/t": "1", "res/p": "score: 1\n"})
    result = docker_executor.run_step(spec)
    assert result.ok, result
    assert open(os.path.join(spec.output_dir, "scores.txt")).read() == "score: 1\n"


def test_inputs_and_root_filesystem_are_read_only_and_step_runs_as_non_root(docker_executor, make_step):
    program = """\
import os
def writable(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return True
    except OSError:
        return False
print("uid", os.getuid(), "gid", os.getgid())
print("input", writable("/app/input/ref/truth.txt"), writable("/app/input/new.txt"))
print("program", writable("/app/program/new.txt"))
print("root", writable("/etc/evil"), writable("/usr/evil"))
print("tmp", writable("/tmp/ok"))
print("output", writable("/app/output/ok"))
print("shared", writable("/app/shared/ok"))
"""
    spec = make_step("scoring", "python3 /app/program/p.py", program={"p.py": program},
                     inputs={"ref/truth.txt": "secret"}, shared=True)

    result = docker_executor.run_step(spec)

    assert result.ok, result
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["uid"] == "1000 gid 1000"
    assert lines["input"] == "False False"
    assert lines["program"] == "False"
    assert lines["root"] == "False False"
    assert lines["tmp"] == "True"
    assert lines["output"] == "True"
    assert lines["shared"] == "True"
    assert open(os.path.join(spec.input_dir, "ref", "truth.txt")).read() == "secret"


def test_failing_program_reports_exit_code_and_last_stderr_line(docker_executor, make_step):
    spec = make_step("scoring", "python3 -c 'import sys; print(\"bad input file\", file=sys.stderr); sys.exit(3)'")

    result = docker_executor.run_step(spec)

    assert not result.ok
    assert result.exit_code == 3
    assert result.error == "the program exited with code 3: bad input file"
    assert yaml.safe_load(open(os.path.join(spec.output_dir, "metadata")))["exitCode"] == 3


def test_prediction_step_metadata_uses_ingestion_keys(docker_executor, make_step):
    spec = make_step("prediction", "echo hi > $output/predictions.txt", inputs={"x.csv": "1"})
    result = docker_executor.run_step(spec)
    assert result.ok, result
    metadata = yaml.safe_load(open(os.path.join(spec.output_dir, "metadata")))
    assert metadata["ingestionExitCode"] == 0
    assert open(os.path.join(spec.output_dir, "predictions.txt")).read() == "hi\n"


def test_missing_image_is_reported_not_raised(docker_executor, make_step):
    spec = make_step("scoring", "true", image="jupyter-compete/does-not-exist:1")
    result = docker_executor.run_step(spec)
    assert not result.ok
    assert "jupyter-compete/does-not-exist:1 is not available on this worker" in result.error


def test_unknown_image_falls_back_to_default_when_configured(make_step, runtime_image, docker_engine):
    executor = DockerExecutor(default_image=runtime_image, image_aliases={"codalab/codalab-legacy:py37": runtime_image})
    messages: list[str] = []
    spec = make_step("scoring", "python3 -c 'print(1)'", image="codalab/codalab-legacy:py37")
    result = executor.run_step(spec, log=messages.append)
    assert result.ok, result
    assert result.image == runtime_image
    assert any("codalab/codalab-legacy:py37 is mapped to" in m for m in messages)


def test_containers_carry_labels_and_hardening(docker_executor, make_step, docker_engine):
    spec = make_step("scoring", "sleep 5", submission_id=4242, time_limit=10, memory_mb=300, cpus=0.5, pids=50)
    seen: dict = {}

    def watch():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not seen:
            for c in docker_engine.containers.list(filters={"label": f"{LABEL_SUBMISSION}=4242"}):
                seen.update(c.attrs)
                docker_executor.cancel(4242)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    docker_executor.run_step(spec)
    watcher.join()

    labels = seen["Config"]["Labels"]
    assert labels[LABEL_SUBMISSION] == "4242"
    assert labels[LABEL_TASK] == "0"
    assert labels[LABEL_STEP] == "scoring"
    assert labels[LABEL_WORKER] == docker_executor.worker_id
    host = seen["HostConfig"]
    assert host["Memory"] == 300 << 20
    assert host["MemorySwap"] == 300 << 20
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 50
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == "none"
    assert host["LogConfig"]["Config"]["max-file"] == "1"
    assert seen["Config"]["User"] == "1000:1000"


def test_create_kwargs_gpu_request():
    # No GPU on this machine: only the request the engine would receive is checked.
    spec = StepSpec(submission_id=1, task_index=0, step="prediction", image="img", program_dir="/tmp",
                    output_dir="/tmp/out", command="nvidia-smi", limits=Limits(gpus=2))
    kwargs = DockerExecutor(client=object()).create_kwargs(spec, "img")
    (request,) = kwargs["device_requests"]
    assert request["Count"] == 2
    assert request["Capabilities"] == [["gpu"]]
    no_gpu = DockerExecutor(client=object()).create_kwargs(
        StepSpec(submission_id=1, task_index=0, step="prediction", image="img", program_dir="/tmp",
                 output_dir="/tmp/out", command="true"), "img")
    assert "device_requests" not in no_gpu


def test_create_kwargs_network_only_when_allowed():
    base = dict(submission_id=1, task_index=0, step="prediction", image="img", program_dir="/tmp",
                output_dir="/tmp/out", command="true")
    closed = DockerExecutor(client=object()).create_kwargs(StepSpec(**base), "img")
    opened = DockerExecutor(client=object()).create_kwargs(StepSpec(**base, limits=Limits(network=True)), "img")
    assert closed["network_disabled"] is True
    assert "network_disabled" not in opened
    assert opened["network_mode"] == "bridge"


def test_cancel_kills_a_running_step(docker_executor, make_step, docker_engine):
    spec = make_step("prediction", "sleep 60", submission_id=777, time_limit=60)
    results = []
    runner = threading.Thread(target=lambda: results.append(docker_executor.run_step(spec)))
    started = time.monotonic()
    runner.start()
    while not docker_engine.containers.list(filters={"label": f"{LABEL_SUBMISSION}=777"}):
        assert time.monotonic() - started < 15, "the step's container never started"
        time.sleep(0.05)

    assert docker_executor.cancel(777) is True
    runner.join(timeout=20)

    assert not runner.is_alive()
    (result,) = results
    assert result.cancelled
    assert not result.ok
    assert result.error == "the step was cancelled"
    assert time.monotonic() - started < 20
    assert not docker_engine.containers.list(all=True, filters={"label": f"{LABEL_SUBMISSION}=777"})
    assert docker_executor.cancel(777) is False


def test_cleanup_orphans_removes_containers_of_dead_workers_only(docker_executor, docker_engine, runtime_image):
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid now names a process that is gone
    common = {LABEL_SUBMISSION: "9", LABEL_TASK: "0", LABEL_STEP: "scoring"}
    orphan = docker_engine.containers.run(
        runtime_image, ["sleep", "60"], detach=True,
        labels={**common, LABEL_WORKER: "gone-worker", LABEL_HOST: docker_executor.host, LABEL_PID: str(dead.pid)})
    earlier_self = docker_engine.containers.create(
        runtime_image, ["sleep", "60"],
        labels={**common, LABEL_WORKER: docker_executor.worker_id, LABEL_HOST: docker_executor.host,
                LABEL_PID: str(os.getppid())})
    alive = docker_engine.containers.run(
        runtime_image, ["sleep", "60"], detach=True,
        labels={**common, LABEL_WORKER: "live-worker", LABEL_HOST: docker_executor.host, LABEL_PID: str(os.getpid())})
    try:
        removed = docker_executor.cleanup_orphans()

        ids = {c.id for c in docker_engine.containers.list(all=True)}
        assert orphan.id not in ids
        assert earlier_self.id not in ids
        assert alive.id in ids
        assert removed >= 2
    finally:
        for container in (orphan, earlier_self, alive):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


NOTEBOOK_OK = [
    nbformat.v4.new_code_cell("input_dir = ''\noutput_dir = ''", metadata={"tags": ["parameters"]}),
    nbformat.v4.new_code_cell(
        "import os, numpy as np\n"
        "values = np.loadtxt(os.path.join(input_dir, 'x.txt'))\n"
        "open(os.path.join(output_dir, 'predictions.txt'), 'w').write(str(values.sum()))\n"
        "print('done')"),
]


def notebook_step(make_step, cells, **limits) -> StepSpec:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return make_step("prediction", None, notebook="submission.ipynb",
                     program={"submission.ipynb": nbformat.writes(nb)}, inputs={"x.txt": "1 2 3"}, **limits)


def test_notebook_step_runs_the_runner_inside_the_container(docker_executor, make_step):
    spec = notebook_step(make_step, NOTEBOOK_OK, time_limit=60)

    result = docker_executor.run_step(spec)

    assert result.ok, (result.error, result.stderr)
    assert open(os.path.join(spec.output_dir, "predictions.txt")).read() == "6.0"
    report = json.load(open(os.path.join(spec.output_dir, REPORT_NAME)))
    assert report["ok"] is True
    executed = nbformat.read(os.path.join(spec.output_dir, EXECUTED_NAME), as_version=4)
    assert any("done" in "".join(o.get("text", "")) for c in executed.cells for o in c.get("outputs", []))


def test_failing_notebook_cell_is_named_in_the_error(docker_executor, make_step):
    cells = NOTEBOOK_OK[:1] + [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    spec = notebook_step(make_step, cells, time_limit=60)

    result = docker_executor.run_step(spec)

    assert not result.ok
    assert result.error.startswith("cell 3 raised ZeroDivisionError")
    assert os.path.isfile(os.path.join(spec.output_dir, EXECUTED_NAME))


def test_docker_start_overhead_per_step_is_small(docker_executor, make_step):
    """Docker's cost per step versus the same command as a plain subprocess (target: at most 1 s)."""
    command = "python3 -c 'print(1)'"
    spec = make_step("scoring", command)
    docker_times, process_times = [], []
    for _ in range(3):
        started = time.monotonic()
        assert docker_executor.run_step(spec).ok
        docker_times.append(time.monotonic() - started)
        started = time.monotonic()
        subprocess.run(["sh", "-c", command], check=True, capture_output=True)
        process_times.append(time.monotonic() - started)
    overhead = statistics.median(docker_times) - statistics.median(process_times)
    print(f"docker step {statistics.median(docker_times):.3f} s, subprocess {statistics.median(process_times):.3f} s, "
          f"overhead {overhead:.3f} s")
    assert overhead < 1.0


def test_root_user_is_refused():
    with pytest.raises(ValueError, match="non-root"):
        DockerExecutor(client=object(), user="0:0")
