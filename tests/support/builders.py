"""Test data for the application layer and the service: competitions, submissions, people.

`simple_spec()` is a one-task, one-phase, one-column competition spec;
`results_zip()` a predictions zip as a participant uploads it.

`build_world(platform, tmp_path)` (the fixture `world`) creates one competition (`secrets`) whose
phase 1 is open, phase 2 opens in 2100 and has auto-migration, with:
- a public board `main` (column `accuracy` shown, column `secret` hidden),
- a hidden board `private` (column `private_score`),
- a starting kit and public data in phase 1, reference data in the task,
- pages with a script to be sanitized away;
and a second competition (`other`) run by another organizer.  People:
`olga` runs `secrets`, `oscar` runs `other` (both in the hub group
`organizers`), `ann` and `ben` are approved participants, `nora` is not
registered, `root` is a hub admin.
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hub_extension import models as m
from hub_extension.app import Actor
from hub_extension.bundles.model import (
    ColumnSpec,
    CompetitionSpec,
    DataRef,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    TaskSpec,
)

ORGANIZER = Actor("olga", groups=frozenset({"organizers"}))
OTHER_ORGANIZER = Actor("oscar", groups=frozenset({"organizers"}))
ANN = Actor("ann")
BEN = Actor("ben")
NORA = Actor("nora")
ADMIN = Actor("root", is_admin=True)
ANONYMOUS = Actor(None)

REFERENCE_TEXT = "REFERENCE-LABELS-7f3a"
SECRET_LOG_TEXT = "scoring-log-with-a-secret"
PREDICTION_LOG_TEXT = "prediction-log-of-the-participant"


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def results_zip(tmp_path: Path, name: str = "predictions.zip", content: str = "1\n0\n1\n") -> Path:
    """A predictions zip (`predictions.txt` holding `content`) in `tmp_path`."""
    path = tmp_path / name
    path.write_bytes(zip_bytes({"predictions.txt": content}))
    return path


def simple_spec(dialect: str = "codabench", **phase_options) -> CompetitionSpec:
    """One task, one open phase (`phase_options` change it), one board ranked by `accuracy`; published."""
    phase = dict(index=0, name="Development", start=dt.datetime(2020, 1, 1), end=None, task_indexes=[0])
    phase.update(phase_options)
    return CompetitionSpec(
        title="Limits Test",
        dialect=dialect,
        published=True,
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


def secrets_spec(store, *, blind: bool = False, hide_score_output: bool = False) -> CompetitionSpec:
    kit = store.put_dataset_bytes(zip_bytes({"README.md": "starting kit"}))
    public = store.put_dataset_bytes(zip_bytes({"public.csv": "x\n1\n"}))
    reference = store.put_dataset_bytes(zip_bytes({"labels.csv": REFERENCE_TEXT}))
    scoring = store.put_dataset_bytes(zip_bytes({"metadata": "command: python score.py\n", "score.py": "pass\n"}))
    return CompetitionSpec(
        title="Secrets",
        dialect="codabench",
        published=True,
        description="A competition with <b>secrets</b><script>alert(1)</script>",
        pages=[PageSpec(name="overview", title="Overview", content="# Hello\n<script>alert('x')</script>\n\nbody",
                        format="markdown")],
        terms="Be <em>nice</em><script>steal()</script>",
        tasks=[TaskSpec(index=0, name="task", scoring_program=DataRef("key", scoring),
                        reference_data=DataRef("key", reference))],
        phases=[
            PhaseSpec(index=0, name="Development", start=dt.datetime(2020, 1, 1), end=dt.datetime(2099, 12, 31),
                      task_indexes=[0],
                      hide_results=blind, hide_score_output=hide_score_output, max_submissions=10,
                      max_submissions_per_day=5, starting_kit=DataRef("key", kit),
                      public_data=DataRef("key", public)),
            PhaseSpec(index=1, name="Final", start=dt.datetime(2100, 1, 1), end=None, task_indexes=[0],
                      auto_migrate=True),
        ],
        leaderboards=[
            LeaderboardSpec(
                key="main", title="Results", index=0, submission_rule="Force_Last", primary_key="accuracy",
                columns=[ColumnSpec(key="accuracy", title="Accuracy", index=0, sorting="desc"),
                         ColumnSpec(key="secret", title="Secret", index=1, hidden=True)],
            ),
            LeaderboardSpec(
                key="private", title="Private", index=1, hidden=True, submission_rule="Force_Last",
                primary_key="private_score",
                columns=[ColumnSpec(key="private_score", title="Private score", index=0)],
            ),
        ],
    )


def finish(platform, sid: int, scores: dict[str, float], *, with_outputs: bool = True) -> None:
    """Record a worker result with logs and feedback files for submission `sid`."""
    base = f"submissions/{sid}/attempt-1"
    result: dict[str, Any] = {"status": "Finished", "scores": scores, "worker": "test-worker", "tasks": [],
                              "artifacts": {}}
    if with_outputs:
        for step, text in (("prediction", PREDICTION_LOG_TEXT), ("scoring", SECRET_LOG_TEXT)):
            platform.store.put_file_bytes(f"{base}/task-0/{step}/stdout.txt", f"{text} stdout\n".encode())
            platform.store.put_file_bytes(f"{base}/task-0/{step}/stderr.txt", f"{text} stderr\n".encode())
        platform.store.put_file_bytes(f"{base}/detailed_results.html", b"<p>detailed: accuracy 0.9</p>")
        platform.store.put_file_bytes(f"{base}/executed_notebook.html", b"<p>notebook</p>")
        result["tasks"] = [{"task_index": 0, "steps": [
            {"step": "prediction", "exit_code": 0, "elapsed": 0.5, "log_path": f"{base}/task-0/prediction"},
            {"step": "scoring", "exit_code": 0, "elapsed": 0.25, "log_path": f"{base}/task-0/scoring"},
        ]}]
        result["artifacts"] = {"detailed_results": f"{base}/detailed_results.html",
                               "executed_notebook_html": f"{base}/executed_notebook.html"}
    assert platform.runs.record_result(sid, result)


@dataclass
class World:
    slug: str
    other_slug: str
    subs: dict[str, int] = field(default_factory=dict)


def build_world(platform, tmp_path: Path, *, blind: bool = False, hide_score_output: bool = False) -> World:
    slug = platform.competitions.insert_competition(secrets_spec(platform.store, blind=blind,
                                                     hide_score_output=hide_score_output), ORGANIZER)
    other = CompetitionSpec(
        title="Other", dialect="codabench", published=True, tasks=[TaskSpec(index=0, name="t")],
        phases=[PhaseSpec(index=0, name="Only", start=dt.datetime(2020, 1, 1), task_indexes=[0])],
        leaderboards=[LeaderboardSpec(key="main", title="Main", primary_key="accuracy",
                                      columns=[ColumnSpec(key="accuracy", title="Accuracy", index=0)])],
    )
    other_slug = platform.competitions.insert_competition(other, OTHER_ORGANIZER)
    world = World(slug=slug, other_slug=other_slug)
    upload = results_zip(tmp_path)
    for actor, acc in ((ANN, 0.7), (BEN, 0.8)):
        assert platform.register(slug, actor.username, actor, accept_terms=True) == m.APPROVED
        sid = platform.submit(slug, upload, username=actor.username, actor=actor)
        finish(platform, sid, {"accuracy": acc, "secret": 1 - acc, "private_score": acc / 2})
        world.subs[actor.username] = sid
    world.subs["ann_waiting"] = platform.submit(slug, upload, username="ann", actor=ANN)
    return world


@pytest.fixture
def world(platform, tmp_path) -> World:
    """The test world on the test's platform."""
    return build_world(platform, tmp_path)
