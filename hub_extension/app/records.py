"""The rows a use case starts from, and the calendar of phases.

A competition by its slug (`visible_competition`: as the actor may see it,
else "no competition", so a draft or private one never leaks its existence),
a phase by its 1-based number (else the current one), a participant by name,
the team a user is a member of;
which phase is current and what state a competition is in; the rules a phase
runs by (its submission rule, whether its tasks ingest code).  Every function
takes the open session of its caller.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .. import models as m
from ..errors import Conflict, NotFound
from .actors import Actor, may_see, not_found

COMPETITION_STATUSES = ("upcoming", "running", "finished")
# Rules under which the participant picks what the leaderboard shows.
CHOOSING_RULES = frozenset({"Add", "Add_And_Delete", "Add_And_Delete_Multiple"})


def get_competition(s: Session, slug: str, *, full: bool = False) -> m.Competition:
    """The competition `slug`; `full` loads its pages, tasks, phases and boards with it."""
    q = select(m.Competition).where(m.Competition.slug == slug)
    if full:
        q = q.options(
            selectinload(m.Competition.pages),
            selectinload(m.Competition.tasks),
            selectinload(m.Competition.phases),
            selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns),
        )
    comp = s.scalars(q).first()
    if comp is None:
        raise not_found(slug)
    return comp


def require_visible(actor: Actor, comp: m.Competition, secret: Optional[str] = None) -> None:
    """NotFound (not Forbidden: existence does not leak) unless the actor may see the competition."""
    if not may_see(actor, comp, secret):
        raise not_found(comp.slug)


def visible_competition(s: Session, slug: str, actor: Actor, *, full: bool = False) -> m.Competition:
    """`get_competition`, as the actor may see it (`actors.may_see`)."""
    comp = get_competition(s, slug, full=full)
    require_visible(actor, comp)
    return comp


def require_active(comp: m.Competition, doing: str) -> None:
    """Refuse `doing` in an archived competition: it is read-only, its boards and pages kept."""
    if comp.status == m.ARCHIVED:
        raise Conflict(f"{comp.slug!r} is archived and read-only: {doing} is closed; its organizers may "
                       f"publish it again (compete competition publish {comp.slug})")


def phases_in_order(comp: m.Competition) -> list[m.Phase]:
    return sorted(comp.phases, key=lambda p: (p.index, p.id))


def get_phase(comp: m.Competition, number: Optional[int], now: Optional[dt.datetime] = None) -> m.Phase:
    """Phase by its 1-based number in the phase order, else the current one."""
    phases = phases_in_order(comp)
    if not phases:
        raise NotFound(f"competition {comp.slug!r} has no phases")
    if number is not None:
        if not 1 <= number <= len(phases):
            raise NotFound(f"competition {comp.slug!r} has phases 1 to {len(phases)}, not {number}")
        return phases[number - 1]
    return current_phase(phases, now or m.utcnow())


def phase_number(comp: m.Competition, ph: m.Phase) -> int:
    return phases_in_order(comp).index(ph) + 1


def find_participant(s: Session, comp: m.Competition, username: str) -> Optional[m.Participant]:
    return s.scalars(
        select(m.Participant).where(m.Participant.competition_id == comp.id, m.Participant.username == username)
    ).first()


def find_team(s: Session, competition_id: int, username: Optional[str]) -> Optional[m.Team]:
    """The team `username` is a member of in a competition (at most one), if any."""
    if not username:
        return None
    return s.scalars(
        select(m.Team).join(m.TeamMember, m.TeamMember.team_id == m.Team.id)
        .where(m.TeamMember.competition_id == competition_id, m.TeamMember.username == username,
               m.TeamMember.status == m.MEMBER)
    ).first()


def is_open(ph: m.Phase, now: dt.datetime) -> bool:
    return (ph.start is None or ph.start <= now) and (ph.end is None or now < ph.end)


def current_phase(phases: list[m.Phase], now: dt.datetime) -> m.Phase:
    """The open phase (the latest-starting one if several are open); else the
    last one that started; else the first."""
    started = [p for p in phases if p.start is None or p.start <= now]
    open_ = [p for p in started if p.end is None or now < p.end]
    if open_:
        return max(open_, key=lambda p: (p.start or dt.datetime.min, p.index))
    return started[-1] if started else phases[0]


def competition_status(phases: Iterable[m.Phase], now: dt.datetime) -> str:
    phases = list(phases)
    starts = [p.start for p in phases if p.start is not None]
    if starts and now < min(starts):
        return "upcoming"
    if any((p.start is None or p.start <= now) and (p.end is None or now < p.end) for p in phases):
        return "running"
    return "finished" if phases else "upcoming"


def phase_rule(comp: m.Competition, ph: m.Phase) -> str:
    """The submission rule of a phase: its own, else its first public board's."""
    boards = [b for b in comp.leaderboards if not b.hidden] or list(comp.leaderboards)
    return ph.submission_rule or (boards[0].submission_rule if boards else "Force_Last")
