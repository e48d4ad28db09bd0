"""Registration: who takes part in a competition, and whether they are approved.

A user registers themselves (accepting the terms when there are any); the
competition approves them at once or leaves them pending for its organizers,
who approve, deny or remove them.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Forbidden, NotFound, PlatformError
from .actors import LOCAL_ADMIN, Actor, is_organizer, require_organizer
from .context import Context
from .records import find_participant, get_competition, require_active, visible_competition

REGISTRATION_STATUSES = (m.APPROVED, m.DENIED, m.REMOVED, m.PENDING)


def require_approved(s: Session, comp: m.Competition, actor: Actor) -> m.Participant:
    """The actor's registration, which must be approved."""
    if actor.username is None:
        raise Forbidden("log in and register first")
    part = find_participant(s, comp, actor.username)
    if part is None:
        raise Forbidden(f"register to {comp.slug!r} first")
    if part.status != m.APPROVED:
        raise Forbidden(f"your registration to {comp.slug!r} is {part.status}")
    return part


class Registrations:
    """Registrations to competitions, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def register(self, slug: str, username: str, actor: Optional[Actor] = None, *, accept_terms: bool = False) -> str:
        """Register `username`; returns the registration status (approved or pending).

        A user registers themselves, accepting the competition's terms when it
        has any; an organizer or admin may register anyone, which approves them
        at once.
        """
        actor = actor or Actor(username)
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            require_active(comp, "registration")
            by_organizer = is_organizer(actor, comp)
            if actor.username != username and not by_organizer:
                raise Forbidden("you can register only yourself")
            part = find_participant(s, comp, username)
            approve = by_organizer or comp.registration_auto_approve
            if part is None and (comp.terms or "").strip() and not by_organizer and not accept_terms:
                raise PlatformError(f"accept the terms and conditions of {slug!r} to register (accept_terms)")
            if part is None:
                part = m.Participant(
                    competition_id=comp.id, username=username, status=m.APPROVED if approve else m.PENDING
                )
                s.add(part)
            elif part.status in (m.DENIED, m.REMOVED) and not by_organizer:
                raise Forbidden(f"your registration to {slug!r} was {part.status}; contact the organizers")
            elif by_organizer:
                part.status = m.APPROVED
            return part.status

    def set_registration(self, slug: str, username: str, status: str, actor: Actor = LOCAL_ADMIN) -> None:
        if status not in REGISTRATION_STATUSES:
            raise PlatformError(f"unknown registration status {status!r}")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            require_active(comp, "changing registrations")
            part = find_participant(s, comp, username)
            if part is None:
                raise NotFound(f"{username!r} is not registered in {slug!r}")
            part.status = status

    def participants(self, slug: str, actor: Actor) -> list[dict[str, Any]]:
        """Everyone registered, with their status and submission count (organizers only)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            counts = dict(s.execute(
                select(m.Submission.participant_id, func.count(m.Submission.id))
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id)
                .group_by(m.Submission.participant_id)
            ).all())
            parts = s.scalars(
                select(m.Participant).where(m.Participant.competition_id == comp.id).order_by(m.Participant.id)
            ).all()
            return [
                {"username": p.username, "status": p.status, "registered_at": p.registered_at.isoformat(),
                 "submissions": counts.get(p.id, 0)}
                for p in parts
            ]
