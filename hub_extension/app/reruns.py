"""Rerunning a whole phase: every submission of it runs again, once the organizer confirmed how many.

What runs again are the phase's own submissions that are not reruns
themselves and were not cancelled: each participant's uploads (and the
submissions migrated into the phase, and baselines), whatever their status,
so that a scoring program fixed after failures scores them all.  Each new
submission is linked to the one it reruns (`parent_id`) and, as every rerun,
counts against no limit.

A bulk act is confirmed with the count the organizer was shown (`confirm`):
when the phase has changed since and the count is no longer that, nothing
runs and `CountChanged` carries the count now, so the caller can show it and
ask again.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, selectinload

from .. import models as m
from ..errors import CountChanged, PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .records import get_competition, get_phase, require_active
from .submissions import add_rerun


def check_confirmed(what: str, count: int, confirm: Optional[int]) -> None:
    """Refuse a bulk act whose confirmed count is missing or is not `count` (409, with the count now)."""
    if confirm is None:
        raise CountChanged(f"{what} acts on {count} submission(s); confirm with that count "
                           f'(send {{"confirm": {count}}})', count=count, code="confirmation_needed")
    if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 0:
        raise PlatformError(f"confirm: must be the count of submissions you were shown, got {confirm!r}")
    if confirm != count:
        raise CountChanged(f"{what}: you confirmed {confirm} submission(s) but there are {count} now; "
                           "nothing was done. Look at the count again and confirm it", count=count)


def _originals_query(phase_id: int, what: Any):
    """`what` of the phase's submissions that are not reruns and not cancelled."""
    parent = aliased(m.Submission)
    return (
        select(what)
        .select_from(m.Submission)
        .outerjoin(parent, parent.id == m.Submission.parent_id)
        .where(m.Submission.phase_id == phase_id, m.Submission.status != m.CANCELLED)
        # a submission migrated in has its parent in another phase: it is the phase's own
        .where((m.Submission.parent_id.is_(None)) | (parent.phase_id != phase_id))
        .where(m.Submission.reproduces_id.is_(None))
    )


def _originals(s: Session, phase_id: int) -> list[m.Submission]:
    """The phase's submissions that are not reruns and not cancelled, oldest first."""
    return list(s.scalars(_originals_query(phase_id, m.Submission)
                          .options(selectinload(m.Submission.participant))
                          .order_by(m.Submission.submitted_at, m.Submission.id)))


def _item(sub: m.Submission) -> dict[str, Any]:
    return {"id": sub.id, "participant": sub.participant.username, "status": sub.status,
            "filename": sub.filename, "baseline": bool(sub.baseline)}


class Reruns:
    """Rerunning every submission of a phase (organizers), over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def _phase(self, s: Session, slug: str, number: int, actor: Actor) -> m.Phase:
        comp = get_competition(s, slug, full=True)
        require_organizer(actor, comp)
        return get_phase(comp, int(number))

    def rerun_plan(self, slug: str, number: int, actor: Actor) -> dict[str, Any]:
        """What rerunning phase `number` would run: `{"phase", "count", "items": [{id, participant, status, …}]}`."""
        with self.ctx.db.session() as s:
            ph = self._phase(s, slug, number, actor)
            items = [_item(sub) for sub in _originals(s, ph.id)]
            return {"competition": slug, "phase": int(number), "count": len(items), "items": items}

    def rerun_count(self, slug: str, number: int, actor: Actor) -> int:
        """How many submissions rerunning phase `number` would run (one count query)."""
        with self.ctx.db.session() as s:
            ph = self._phase(s, slug, number, actor)
            return int(s.scalar(_originals_query(ph.id, func.count(m.Submission.id))) or 0)

    def rerun_phase(self, slug: str, number: int, actor: Actor, *, confirm: Optional[int],
                    now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Rerun every submission of the plan, once `confirm` equals its count; the new submissions.

        Returns `{"phase", "count", "submissions": [{"id", "parent", "participant"}]}`.
        """
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            ph = self._phase(s, slug, number, actor)
            require_active(ph.competition, "running submissions again")
            originals = _originals(s, ph.id)
            check_confirmed(f"rerunning phase {number}", len(originals), confirm)
            made = []
            for old in originals:
                new = add_rerun(s, old, now, note=f"rerun of {old.id} (the whole phase, by {actor.username})")
                made.append({"id": new.id, "parent": old.id, "participant": old.participant.username})
            return {"competition": slug, "phase": int(number), "count": len(made), "submissions": made}
