"""The executor interface: run one step of a run spec, isolated as far as the executor can.

Executors are peers behind this class, chosen by configuration (`docker` for
production, `process` for development on trusted code).  Shared pieces live
here: the placeholder table of CodaLab/Codabench commands, the container path
layout of a step, and the `metadata` file written into the output after each
step.
"""
from __future__ import annotations

import abc
import os
import re
from pathlib import Path
from typing import Callable, Optional

import yaml

from ..spec import CONTAINER_PATHS, PREDICTION_INPUT, SCORING_INPUT, StepResult, StepSpec

LogFn = Callable[[str], None]

# Placeholder -> container path, per step (see CODALAB_COMPAT.md "Programs").
_PLACEHOLDERS = {
    "prediction": {
        "program": "/app/program",
        "ingestion_program": "/app/program",
        "submission_program": "/app/ingested_program",
        "input": PREDICTION_INPUT,
        "output": "/app/output",
        "tmp": "/app/output",
        "predictions": "/app/output",
        "shared": "/app/shared",
    },
    "scoring": {
        "program": "/app/program",
        "input": SCORING_INPUT,
        "output": "/app/output",
        "tmp": "/app/output",
        "predictions": SCORING_INPUT + "/res",
        "hidden": SCORING_INPUT + "/ref",
        "shared": "/app/shared",
    },
}
_PLACEHOLDERS["ingestion"] = _PLACEHOLDERS["prediction"]

_PLACEHOLDER_RE = re.compile(r"\$\{?([a-z_]+)\}?")


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

    Unknown `$words` are left alone: they may be shell variables of the program.
    """
    table = dict(_PLACEHOLDERS[step])
    if paths:
        table.update(paths)

    def repl(match: re.Match) -> str:
        return table.get(match.group(1), match.group(0))

    return _PLACEHOLDER_RE.sub(repl, command)


def write_metadata(output_dir: str | Path, step: str, result: StepResult) -> None:
    """Write CodaLab's `output/metadata` (YAML) after a step, merged with what is there."""
    path = Path(output_dir) / "metadata"
    data: dict = {}
    if path.is_symlink():
        # Planted by the step: never follow it (the worker would write where it points).
        path.unlink()
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text())
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
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=True))


class Executor(abc.ABC):
    """Runs steps.  One instance per worker process; must be thread-safe."""

    name: str = "base"
    isolates: bool = False  # False: participant code can see and touch the machine

    @abc.abstractmethod
    def run_step(self, spec: StepSpec, log: Optional[LogFn] = None) -> StepResult:
        """Run the step to its end (or its limit) and return what happened.

        Writes `output/metadata` after the step.  Never raises for anything the
        participant's code did; raises only for a broken platform set-up.
        """

    @abc.abstractmethod
    def cancel(self, submission_id: int) -> bool:
        """Kill every running step of the submission; True if something was killed."""

    def cleanup_orphans(self) -> int:
        """Remove leftovers of steps whose worker died; returns how many."""
        return 0


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
