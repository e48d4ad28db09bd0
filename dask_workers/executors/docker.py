"""The production executor: each step of a submission in a fresh, locked-down Docker container.

Participants' code is hostile (DESIGN.md section 8), so every step runs with
the limits of its run spec enforced by the engine, not by Python: wall-clock
time (the container is killed), memory without swap, CPUs, a process count,
no network unless the phase allows it, all capabilities dropped,
`no-new-privileges`, a non-root user and a read-only root filesystem with a
small writable /tmp.  Only the directories of `container_layout(spec)` are
mounted, so a prediction step never sees the reference data of its phase.

Output is read through an attach socket opened before the container starts
(nothing is lost) and kept up to `limits.output_bytes` per stream; the engine's
own log file is size-capped too, so a program printing gigabytes fills
neither the worker's memory nor its disk.

Every container carries labels (submission, task, step, worker) so that a
worker can cancel a submission's steps and remove what a dead worker left.

Notebook steps run on warm judges (`dask_workers.executors.warm`): after a
notebook step of a given image, limits and data, `warm_pool_size`
containers of exactly that definition are started ahead of time, with
papermill imported and a kernel answering (which has imported
`warm_preload`, and the modules of `warm_preload_learned` packages that the
previous notebook of that kind imported: `dask_workers.preload`); the next
such step is handed to one of them (or waits for one being started) (its program copied into the container's own fresh folders, its
time limit counted from the hand-over), and that container is removed after
the step like any other.  Pool containers carry the worker's labels and the
`jupyter-compete.warm` label instead of a submission's.
"""
from __future__ import annotations

import atexit
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

from traitlets import Bool, Dict, Float, Integer, List, Unicode, validate

from ..notebook import (CONTAINER_RUNNER_PATH, REPORT_NAME, WARM_CONTROL_NAME, describe_failure, read_report,
                        runner_argv, warm_run_description, warm_runner_argv)
from ..preload import LEARNED_PACKAGES, Preloads
from ..spec import CONTAINER_PATHS, PREDICTION_INPUT, StepResult, StepSpec
from .base import (Executor, LogFn, OutputWatch, container_layout, process_alive, remove_unsafe_entries,
                   substitute_placeholders, write_metadata)
from .warm import Warm, WarmPool, source_identity

logger = logging.getLogger(__name__)

LABEL_PREFIX = "jupyter-compete"
LABEL_SUBMISSION = f"{LABEL_PREFIX}.submission"
LABEL_TASK = f"{LABEL_PREFIX}.task"
LABEL_STEP = f"{LABEL_PREFIX}.step"
LABEL_WORKER = f"{LABEL_PREFIX}.worker"
LABEL_HOST = f"{LABEL_PREFIX}.host"
LABEL_PID = f"{LABEL_PREFIX}.pid"
LABEL_WARM = f"{LABEL_PREFIX}.warm"

# The per-submission mounts of a notebook step: a warm container has its own
# fresh folders there (its slot); every other mount is the step's own.
PROGRAM_TARGET = CONTAINER_PATHS["program_dir"]
OUTPUT_TARGET = CONTAINER_PATHS["output_dir"]
_SLOT_FOLDERS = {PROGRAM_TARGET: ("program", "ro"), OUTPUT_TARGET: ("output", "rw")}

TRUNCATED_MARK = "\n[truncated]"
# Seconds to wait for a killed container to be reported as stopped.
_KILL_GRACE = 30.0


def _format_seconds(value: float) -> str:
    return f"{value:g}"


class _CappedBuffer:
    """Keeps the first `cap` bytes of a stream and remembers whether more came."""

    def __init__(self, cap: int) -> None:
        self.cap = max(0, int(cap))
        self.data = bytearray()
        self.truncated = False

    def feed(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True

    def text(self) -> str:
        text = self.data.decode("utf-8", errors="replace")
        return text + TRUNCATED_MARK if self.truncated else text


class DockerExecutor(Executor):
    """Runs each step in a new container of the step's image (docker SDK)."""

    name = "docker"
    isolates = True

    user = Unicode(
        "1000:1000",
        help="uid:gid the steps run as; never root (0 or `root` is refused).",
    ).tag(config=True)

    read_only_root = Bool(
        True, help="Run each step's container with a read-only root filesystem (a small writable /tmp beside it).",
    ).tag(config=True)

    tmp_size_mb = Integer(
        None, allow_none=True,
        help="Size of the writable /tmp of a step's container, in MB. None: the step's memory limit, at least 64.",
    ).tag(config=True)

    default_image = Unicode(
        None, allow_none=True,
        help="Image run instead of a step's image that this worker does not have (see "
             "kernels.images.resolve_image). None: the step's image is used as it is. The worker sets it "
             "from the job (the platform's `c.Compete.default_image`).",
    ).tag(config=True)

    image_aliases = Dict(
        help="Image name -> local image to run instead when the named image cannot be had. The worker sets "
             "it from the job (the platform's `c.Compete.image_aliases`).",
    ).tag(config=True)

    runner_script = Unicode(
        None, allow_none=True,
        help="Host path of the notebook runner script mounted into notebook steps. "
             "None: dask_workers.notebook.RUNNER_PATH.",
    ).tag(config=True)

    worker_id = Unicode(
        None, allow_none=True,
        help="A stable name of the worker (its Dask name, say); containers of an earlier process with the "
             "same name are orphans at start. None: this host's name and process id.",
    )

    warm_pool_size = Integer(
        2,
        help="Containers kept started ahead of time (kernel up, papermill imported) per kind of notebook "
             "step (same image, limits and data); each serves one submission and is then removed. Two let "
             "one finish its imports while the other serves the next step. "
             "0: every notebook step starts its container cold.",
    ).tag(config=True)

    warm_preload_learned = List(
        Unicode(), list(LEARNED_PACKAGES),
        help="Packages whose modules a warm container's kernel also imports when the previous notebook of "
             "the same kind imported them (only their names are kept from it). Empty: only `warm_preload`.",
    ).tag(config=True)

    warm_wait = Float(
        30.0, help="Seconds a notebook step waits for a warm container being started when none waits yet, "
                   "before it starts its own cold.",
    ).tag(config=True)

    warm_preload = List(
        Unicode(), ["numpy", "pandas"],
        help="Modules a warm container's kernel imports while it waits (without binding their names), so that "
             "the notebook's own imports of them are instant; counted in the step's memory like any import. "
             "Modules the image lacks are skipped. Empty: nothing is imported ahead.",
    ).tag(config=True)

    warm_max_age = Float(
        900.0, help="Seconds after which a waiting warm container is replaced rather than used.",
    ).tag(config=True)

    warm_max_keys = Integer(
        4, help="Kinds of notebook step (image, limits, data) kept warm at once; the least recently used goes.",
    ).tag(config=True)

    warm_dir = Unicode(
        None, allow_none=True,
        help="Host folder of the warm containers' per-submission folders. None: a folder of this process "
             "in the system's temporary folder.",
    ).tag(config=True)

    def __init__(self, client: Any = None, *, runner_path: Optional[str] = None, **kwargs: Any) -> None:
        """`client`: a docker SDK client (made on first use when None); traits as keyword arguments."""
        if runner_path is not None:
            kwargs.setdefault("runner_script", runner_path)
        super().__init__(**kwargs)
        self._client = client
        self.host = socket.gethostname()
        self.pid = os.getpid()
        if not self.worker_id:
            self.worker_id = f"{self.host}-{self.pid}"
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # container id -> submission id
        self._cancelled: set[str] = set()  # container ids killed by cancel()
        self.pool = WarmPool(self.warm_pool_size, self.warm_max_age, self.warm_max_keys)
        self.preloads = Preloads(self.warm_preload, self.warm_preload_learned)
        if self.pool.enabled:
            # Waiting containers would outlive a worker that never calls close().
            atexit.register(self.pool.close)

    @validate("user")
    def _refuse_root(self, proposal: Any) -> str:
        if str(proposal["value"]).partition(":")[0] in ("0", "root"):
            raise ValueError("the Docker executor runs steps as a non-root user: set `user` to a uid:gid other than 0")
        return proposal["value"]

    # -- engine ---------------------------------------------------------------

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                import docker  # the docker SDK: loaded only where steps run in containers

                # Generous pool: each running step holds two connections (wait, attach).
                self._client = docker.from_env(timeout=120, max_pool_size=32)
            return self._client

    def _uid_gid(self) -> tuple[int, int]:
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)

    def runner_path(self) -> str:
        if self.runner_script:
            return self.runner_script
        # Read at call time, so that a repointed runner path is seen.
        from ..notebook import RUNNER_PATH

        return str(RUNNER_PATH)

    # -- the container of a step ----------------------------------------------

    def command_for(self, spec: StepSpec) -> list[str]:
        """The argv run in the container: the program's command under `sh -c`, or the notebook runner."""
        if spec.notebook and not spec.command:
            # The runner writes the executed notebook and its report into
            # /app/output (names in dask_workers.notebook).
            return runner_argv(f"/app/program/{spec.notebook}", PREDICTION_INPUT if spec.input_dir else "",
                               "/app/output", cell_timeout=spec.limits.cell_timeout,
                               runner=CONTAINER_RUNNER_PATH)
        if not spec.command:
            raise ValueError(f"run spec of submission {spec.submission_id} ({spec.step}) has neither a command nor a notebook")
        return ["sh", "-c", substitute_placeholders(spec.command, spec.step)]

    def labels_for(self, spec: StepSpec) -> dict[str, str]:
        return {
            LABEL_SUBMISSION: str(spec.submission_id),
            LABEL_TASK: str(spec.task_index),
            LABEL_STEP: spec.step,
            LABEL_WORKER: self.worker_id,
            LABEL_HOST: self.host,
            LABEL_PID: str(self.pid),
        }

    def create_kwargs(self, spec: StepSpec, image: str) -> dict[str, Any]:
        """Everything `containers.create` gets for a step (pure: no engine call)."""
        import docker  # the docker SDK: loaded only where steps run in containers

        limits = spec.limits
        volumes = {host: {"bind": target, "mode": mode} for host, (target, mode) in container_layout(spec).items()}
        if spec.notebook and not spec.command:
            volumes[str(Path(self.runner_path()).resolve())] = {"bind": CONTAINER_RUNNER_PATH, "mode": "ro"}
        memory = f"{int(limits.memory_mb)}m"
        tmp_mb = self.tmp_size_mb or max(64, int(limits.memory_mb))
        # HOME in the writable /tmp: Jupyter kernels, matplotlib and pip want a
        # writable home, and the root filesystem is read-only.
        environment = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONUNBUFFERED": "1"}
        environment.update(spec.env)
        # The engine's log file is a second copy of the output: cap it too.
        log_bytes = max(1 << 20, 2 * int(limits.output_bytes))
        kwargs: dict[str, Any] = dict(
            image=image,
            command=self.command_for(spec),
            user=self.user,
            working_dir="/app/program",
            environment=environment,
            volumes=volumes,
            labels=self.labels_for(spec),
            mem_limit=memory,
            memswap_limit=memory,  # equal to the memory limit: no swap
            nano_cpus=int(float(limits.cpus) * 1e9),
            pids_limit=int(limits.pids),
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            read_only=self.read_only_root,
            tmpfs={"/tmp": f"rw,nosuid,nodev,exec,size={tmp_mb}m,mode=1777"},
            log_config=docker.types.LogConfig(
                type="json-file", config={"max-size": str(log_bytes), "max-file": "1"}),
            stdin_open=False,
            tty=False,
            detach=True,
        )
        if limits.network:
            kwargs["network_mode"] = "bridge"
        else:
            kwargs["network_disabled"] = True
            kwargs["network_mode"] = "none"
        if limits.gpus and limits.gpus > 0:
            kwargs["device_requests"] = [docker.types.DeviceRequest(count=int(limits.gpus), capabilities=[["gpu"]])]
        return kwargs

    def _prepare_dirs(self, spec: StepSpec) -> None:
        """Give the step's uid its writable dirs, and read access to its inputs."""
        uid, gid = self._uid_gid()
        for writable in (spec.output_dir, spec.shared_dir):
            if not writable:
                continue
            Path(writable).mkdir(parents=True, exist_ok=True)
            for path in _walk(Path(writable)):
                try:
                    os.chown(path, uid, gid, follow_symlinks=False)
                except PermissionError:
                    # Not root: the next best is world-writable.
                    if not path.is_symlink():
                        path.chmod(path.stat().st_mode | 0o777 if path.is_dir() else path.stat().st_mode | 0o666)
        for readable in (spec.program_dir, spec.ingested_program_dir, spec.input_dir, spec.data_dir):
            if readable and Path(readable).exists():
                _make_world_readable(Path(readable))

    def resolve(self, spec: StepSpec, log: LogFn) -> str:
        """The image the step runs in; a replacement (alias, or the default runtime) is told to `log`.

        The line names the image asked for and the one used, so that the
        run's log says it wherever the step ran.
        """
        # The images module needs the docker SDK only when one of its functions is called.
        from kernels.images import is_digest_reference, resolve_image_choice

        # An image named by digest (a reproduction's) is never replaced: without it the step fails, saying so.
        if not self.default_image or is_digest_reference(spec.image):
            return spec.image

        choice = resolve_image_choice(spec.image, self.image_aliases, self.default_image)
        if choice.replaced:
            log(f"{spec.step}: {choice.describe()}")
        return choice.used

    # -- running ----------------------------------------------------------------

    # -- warm judges ------------------------------------------------------------

    def warm_template(self, spec: StepSpec, image: str) -> Optional[tuple[str, dict[str, Any]]]:
        """(pool key, container definition without its slot) of a step a warm container can run; else None.

        Notebook steps only, without folders shared with another step.  The
        definition is `create_kwargs` of the step with the per-submission
        mounts taken out, the waiting runner as command and the worker's
        labels; the key is a digest of all of it.
        """
        if not self.pool.enabled or not spec.notebook or spec.command or spec.shared_dir \
                or spec.ingested_program_dir:
            return None
        kwargs = self.create_kwargs(spec, image)
        volumes = {host: bind for host, bind in kwargs["volumes"].items() if bind["bind"] not in _SLOT_FOLDERS}
        labels = {name: value for name, value in kwargs["labels"].items()
                  if name in (LABEL_WORKER, LABEL_HOST, LABEL_PID)}
        template = {**kwargs, "volumes": volumes, "labels": labels,
                    "command": warm_runner_argv(OUTPUT_TARGET, runner=CONTAINER_RUNNER_PATH,
                                                preload=self.warm_preload)}
        key = hashlib.sha256(json.dumps(template, sort_keys=True, default=str).encode()).hexdigest()[:16]
        template["labels"] = {**labels, LABEL_WARM: key}
        return key, template

    def warm_root(self) -> Path:
        """This process's folder of warm slots."""
        base = Path(self.warm_dir) if self.warm_dir else Path(tempfile.gettempdir()) / "jupyter-compete-warm"
        root = base / f"{self.host}-{self.pid}"
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return root

    def make_warm(self, key: str, template: dict[str, Any]) -> Warm:
        """Create and start one waiting container of `template`, with a fresh slot of its own."""
        slot = Path(tempfile.mkdtemp(prefix="slot-", dir=self.warm_root()))
        # The key names the fixed preloads; the learned ones change from one container to the next.
        template = {**template, "command": warm_runner_argv(OUTPUT_TARGET, runner=CONTAINER_RUNNER_PATH,
                                                            preload=self.preloads.modules(key))}
        uid, gid = self._uid_gid()
        folders: dict[str, Path] = {}
        volumes = dict(template["volumes"])
        try:
            for target, (name, mode) in _SLOT_FOLDERS.items():
                folder = slot / name
                folder.mkdir()
                if mode == "rw":
                    try:
                        os.chown(folder, uid, gid)
                    except PermissionError:
                        folder.chmod(0o777)  # not root: the next best is world-writable
                else:
                    folder.chmod(0o755)
                folders[target] = folder
                volumes[str(folder)] = {"bind": target, "mode": mode}
            sources = source_identity(list(template["volumes"]))
            container = self.client.containers.create(**{**template, "volumes": volumes})
        except BaseException:
            shutil.rmtree(slot, ignore_errors=True)
            raise
        warm = Warm(key=key, container=container, slot=slot, folders=folders, sources=sources)
        try:
            container.start()
        except BaseException:
            WarmPool.remove(warm)
            raise
        return warm

    def _warm_alive(self, warm: Warm) -> bool:
        warm.container.reload()
        return warm.container.status == "running"

    # -- running ----------------------------------------------------------------

    def run_step(self, spec: StepSpec, log: Optional[LogFn] = None) -> StepResult:
        import docker  # the docker SDK: loaded only where steps run in containers
        from kernels.images import is_digest_reference  # with the SDK: only where steps run in containers

        say: LogFn = log or logger.info
        image = self.resolve(spec, say)
        self._prepare_dirs(spec)
        plan = self.warm_template(spec, image)
        try:
            if plan is not None:
                # The containers made from now on import what this notebook imports.
                self.preloads.learn(Path(spec.program_dir) / (spec.notebook or ""), plan[0])
                warm = self.pool.take(plan[0], self._warm_alive, wait=self.warm_wait)
                if warm is not None:
                    return self._run_warm(spec, warm, image, say)
            kwargs = self.create_kwargs(spec, image)
            try:
                container = self.client.containers.create(**kwargs)
            except docker.errors.ImageNotFound:
                plan = None  # nothing to keep warm
                if is_digest_reference(image):
                    return self._finish(spec, StepResult(
                        exit_code=None, elapsed=0.0, image=image,
                        error=f"the run is pinned to the image {image}, which is not on this worker; a pinned "
                              "image is never replaced by another: load that image on the queue's workers (or "
                              "reproduce on a queue whose workers have it)"), say)
                return self._finish(spec, StepResult(
                    exit_code=None, elapsed=0.0, image=image,
                    error=f"the image {image} is not available on this worker; build it "
                          f"(`compete image build`) or map it to one that is"), say)
            except docker.errors.APIError as exc:
                return self._finish(spec, StepResult(
                    exit_code=None, elapsed=0.0, image=image,
                    error=f"the step's container could not be created: {_explain(exc)}"), say)
            return self._run_container(spec, container, image, say)
        finally:
            # The next step of this kind finds a container waiting; it is made
            # after this step, so as not to take this step's processors.
            if plan is not None:
                key, template = plan
                self.pool.fill(key, lambda: self.make_warm(key, template))

    def _run_warm(self, spec: StepSpec, warm: Warm, image: str, say: LogFn) -> StepResult:
        """Hand the step to a waiting container: its program into the slot, then the run's description."""
        program, output = warm.folders[PROGRAM_TARGET], warm.folders[OUTPUT_TARGET]
        try:
            _copy_tree(Path(spec.program_dir), program)
            _move_entries(Path(spec.output_dir), output)
        except BaseException:
            WarmPool.remove(warm)
            raise
        description = warm_run_description(
            f"{PROGRAM_TARGET}/{spec.notebook}", PREDICTION_INPUT if spec.input_dir else "", OUTPUT_TARGET,
            cell_timeout=spec.limits.cell_timeout)

        def hand_over() -> None:
            # One rename: the runner never reads half a description.
            pending = output / f"{WARM_CONTROL_NAME}.{os.getpid()}"
            pending.write_text(json.dumps(description))
            os.replace(pending, output / WARM_CONTROL_NAME)

        def bring_back() -> None:
            for name in (WARM_CONTROL_NAME, f"{WARM_CONTROL_NAME}.{os.getpid()}"):
                if os.path.lexists(output / name):
                    _remove_path(output / name)
            _move_entries(output, Path(spec.output_dir))

        age = time.monotonic() - warm.created
        return self._run_container(
            spec, warm.container, image, say, hand_over=hand_over, bring_back=bring_back,
            watched=dataclasses.replace(spec, output_dir=str(output)),
            note=f"warm, started {age:.1f} s ahead", slot=warm.slot)

    def _run_container(self, spec: StepSpec, container: Any, image: str, say: LogFn, *,
                       hand_over: Optional[Callable[[], None]] = None,
                       bring_back: Optional[Callable[[], None]] = None,
                       watched: Optional[StepSpec] = None, note: str = "",
                       slot: Optional[Path] = None) -> StepResult:
        """Run the step in `container` (created, or already started and waiting: then `hand_over` starts it).

        `bring_back` moves what the step wrote to the step's output folder
        once the container stopped; `watched` is the step as its container
        sees it (whose output folders the size watch measures).
        """
        import docker  # the docker SDK: loaded only where steps run in containers
        import requests  # comes with the docker SDK

        limits = spec.limits
        # What the run records is what the container was made from: the
        # image id the engine resolved the name to (a tag may move later).
        digest = _container_image_digest(self.client, container)
        stdout = _CappedBuffer(limits.output_bytes)
        stderr = _CappedBuffer(limits.output_bytes)
        with self._lock:
            self._running[container.id] = spec.submission_id
        reader: Optional[threading.Thread] = None
        stream = None
        brought_back = False
        try:
            # Attach before start (or hand-over), so the first bytes of output are not lost.
            stream = self.client.api.attach(container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
            reader = threading.Thread(target=_drain, args=(stream, stdout, stderr), daemon=True,
                                      name=f"output-{spec.submission_id}-{spec.step}")
            reader.start()
            started = time.monotonic()
            try:
                if hand_over is None:
                    container.start()
                else:
                    hand_over()
            except (docker.errors.APIError, OSError) as exc:
                stream.close()
                if self._was_cancelled(container.id):
                    return self._finish(spec, StepResult(exit_code=None, elapsed=0.0, cancelled=True, image=image,
                                                         image_digest=digest, error="the step was cancelled"), say)
                return self._finish(spec, StepResult(
                    exit_code=None, elapsed=0.0, image=image, image_digest=digest,
                    error=f"the step's container could not start: {_explain(exc)}"), say)
            where = f"{container.short_id}, {note}" if note else container.short_id
            say(f"{spec.step} of submission {spec.submission_id} started in {image} ({where})")

            # The output folders are bind mounts, outside the container's
            # size-capped /tmp: their size is watched from here.
            watch = OutputWatch(watched or spec, stop=lambda: _kill(container))
            with watch:
                status = self._wait(container.id, started + float(limits.time_limit))
            timed_out = status is None and not watch.exceeded
            elapsed = time.monotonic() - started
            try:
                watch.check()
            except OSError:
                pass
            if watch.exceeded:
                say(f"{watch.reason}: {spec.step} step stopped ({container.short_id})")
                _kill(container)
            if timed_out:
                say(f"time limit of {_format_seconds(limits.time_limit)} s reached: stopping {container.short_id}")
                _kill(container)
                try:
                    status = self.client.api.wait(container.id, timeout=_KILL_GRACE)
                except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                    status = None
                elapsed = max(elapsed, float(limits.time_limit))
            # Output may still be in flight after the exit; the attach stream ends with it.
            reader.join(timeout=10)
            if reader.is_alive():
                stream.close()
                reader.join(timeout=5)
            state = _state(container)
            if bring_back is not None:
                if state.get("Running"):
                    _kill(container)
                    self.client.api.wait(container.id, timeout=_KILL_GRACE)
                bring_back()
                brought_back = True
            exit_code = state.get("ExitCode") if state else (status or {}).get("StatusCode")
            result = StepResult(
                exit_code=exit_code, elapsed=elapsed, timed_out=timed_out,
                oom_killed=bool(state.get("OOMKilled")) and not timed_out and not watch.exceeded,
                cancelled=self._was_cancelled(container.id), output_over=watch.exceeded,
                stdout=stdout.text(), stderr=stderr.text(),
                stdout_truncated=stdout.truncated, stderr_truncated=stderr.truncated,
                image=image, image_digest=digest,
            )
            result.error = self._explain_result(result, spec, watch.reason)
            return self._finish(spec, result, say)
        finally:
            if reader is not None and reader.is_alive() and stream is not None:
                stream.close()
                reader.join(timeout=1)
            with self._lock:
                self._running.pop(container.id, None)
                self._cancelled.discard(container.id)
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                logger.warning("could not remove container %s: %s", container.short_id, exc)
            if bring_back is not None and not brought_back:
                try:
                    bring_back()
                except OSError as exc:
                    logger.warning("could not bring back the output of %s: %s", container.short_id, exc)
            if slot is not None:
                shutil.rmtree(slot, ignore_errors=True)

    def _wait(self, container_id: str, deadline: float) -> Optional[dict]:
        """The container's exit status, or None when the deadline passed first."""
        import requests  # comes with the docker SDK

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return self.client.api.wait(container_id, timeout=max(0.01, remaining))
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                # The SDK reports a read timeout as either.  Before the
                # deadline it was the connection itself: make sure the engine
                # is still there (this raises when it is not), then wait on.
                if deadline - time.monotonic() > 0.5:
                    self.client.ping()

    def _finish(self, spec: StepSpec, result: StepResult, log: Optional[LogFn] = None) -> StepResult:
        if result.image and result.image_digest is None:
            from kernels.images import image_digest  # the images module needs the docker SDK only when called

            try:
                result.image_digest = image_digest(result.image, self.client)
            except Exception as exc:  # the digest is a record, not a reason to fail a step
                logger.warning("no digest for image %s: %s", result.image, exc)
        # The output folders were writable by the step: links and special files
        # it left there go (each is logged), so that nothing downstream reads
        # through them; `metadata` is then written as a regular file.
        remove_unsafe_entries(spec, log)
        _drop_unless_regular(Path(spec.output_dir) / "metadata")
        write_metadata(spec.output_dir, spec.step, result)
        return result

    def _was_cancelled(self, container_id: str) -> bool:
        with self._lock:
            return container_id in self._cancelled

    def _explain_result(self, result: StepResult, spec: StepSpec,
                        output_reason: Optional[str] = None) -> Optional[str]:
        limits = spec.limits
        if result.cancelled:
            return "the step was cancelled"
        if result.output_over:
            return (f"the step was stopped: {output_reason} (what a step may write into its output "
                    f"folders is capped at {int(limits.output_mb)} MB)")
        if result.timed_out:
            return f"the step exceeded its time limit of {_format_seconds(limits.time_limit)} s and was stopped"
        if result.oom_killed:
            return f"the step ran out of memory (limit {int(limits.memory_mb)} MB)"
        if result.exit_code == 137:
            # Only the engine's OOMKilled (above) says memory; this kill came from elsewhere.
            return ("the step was killed (SIGKILL) from outside its program, for example by `docker kill` "
                    "or the machine's operator; the engine does not report it out of memory")
        if result.exit_code == 0:
            return None
        if result.exit_code is None:
            return "the step's container vanished before it reported an exit code"
        if spec.notebook and not spec.command:
            report_path = Path(spec.output_dir) / REPORT_NAME
            report = read_report(report_path) if _is_regular(report_path) else None
            if report is not None:
                return describe_failure(report)
        hint = _last_line(result.stderr)
        message = f"the program exited with code {result.exit_code}"
        if "Resource temporarily unavailable" in result.stderr or "fork: retry" in result.stderr:
            message += f" after reaching its limit of {int(limits.pids)} processes"
        return f"{message}: {hint}" if hint else message

    # -- control ------------------------------------------------------------------

    def cancel(self, submission_id: int) -> bool:
        import docker  # the docker SDK: loaded only where steps run in containers

        killed = False
        containers = self.client.containers.list(
            all=True, filters={"label": f"{LABEL_SUBMISSION}={submission_id}"})
        # A warm container carries no submission label: it is known by what it runs.
        with self._lock:
            handed = [cid for cid, sid in self._running.items() if sid == submission_id]
        labelled = {container.id for container in containers}
        for cid in handed:
            if cid not in labelled:
                try:
                    containers.append(self.client.containers.get(cid))
                except docker.errors.NotFound:
                    continue
        for container in containers:
            with self._lock:
                self._cancelled.add(container.id)
            try:
                if container.status == "running":
                    container.kill()
                else:
                    container.remove(force=True)
                killed = True
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                # Already exiting: it is gone or about to be, which is what cancel wants.
                logger.info("cancel of container %s: %s", container.short_id, exc)
                killed = True
        return killed

    def close(self) -> None:
        """Remove the warm containers; later notebook steps start their containers cold."""
        self.pool.close()
        base = Path(self.warm_dir) if self.warm_dir else Path(tempfile.gettempdir()) / "jupyter-compete-warm"
        try:
            (base / f"{self.host}-{self.pid}").rmdir()  # this process's slot folder, once empty
        except OSError:
            pass  # none was made, or another executor of this process still uses it

    def cleanup_orphans(self) -> int:
        """Remove step containers whose worker is gone (and warm slots of dead processes of this host).

        A container is an orphan when it was started on this host by a process
        that no longer exists, or by an earlier process with this worker's
        (stable) name.  Containers of live workers sharing the engine stay.
        Waiting warm containers carry the same labels and go the same way.
        """
        self._remove_dead_slots()
        import docker  # the docker SDK: loaded only where steps run in containers

        removed = 0
        for container in self.client.containers.list(all=True, filters={"label": LABEL_WORKER}):
            labels = container.labels or {}
            with self._lock:
                if container.id in self._running:
                    continue
            try:
                pid = int(labels.get(LABEL_PID, "-1"))
            except ValueError:
                pid = -1
            same_host = labels.get(LABEL_HOST) == self.host
            earlier_self = labels.get(LABEL_WORKER) == self.worker_id and not (same_host and pid == self.pid)
            dead_owner = same_host and pid != self.pid and not process_alive(pid)
            if not (earlier_self or dead_owner):
                continue
            try:
                container.remove(force=True)
                removed += 1
                logger.info("removed orphan container %s (submission %s, %s)", container.short_id,
                            labels.get(LABEL_SUBMISSION), labels.get(LABEL_STEP))
            except docker.errors.NotFound:
                continue
        return removed

    def _remove_dead_slots(self) -> None:
        base = Path(self.warm_dir) if self.warm_dir else Path(tempfile.gettempdir()) / "jupyter-compete-warm"
        if not base.is_dir():
            return
        for entry in base.iterdir():
            host, _, pid = entry.name.rpartition("-")
            if host == self.host and pid.isdigit() and int(pid) != self.pid and not process_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


# -- helpers ------------------------------------------------------------------------


def _container_image_digest(client, container) -> Optional[str]:
    """The registry digest of the image a container was created from, else that image's id."""
    image_id = (container.attrs or {}).get("Image")
    if not image_id:
        return None
    try:
        digests = client.images.get(image_id).attrs.get("RepoDigests") or []
    except Exception as exc:  # the digest is a record, not a reason to fail a step: the id is one too
        logger.warning("no registry digest for image %s: %s", image_id, exc)
        return image_id
    return digests[0] if digests else image_id


def _drain(stream, stdout: _CappedBuffer, stderr: _CappedBuffer) -> None:
    """Read the attach stream to its end, keeping what the caps allow."""
    try:
        for out, err in stream:
            if out:
                stdout.feed(out)
            if err:
                stderr.feed(err)
    except Exception as exc:  # a closed socket after a kill ends the stream
        logger.debug("output stream ended: %s", exc)


def _kill(container) -> None:
    import docker  # the docker SDK: loaded only where steps run in containers

    try:
        container.kill()
    except docker.errors.APIError:
        pass  # it exited in the meantime


def _state(container) -> dict:
    import docker  # the docker SDK: loaded only where steps run in containers

    try:
        container.reload()
    except docker.errors.NotFound:
        return {}
    return container.attrs.get("State") or {}


def _is_regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _drop_unless_regular(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() and not path.is_file():
        path.unlink()


def _walk(root: Path):
    yield root
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield Path(dirpath) / name


def _copy_tree(source: Path, target: Path) -> None:
    """Copy the folder `source` into the existing folder `target`: links as links, files hard-linked when possible."""
    for entry in os.scandir(source):
        src, dst = Path(entry.path), target / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif entry.is_dir(follow_symlinks=False):
            dst.mkdir()
            shutil.copystat(src, dst, follow_symlinks=False)
            _copy_tree(src, dst)
        elif entry.is_file(follow_symlinks=False):
            try:
                os.link(src, dst, follow_symlinks=False)
            except OSError:
                shutil.copy2(src, dst, follow_symlinks=False)
        # Anything else (a pipe, a device) is not part of a program.


def _move_entries(source: Path, target: Path) -> None:
    """Move what `source` holds into `target`, without following links; special files are dropped.

    A rename where both are on one file system; otherwise links are made
    again, regular files copied and folders walked (a pipe left by a step is
    never opened).
    """
    target.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        src, dst = Path(entry.path), target / entry.name
        if os.path.lexists(dst):
            _remove_path(dst)
        try:
            os.rename(src, dst)
            continue
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        mode = os.lstat(src).st_mode
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISDIR(mode):
            dst.mkdir()
            shutil.copystat(src, dst, follow_symlinks=False)
            _move_entries(src, dst)
        elif stat.S_ISREG(mode):
            shutil.copy2(src, dst, follow_symlinks=False)
        _remove_path(src)


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _make_world_readable(root: Path) -> None:
    # The step runs as an unprivileged uid; files staged by the worker may be
    # private (mkdtemp makes 0700 directories).  Only read bits are added.
    for path in _walk(root):
        if path.is_symlink():
            continue
        try:
            mode = path.stat().st_mode
            wanted = mode | (0o555 if path.is_dir() else 0o444)
            if wanted != mode:
                path.chmod(wanted)
        except OSError:
            continue


def _last_line(text: str) -> str:
    for line in reversed(text.replace(TRUNCATED_MARK, "").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None) or str(exc)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation).strip().splitlines()[0][:300] if explanation else type(exc).__name__
