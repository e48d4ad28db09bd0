"""Baselines: organizers run the bundle's solutions of a phase as submissions of their own.

A solution (Codabench `solutions`) is an example submission stored with the
competition, for some of its tasks.  The solutions of a phase are those its
bundle lists for it (a phase's `solutions`), else those of its tasks.
`run_baselines` submits each of them as a submission of the organizer who
asks, marked `baseline` with its solution's index.  Such a submission runs
like any other, whatever the phase's dates (organizers check the tasks before
a phase opens); it counts against no limit, participants' or the organizer's
own; the leaderboard ranks it among the participants' entries with a
"baseline" badge, one entry per solution (`leaderboards.entries`); it is
never migrated to the next phase.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from .. import models as m
from ..errors import PlatformError
from .actors import LOCAL_ADMIN, Actor, require_organizer
from .context import Context
from .records import find_participant, get_competition, get_phase, phase_number, phases_in_order, require_active
from .registrations import organizer_entry
from .submissions import submission_kind


def phase_solutions(comp: m.Competition, ph: m.Phase) -> list[m.Solution]:
    """The solutions a phase runs as baselines: those it lists, else those of its tasks."""
    listed = list(ph.solution_indexes or [])
    if listed:
        by_index = {sol.index: sol for sol in comp.solutions}
        return [by_index[index] for index in listed if index in by_index]
    tasks = set(ph.task_indexes or [])
    return [sol for sol in comp.solutions if not tasks or set(sol.task_indexes or []) & tasks]


def solution_view(sol: m.Solution) -> dict[str, Any]:
    return {"index": sol.index, "name": sol.name, "description": sol.description,
            "tasks": list(sol.task_indexes or []), "source": sol.source}


class Baselines:
    """The solutions of each phase, and running them as baselines, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def phase_solutions(self, slug: str, actor: Actor) -> list[dict[str, Any]]:
        """`[{"phase": n, "solutions": [{"index", "name", "description", "tasks", "source"}]}]` (organizers)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            return [{"phase": n, "solutions": [solution_view(sol) for sol in phase_solutions(comp, ph)]}
                    for n, ph in enumerate(phases_in_order(comp), start=1)]

    def run_baselines(self, slug: str, number: Optional[int], actor: Actor, *, username: Optional[str] = None,
                      now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Submit each solution of a phase (its number, else the current one) as a baseline.

        The submissions belong to `username` (default: the actor; the local
        admin's default is the competition's creator), registered and approved
        in the competition if they were not.  Returns `{"competition",
        "phase", "submissions": [{"id", "solution", "name", "kind"}],
        "skipped": [{"solution", "name", "reason"}]}`.
        """
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            require_active(comp, "running baselines")
            ph = get_phase(comp, number, now)
            n = phase_number(comp, ph)
            solutions = phase_solutions(comp, ph)
            if not solutions:
                raise PlatformError(
                    f"phase {n} ({ph.name!r}) has no solutions to run as baselines: a Codabench bundle lists "
                    "example submissions under 'solutions' (with the tasks they solve), and a phase runs those of "
                    "its tasks or the ones its own 'solutions' names")
            if username is not None and username != actor.username and not actor.is_admin:
                raise PlatformError("only admins may file baselines under another organizer's name")
            owner = username or (comp.created_by if actor == LOCAL_ADMIN and comp.created_by else actor.username)
            if owner is None:
                raise PlatformError("log in to run baselines")
            part = organizer_entry(s, comp, owner)
            done, skipped = [], []
            for sol in solutions:
                kind = submission_kind(self.ctx.store.dataset_path(sol.data_key))
                if ph.results_only and kind != "results":
                    skipped.append({"solution": sol.index, "name": sol.name,
                                    "reason": f"phase {n} accepts predictions only and this solution is {kind}"})
                    continue
                sub = m.Submission(
                    phase_id=ph.id, participant_id=part.id, kind=kind, filename=_filename(sol),
                    file_key=sol.data_key, status=m.SUBMITTED, submitted_at=now, status_changed_at=now,
                    description=f"baseline: solution {sol.index} ({sol.name})", baseline=True,
                    solution_index=sol.index,
                )
                s.add(sub)
                s.flush()
                s.add(m.StatusChange(submission_id=sub.id, status=m.SUBMITTED, at=now,
                                     note=f"baseline run of solution {sol.index} by {actor.username}"))
                done.append({"id": sub.id, "solution": sol.index, "name": sol.name, "kind": kind})
            return {"competition": comp.slug, "phase": n, "submissions": done, "skipped": skipped}


def _filename(sol: m.Solution) -> str:
    base = (sol.source or f"solution-{sol.index}").rstrip("/").rsplit("/", 1)[-1] or f"solution-{sol.index}"
    return base if base.lower().endswith(".zip") else f"{base}.zip"
