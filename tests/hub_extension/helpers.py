"""Small builders for application-layer tests: a competition from a spec, a submission file."""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

from hub_extension.bundles.model import ColumnSpec, CompetitionSpec, LeaderboardSpec, PhaseSpec, TaskSpec


def simple_spec(dialect: str = "codabench", **phase_options) -> CompetitionSpec:
    phase = dict(index=0, name="Development", start=dt.datetime(2020, 1, 1), end=None, task_indexes=[0])
    phase.update(phase_options)
    return CompetitionSpec(
        title="Limits Test",
        dialect=dialect,
        tasks=[TaskSpec(index=0, name="task")],
        phases=[PhaseSpec(**phase)],
        leaderboards=[
            LeaderboardSpec(
                key="main",
                title="Results",
                submission_rule="Force_Last",
                primary_key="accuracy",
                columns=[ColumnSpec(key="accuracy", title="Accuracy", index=0, sorting="desc")],
            )
        ],
    )


def results_zip(tmp_path: Path, name: str = "predictions.zip", content: str = "1\n0\n1\n") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("predictions.txt", content)
    return path
