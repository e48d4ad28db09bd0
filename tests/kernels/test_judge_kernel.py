"""The judge's environment as a Jupyter kernel, for real: Docker, the runtime image, jupyter_client.

A kernel spec is installed by `compete kernel install` into a temporary
JUPYTER_PATH and started by jupyter_client's KernelManager, as a Jupyter
server does; the kernel must run in the image, see the participant's folder,
obey the judge's limits, stop on interrupt, restart, and never leave a
container behind, however its launcher ends.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernels.judge_kernel import LABEL_CONNECTION, default_mounts, parse_memory

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "judge-test"
MEMORY_MB = 512
PIDS = 200


def compete_kernel(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`compete kernel ARGS` (the same parser the `compete` command mounts)."""
    return subprocess.run([sys.executable, "-m", "hub_extension.cli_kernel", "kernel", *args],
                          capture_output=True, text=True, timeout=180, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def jupyter_path(runtime_image, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    proc = compete_kernel("install", "--prefix", str(prefix), "--name", KERNEL_NAME, "--image", runtime_image,
                          "--memory-mb", str(MEMORY_MB), "--pids", str(PIDS), "--cpus", "1")
    assert proc.returncode == 0, proc.stderr
    return prefix / "share" / "jupyter"


@pytest.fixture
def participant_files(tmp_path) -> Path:
    """A server root with a data folder and a notebooks folder the kernel starts in."""
    root = tmp_path / "server-root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("x,y\n1,2\n")
    (root / "notebooks").mkdir()
    return root


@pytest.fixture
def start_kernel(jupyter_path, participant_files, monkeypatch, docker_engine):
    """start_kernel() -> (manager, client) of a judge kernel started in server-root/notebooks."""
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    started = []

    def start():
        manager = KernelManager(kernel_name=KERNEL_NAME)
        env = {**os.environ, "JUPYTERHUB_ROOT_DIR": str(participant_files)}
        manager.start_kernel(cwd=str(participant_files / "notebooks"), env=env)
        client = manager.client()
        client.start_channels()
        started.append((manager, client))
        client.wait_for_ready(timeout=90)
        return manager, client

    yield start
    for manager, client in started:
        client.stop_channels()
        if manager.has_kernel and manager.is_alive():
            manager.shutdown_kernel(now=True)
        wait_until(lambda: not containers_of(docker_engine, manager), 20,
                   "a container of the kernel is still there after the test")
        manager.cleanup_resources()


def containers_of(engine, manager) -> list:
    """The kernel's containers, inspected; one removed between listing and inspecting is gone."""
    import docker

    label = f"{LABEL_CONNECTION}={Path(manager.connection_file).resolve()}"
    found = []
    for sparse in engine.containers.list(all=True, filters={"label": label}, sparse=True):
        try:
            found.append(engine.containers.get(sparse.id))
        except docker.errors.NotFound:
            continue  # an auto-removed container that ended meanwhile
    return found


def wait_until(condition, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


def run(client, code: str, timeout: float = 60) -> tuple[dict, str]:
    """Execute code; returns (the reply's content, stdout + error text)."""
    out: list[str] = []

    def hook(msg):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{content['ename']}: {content['evalue']}")

    reply = client.execute_interactive(code, timeout=timeout, output_hook=hook)
    return reply["content"], "".join(out)


# -- installing ------------------------------------------------------------------------------


def test_install_writes_a_spec_that_starts_the_launcher_with_the_limits(jupyter_path, runtime_image):
    spec = json.loads((jupyter_path / "kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["display_name"] == f"Judge environment ({runtime_image})"
    assert spec["argv"][:3] == [sys.executable, "-m", "kernels.judge_kernel"]
    assert spec["argv"][-2:] == ["-f", "{connection_file}"]
    argv = " ".join(spec["argv"])
    assert f"--image {runtime_image}" in argv and f"--memory-mb {MEMORY_MB}" in argv and f"--pids {PIDS}" in argv
    assert spec["interrupt_mode"] == "signal"
    assert (jupyter_path / "kernels" / KERNEL_NAME / "logo-svg.svg").is_file()

    proc = compete_kernel("list", "--json", env={**os.environ, "JUPYTER_PATH": str(jupyter_path)})
    assert proc.returncode == 0, proc.stderr
    listed = {k["name"]: k for k in json.loads(proc.stdout)}
    assert listed[KERNEL_NAME]["image"] == runtime_image
    assert listed[KERNEL_NAME]["problem"] is None
    text = compete_kernel("list", env={**os.environ, "JUPYTER_PATH": str(jupyter_path)}).stdout
    assert any(line.split()[:2] == [KERNEL_NAME, runtime_image] for line in text.splitlines())


def test_install_refuses_an_image_that_is_not_here(docker_engine, tmp_path):
    proc = compete_kernel("install", "--prefix", str(tmp_path), "--image", "jupyter-compete/no-such-image:1")
    assert proc.returncode == 1
    assert "the image jupyter-compete/no-such-image:1 is not on this machine" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "share").exists()


def test_install_and_launch_refuse_clearly_without_docker(tmp_path):
    dead = f"unix://{tmp_path}/no-engine/docker.sock"
    env = {**os.environ, "DOCKER_HOST": dead}
    proc = compete_kernel("install", "--prefix", str(tmp_path), env=env)
    assert proc.returncode == 1
    assert f"no Docker engine answers at {dead}" in proc.stderr
    assert "The judge's environment as a kernel" in proc.stderr  # where to read what to do instead
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "share").exists()

    # A spec installed earlier, started where the engine is gone: the
    # server's log says why the kernel did not start.
    connection = tmp_path / "kernel-1.json"
    connection.write_text("{}")
    launched = subprocess.run([sys.executable, "-m", "kernels.judge_kernel", "-f", str(connection)],
                              capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert launched.returncode == 1
    assert f"judge kernel: no Docker engine answers at {dead}" in launched.stderr
    assert "pick another kernel" in launched.stderr
    assert "Traceback" not in launched.stderr


def test_remove_deletes_only_judge_kernels(jupyter_path, tmp_path, runtime_image):
    prefix = tmp_path / "prefix"
    proc = compete_kernel("install", "--prefix", str(prefix), "--name", "judge-to-remove", "--image", runtime_image)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter")}
    assert "judge-to-remove" in compete_kernel("list", env=env).stdout
    proc = compete_kernel("remove", "python3", env=env)
    assert proc.returncode == 1 and "no judge kernel named 'python3'" in proc.stderr
    proc = compete_kernel("remove", "judge-to-remove", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (prefix / "share" / "jupyter" / "kernels" / "judge-to-remove").exists()


# -- running -----------------------------------------------------------------------------------


def test_kernel_runs_in_the_image_as_the_participant_and_sees_their_files(start_kernel, participant_files,
                                                                          docker_engine, runtime_image):
    manager, client = start_kernel()
    image_python = docker_engine.containers.run(
        runtime_image, ["python3", "-c", "import sys; print(sys.prefix, sys.version.split()[0])"],
        remove=True, network_mode="none").decode().split()
    reply, out = run(client, "\n".join([
        "import os, sys",
        "print(sys.prefix, sys.version.split()[0])",
        "print(os.getcwd())",
        "print(open('../data/train.csv').read().splitlines()[1])",
        "open('predictions.csv', 'w').write('id,y\\n1,2\\n')",
        "print(os.getuid(), os.getgid())",
        "print(os.environ['JUPYTER_COMPETE_JUDGE_KERNEL'])",
    ]))
    assert reply["status"] == "ok", out
    prefix_and_version, cwd, row, ids, image = out.splitlines()
    # The image's own Python (/opt/venv), not the Python of this test run.
    assert prefix_and_version.split() == image_python
    assert image_python[0] != sys.prefix
    assert cwd == str(participant_files / "notebooks")
    assert row == "1,2"
    assert ids == f"{os.getuid()} {os.getgid()}"
    assert image == runtime_image
    written = participant_files / "notebooks" / "predictions.csv"
    assert written.read_text() == "id,y\n1,2\n"
    assert written.stat().st_uid == os.getuid()
    [container] = containers_of(docker_engine, manager)
    # What ties the container to its launcher and keeps nothing behind.
    assert container.attrs["Config"]["OpenStdin"] and container.attrs["Config"]["StdinOnce"]
    assert container.attrs["HostConfig"]["AutoRemove"]
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"


def test_kernel_has_the_judges_limits(start_kernel):
    manager, client = start_kernel()
    reply, out = run(client, "\n".join([
        "from pathlib import Path",
        "def first(*paths):",
        "    return next(Path(p).read_text().strip() for p in paths if Path(p).exists())",
        "print(first('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory.max'))",
        "print(first('/sys/fs/cgroup/pids/pids.max', '/sys/fs/cgroup/pids.max'))",
        "try:",
        "    open('/opt/written-by-the-kernel', 'w')",
        "    print('writable root')",
        "except OSError as exc:",
        "    print('read-only root', exc.errno)",
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])",
    ]))
    assert reply["status"] == "ok", out
    memory, pids, root, capabilities = out.splitlines()
    assert int(memory) == MEMORY_MB * 1024 * 1024
    assert int(pids) == PIDS
    assert root.startswith("read-only root")
    assert int(capabilities, 16) == 0


def test_interrupt_stops_a_sleep_and_keeps_the_kernel(start_kernel):
    manager, client = start_kernel()
    assert run(client, "kept = 42")[0]["status"] == "ok"
    # stop_on_error=False: ipykernel would otherwise abort the requests that
    # follow an error for a moment, which is its business, not the launcher's.
    msg_id = client.execute("import time; time.sleep(120)", stop_on_error=False)
    # Interrupt once the cell runs (the kernel said busy for it).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=30)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "busy"):
            break
    time.sleep(0.5)
    interrupted_at = time.monotonic()
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - interrupted_at < 10
    reply, out = run(client, "print(kept)")
    assert (reply["status"], out.strip()) == ("ok", "42")


def test_restart_gives_a_fresh_kernel_in_a_new_container(start_kernel, docker_engine):
    manager, client = start_kernel()
    assert run(client, "x = 1")[0]["status"] == "ok"
    [before] = containers_of(docker_engine, manager)
    manager.restart_kernel()
    client.wait_for_ready(timeout=90)
    reply, out = run(client, "print(x)")
    assert reply["status"] == "error" and "NameError" in out
    [after] = containers_of(docker_engine, manager)
    assert after.id != before.id
    assert run(client, "print('alive')")[1].strip() == "alive"


def test_shutdown_leaves_no_container(start_kernel, docker_engine):
    manager, client = start_kernel()
    launcher = manager.provisioner.process
    assert len(containers_of(docker_engine, manager)) == 1
    started = time.monotonic()
    manager.shutdown_kernel()
    assert launcher.poll() == 0  # the kernel left on the shutdown request, the launcher with it
    wait_until(lambda: not containers_of(docker_engine, manager), 10, "the container outlived the kernel")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_launcher_killed_leaves_no_container(start_kernel, docker_engine, signum):
    manager, client = start_kernel()
    launcher = manager.provisioner.process
    assert len(containers_of(docker_engine, manager)) == 1
    os.kill(launcher.pid, signum)  # the launcher alone, not its process group
    launcher.wait(timeout=15)
    wait_until(lambda: not containers_of(docker_engine, manager), 15,
               f"the kernel's container is still there after {signal.Signals(signum).name} of its launcher")


# A Jupyter server in miniature: starts the judge kernel, says where, and waits to be killed.
SERVER_SCRIPT = """
import sys, time
from jupyter_client.manager import KernelManager
manager = KernelManager(kernel_name=sys.argv[1])
manager.start_kernel(cwd=sys.argv[2])
client = manager.client()
client.start_channels()
client.wait_for_ready(timeout=90)
print(manager.connection_file, manager.provisioner.process.pid, flush=True)
time.sleep(600)
"""


def test_a_server_killed_without_stopping_its_kernel_leaves_no_launcher_and_no_container(
        jupyter_path, participant_files, docker_engine):
    import psutil

    env = {**os.environ, "JUPYTER_PATH": str(jupyter_path), "JUPYTERHUB_ROOT_DIR": str(participant_files)}
    server = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, KERNEL_NAME, str(participant_files / "notebooks")],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        connection_file, launcher_pid = server.stdout.readline().split()
        label = f"{LABEL_CONNECTION}={Path(connection_file).resolve()}"
        assert len(docker_engine.containers.list(filters={"label": label})) == 1
        launcher = psutil.Process(int(launcher_pid))
        server.kill()  # SIGKILL: the server stops none of its kernels
        server.wait(timeout=10)
        launcher.wait(timeout=20)  # the launcher notices and leaves ...
        wait_until(lambda: not docker_engine.containers.list(all=True, filters={"label": label}), 20,
                   "the kernel's container outlived the server that started it")  # ... with its container
    finally:
        if server.poll() is None:
            server.kill()


def test_a_kernel_over_its_memory_limit_dies_and_the_log_says_why(start_kernel, docker_engine, capfd):
    manager, client = start_kernel()
    launcher = manager.provisioner.process
    client.execute(f"block = b'x' * ({MEMORY_MB + 256} * 1024 * 1024)")
    launcher.wait(timeout=60)
    assert launcher.returncode == 137
    wait_until(lambda: not containers_of(docker_engine, manager), 10, "the container outlived the kernel")
    err = capfd.readouterr().err
    assert f"going over its memory limit of {MEMORY_MB} MB" in err


# -- pieces without Docker --------------------------------------------------------------------


def test_the_mount_is_the_servers_root_else_the_working_directory(tmp_path):
    root = tmp_path / "root"
    work = root / "competitions" / "demo"
    work.mkdir(parents=True)
    assert default_mounts(work, {"JUPYTERHUB_ROOT_DIR": str(root)}) == [root.resolve()]
    assert default_mounts(work, {"HOME": str(root)}) == [root.resolve()]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert default_mounts(elsewhere, {"JUPYTERHUB_ROOT_DIR": str(root), "HOME": str(root)}) == [elsewhere.resolve()]
    assert default_mounts(work, {"HOME": "/"}) == [work.resolve()]  # never the whole machine
    assert default_mounts(Path("/"), {}) == []


def test_memory_sizes_and_kernel_names():
    from hub_extension.cli_kernel import default_kernel_name

    assert parse_memory("2048") == 2048
    assert parse_memory("2g") == 2048
    assert parse_memory("512MB") == 512
    with pytest.raises(argparse.ArgumentTypeError):
        parse_memory("lots")
    assert default_kernel_name("jupyter-compete/runtime:py3") == "judge"
    assert default_kernel_name("codalab/codalab-legacy:py37") == "judge-codalab-codalab-legacy-py37"


def test_add_commands_gives_the_compete_command_a_kernel_group():
    from hub_extension.cli_kernel import add_commands, cmd_kernel_install, cmd_kernel_list

    parser = argparse.ArgumentParser(prog="compete")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["kernel", "install", "--user", "--image", "some/image:1", "--name", "mine"])
    assert (args.func, args.user, args.image, args.name) == (cmd_kernel_install, True, "some/image:1", "mine")
    assert parser.parse_args(["kernel", "list", "--json"]).func is cmd_kernel_list
    with pytest.raises(SystemExit):
        parser.parse_args(["kernel", "install", "--user", "--sys-prefix"])
