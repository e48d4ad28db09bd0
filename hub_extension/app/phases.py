"""The life of phases: organizers open, close and re-date them; the phase clock marks openings and migrates.

Phases open and close by their dates by themselves (`submit` checks them);
what needs a clock is what happens once when a phase opens: it is marked
`opened_at`, and when it has `auto_migrate`, each participant's last (or
chosen) finished submission of the phase before it is re-run in it.

The marks live in the database, so the clock is idempotent across restarts
and across several service processes: a phase is claimed for migration with
an atomic `UPDATE ... WHERE migrated_at IS NULL`, in the same transaction as
the migrated submissions.  The service ticks every 30 seconds; organizers'
"open now" and date changes tick at once.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload

from scoring.leaderboard import select_entries

from .. import models as m
from ..bundles.fields import parse_date
from ..errors import PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .leaderboards import board_from_row, entries
from .messages import PHASE_OPENED, notify_closed_phases, notify_phase
from .records import get_competition, get_phase, is_open, phase_number, phases_in_order, require_active
from .reruns import check_confirmed
from .views import Views

log = logging.getLogger("compete.phase_clock")


def _moment(value: Any, name: str) -> Optional[dt.datetime]:
    """A naive UTC datetime from a datetime, an ISO string or None."""
    if value is None or value == "":
        return None
    moment = parse_date(value)
    if moment is None:
        raise PlatformError(f"{name}: must be a date such as 2030-01-31T12:00, got {value!r}")
    return moment


class Phases:
    """Phase lifecycle and the phase clock, over the shared context; answers with the phase as `views` shows it."""

    def __init__(self, ctx: Context, views: Views):
        self.ctx = ctx
        self.views = views

    def _organizer_phase(self, s: Session, slug: str, number: int, actor: Actor) -> tuple[m.Competition, m.Phase]:
        comp = get_competition(s, slug, full=True)
        require_organizer(actor, comp)
        require_active(comp, "changing its phases")
        return comp, get_phase(comp, int(number))

    def _phase_after(self, slug: str, number: int, actor: Actor, now: dt.datetime) -> dict[str, Any]:
        return self.views.competition_detail(slug, actor, now=now)["phases"][int(number) - 1]

    def open_phase_now(self, slug: str, number: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Open a phase at once; any other open phase closes now.  Auto-migration follows."""
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp, ph = self._organizer_phase(s, slug, number, actor)
            if ph.start is None or ph.start > now:
                ph.start = now
            if ph.end is not None and ph.end <= now:
                ph.end = None
            for other in comp.phases:
                if other is not ph and (other.start is None or other.start <= now) and (other.end is None or other.end > now):
                    other.end = now
        self.tick(now, slug=slug)
        return self._phase_after(slug, number, actor, now)

    def close_phase_now(self, slug: str, number: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Close a phase at once: no more submissions to it."""
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp, ph = self._organizer_phase(s, slug, number, actor)
            if ph.start is not None and ph.start > now:
                raise PlatformError(f"phase {ph.name!r} has not opened yet (it opens {ph.start:%Y-%m-%d %H:%M} UTC)")
            if ph.end is None or ph.end > now:
                ph.end = now
        return self._phase_after(slug, number, actor, now)

    def set_phase_dates(self, slug: str, number: int, start: Any, end: Any, actor: Actor,
                        *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """New start and end of a phase (naive UTC datetimes or ISO strings; end may be None)."""
        start_at, end_at = _moment(start, "start"), _moment(end, "end")
        if start_at is None:
            raise PlatformError("start: a phase needs a start date")
        if end_at is not None and end_at <= start_at:
            raise PlatformError(f"end: must be after the start ({start_at:%Y-%m-%d %H:%M}), got {end_at:%Y-%m-%d %H:%M}")
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            _, ph = self._organizer_phase(s, slug, number, actor)
            ph.start, ph.end = start_at, end_at
        self.tick(now, slug=slug)
        return self._phase_after(slug, number, actor, now)

    # -- migration --------------------------------------------------------------------------------
    def _migration_phases(self, s: Session, slug: str, from_number: int,
                          actor: Actor) -> tuple[m.Competition, m.Phase, m.Phase]:
        comp, source = self._organizer_phase(s, slug, from_number, actor)
        phases = phases_in_order(comp)
        if int(from_number) >= len(phases):
            raise PlatformError(f"phase {from_number} is the last phase of {slug!r}; there is no next phase")
        return comp, source, phases[int(from_number)]

    def migration_plan(self, slug: str, from_number: int, actor: Actor) -> dict[str, Any]:
        """What migrating phase `from_number` to the next would re-run: `{"phase", "to", "count", "items"}`."""
        with self.ctx.db.session() as s:
            comp, source, target = self._migration_phases(s, slug, from_number, actor)
            picks = self.migration_picks(s, comp, source, target)
            items = [{"id": old.id, "participant": old.participant.username, "status": old.status,
                      "filename": old.filename} for old in picks]
            return {"competition": slug, "phase": int(from_number), "to": int(from_number) + 1,
                    "count": len(items), "items": items}

    def migrate_submissions(self, slug: str, from_number: int, actor: Actor, *, confirm: Optional[int],
                            now: Optional[dt.datetime] = None) -> list[int]:
        """Re-run each participant's last (or chosen) finished submission of a phase in the next one.

        `confirm` is the count of the plan the organizer was shown
        (`migration_plan`): when it is missing or the count changed, nothing
        migrates (`CountChanged`, 409).  Returns the new submissions' ids; a
        submission already migrated is not migrated again, so calling this
        twice is harmless.
        """
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp, source, target = self._migration_phases(s, slug, from_number, actor)
            picks = self.migration_picks(s, comp, source, target)
            check_confirmed(f"migrating phase {from_number} to phase {int(from_number) + 1}", len(picks), confirm)
            ids = self._migrate_picks(s, comp, picks, target, now)
            target.migrated_at = target.migrated_at or now
            return ids

    def migrate(self, s: Session, comp: m.Competition, source: m.Phase, target: m.Phase, now: dt.datetime) -> list[int]:
        """The new submissions of `target` re-running the picks of `source`, in the caller's session."""
        return self._migrate_picks(s, comp, self.migration_picks(s, comp, source, target), target, now)

    def migration_picks(self, s: Session, comp: m.Competition, source: m.Phase,
                        target: m.Phase) -> list[m.Submission]:
        """The submissions of `source` that a migration to `target` re-runs, one per approved participant."""
        boards = [b for b in comp.leaderboards if not b.hidden] or list(comp.leaderboards)
        finished = [e for e in entries(s, source) if e.status == m.FINISHED]
        chosen: dict[str, Any] = {}
        if boards:
            board = board_from_row(boards[0], source)
            for entry in select_entries(board.submission_rule, finished, board):
                chosen[entry.participant] = entry  # oldest first: the latest chosen wins
        # A participant who chose nothing (rule Add) brings their last finished one.
        latest = {}
        for entry in sorted(finished, key=lambda e: (e.submitted_at, e.submission_id)):
            latest[entry.participant] = entry
        picks = {user: chosen.get(user) or latest[user] for user in latest}
        approved = set(s.scalars(select(m.Participant.username).where(
            m.Participant.competition_id == comp.id, m.Participant.status == m.APPROVED)))
        already = set(s.scalars(select(m.Submission.parent_id).where(
            m.Submission.phase_id == target.id, m.Submission.parent_id.is_not(None))))
        olds = []
        for user, entry in sorted(picks.items()):
            if user not in approved or entry.submission_id in already:
                continue
            old = s.get(m.Submission, entry.submission_id)
            if target.results_only and old.kind != "results":
                continue
            olds.append(old)
        return olds

    @staticmethod
    def _migrate_picks(s: Session, comp: m.Competition, picks: list[m.Submission], target: m.Phase,
                       now: dt.datetime) -> list[int]:
        target_number = phase_number(comp, target)
        new_ids = []
        for old in picks:
            new = m.Submission(
                phase_id=target.id, participant_id=old.participant_id, kind=old.kind, filename=old.filename,
                file_key=old.file_key, status=m.SUBMITTED, submitted_at=now, status_changed_at=now,
                parent_id=old.id, description=f"migrated from submission {old.id} to phase {target_number}",
                team_id=old.team_id,  # a team's entry stays the team's
                fact_sheet=dict(old.fact_sheet or {}),
            )
            s.add(new)
            s.flush()
            s.add(m.StatusChange(submission_id=new.id, status=m.SUBMITTED, at=now,
                                 note=f"migrated from submission {old.id}"))
            new_ids.append(new.id)
        return new_ids

    # -- the clock --------------------------------------------------------------------------------
    def tick(self, now: Optional[dt.datetime] = None, *, slug: Optional[str] = None) -> dict[str, Any]:
        """One pass of the clock over every competition (or only `slug`).

        Returns what it did: {"opened": ["slug/2", ...], "migrated": {"slug/2": [new ids]},
        and, when some closed since the last pass, "closed": ["slug/<phase name>", ...] (their
        participants were told)}.
        """
        now = now or m.utcnow()
        done: dict[str, Any] = {"opened": [], "migrated": {}}
        with self.ctx.db.session() as s:
            q = (
                select(m.Phase.competition_id)
                .where(or_(m.Phase.opened_at.is_(None),
                           (m.Phase.auto_migrate.is_(True) & m.Phase.migrated_at.is_(None))))
                .where(or_(m.Phase.start.is_(None), m.Phase.start <= now))
                .where(or_(m.Phase.end.is_(None), m.Phase.end > now))
                .distinct()
            )
            if slug is not None:
                q = q.join(m.Competition, m.Competition.id == m.Phase.competition_id).where(m.Competition.slug == slug)
            competition_ids = list(s.scalars(q))
        for competition_id in competition_ids:
            try:
                self._tick_competition(competition_id, now, done)
            except Exception:  # noqa: BLE001 - one broken competition must not stop the others
                log.exception("phase clock: competition %s failed", competition_id)
        closed = notify_closed_phases(self.ctx, now, slug)
        if closed:
            done["closed"] = closed
        return done

    def _tick_competition(self, competition_id: int, now: dt.datetime, done: dict[str, Any]) -> None:
        opened_now: list[str] = []
        migrated_now: dict[str, list[int]] = {}
        with self.ctx.db.session() as s:
            comp = s.scalars(
                select(m.Competition).where(m.Competition.id == competition_id).options(
                    selectinload(m.Competition.phases),
                    selectinload(m.Competition.tasks),
                    selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns),
                )
            ).one()
            if comp.status == m.ARCHIVED:
                return  # read-only: no phase opens and nothing migrates until it is published again
            phases = phases_in_order(comp)
            for number, phase in enumerate(phases, start=1):
                if not is_open(phase, now):
                    continue
                name = f"{comp.slug}/{number}"
                if phase.opened_at is None:
                    opened = s.execute(
                        update(m.Phase).where(m.Phase.id == phase.id, m.Phase.opened_at.is_(None))
                        .values(opened_at=now)
                    ).rowcount
                    if opened:
                        opened_now.append(name)
                        notify_phase(s, comp, phase, PHASE_OPENED)
                if not phase.auto_migrate or phase.migrated_at is not None:
                    continue
                # The claim and the new submissions commit together: a crash leaves neither.
                claimed = s.execute(
                    update(m.Phase).where(m.Phase.id == phase.id, m.Phase.migrated_at.is_(None))
                    .values(migrated_at=now)
                ).rowcount
                if not claimed:
                    continue
                ids = self.migrate(s, comp, phases[number - 2], phase, now) if number > 1 else []
                migrated_now[name] = ids
        # Reported only once committed.
        for name in opened_now:
            log.info("phase %s is open", name)
        for name, ids in migrated_now.items():
            log.info("phase %s: %d submission(s) migrated from the phase before", name, len(ids))
        done["opened"].extend(opened_now)
        done["migrated"].update(migrated_now)
