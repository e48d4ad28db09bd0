"""The executor interface: run one step of a run spec, isolated as far as the executor can.

Executors are peers behind the `Executor` base, a traitlets
`LoggingConfigurable` chosen by configuration (`docker` for production,
`process` for development on trusted code, or the import string of any
subclass).  Their options are traits an operator sets in the platform's
configuration as `c.DockerExecutor.user = "1000:1000"`; the executor runs on
a worker, so those sections of the configuration travel to it with each job
(`Job.executor_config`) and the worker builds its executor with them.

Shared pieces live here: the replacement of CodaLab/Codabench placeholders in commands (the
table is `spec.PLACEHOLDERS`), the container path
layout of a step, the `metadata` file written into the output after each
step, the removal of links and special files a step leaves in its writable
folders (`remove_unsafe_entries`), and the watch on the size of those
folders while the step runs (`OutputWatch`).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Optional

import yaml
from traitlets.config import LoggingConfigurable

from ..safe_files import read_beneath, sanitize_tree, tree_usage, write_beneath
from ..spec import CONTAINER_PATHS, PREDICTION_INPUT, SCORING_INPUT, StepResult, StepSpec, resolve_command

LogFn = Callable[[str], None]

def container_layout(spec: StepSpec) -> dict[str, tuple[str, str]]:
    """Host path -> (container path, "ro"|"rw") for every directory the step mounts."""
    layout: dict[str, tuple[str, str]] = {}
    for name, target in CONTAINER_PATHS.items():
        host = getattr(spec, name)
        if host:
            mode = "rw" if name in ("output_dir", "shared_dir") else "ro"
            layout[str(Path(host).resolve())] = (target, mode)
    if spec.input_dir:
        target = SCORING_INPUT if spec.step == "scoring" else PREDICTION_INPUT
        layout[str(Path(spec.input_dir).resolve())] = (target, "ro")
    return layout


def substitute_placeholders(command: str, step: str, paths: Optional[dict[str, str]] = None) -> str:
    """Replace `$program`, `$input`, ... by container paths, or by `paths` where given.

    The table and its rules are `spec.resolve_command`'s; unknown `$words`
    are left to the shell (the pipeline notes them in the step's log).
    """
    return resolve_command(command, step, paths)[0]


def write_metadata(output_dir: str | Path, step: str, result: StepResult) -> None:
    """Write CodaLab's `output/metadata` (YAML) after a step, merged with what is there.

    The folder was writable by the step: what it left at `metadata` is read
    only when it is a regular file reached without a link (at most 1 MB),
    and anything else there is replaced, never written through.
    """
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    data: dict = {}
    try:
        loaded = yaml.safe_load(read_beneath(output_dir, "metadata", max_bytes=1 << 20).decode())
        if isinstance(loaded, dict):
            data = loaded
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        data = {}
    prefix = "ingestion" if step in ("prediction", "ingestion") else ""
    exit_key = f"{prefix}ExitCode" if prefix else "exitCode"
    time_key = f"{prefix}ElapsedTime" if prefix else "elapsedTime"
    data[exit_key] = result.exit_code
    data[time_key] = round(result.elapsed, 3)
    if prefix:
        # CodaLab scoring programs read exitCode/elapsedTime of the prediction step too.
        data.setdefault("exitCode", result.exit_code)
        data.setdefault("elapsedTime", round(result.elapsed, 3))
    write_beneath(output_dir, "metadata", yaml.safe_dump(data, sort_keys=True).encode())


def writable_folders(spec: StepSpec) -> list[tuple[str, str]]:
    """(name for people, host path) of the folders the step can write."""
    folders = [("output", spec.output_dir)]
    if spec.shared_dir:
        folders.append(("shared folder", spec.shared_dir))
    return folders


def remove_unsafe_entries(spec: StepSpec, log: Optional[LogFn] = None) -> list[str]:
    """After a step: remove every link and special file from its writable folders.

    Each removal is logged ("removed a symbolic link answer.txt -> /app/input/ref/answer.txt
    from the prediction output: outputs must be regular files") and returned.
    """
    lines: list[str] = []
    for name, folder in writable_folders(spec):
        if not folder or not os.path.lexists(folder):
            continue
        for removed in sanitize_tree(folder):
            line = removed.describe(f"the {spec.step} {name}")
            lines.append(line)
            if log is not None:
                log(line)
    return lines


class OutputWatch:
    """Measures a running step's writable folders and stops the step once they pass its cap.

    Every `interval` seconds the folders are walked without following links
    (sizes by `lstat`); past `limits.output_mb` MB or `limits.output_files`
    entries, `stop` is called once (the executor kills the container or the
    process group) and `reason` says why ("output over 20 MB").  `check`
    measures once more after the step, for a step that wrote fast and
    exited between two looks.
    """

    def __init__(self, spec: StepSpec, stop: Callable[[], None], interval: float = 0.5):
        self.folders = [folder for _, folder in writable_folders(spec) if folder]
        self.max_mb = int(spec.limits.output_mb)
        self.max_bytes = self.max_mb << 20
        self.max_entries = int(spec.limits.output_files)
        self.interval = interval
        self.reason: Optional[str] = None
        self._stop = stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name=f"output-watch-{spec.submission_id}-{spec.step}")

    def __enter__(self) -> "OutputWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    @property
    def exceeded(self) -> bool:
        return self.reason is not None

    def check(self) -> bool:
        """Measure now; True (and `reason` set) when the folders are over the cap."""
        if self.reason is not None:
            return True
        total = entries = 0
        for folder in self.folders:
            used, count = tree_usage(folder, stop_bytes=self.max_bytes - total,
                                     stop_entries=self.max_entries - entries)
            total += used
            entries += count
        if total > self.max_bytes:
            self.reason = f"output over {self.max_mb} MB"
        elif entries > self.max_entries:
            self.reason = f"output over {self.max_entries} files"
        return self.reason is not None

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            try:
                over = self.check()
            except OSError:
                continue  # the folder changed under the walk: look again next time
            if over:
                try:
                    self._stop()
                except Exception:  # noqa: BLE001 - the step may have ended meanwhile
                    pass
                return


class Executor(LoggingConfigurable):
    """Runs steps.  One instance per worker process; must be thread-safe.

    A subclass implements `run_step` and `cancel`, and may implement
    `cleanup_orphans` and `close`.  Its options are traits tagged
    `config=True`: set as `c.<ClassName>.<trait>` in the platform's
    configuration (or `c.Executor.<trait>` for every executor), they reach
    the worker in the job and the executor is built with them.  `name` is
    the short name the executor is known by (`docker`, `process`);
    `isolates` says whether participants' code is kept from the machine.
    """

    name: str = "base"
    isolates: bool = False  # False: participant code can see and touch the machine

    def run_step(self, spec: StepSpec, log: Optional[LogFn] = None) -> StepResult:
        """Run the step to its end (or its limit) and return what happened.

        Watches the step's output against `limits.output_mb` while it runs,
        removes links and special files from its writable folders after it
        (logging each), then writes `output/metadata`.  Never raises for anything the
        participant's code did; raises only for a broken platform set-up.
        """
        raise NotImplementedError

    def cancel(self, submission_id: int) -> bool:
        """Kill every running step of the submission; True if something was killed."""
        raise NotImplementedError

    def cleanup_orphans(self) -> int:
        """Remove leftovers of steps whose worker died; returns how many."""
        return 0

    def close(self) -> None:
        """Release what the executor keeps between steps (it may still be used afterwards)."""


def process_alive(pid: int) -> bool:
    """True when `pid` names a live process of this machine (a zombie is not alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
