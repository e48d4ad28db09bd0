"""Run specs: what a worker needs to run one step of one submission on one task.

A spec is plain, JSON-able data (`to_json`/`from_json`), so that it can travel
to any worker of any queue and be logged as it was.  Host paths in a spec are
paths on the worker's machine; the executor maps them to the fixed container
paths of the CodaLab/Codabench conventions:

| field                 | container path            | mode |
| --------------------- | ------------------------- | ---- |
| program_dir           | /app/program              | ro   |
| ingested_program_dir  | /app/ingested_program     | ro   |
| input_dir             | /app/input_data (prediction) or /app/input (scoring) | ro |
| output_dir            | /app/output               | rw   |
| shared_dir            | /app/shared               | rw   |
| data_dir              | /app/data                 | ro   |

In the scoring step, `input_dir` holds `ref/` (reference data) and `res/`
(predictions), as CodaLab scoring programs expect.

Programs' commands name these folders by `$placeholders`, as in CodaLab's
and Codabench's compute workers; `resolve_command` replaces them and says
what it did not replace (`PLACEHOLDERS` is the table, per step).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Literal, Optional

Step = Literal["prediction", "scoring", "ingestion"]

CONTAINER_PATHS = {
    "program_dir": "/app/program",
    "ingested_program_dir": "/app/ingested_program",
    "output_dir": "/app/output",
    "shared_dir": "/app/shared",
    "data_dir": "/app/data",
}
PREDICTION_INPUT = "/app/input_data"
SCORING_INPUT = "/app/input"

# The placeholders each compute worker replaces in a program's command, exactly:
# CodaLab v1.5 (competitions-v1-compute-worker, `worker.py`): the program's command
# gets $program, $predictions, $input, $output, $tmp, $shared (and $hidden when
# scoring); the ingestion program's command gets $program, $ingestion_program,
# $submission_program, $predictions, $input, $output, $tmp, $shared (and $hidden
# during prediction).  Codabench (`compute_worker.py`,
# `replace_legacy_metadata_command`): $input, $output, $program, $ingestion_program,
# $hidden, $shared, $submission_program, $tmp, $predictions, in every step.
CODALAB_PLACEHOLDERS = ("program", "predictions", "input", "output", "tmp", "shared", "hidden",
                        "ingestion_program", "submission_program")
CODABENCH_PLACEHOLDERS = ("input", "output", "program", "ingestion_program", "hidden", "shared",
                          "submission_program", "tmp", "predictions")

# Placeholder -> container path, per step.  Both workers know the same nine
# names; the paths are Codabench's (its programs hard-code them).  $tmp is the
# output folder, as on Codabench (CodaLab gave a scratch folder of its own).
_PREDICTION_PLACEHOLDERS = {
    "program": "/app/program",
    "ingestion_program": "/app/program",
    "submission_program": "/app/ingested_program",
    "input": PREDICTION_INPUT,
    "output": "/app/output",
    "tmp": "/app/output",
    "predictions": "/app/output",
    "shared": "/app/shared",
    # Never mounted in this step: the reference data reaches the scoring step only.
    "hidden": SCORING_INPUT + "/ref",
}
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "prediction": _PREDICTION_PLACEHOLDERS,
    "ingestion": _PREDICTION_PLACEHOLDERS,
    "scoring": {
        "program": "/app/program",
        # As on Codabench: $ingestion_program is /app/program in every step.
        "ingestion_program": "/app/program",
        # Never mounted in the scoring step.
        "submission_program": "/app/ingested_program",
        "input": SCORING_INPUT,
        "output": "/app/output",
        "tmp": "/app/output",
        "predictions": SCORING_INPUT + "/res",
        "hidden": SCORING_INPUT + "/ref",
        "shared": "/app/shared",
    },
}
# A `$word` or `${word}` of a command.
_WORD_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# Longest first, so that a word is read with the longest placeholder it starts with.
_BY_LENGTH = sorted(CODABENCH_PLACEHOLDERS, key=len, reverse=True)


@dataclass
class Limits:
    time_limit: float = 600.0  # wall-clock seconds for the whole step
    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    network: bool = False
    gpus: int = 0
    output_bytes: int = 1 << 20  # cap on captured stdout and on stderr, each
    cell_timeout: Optional[float] = None  # notebooks: per-cell limit
    # Cap on what the step writes into its writable folders (output, shared),
    # watched while it runs: over it, the step is stopped ("output over N MB").
    # The platform sets it from `c.Compete.step_output_mb` (job key `step_output_mb`).
    output_mb: int = 1024
    output_files: int = 100_000  # and on the number of entries in those folders


@dataclass
class StepSpec:
    submission_id: int
    task_index: int
    step: Step
    image: str
    program_dir: str
    output_dir: str
    # The program's `metadata` command, with $placeholders; None for a
    # notebook prediction (then `notebook` names the .ipynb in program_dir).
    command: Optional[str] = None
    notebook: Optional[str] = None
    input_dir: Optional[str] = None
    ingested_program_dir: Optional[str] = None
    shared_dir: Optional[str] = None
    data_dir: Optional[str] = None
    limits: Limits = field(default_factory=Limits)
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def mounted(self) -> set[str]:
        """The placeholders whose folder this step has."""
        names = {"program", "output", "tmp"}
        if self.step == "scoring":
            names |= {"ingestion_program"}
            if self.input_dir:
                names |= {"input", "predictions", "hidden"}
        else:
            names |= {"ingestion_program", "predictions"}
            if self.input_dir:
                names.add("input")
            if self.ingested_program_dir:
                names.add("submission_program")
        if self.shared_dir:
            names.add("shared")
        return names

    @classmethod
    def from_dict(cls, data: dict) -> "StepSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run spec fields: {sorted(unknown)}")
        data = dict(data)
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "StepSpec":
        return cls.from_dict(json.loads(text))


@dataclass
class StepResult:
    """What an executor reports for one step; plain data, never code."""

    exit_code: Optional[int]
    elapsed: float
    timed_out: bool = False
    oom_killed: bool = False
    cancelled: bool = False
    output_over: bool = False  # stopped for writing more than its output cap
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    image: Optional[str] = None
    image_digest: Optional[str] = None
    error: Optional[str] = None  # why the step failed, for a person

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.oom_killed or self.cancelled or self.output_over)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_command(command: str, step: str, paths: Optional[dict[str, str]] = None,
                    mounted: Optional[set[str]] = None) -> tuple[str, list[str]]:
    """`command` with its placeholders replaced, and what a person should know about it.

    Each `$name` (or `${name}`) of `PLACEHOLDERS[step]` becomes its
    container path, or `paths[name]` where given.  As in both compute
    workers, which replace text, a word that starts with a placeholder is
    read as that placeholder followed by the rest (`$input_data` is `$input`
    then `_data`): the note says so.  Any other `$word` is left for the
    shell (an environment variable, empty unless set) and noted too.  With
    `mounted` (the placeholders whose folder the step has), a placeholder
    whose folder the step does not have is noted.  `$tmp` is noted: it is
    the output folder here, as on Codabench, where CodaLab gave a scratch
    folder of its own.
    """
    table = dict(PLACEHOLDERS[step])
    if paths:
        table.update(paths)
    notes: list[str] = []
    used: list[str] = []

    def note(text: str) -> None:
        if text not in notes:
            notes.append(text)

    def replace(match: re.Match) -> str:
        braced, word = match.group(1), match.group(2)
        name = braced or word
        if name in table:
            used.append(name)
            return table[name]
        if word:
            for known in _BY_LENGTH:
                if word.startswith(known):
                    used.append(known)
                    note(f"`${word}` in the command is read as `${known}` followed by `{word[len(known):]}`, "
                         "as CodaLab and Codabench replace placeholders as text; rename the variable "
                         f"if it is not meant as `${known}`")
                    return table[known] + word[len(known):]
        note(f"`${name}` in the command is no placeholder of CodaLab or Codabench "
             f"(they are ${', $'.join(CODABENCH_PLACEHOLDERS)}): it is left to the shell, "
             "which replaces it by the environment variable of that name, or by nothing")
        return match.group(0)

    resolved = _WORD_RE.sub(replace, command)
    for name in dict.fromkeys(used):
        if mounted is not None and name not in mounted:
            note(f"`${name}` names {PLACEHOLDERS[step][name]}, which the {step} step does not have"
                 + (": the reference data reaches the scoring step only"
                    if name == "hidden" else ""))
        if name == "tmp":
            note("`$tmp` is the output folder (as on Codabench; CodaLab gave a scratch folder of its own): "
                 "what the program leaves there is part of its output")
    return resolved, notes
