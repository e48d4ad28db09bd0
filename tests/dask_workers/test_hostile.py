"""Hostile submissions in the Docker executor: each is contained, reported with a clear reason,
and the next step of the worker still runs."""
from __future__ import annotations

import os
import resource
import subprocess

from dask_workers.executors.docker import LABEL_WORKER

NEXT_STEP = "python3 -c \"open('/app/output/scores.txt','w').write('score: 1\\n')\""


def assert_worker_still_works(executor, make_step, docker_engine) -> None:
    """No container of the executor is left, and a normal next step runs."""
    assert not docker_engine.containers.list(all=True, filters={"label": f"{LABEL_WORKER}={executor.worker_id}"})
    spec = make_step("scoring", NEXT_STEP, submission_id=2)
    result = executor.run_step(spec)
    assert result.ok, result
    assert open(os.path.join(spec.output_dir, "scores.txt")).read() == "score: 1\n"


def test_infinite_loop_is_stopped_at_the_time_limit(docker_executor, make_step, docker_engine):
    spec = make_step("prediction", "python3 -c 'while True: pass'", time_limit=3)

    result = docker_executor.run_step(spec)

    assert result.timed_out
    assert not result.ok
    assert result.error == "the step exceeded its time limit of 3 s and was stopped"
    assert 3 <= result.elapsed < 8
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_memory_bomb_is_killed_and_reported_as_out_of_memory(docker_executor, make_step, docker_engine):
    bomb = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n"
    spec = make_step("prediction", "python3 /app/program/bomb.py", program={"bomb.py": bomb},
                     memory_mb=128, time_limit=20)

    result = docker_executor.run_step(spec)

    assert result.oom_killed
    assert not result.ok
    assert result.error == "the step ran out of memory (limit 128 MB)"
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_process_count_is_capped(docker_executor, make_step, docker_engine):
    # Spawns sleepers until the engine refuses; reports how many it got.
    program = """\
import subprocess
children = []
try:
    for _ in range(500):
        children.append(subprocess.Popen(["sleep", "30"]))
except OSError as error:
    print("refused after", len(children), type(error).__name__)
else:
    print("got all", len(children))
for child in children:
    child.kill()
"""
    spec = make_step("prediction", "python3 /app/program/spawn.py", program={"spawn.py": program},
                     pids=40, time_limit=20)

    result = docker_executor.run_step(spec)

    assert "refused after" in result.stdout, result
    spawned = int(result.stdout.split("refused after")[1].split()[0])
    assert spawned < 40
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_fork_bomb_is_contained(docker_executor, make_step, docker_engine):
    spec = make_step("prediction", "bomb() { bomb | bomb & }; bomb; sleep 10", pids=64, time_limit=3)

    result = docker_executor.run_step(spec)

    assert not result.ok
    assert result.timed_out or result.exit_code != 0
    assert result.error
    # The machine still starts processes, and the worker still runs steps.
    assert subprocess.run(["true"]).returncode == 0
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_gigabyte_of_stdout_is_capped(docker_executor, make_step, docker_engine):
    cap = 64 << 10
    spec = make_step("prediction", "head -c 1000000000 /dev/zero | tr '\\0' x; echo done >&2",
                     output_bytes=cap, time_limit=60)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    result = docker_executor.run_step(spec)

    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.ok, result.error
    assert result.stdout_truncated
    assert not result.stderr_truncated
    assert result.stdout.endswith("[truncated]")
    assert len(result.stdout.encode()) <= cap + len("\n[truncated]")
    assert result.stdout.startswith("x" * 1000)
    assert result.stderr == "done\n"
    assert grown_kb < 200 << 10  # the worker never held the gigabyte
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_network_is_unreachable_but_loopback_works(docker_executor, make_step, docker_engine):
    program = """\
import os, socket
print("interfaces", sorted(os.listdir("/sys/class/net")))
for host, port in (("pypi.org", 443), ("1.1.1.1", 53), ("172.17.0.1", 2375)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("REACHED", host)
    except OSError as error:
        print("blocked", host, type(error).__name__)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
socket.create_connection(server.getsockname(), timeout=3).close()
print("loopback ok")
"""
    spec = make_step("prediction", "python3 /app/program/net.py", program={"net.py": program}, time_limit=20)

    result = docker_executor.run_step(spec)

    assert result.ok, result
    assert "interfaces ['lo']" in result.stdout
    assert "REACHED" not in result.stdout
    assert result.stdout.count("blocked") == 3
    assert "loopback ok" in result.stdout
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_prediction_step_cannot_find_the_reference_data(docker_executor, make_step, docker_engine, tmp_path):
    # The phase's reference data lives on the worker next to the prediction inputs.
    secret = "REFERENCE-ANSWERS-7f3a"
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "truth-secret.txt").write_text(secret)
    program = """\
import os
for guess in ("/app/input/ref/truth-secret.txt", "/app/input_data/../ref/truth-secret.txt",
              "/app/ref/truth-secret.txt"):
    print("exists" if os.path.exists(guess) else "missing", guess)
found = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    found += [os.path.join(root, f) for f in files if f == "truth-secret.txt"]
print("found", found)
"""
    spec = make_step("prediction", "python3 /app/program/peek.py", program={"peek.py": program},
                     inputs={"test.csv": "1,2"}, time_limit=30)

    result = docker_executor.run_step(spec)

    assert result.ok, result
    assert "exists" not in result.stdout
    assert "found []" in result.stdout
    assert secret not in result.stdout
    assert_worker_still_works(docker_executor, make_step, docker_engine)


def test_planted_symlinks_do_not_make_the_worker_write_or_read_host_files(docker_executor, make_step,
                                                                           docker_engine, tmp_path):
    # The output folder is the step's; a symlink in it points to a path of the worker's machine.
    target = tmp_path / "worker-file.txt"
    target.write_text("worker data\n")
    spec = make_step("prediction", f"ln -s {target} /app/output/metadata; "
                                   f"ln -s {target} /app/output/notebook_report.json; exit 1")

    result = docker_executor.run_step(spec)

    assert not result.ok
    assert target.read_text() == "worker data\n"
    metadata = os.path.join(spec.output_dir, "metadata")
    assert not os.path.islink(metadata)
    assert "ingestionExitCode: 1" in open(metadata).read()
    assert_worker_still_works(docker_executor, make_step, docker_engine)
