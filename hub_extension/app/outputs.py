"""The files of a submission: the file submitted, the logs of its steps, its feedback files.

Each is given out to whom may see it (`visibility`): the owner and the
organizers, and for the logs and feedback files only the sides of the run the
phase shows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from .. import models as m
from ..errors import Forbidden, NotFound
from .actors import Actor
from .context import Context
from .visibility import (
    ARTIFACT_SIDES,
    LOG_STREAMS,
    STEP_SIDES,
    latest_runs,
    output_visibility,
    run_log,
    step_side,
    submission_context,
)


class Outputs:
    """The stored files of submissions, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def submission_logs(self, submission_id: int, max_bytes: int = 64 * 1024) -> list[dict[str, Any]]:
        """The captured output of each step, newest attempt first within each step."""
        with self.ctx.db.session() as s:
            runs = s.scalars(select(m.Run).where(m.Run.submission_id == submission_id).order_by(m.Run.id)).all()
            entries = []
            for run in runs:
                if not run.log_path:
                    continue
                for name in ("stdout", "stderr"):
                    path = self.ctx.store.file_path(f"{run.log_path}/{name}.txt")
                    if path.is_file():
                        data = path.read_bytes()[-max_bytes:]
                        entries.append(
                            {"task_index": run.task_index, "step": run.step, "name": name,
                             "text": data.decode("utf-8", "replace")}
                        )
            return entries

    def artifact_path(self, submission_id: int, name: str) -> Path:
        return self.ctx.store.file_path(f"submissions/{submission_id}/{name}")

    def submission_log(self, submission_id: int, actor: Actor, task: int, step: str, stream: str,
                       *, max_bytes: int = 1024 * 1024) -> str:
        """The captured stdout or stderr of one step (the last `max_bytes`)."""
        if stream not in LOG_STREAMS:
            raise NotFound(f"no log stream {stream!r}; choose stdout or stderr")
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if step not in STEP_SIDES:
                raise NotFound(f"no step {step!r}; steps are {', '.join(STEP_SIDES)}")
            if not output_visibility(ph, organizer)[step_side(step)]:
                raise Forbidden(f"the organizers of {comp.slug!r} do not show the {step} output of this phase")
            runs = [r for r in latest_runs(sub) if r.task_index == int(task) and r.step == step]
            path = run_log(self.ctx.store, runs[0], stream) if runs else None
            if path is None:
                raise NotFound(f"submission {submission_id} has no {stream} for task {task}, step {step}")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size > max_bytes:
                fh.seek(size - max_bytes)
            data = fh.read()
        text = data.decode("utf-8", "replace")
        if size > max_bytes:
            text = f"[the first {size - max_bytes} bytes are cut]\n" + text
        return text

    def submission_artifact(self, submission_id: int, actor: Actor, name: str) -> Path:
        """A feedback file of a submission (executed notebook, its HTML, detailed results)."""
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            rel = (sub.artifacts or {}).get(name)
            if rel is None:
                raise NotFound(f"submission {submission_id} has no file {name!r}")
            if not output_visibility(ph, organizer)[ARTIFACT_SIDES.get(name, "scoring")]:
                raise Forbidden(f"the organizers of {comp.slug!r} do not show this output in this phase")
        try:
            path = self.ctx.store.file_path(rel)
        except ValueError:
            raise NotFound(f"submission {submission_id} has no file {name!r}") from None
        if not path.is_file():
            raise NotFound(f"the file {name!r} of submission {submission_id} is gone from the store")
        return path

    def submission_file(self, submission_id: int, actor: Actor) -> tuple[Path, str]:
        """The file the participant submitted (its owner and the organizers)."""
        with self.ctx.db.session() as s:
            sub, *_ = submission_context(s, submission_id, actor)
            if not sub.file_key or not self.ctx.store.has_dataset(sub.file_key):
                raise NotFound(f"the file of submission {submission_id} is not stored")
            return self.ctx.store.dataset_path(sub.file_key), sub.filename
