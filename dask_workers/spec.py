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
"""
from __future__ import annotations

import json
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
