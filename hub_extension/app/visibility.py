"""What a viewer may see of a submission: whose it is, which side of its run, which scores.

Organizers see everything.  A participant sees their own submissions only
(and, in a team, the team's),
the prediction side (and ingestion) unless the phase hides it, the scoring
side unless the phase hides it or its results, and the scores of the columns
and boards that are not hidden.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Forbidden, NotFound
from ..storage import Store
from .actors import Actor, is_organizer
from .probing import has_ladder
from .records import get_competition, require_visible

LOG_STREAMS = ("stdout", "stderr")
# Which side of a run a step or a feedback file belongs to (for hide_*_output).
STEP_SIDES = {"prediction": "prediction", "ingestion": "prediction", "scoring": "scoring",
              "aggregation": "scoring"}  # a phase's own scoring program over its tasks' scoring outputs
ARTIFACT_SIDES = {"executed_notebook": "prediction", "executed_notebook_html": "prediction",
                  "detailed_results": "scoring"}


def step_side(step: str) -> str:
    # Unknown steps count as scoring: the stricter side.
    return STEP_SIDES.get(step, "scoring")


def visible_score_keys(comp: m.Competition) -> set[str]:
    """Score keys a participant may see: columns that are not hidden, on boards that are not."""
    return {c.key for b in comp.leaderboards if not b.hidden for c in b.columns if not c.hidden}


def output_visibility(ph: m.Phase, organizer: bool) -> dict[str, bool]:
    """Which side of a run the viewer may see: `prediction` (and ingestion) and `scoring`.

    A competition with a Ladder board hides the scoring side from participants
    (its logs and files can carry exact scores: `probing`)."""
    if organizer:
        return {"prediction": True, "scoring": True}
    return {
        "prediction": not (ph.hide_output or ph.hide_prediction_output),
        "scoring": not (ph.hide_output or ph.hide_score_output or ph.hide_results or has_ladder(ph.competition)),
    }


def submission_context(s: Session, submission_id: int, actor: Actor):
    """(submission, participant, phase, competition, organizer) if the actor may see it."""
    sub = s.get(m.Submission, submission_id)
    if sub is None:
        raise NotFound(f"no submission {submission_id}")
    part = s.get(m.Participant, sub.participant_id)
    ph = s.get(m.Phase, sub.phase_id)
    comp = get_competition(s, s.get(m.Competition, ph.competition_id).slug, full=True)
    require_visible(actor, comp)
    organizer = is_organizer(actor, comp)
    if not organizer and (actor.username is None or actor.username != part.username) \
            and not is_team_member(s, sub.team_id, actor.username):
        raise Forbidden(f"submission {submission_id} belongs to another participant")
    return sub, part, ph, comp, organizer


def is_team_member(s: Session, team_id: Optional[int], username: Optional[str]) -> bool:
    """Whether `username` is a member of team `team_id` now (a submission made for the team is theirs to see)."""
    if team_id is None or not username:
        return False
    return s.scalar(select(m.TeamMember.id).where(m.TeamMember.team_id == team_id, m.TeamMember.username == username,
                                                  m.TeamMember.status == m.MEMBER)) is not None


def latest_runs(sub: m.Submission) -> list[m.Run]:
    """The runs of the latest attempt of each task and step."""
    latest: dict[tuple[int, str], m.Run] = {}
    for run in sub.runs:
        if run.status == m.SUBMITTED:
            continue  # a step sent, not reported yet: it has no outcome to show
        key = (run.task_index, run.step)
        if key not in latest or (run.attempt, run.id) > (latest[key].attempt, latest[key].id):
            latest[key] = run
    return sorted(latest.values(), key=lambda r: (r.task_index, r.id))


def run_log(store: Store, run: m.Run, stream: str) -> Optional[Path]:
    """The stored stdout or stderr of a run, if there is one."""
    if not run.log_path:
        return None
    try:
        path = store.file_path(f"{run.log_path}/{stream}.txt")
    except ValueError:
        return None
    return path if path.is_file() else None
