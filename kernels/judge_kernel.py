"""The judge's environment as a Jupyter kernel: an IPython kernel inside a runtime image.

A kernel spec installed by `compete kernel install` names this module in its
argv.  jupyter_client starts it with the connection file it wrote (five ports
and a key); this launcher starts a container of the competition's runtime
image in which the participant's IPython kernel runs, so that a notebook that
works in this kernel works in the judge (same Python, same packages, same
memory, CPU and process limits, a read-only root filesystem, no capabilities,
the same non-root user as the files being edited).

Networking: the container shares the host's network namespace.  The kernel
manager chose five free ports on the host (127.0.0.1 by default) and the
kernel binds exactly those, so the connection file is used unchanged: no port
is published, no proxy sits in between, there is no window between the
manager's choice of ports and their publication, and the kernel reaches what a
regular kernel of the same participant reaches (no more).  The one difference
from the judge: steps there have no network unless the phase allows it.

Lifetime: the container is tied to this process.  The launcher stays
attached to the container's stdin (the engine closes it when the launcher goes
away, however it goes); inside, this same file runs as a small supervisor
(`supervise`, PID 1) that starts the kernel, forwards the signals the launcher
relays (SIGINT is an interrupt from JupyterLab), reaps orphans, and kills the
kernel when its stdin ends.  The engine removes the container when it stops
(auto-remove), and a launcher removes what an earlier launcher of the same
connection file, or a dead one of this host, left behind.  The launcher itself
is tied to the Jupyter server that started it: when that server goes away
without stopping its kernels (killed), the launcher is re-parented, notices,
and stops the kernel as if told to.

This file is also copied into the container, so everything at module level is
standard library that Python 3.7 understands; the Docker SDK is imported by
the launcher only.
"""
from __future__ import annotations

import argparse
import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

DEFAULT_IMAGE = "jupyter-compete/runtime:py3"  # kernels.build.DEFAULT_IMAGE (not imported: see above)

LABEL_PREFIX = "jupyter-compete.kernel"
LABEL_KERNEL = f"{LABEL_PREFIX}"  # marks every container of a judge kernel
LABEL_CONNECTION = f"{LABEL_PREFIX}.connection-file"
LABEL_HOST = f"{LABEL_PREFIX}.host"
LABEL_PID = f"{LABEL_PREFIX}.launcher-pid"

# Where the connection file and this script appear inside the container.
CONTAINER_CONNECTION_FILE = "/run/jupyter-compete/connection.json"
CONTAINER_SUPERVISOR = "/run/jupyter-compete/judge_kernel.py"
# Where the platform's participant client (the `hub_extension` package: the Submit and
# Leaderboard widgets, `CompeteClient`) appears inside the container, read-only, on
# PYTHONPATH: the kits' widget cells work in this kernel as in the servers' own.  The
# host's copy is the one the service runs, so the two always speak the same API.
CONTAINER_CLIENT_PATH = "/run/jupyter-compete/client"
CLIENT_PACKAGE = "hub_extension"

# Environment of the host kernel that the participant's code may rely on
# (the hub's token and the competition service, the notebook's path).
PASSED_ENVIRONMENT = (
    "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_BASE_URL", "COMPETE_SERVICE_URL", "JPY_SESSION_NAME", "TZ",
)

# Seconds a container gets to stop after SIGTERM before it is killed.
STOP_GRACE = 5.0
# Seconds to wait for an earlier container of the same kernel to go away.
REPLACE_TIMEOUT = 20.0


class LaunchError(RuntimeError):
    """The kernel cannot be started; the message says why and what to do."""


def _say(message: str) -> None:
    # The launcher's stderr ends up in the Jupyter server's log.
    print(f"judge kernel: {message}", file=sys.stderr, flush=True)


# -- inside the container: the supervisor ------------------------------------------------


def supervise(kernel_argv: "list[str]") -> int:
    """Run the kernel as a child of PID 1 and tie it to stdin; returns its exit code."""
    environment = dict(os.environ)
    # The kernel's parent is PID 1, which ipykernel knows never goes away: no
    # parent polling, and no "Ctrl-C will not work" banner (SIGINT does work).
    environment.setdefault("JPY_PARENT_PID", str(os.getpid()))
    kernel = subprocess.Popen(kernel_argv, stdin=subprocess.DEVNULL, env=environment)
    launcher_gone = threading.Event()
    stop_signals = []  # appended to by the handler: no lock (see Launcher._on_signal)

    def forward(signum, _frame):
        if signum != signal.SIGINT:
            stop_signals.append(signum)
        try:
            os.kill(kernel.pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)

    def watch_stdin():
        # Blocks until the launcher's attach connection closes.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        launcher_gone.set()
        try:
            os.kill(kernel.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    threading.Thread(target=watch_stdin, name="launcher-watch", daemon=True).start()

    # PID 1 reaps every orphan of the container, and leaves with the kernel.
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        if pid != kernel.pid:
            continue
        if os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            if not (launcher_gone.is_set() or stop_signals):
                print(f"judge kernel: the kernel was killed by signal {signum}", file=sys.stderr, flush=True)
            return 128 + signum
        return os.WEXITSTATUS(status)


# -- on the host: the launcher ------------------------------------------------------------


def client_package() -> "Path | None":
    """The folder of the platform's client package on this host, or None when it is not installed here."""
    # Only the launcher asks (on the host); importlib.util finds it without importing it.
    import importlib.util

    spec = importlib.util.find_spec(CLIENT_PACKAGE)
    if spec is None or not spec.origin:
        _say(f"the package {CLIENT_PACKAGE} is not installed beside this launcher: the kits' Submit and "
             "Leaderboard widgets will not import in this kernel")
        return None
    return Path(spec.origin).resolve().parent


def default_mounts(cwd: Path, environ: "dict[str, str]") -> "list[Path]":
    """The folder the kernel's files live in, mounted at the same path in the container.

    The Jupyter server's root when the kernel starts inside it (JupyterHub's
    `JUPYTERHUB_ROOT_DIR`, else the home folder a single-user server starts
    in), so that `../data` from a notebook works as it does in a regular
    kernel; else the kernel's working directory.  Never `/`.
    """
    cwd = cwd.resolve()
    for candidate in (environ.get("JUPYTERHUB_ROOT_DIR"), environ.get("HOME")):
        if not candidate:
            continue
        root = Path(os.path.expanduser(candidate)).resolve()
        if root != Path(root.anchor) and (cwd == root or root in cwd.parents):
            return [root]
    if cwd == Path(cwd.anchor):
        return []
    return [cwd]


def parse_memory(text: str) -> int:
    """'2048' (MB), '2g', '512m' -> megabytes."""
    value = text.strip().lower().rstrip("b")
    factor = 1
    if value.endswith("g"):
        factor, value = 1024, value[:-1]
    elif value.endswith("m"):
        value = value[:-1]
    try:
        megabytes = int(float(value) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text!r} (say 2048, 2048m or 2g)") from None
    if megabytes < 0:
        raise argparse.ArgumentTypeError("a memory size cannot be negative")
    return megabytes


class Launcher:
    """Starts the kernel's container, relays signals and output, and removes it at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.image: str = args.image
        self.connection_file = Path(args.connection_file).resolve()
        self.memory_mb: int = args.memory_mb
        self.cpus: float = args.cpus
        self.pids: int = args.pids
        self.python: str = args.python
        self.cwd = Path.cwd()
        self.mounts = [Path(m).resolve() for m in args.mount] if args.mount else default_mounts(self.cwd, dict(os.environ))
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # The Jupyter server that started this kernel: should it go away without stopping the kernel
        # (killed, or stopped before its kernels), this launcher is re-parented and stops the kernel.
        self.parent = os.getppid()
        self.signals: "collections.deque[int]" = collections.deque()
        self.exited = threading.Event()
        self.exit_status = None
        self.client = None
        self.container_id: "str | None" = None
        self.we_killed = False
        self.attach_socket = None  # held open for the container's lifetime: see the module docstring

    # The handler only appends to a deque, which takes no lock: a handler
    # that waited for a lock held by the code it interrupted (a queue's, the
    # connection pool's) would never return.  Docker calls happen in the
    # main loop.
    def _on_signal(self, signum, _frame) -> None:
        self.signals.append(signum)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, self._on_signal)
        try:
            self._connect()
            self._remove_leftovers()
            if any(signum != signal.SIGINT for signum in self.signals):
                return 128 + signal.SIGTERM  # told to stop before there was anything to stop
            self.attach_socket = self._create_and_attach()
            return self._supervise()
        except LaunchError as exc:
            _say(str(exc))
            return 1
        finally:
            self._remove_container()
            if self.client is not None:
                self.client.close()

    # -- set-up --------------------------------------------------------------------

    def _connect(self) -> None:
        if not self.connection_file.is_file():
            raise LaunchError(f"no connection file at {self.connection_file}: this program is started by "
                              "Jupyter with the kernel spec's {connection_file} argument")
        try:
            # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
            import docker
        except ImportError:
            raise LaunchError("the Python package `docker` is missing from the environment of the "
                              "kernel spec's Python; reinstall jupyter-compete there") from None
        try:
            self.client = docker.from_env(timeout=60)
            self.client.ping()
        except Exception as exc:
            where = os.environ.get("DOCKER_HOST") or "the default socket"
            raise LaunchError(
                f"no Docker engine answers at {where} ({_first_line(exc)}). The judge's environment "
                "runs in a container: start Docker, or pick another kernel for this notebook") from None
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            hint = "`compete image build`" if self.image == DEFAULT_IMAGE else f"`docker pull {self.image}`"
            raise LaunchError(f"the image {self.image} is not on this machine: get it with {hint}, "
                              "then restart the kernel") from None

    def _remove_leftovers(self) -> None:
        """Remove an earlier container of this kernel (a restart) and those of dead launchers of this host."""
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker

        mine = []
        for container in self.client.containers.list(all=True, filters={"label": LABEL_KERNEL}):
            labels = container.labels or {}
            if labels.get(LABEL_HOST) != self.host:
                continue
            same_kernel = labels.get(LABEL_CONNECTION) == str(self.connection_file)
            try:
                owner_alive = _process_alive(int(labels.get(LABEL_PID, "-1")))
            except ValueError:
                owner_alive = False
            if same_kernel or not owner_alive:
                mine.append(container)
        for container in mine:
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    _say(f"could not remove the leftover container {container.short_id}: {_first_line(exc)}")
        # With the host network, the ports of the earlier kernel must be free
        # before this one binds them.
        deadline = time.monotonic() + REPLACE_TIMEOUT
        for container in mine:
            while time.monotonic() < deadline:
                try:
                    container.reload()
                except docker.errors.NotFound:
                    break
                time.sleep(0.1)

    def create_kwargs(self) -> dict:
        """Everything `containers.create` gets (pure: no engine call)."""
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        from docker.types import Mount

        uid, gid = os.getuid(), os.getgid()
        mounts = [
            Mount(CONTAINER_CONNECTION_FILE, str(self.connection_file), type="bind", read_only=True),
            Mount(CONTAINER_SUPERVISOR, str(Path(__file__).resolve()), type="bind", read_only=True),
        ]
        client = client_package()
        if client is not None:
            mounts.append(Mount(f"{CONTAINER_CLIENT_PATH}/{CLIENT_PACKAGE}", str(client), type="bind", read_only=True))
        mounts += [Mount(str(path), str(path), type="bind", read_only=False) for path in self.mounts]
        working_dir = str(self.cwd.resolve())
        if not any(p == self.cwd.resolve() or p in self.cwd.resolve().parents for p in self.mounts):
            working_dir = "/tmp"
        # As in the judge: HOME in the writable /tmp, for IPython, matplotlib and pip.
        # The image says MPLBACKEND=Agg (the judge draws to files); here figures show in the notebook.
        environment = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONUNBUFFERED": "1",
                       "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                       "JUPYTER_COMPETE_JUDGE_KERNEL": self.image}
        if client is not None:
            environment["PYTHONPATH"] = CONTAINER_CLIENT_PATH
        environment.update({name: os.environ[name] for name in PASSED_ENVIRONMENT if os.environ.get(name)})
        tmp_mb = max(64, self.memory_mb) if self.memory_mb else 1024
        kwargs = dict(
            image=self.image,
            command=[self.python, CONTAINER_SUPERVISOR, "supervise", "--",
                     self.python, "-m", "ipykernel_launcher", "-f", CONTAINER_CONNECTION_FILE],
            entrypoint=[],
            user=f"{uid}:{gid}",
            group_add=[str(g) for g in sorted(set(os.getgroups()) - {gid})],
            working_dir=working_dir,
            environment=environment,
            mounts=mounts,
            labels={
                LABEL_KERNEL: self.image,
                LABEL_CONNECTION: str(self.connection_file),
                LABEL_HOST: self.host,
                LABEL_PID: str(self.pid),
            },
            network_mode="host",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=True,
            stdin_open=True,  # with the SDK's defaults, also StdinOnce: see the module docstring
            tty=False,
            auto_remove=True,
        )
        if Path("/tmp") not in self.mounts:  # a folder being /tmp itself is mounted as it is
            kwargs["tmpfs"] = {"/tmp": f"rw,nosuid,nodev,exec,size={tmp_mb}m,mode=1777"}
        if self.memory_mb:
            kwargs["mem_limit"] = f"{self.memory_mb}m"
            kwargs["memswap_limit"] = f"{self.memory_mb}m"  # no swap, as in the judge
        if self.cpus:
            kwargs["nano_cpus"] = int(self.cpus * 1e9)
        if self.pids:
            kwargs["pids_limit"] = self.pids
        return kwargs

    def _create_and_attach(self):
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker

        try:
            container = self.client.containers.create(**self.create_kwargs())
        except docker.errors.APIError as exc:
            raise LaunchError(f"the kernel's container could not be created: {_first_line(exc)}") from None
        self.container_id = container.id
        # Attached before the start: no output is lost, and the engine closes
        # the container's stdin when this connection closes.
        sock = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        threading.Thread(target=self._wait_removed, name="container-wait", daemon=True).start()
        threading.Thread(target=self._relay_output, args=(sock,), name="container-output", daemon=True).start()
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise LaunchError(f"the kernel's container could not start: {_first_line(exc)}") from None
        return sock

    def _wait_removed(self) -> None:
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker
        import requests

        code = None
        while True:
            try:
                # No read timeout: a kernel may live for days.
                code = self.client.api.wait(self.container_id, timeout=None, condition="removed").get("StatusCode")
                break
            except docker.errors.NotFound:
                break
            except (requests.exceptions.RequestException, docker.errors.APIError) as exc:
                try:
                    self.client.ping()
                except Exception:
                    _say(f"lost the Docker engine: {_first_line(exc)}")
                    break
                time.sleep(0.5)  # the engine is there: wait again
        self.exit_status = code
        self.exited.set()

    @staticmethod
    def _relay_output(sock) -> None:
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        from docker.utils.socket import frames_iter

        outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
        try:
            for stream, data in frames_iter(sock, tty=False):
                target = outputs.get(stream)
                if target is not None:
                    target.write(data)
                    target.flush()
        except Exception:  # the socket closes when the container ends
            pass

    # -- running -----------------------------------------------------------------------

    def _supervise(self) -> int:
        kill_at: "float | None" = None
        while True:
            while self.signals:
                signum = self.signals.popleft()
                if signum == signal.SIGINT:
                    self._signal_container(signal.SIGINT)  # an interrupt from the front end
                elif kill_at is None:
                    self._signal_container(signal.SIGTERM)
                    kill_at = time.monotonic() + STOP_GRACE
            if self.exited.wait(0.1):
                self.container_id = None  # removed by the engine
                return self._exit_code(self.exit_status)
            if kill_at is None and os.getppid() != self.parent:
                _say(f"the Jupyter server that started this kernel (pid {self.parent}) is gone: stopping the kernel")
                self.signals.append(signal.SIGTERM)
            if kill_at is not None and time.monotonic() >= kill_at:
                self._signal_container(signal.SIGKILL)
                kill_at = float("inf")

    def _signal_container(self, signum: int) -> None:
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker

        if self.container_id is None:
            return
        if signum in (signal.SIGTERM, signal.SIGKILL):
            self.we_killed = True
        try:
            self.client.api.kill(self.container_id, signal=int(signum))
        except docker.errors.APIError:
            pass  # it stopped in the meantime

    def _exit_code(self, code) -> int:
        if code is None:
            return 1
        code = int(code)
        if code == 137 and not self.we_killed and self.memory_mb:
            _say(f"the kernel was killed (SIGKILL), most likely for going over its memory limit of "
                 f"{self.memory_mb} MB; the judge would stop it the same way")
        return code

    def _remove_container(self) -> None:
        if self.container_id is None or self.client is None:
            return
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker

        try:
            self.client.api.remove_container(self.container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                _say(f"could not remove the container {self.container_id[:12]}: {_first_line(exc)}")
        self.container_id = None


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kernels.judge_kernel",
        description="Start an IPython kernel inside a runtime image (used by the judge kernel spec).",
    )
    parser.add_argument("-f", "--connection-file", required=True, help="the connection file Jupyter wrote")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"runtime image (default {DEFAULT_IMAGE})")
    parser.add_argument("--memory-mb", type=parse_memory, default=0, help="memory limit in MB, no swap (0: none)")
    parser.add_argument("--cpus", type=float, default=0.0, help="CPU limit in cores (0: none)")
    parser.add_argument("--pids", type=int, default=0, help="most processes and threads (0: no limit)")
    parser.add_argument("--mount", action="append", default=[],
                        help="a host folder mounted at the same path (repeatable; default: the Jupyter "
                             "server's root, else the kernel's working directory)")
    parser.add_argument("--python", default="python3", help="the image's Python (default python3)")
    return parser


def main(argv: "list[str] | None" = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["supervise"]:
        rest = argv[1:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            print("usage: judge_kernel.py supervise -- KERNEL ARGV...", file=sys.stderr)
            return 2
        return supervise(rest)
    return Launcher(build_parser().parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
