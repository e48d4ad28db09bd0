"""The unsafe process executor: runs steps as plain processes on the worker, for development.

`UnsafeProcessExecutor` (short name `process`).

THIS EXECUTOR ISOLATES NOTHING.  The program runs as the worker's user, sees
the worker's whole file system (other submissions, the dataset cache, the
reference data of every phase), can use the network and can leave the
process group it is put in.  Use it only for code you trust: developing a
competition bundle, tests, a single-user demo.  Production runs participants'
code with the Docker executor.

What it does enforce, as a help against honest mistakes:
- rlimits on every step: address space (`memory_mb`), CPU seconds, file
  size, and the number of processes for non-root users;
- the wall-clock `time_limit`, by killing the step's whole process group;
- a cap on the captured stdout and stderr (head and tail are kept).

Placeholders in commands are replaced by real host paths (`$program` is
`spec.program_dir`, `$input` in the scoring step is `spec.input_dir` holding
`ref/` and `res/`, ...).  Programs that hard-code the container paths
(`/app/program`, `/app/input_data`, ...) instead of using placeholders
cannot run here; they need the Docker executor.

Notebook steps run fast: papermill stays imported in the worker process and
`warm_kernels` Jupyter kernels are started ahead of time, each having
imported `warm_preload` (numpy, pandas) and the modules of
`warm_preload_learned` packages that the previous notebook imported
(`dask_workers.preload`), so a notebook step costs about the execution of
its cells.  Each kernel is used for one step only, gets the step's rlimits
(`prlimit`) and working directory before the notebook runs, and is killed
afterwards.
"""
from __future__ import annotations

import atexit
import concurrent.futures
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional

from traitlets import Bool, Integer, List, Unicode

from .. import limited_exec
from ..notebook import EXECUTED_NAME, REPORT_NAME, describe_failure
from ..preload import LEARNED_PACKAGES, Preloads
from ..spec import Limits, StepResult, StepSpec
from ..safe_files import read_file
from .base import Executor, LogFn, OutputWatch, remove_unsafe_entries, substitute_placeholders, write_metadata

LAUNCHER = str(Path(limited_exec.__file__).resolve())
NO_ISOLATION = (
    "process executor: this step is NOT isolated; it runs as a plain process of the worker's "
    "user, with only rlimits and a wall-clock limit (use the docker executor for untrusted code)"
)
# Variables of the worker passed on to steps; the rest (tokens, credentials of
# the artifact store, ...) stays with the worker.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "VIRTUAL_ENV", "USER", "LOGNAME", "TERM")
_OOM_HINTS = re.compile(rb"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory", re.I)
# Python ignores SIGXFSZ, so an oversized write shows up as EFBIG in its traceback.
_FSIZE_HINTS = re.compile(rb"File too large|EFBIG")


def host_paths(spec: StepSpec) -> dict[str, str]:
    """Placeholder -> host path of this step (shell-quoted), from the folders of the spec."""
    paths: dict[str, str] = {"program": spec.program_dir}
    if spec.step == "scoring":
        if spec.input_dir:
            paths.update(
                input=spec.input_dir,
                predictions=os.path.join(spec.input_dir, "res"),
                hidden=os.path.join(spec.input_dir, "ref"),
            )
    else:
        paths["ingestion_program"] = spec.program_dir
        if spec.ingested_program_dir:
            paths["submission_program"] = spec.ingested_program_dir
        if spec.input_dir:
            paths["input"] = spec.input_dir
        paths["predictions"] = spec.output_dir
    paths["output"] = paths["tmp"] = spec.output_dir
    if spec.shared_dir:
        paths["shared"] = spec.shared_dir
    return {name: shlex.quote(str(Path(path).resolve())) for name, path in paths.items()}


def step_environment(spec: StepSpec) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    env.update({name: value for name, value in os.environ.items() if name.startswith("LC_")})
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.env)
    return env


class CappedBuffer:
    """Keeps at most `cap` bytes of a stream: its head and its tail, with a marker between."""

    def __init__(self, cap: int):
        self.cap = max(0, cap)
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail.append(data)
        self.tail_size += len(data)
        limit = self.cap - self.cap // 2
        while self.tail and self.tail_size - len(self.tail[0]) >= limit:
            self.tail_size -= len(self.tail.popleft())

    @property
    def truncated(self) -> bool:
        return self.total > self.cap

    def tail_bytes(self, size: int) -> bytes:
        return (bytes(self.head) + b"".join(self.tail))[-size:]

    def text(self) -> str:
        tail = b"".join(self.tail)
        limit = self.cap - self.cap // 2
        if len(tail) > limit:
            tail = tail[len(tail) - limit :]
        if not self.truncated:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        cut = self.total - len(self.head) - len(tail)
        marker = f"\n[... {cut} bytes left out: output is capped at {self.cap} bytes ...]\n"
        return self.head.decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")


def _pump(stream: IO[bytes], buffer: CappedBuffer) -> None:
    # Read incrementally so that a chatty program never makes the worker hold more than the cap.
    try:
        for chunk in iter(lambda: stream.read1(65536), b""):
            buffer.write(chunk)
    except (OSError, ValueError):
        pass


def _read_capped(path: Path, cap: int) -> CappedBuffer:
    buffer = CappedBuffer(cap)
    try:
        with open(path, "rb") as handle:
            _pump(handle, buffer)  # type: ignore[arg-type]
    except OSError:
        pass
    return buffer


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cpu_seconds(limits: Limits) -> int:
    # A backstop only: RLIMIT_CPU is per process; the wall clock is the real limit.
    return int(math.ceil(limits.time_limit * max(1.0, limits.cpus))) + 5


@dataclass
class _Running:
    """A step in progress, as `cancel` needs to see it."""

    submission_id: int
    pgid: int
    cancelled: bool = False
    timed_out: bool = False
    output_over: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self, reason: str) -> None:
        """Kill the step's process group for `reason`: "cancel", "timeout" or "output"."""
        with self.lock:
            if reason == "cancel":
                self.cancelled = True
            elif reason == "output":
                self.output_over = True
            else:
                self.timed_out = True
            _kill_group(self.pgid)


def _quick_ready_client_class() -> type:
    """A kernel client that is ready as soon as the kernel answers, and prepares the kernel then.

    jupyter_client's own `wait_for_ready` always waits 0.2 s for IOPub to fall
    silent, which is most of the cost of a notebook step on a warm kernel.
    Here readiness is the end of one silent execution of the step's
    preparation code (working directory, variables): its reply proves the
    shell channel works and its `idle` status proves IOPub is subscribed.
    The code is idempotent, so it is simply sent again until both arrive.
    """
    from queue import Empty  # with the kernel client below: loaded only for notebook steps

    from jupyter_client.asynchronous import AsyncKernelClient  # slow to import; notebook steps only

    class QuickReadyClient(AsyncKernelClient):
        prepare_code = "pass"

        async def wait_for_ready(self, timeout: Optional[float] = None) -> None:  # type: ignore[override]
            deadline = time.monotonic() + (timeout or 60)
            while time.monotonic() < deadline:
                msg_id = self.execute(self.prepare_code, silent=True, store_history=False)
                while True:
                    reply = await self.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                if reply["content"].get("status") != "ok":
                    content = reply["content"]
                    raise RuntimeError(f"cannot prepare the kernel: {content.get('ename')}: {content.get('evalue')}")
                try:
                    while True:
                        msg = await self.iopub_channel.get_msg(timeout=0.05)
                        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                                and msg["content"].get("execution_state") == "idle"):
                            return
                except Empty:
                    continue  # IOPub not subscribed yet: the status went unseen
            raise RuntimeError(f"the kernel did not answer within {timeout or 60:g} s")

    return QuickReadyClient


class _Kernel:
    """A started Jupyter kernel for one notebook step, with its own scratch folder."""

    def __init__(self, kernel_name: str, launcher: list[str], preload: list[str] = ()):  # type: ignore[assignment]
        from jupyter_client.manager import KernelManager  # slow to import; notebook steps only

        self.scratch = Path(tempfile.mkdtemp(prefix="compete-kernel-"))
        self.clients: list[Any] = []
        prefix = [*launcher, "--cwd", str(self.scratch),
                  "--stdout", str(self.scratch / "stdout"), "--stderr", str(self.scratch / "stderr"), "--"]
        clients = self.clients
        client_class = _quick_ready_client_class()

        class LimitedKernelManager(KernelManager):
            # nbclient drives the kernel with asyncio; the manager itself stays
            # synchronous so that it can be started in one thread and used in another.
            def format_kernel_cmd(self, extra_arguments=None):  # type: ignore[override]
                return [*prefix, *super().format_kernel_cmd(extra_arguments)]

            def client(self, **kwargs):  # type: ignore[override]
                made = super().client(**kwargs)
                made.prepare_code = self.prepare_code
                clients.append(made)
                return made

        # Unix sockets in the scratch folder: no TCP port for other local users to find.
        self.km = LimitedKernelManager(kernel_name=kernel_name, transport="ipc", ip=str(self.scratch / "kernel"))
        self.km.client_factory = client_class
        self.km.prepare_code = "pass"
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        self.km.start_kernel(env=env)
        self.pid: int = self.km.provisioner.pid  # type: ignore[union-attr]
        self.pgid: int = self.km.provisioner.pgid or self.pid  # type: ignore[union-attr]
        if preload:
            self._preload(list(preload))

    def _preload(self, modules: list[str]) -> None:
        """Import `modules` in the kernel now (a failure only leaves the notebook to import them)."""
        from jupyter_client.blocking import BlockingKernelClient  # with the kernel manager above

        from ..run_notebook import preload_in  # with papermill's runner: notebook steps only

        client = BlockingKernelClient()
        client.load_connection_info(self.km.get_connection_info())
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            preload_in(client, modules)
        except Exception:  # noqa: BLE001 - the kernel stays usable; `alive` tells whether it is
            pass
        finally:
            client.stop_channels()

    def alive(self) -> bool:
        try:
            return bool(self.km.is_alive())
        except Exception:  # noqa: BLE001 - a broken manager is a dead kernel
            return False

    def prepare(self, limits: Limits, cwd: str, env: dict[str, str], max_file_bytes: int) -> None:
        """Give the kernel the step's limits; its directory and variables follow on connection."""
        resource.prlimit(self.pid, resource.RLIMIT_AS, (limits.memory_mb << 20,) * 2)
        resource.prlimit(self.pid, resource.RLIMIT_CPU, (_cpu_seconds(limits) + 10,) * 2)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (max_file_bytes,) * 2)
        if os.getuid() != 0 and limits.pids:
            count = limited_exec._own_process_count() + limits.pids
            resource.prlimit(self.pid, resource.RLIMIT_NPROC, (count, count))
        self.km.prepare_code = f"__import__('os').chdir({cwd!r}); __import__('os').environ.update({env!r})"

    @property
    def stdout_path(self) -> Path:
        return self.scratch / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.scratch / "stderr"

    def close(self) -> None:
        """Kill the kernel and close the clients that talked to it."""
        _kill_group(self.pgid)
        for made in self.clients:
            try:
                made.stop_channels()
            except Exception:  # noqa: BLE001 - closing best effort
                pass
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already dead
            pass

    def discard(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


class UnsafeProcessExecutor(Executor):
    """Runs steps as local processes with rlimits.  Isolates nothing: trusted code only.

    `max_file_bytes` bounds every file a step writes (RLIMIT_FSIZE);
    `warm_kernel` keeps `warm_kernels` Jupyter kernels started ahead of time
    for the next notebook steps (and imports papermill in the background at start).
    """

    name = "process"
    isolates = False

    max_file_bytes = Integer(
        2 << 30, help="Largest file a step may write, in bytes (RLIMIT_FSIZE); a larger write fails the step.",
    ).tag(config=True)

    warm_kernel = Bool(
        True, help="Keep one Jupyter kernel started ahead of time for the next notebook step, and import "
                   "papermill in the background at start.",
    ).tag(config=True)

    warm_kernels = Integer(
        2, help="Kernels kept started ahead of time (with `warm_kernel`); each serves one notebook step. Two let "
                "a kernel finish its imports while the other serves the next step.",
    ).tag(config=True)

    warm_preload = List(
        Unicode(), ["numpy", "pandas"],
        help="Modules a warm kernel imports while it waits (without binding their names), so that the "
             "notebook's own imports of them are instant; counted in the step's memory like any import. "
             "Modules that are not installed are skipped.",
    ).tag(config=True)

    warm_preload_learned = List(
        Unicode(), list(LEARNED_PACKAGES),
        help="Packages whose modules a warm kernel also imports when the previous notebook imported them "
             "(only their names are kept from it). Empty: only `warm_preload`.",
    ).tag(config=True)

    kernel_name = Unicode("python3", help="Jupyter kernel that runs notebook steps.").tag(config=True)

    python = Unicode(
        sys.executable, help="Python interpreter that launches each step under its rlimits.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._running: dict[int, list[_Running]] = {}
        self._lock = threading.Lock()
        self._starter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-kernel")
        self._kernels: deque[concurrent.futures.Future] = deque()  # oldest first
        self._closed = False
        self.preloads = Preloads(self.warm_preload, self.warm_preload_learned)
        if self.warm_kernel:
            self._starter.submit(self._import_papermill)
            with self._lock:
                self._refill()
            # The warm kernels would outlive a worker that never calls close().
            atexit.register(self.close)

    # -- bookkeeping -------------------------------------------------------

    def _track(self, submission_id: int, pgid: int) -> _Running:
        entry = _Running(submission_id, pgid)
        with self._lock:
            self._running.setdefault(submission_id, []).append(entry)
        return entry

    def _untrack(self, entry: _Running) -> None:
        with self._lock:
            entries = self._running.get(entry.submission_id, [])
            if entry in entries:
                entries.remove(entry)
            if not entries:
                self._running.pop(entry.submission_id, None)

    def cancel(self, submission_id: int) -> bool:
        with self._lock:
            entries = list(self._running.get(submission_id, []))
        for entry in entries:
            entry.kill("cancel")
        return bool(entries)

    def close(self) -> None:
        """Stop the warm kernels; the executor stays usable (notebooks then start kernels on demand)."""
        with self._lock:
            self._closed = True
            futures = list(self._kernels)
            self._kernels.clear()
        for future in futures:
            if future.cancel():
                continue
            try:
                kernel = future.result(timeout=60)
            except Exception:  # noqa: BLE001 - nothing to stop
                kernel = None
            if kernel is not None:
                kernel.close()
                kernel.discard()
        self._starter.shutdown(wait=False)

    # -- steps ---------------------------------------------------------------

    def _launcher(self, limits: Limits) -> list[str]:
        argv = [self.python, "-I", "-S", LAUNCHER,
                "--as", str(limits.memory_mb << 20),
                "--cpu", str(_cpu_seconds(limits)),
                "--fsize", str(self.max_file_bytes)]
        if limits.pids:
            argv += ["--nproc", str(limits.pids)]
        return argv

    def run_step(self, spec: StepSpec, log: Optional[LogFn] = None) -> StepResult:
        log = log or (lambda message: None)
        log(NO_ISOLATION)
        Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
        if spec.shared_dir:
            Path(spec.shared_dir).mkdir(parents=True, exist_ok=True)
        if spec.notebook and not spec.command:
            result = self._run_notebook(spec, log)
        elif spec.command:
            result = self._run_command(spec, log)
        else:
            raise ValueError("a step needs a command or a notebook")
        result.image = None
        remove_unsafe_entries(spec, log)
        write_metadata(spec.output_dir, spec.step, result)
        return result

    def _run_command(self, spec: StepSpec, log: LogFn) -> StepResult:
        limits = spec.limits
        command = substitute_placeholders(spec.command or "", spec.step, host_paths(spec))
        log(f"process executor: {spec.step} step runs: {command}")
        argv = [*self._launcher(limits), "--cwd", str(Path(spec.program_dir).resolve()), "--", "sh", "-c", command]
        started = time.monotonic()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=step_environment(spec),
        )
        entry = self._track(spec.submission_id, process.pid)
        out, err = CappedBuffer(limits.output_bytes), CappedBuffer(limits.output_bytes)
        pumps = [threading.Thread(target=_pump, args=(process.stdout, out), daemon=True),
                 threading.Thread(target=_pump, args=(process.stderr, err), daemon=True)]
        for pump in pumps:
            pump.start()
        watch = OutputWatch(spec, stop=lambda: entry.kill("output"))
        try:
            with watch:
                process.wait(timeout=limits.time_limit)
        except subprocess.TimeoutExpired:
            entry.kill("timeout")
            process.wait()
        finally:
            # Background children the program left behind end with the step.
            _kill_group(process.pid)
            self._untrack(entry)
        elapsed = time.monotonic() - started
        for pump in pumps:
            # A child that left the group may still hold the pipes open.
            pump.join(timeout=2)
        for stream in (process.stdout, process.stderr):
            stream.close()  # type: ignore[union-attr]
        code = process.returncode
        if code is not None and code < 0:
            code = 128 - code  # shell convention for "killed by signal N"
        _final_output_check(watch, entry)
        result = StepResult(
            exit_code=code, elapsed=elapsed, timed_out=entry.timed_out, cancelled=entry.cancelled,
            output_over=entry.output_over,
            stdout=out.text(), stderr=err.text(),
            stdout_truncated=out.truncated, stderr_truncated=err.truncated,
        )
        if code not in (0, None) and not (entry.timed_out or entry.cancelled or entry.output_over):
            result.oom_killed = bool(_OOM_HINTS.search(err.tail_bytes(4096)))
        result.error = _explain(result, limits, self.max_file_bytes, output_reason=watch.reason)
        if code not in (0, None) and not result.oom_killed and _FSIZE_HINTS.search(err.tail_bytes(4096)):
            result.error = f"was stopped for writing a file larger than {self.max_file_bytes} bytes"
        return result

    # -- notebooks ------------------------------------------------------------

    @staticmethod
    def _import_papermill() -> None:
        import papermill  # noqa: F401  (import once, so the first notebook does not pay for it)
        import nbclient  # noqa: F401

    def _start_kernel(self, preload: bool = True) -> _Kernel:
        modules = self.preloads.modules() if preload else []
        return _Kernel(self.kernel_name, [self.python, "-I", "-S", LAUNCHER], modules)

    def _refill(self) -> None:
        """Ask for warm kernels until `warm_kernels` wait or are starting (under the lock)."""
        while self.warm_kernel and not self._closed and len(self._kernels) < max(1, self.warm_kernels):
            self._kernels.append(self._starter.submit(self._start_kernel))

    def _take_kernel(self, notebook: Path) -> _Kernel:
        # The kernels started from now on import what this notebook imports.
        self.preloads.learn(notebook)
        with self._lock:
            future = self._kernels.popleft() if self._kernels else None
            self._refill()
        kernel = None
        if future is not None:
            try:
                kernel = future.result()
            except Exception:  # noqa: BLE001 - fall back to a fresh start below, which reports errors
                kernel = None
            if kernel is not None and not kernel.alive():
                kernel.discard()
                kernel = None
        if kernel is None:
            try:
                kernel = self._start_kernel(preload=False)
            except Exception as error:
                raise RuntimeError(
                    f"cannot start the Jupyter kernel {self.kernel_name!r} on this worker ({error}); "
                    "install ipykernel in the worker's Python environment"
                ) from error
        return kernel

    def _run_notebook(self, spec: StepSpec, log: LogFn) -> StepResult:
        from .. import run_notebook  # papermill's runner: slow to import, only notebook steps need it

        limits = spec.limits
        notebook = Path(spec.program_dir) / (spec.notebook or "")
        output = Path(spec.output_dir).resolve()
        input_dir = str(Path(spec.input_dir).resolve()) if spec.input_dir else ""
        log(f"process executor: {spec.step} step runs the notebook {spec.notebook}")
        started = time.monotonic()
        kernel = self._take_kernel(notebook)
        entry = self._track(spec.submission_id, kernel.pgid)
        watchdog = threading.Timer(max(0.0, limits.time_limit - (time.monotonic() - started)),
                                   entry.kill, args=("timeout",))
        watchdog.daemon = True
        watchdog.start()
        watch = OutputWatch(spec, stop=lambda: entry.kill("output"))
        try:
            kernel.prepare(limits, str(Path(spec.program_dir).resolve()), dict(spec.env), self.max_file_bytes)
            with watch:
                report = run_notebook.execute(
                    notebook, input_dir, str(output), output / EXECUTED_NAME, output / REPORT_NAME,
                    cell_timeout=limits.cell_timeout, kernel_name=self.kernel_name, km=kernel.km,
                )
        except Exception as error:  # noqa: BLE001 - the kernel was killed under us (limit or cancel)
            report = {"ok": False, "cell_index": None, "execution_count": None, "ename": type(error).__name__,
                      "evalue": str(error), "traceback": [], "timeout": False}
        finally:
            watchdog.cancel()
            kernel.close()
            self._untrack(entry)
        elapsed = time.monotonic() - started
        _final_output_check(watch, entry)
        out = _read_capped(kernel.stdout_path, limits.output_bytes)
        err = _read_capped(kernel.stderr_path, limits.output_bytes)
        kernel.discard()
        # What the cells printed is the log a participant looks for first.
        for name, text in _cell_streams(output / EXECUTED_NAME):
            (out if name == "stdout" else err).write(text.encode("utf-8", "replace"))
        stopped = entry.timed_out or entry.cancelled or entry.output_over
        if not report.get("ok") and not stopped:
            err.write(("\n" + describe_failure(report) + "\n").encode())
        result = StepResult(
            exit_code=0 if report.get("ok") and not stopped else 1,
            elapsed=elapsed, timed_out=entry.timed_out, cancelled=entry.cancelled, output_over=entry.output_over,
            oom_killed=report.get("ename") == "MemoryError" and not stopped,
            stdout=out.text(), stderr=err.text(),
            stdout_truncated=out.truncated, stderr_truncated=err.truncated,
        )
        result.error = _explain(result, limits, self.max_file_bytes, report, output_reason=watch.reason)
        return result


def _final_output_check(watch: OutputWatch, entry: _Running) -> None:
    """Measure the output once more after the step: a fast writer may have ended between two looks."""
    try:
        if watch.check():
            entry.output_over = True
    except OSError:
        pass


def _cell_streams(executed: Path, max_bytes: int = 64 << 20) -> list[tuple[str, str]]:
    """(stream name, text) of every stdout/stderr output of the executed notebook, in order.

    The notebook is in the step's output folder: it is read only as a
    regular file reached without a link, and not at all past `max_bytes`.
    """
    try:
        nb = json.loads(read_file(executed, max_bytes=max_bytes))
    except (OSError, ValueError):
        return []
    if not isinstance(nb, dict):
        return []
    streams = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            if isinstance(output, dict) and output.get("output_type") == "stream":
                text = output.get("text", "")
                streams.append((output.get("name", "stdout"), "".join(text) if isinstance(text, list) else str(text)))
    return streams


def _explain(result: StepResult, limits: Limits, max_file_bytes: int, report: Optional[dict] = None,
             output_reason: Optional[str] = None) -> Optional[str]:
    """Why the step failed, in words for the person who submitted it."""
    if result.ok:
        return None
    if result.cancelled:
        return "cancelled"
    if result.output_over:
        return (f"was stopped: {output_reason or f'output over {limits.output_mb} MB'} (what a step may "
                f"write into its output folders is capped at {limits.output_mb} MB)")
    if result.timed_out:
        return f"stopped after the time limit of {limits.time_limit:g} s"
    if result.oom_killed:
        return f"ran out of memory (the limit is {limits.memory_mb} MB)"
    if report is not None:
        return describe_failure(report)
    if result.exit_code == 128 + signal.SIGXFSZ:
        return f"was stopped for writing a file larger than {max_file_bytes} bytes"
    if result.exit_code == 128 + signal.SIGXCPU:
        return f"was stopped for using more than {_cpu_seconds(limits)} s of CPU time"
    return f"exited with code {result.exit_code}"
