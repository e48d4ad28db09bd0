"""The phase clock: notices phases opening by their dates and runs auto-migration.

Phases open and close by their dates by themselves (`Platform.submit` checks
them); what needs a clock is what happens once when a phase opens: it is
marked `opened_at`, and when it has `auto_migrate`, each participant's last
(or chosen) finished submission of the phase before it is re-run in it.

The marks live in the database, so the clock is idempotent across restarts
and across several service processes: a phase is claimed for migration with
an atomic `UPDATE ... WHERE migrated_at IS NULL`, in the same transaction as
the migrated submissions.  The service calls `tick` every 30 seconds;
organizers' "open now" and date changes call it at once.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload

from . import models as m

log = logging.getLogger("compete.phase_clock")


def _is_open(phase: m.Phase, now: dt.datetime) -> bool:
    return (phase.start is None or phase.start <= now) and (phase.end is None or now < phase.end)


def tick(platform, now: Optional[dt.datetime] = None, *, slug: Optional[str] = None) -> dict[str, Any]:
    """One pass of the clock over every competition (or only `slug`).

    Returns what it did: {"opened": ["slug/2", ...], "migrated": {"slug/2": [new ids]}}.
    """
    now = now or m.utcnow()
    done: dict[str, Any] = {"opened": [], "migrated": {}}
    with platform.db.session() as s:
        q = (
            select(m.Phase.competition_id)
            .where(or_(m.Phase.opened_at.is_(None), (m.Phase.auto_migrate.is_(True) & m.Phase.migrated_at.is_(None))))
            .where(or_(m.Phase.start.is_(None), m.Phase.start <= now))
            .where(or_(m.Phase.end.is_(None), m.Phase.end > now))
            .distinct()
        )
        if slug is not None:
            q = q.join(m.Competition, m.Competition.id == m.Phase.competition_id).where(m.Competition.slug == slug)
        competition_ids = list(s.scalars(q))
    for competition_id in competition_ids:
        try:
            _tick_competition(platform, competition_id, now, done)
        except Exception:  # noqa: BLE001 - one broken competition must not stop the others
            log.exception("phase clock: competition %s failed", competition_id)
    return done


def _tick_competition(platform, competition_id: int, now: dt.datetime, done: dict[str, Any]) -> None:
    opened_now: list[str] = []
    migrated_now: dict[str, list[int]] = {}
    with platform.db.session() as s:
        comp = s.scalars(
            select(m.Competition).where(m.Competition.id == competition_id).options(
                selectinload(m.Competition.phases),
                selectinload(m.Competition.tasks),
                selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns),
            )
        ).one()
        phases = sorted(comp.phases, key=lambda p: (p.index, p.id))
        for number, phase in enumerate(phases, start=1):
            if not _is_open(phase, now):
                continue
            name = f"{comp.slug}/{number}"
            if phase.opened_at is None:
                opened = s.execute(
                    update(m.Phase).where(m.Phase.id == phase.id, m.Phase.opened_at.is_(None)).values(opened_at=now)
                ).rowcount
                if opened:
                    opened_now.append(name)
            if not phase.auto_migrate or phase.migrated_at is not None:
                continue
            # The claim and the new submissions commit together: a crash leaves neither.
            claimed = s.execute(
                update(m.Phase).where(m.Phase.id == phase.id, m.Phase.migrated_at.is_(None)).values(migrated_at=now)
            ).rowcount
            if not claimed:
                continue
            ids = platform._migrate(s, comp, phases[number - 2], phase, now) if number > 1 else []
            migrated_now[name] = ids
    # Reported only once committed.
    for name in opened_now:
        log.info("phase %s is open", name)
    for name, ids in migrated_now.items():
        log.info("phase %s: %d submission(s) migrated from the phase before", name, len(ids))
    done["opened"].extend(opened_now)
    done["migrated"].update(migrated_now)
