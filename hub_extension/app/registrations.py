"""Registration: who takes part in a competition, and who organizes it.

A user registers themselves (accepting the terms when there are any); the
competition approves them at once or leaves them pending for its organizers,
who approve, deny, remove or ban them, one at a time or many at once.  A
removed participant may register again (pending); a banned one may not.
Only approved participants stand on the boards: removing or banning takes the
participant's submissions off every board of the competition, reinstating
(approving again) brings them back where they stood; the boards are rebuilt in
the transaction that changes the status.

Organizers (the creator, the co-organizers the bundle or the creator names,
the admins) do not register: their own first submission enters them, approved.
The creator and the admins choose the co-organizers by user name.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Forbidden, NotFound, PlatformError
from .actors import LOCAL_ADMIN, Actor, is_organizer, may_name_organizers, require_organizer
from .context import Context
from .names import profiles_of
from .messages import notify_approved
from .records import find_participant, get_competition, require_active, visible_competition
from .standings import ON_THE_BOARDS, refresh_competition

REGISTRATION_STATUSES = (m.APPROVED, m.DENIED, m.REMOVED, m.BANNED, m.PENDING)
# What organizers set for many participants at once.
BULK_STATUSES = (m.APPROVED, m.DENIED, m.REMOVED, m.BANNED)
# Bounds of one request: names per bulk change, co-organizers, characters of a user name.
MAX_BULK = 1000
MAX_ORGANIZERS = 100
MAX_NAME = 200


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


def organizer_entry(s: Session, comp: m.Competition, username: str) -> m.Participant:
    """The registration an organizer's own submissions are filed under: made approved when missing,
    approved when pending; a removed, banned or denied one stays as the organizers left it."""
    part = find_participant(s, comp, username)
    if part is None:
        part = m.Participant(competition_id=comp.id, username=username, status=m.APPROVED)
        s.add(part)
        s.flush()
    elif part.status == m.PENDING:
        _set_status(s, comp, [part], m.APPROVED)
    return part


def user_names(value: Any, what: str, limit: int) -> list[str]:
    """A list of user names from a request, stripped and without repeats, or a PlatformError that says
    what to send."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PlatformError(f'send {{"usernames": ["name", ...]}}: the {what} as a list of user names')
    names: list[str] = []
    for raw in value:
        name = raw.strip()
        if not name:
            raise PlatformError(f"{what}: an empty user name; leave it out")
        if len(name) > MAX_NAME or "," in name or any(c.isspace() for c in name):
            raise PlatformError(f"{what}: {name[:60]!r} is not a user name (no spaces or commas, "
                                f"at most {MAX_NAME} characters)")
        if name not in names:
            names.append(name)
    if len(names) > limit:
        raise PlatformError(f"{what}: {len(names)} names; at most {limit} at a time")
    return names


class Registrations:
    """Registrations to competitions, and their organizers, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def register(self, slug: str, username: str, actor: Optional[Actor] = None, *, accept_terms: bool = False) -> str:
        """Register `username`; returns the registration status (approved or pending).

        A user registers themselves, accepting the competition's terms when it
        has any; an organizer or admin may register anyone, which approves them
        at once.  An organizer does not register themselves (their own
        submissions enter them); a banned user cannot register again, a removed
        one registers again as pending.
        """
        actor = actor or Actor(username)
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            require_active(comp, "registration")
            by_organizer = is_organizer(actor, comp)
            if actor.username != username and not by_organizer:
                raise Forbidden("you can register only yourself")
            if actor.username == username and by_organizer:
                raise PlatformError(f"you organize {slug!r}: organizers do not register; your own first "
                                    "submission enters you on its leaderboards")
            part = find_participant(s, comp, username)
            if by_organizer:
                return self._registered_by_organizer(s, comp, part, username)
            if part is not None and part.status == m.BANNED:
                raise Forbidden(f"you were banned from {slug!r} and cannot register again; "
                                "contact the organizers if you think this is a mistake")
            if part is not None and part.status == m.DENIED:
                raise Forbidden(f"your registration to {slug!r} was denied; contact the organizers")
            if part is not None and part.status != m.REMOVED:
                return part.status
            if (comp.terms or "").strip() and not accept_terms:
                raise PlatformError(f"accept the terms and conditions of {slug!r} to register (accept_terms)")
            if part is None:
                part = m.Participant(competition_id=comp.id, username=username,
                                     status=m.APPROVED if comp.registration_auto_approve else m.PENDING)
                s.add(part)
            else:
                # Removed by the organizers: registering again asks them again, whatever the competition's rule.
                part.status = m.PENDING
            return part.status

    @staticmethod
    def _registered_by_organizer(s: Session, comp: m.Competition, part: Optional[m.Participant],
                                 username: str) -> str:
        if part is None:
            s.add(m.Participant(competition_id=comp.id, username=username, status=m.APPROVED))
            notify_approved(s, comp, [username])
            return m.APPROVED
        _set_status(s, comp, [part], m.APPROVED)
        return m.APPROVED

    def set_registration(self, slug: str, username: str, status: str, actor: Actor = LOCAL_ADMIN) -> str:
        """Set one participant's status (organizers); returns it.  Removing or banning takes them off the
        competition's boards, approving them again puts them back."""
        if status not in REGISTRATION_STATUSES:
            raise PlatformError(f"unknown registration status {status!r}; use one of "
                                f"{', '.join(REGISTRATION_STATUSES)}")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            require_active(comp, "changing registrations")
            part = find_participant(s, comp, username)
            if part is None:
                raise NotFound(f"{username!r} is not registered in {slug!r}")
            _set_status(s, comp, [part], status)
            return status

    def bulk_set_registration(self, slug: str, usernames: Any, status: str,
                              actor: Actor = LOCAL_ADMIN) -> list[dict[str, Any]]:
        """Set the status of many participants at once (organizers), in one transaction and one rebuild of
        the boards; one result per name: `{"username", "status", "previous"}`, or `{"username", "error"}`
        for a name that is not registered (the others are changed all the same)."""
        if status not in BULK_STATUSES:
            raise PlatformError(f"unknown status {status!r} for many participants; use one of "
                                f"{', '.join(BULK_STATUSES)}")
        return self._bulk(slug, usernames, status, actor)

    def bulk_reinstate(self, slug: str, usernames: Any, actor: Actor = LOCAL_ADMIN) -> list[dict[str, Any]]:
        """Approve again, and put back on the boards, those of `usernames` who were removed or banned
        (organizers); the others are left as they are, each with an `error` saying why.  Results as
        `bulk_set_registration`'s."""
        return self._bulk(slug, usernames, m.APPROVED, actor, only_from=(m.REMOVED, m.BANNED))

    def _bulk(self, slug: str, usernames: Any, status: str, actor: Actor,
              only_from: Optional[tuple[str, ...]] = None) -> list[dict[str, Any]]:
        names = user_names(usernames, "participants", MAX_BULK)
        if not names:
            raise PlatformError("choose at least one participant")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            require_active(comp, "changing registrations")
            found = {p.username: p for p in s.scalars(select(m.Participant).where(
                m.Participant.competition_id == comp.id, m.Participant.username.in_(names)))}
            results, changed = [], []
            for n in names:
                part = found.get(n)
                if part is None:
                    results.append({"username": n, "error": f"{n!r} is not registered in {slug!r}"})
                elif only_from is not None and part.status not in only_from:
                    results.append({"username": n, "error": f"{n!r} is {part.status}, neither removed nor "
                                                            "banned: left as they are"})
                else:
                    results.append({"username": n, "status": status, "previous": part.status})
                    changed.append(part)
            _set_status(s, comp, changed, status)
            return results

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
            organizers = {comp.created_by, *(comp.admin_names or [])}
            profiles = profiles_of(s, [p.username for p in parts])
            return [
                {"username": p.username, "status": p.status, "registered_at": p.registered_at.isoformat(),
                 "submissions": counts.get(p.id, 0), "organizer": p.username in organizers,
                 **profiles.get(p.username, {"display_name": None, "affiliation": None})}
                for p in parts
            ]

    # -- organizers ---------------------------------------------------------------------------------
    def organizers(self, slug: str, actor: Actor) -> dict[str, Any]:
        """Who organizes the competition: its creator and co-organizers (organizers only)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            return _organizers_view(comp, actor)

    def set_organizers(self, slug: str, usernames: Any, actor: Actor) -> dict[str, Any]:
        """Name the co-organizers (the creator and the admins only); the organizers after, with a note
        for each name that was left out (the creator organizes already)."""
        names = user_names(usernames, "co-organizers", MAX_ORGANIZERS)
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            if not may_name_organizers(actor, comp):
                raise Forbidden(f"only the creator of {slug!r} ({comp.created_by}) and the admins may choose "
                                "its co-organizers")
            notes = []
            if comp.created_by in names:
                names.remove(comp.created_by)
                notes.append(f"{comp.created_by} created {slug!r} and organizes it already")
            comp.admin_names = names
            return {**_organizers_view(comp, actor), "notes": notes}


def _organizers_view(comp: m.Competition, actor: Actor) -> dict[str, Any]:
    return {"competition": comp.slug, "creator": comp.created_by, "co_organizers": list(comp.admin_names or []),
            "may_change": may_name_organizers(actor, comp)}


def _set_status(s: Session, comp: m.Competition, parts: Iterable[m.Participant], status: str) -> None:
    """Set the status of `parts`; the boards are rebuilt when someone leaves or returns to them (only
    approved participants stand on them)."""
    parts = list(parts)
    notify_approved(s, comp, [p.username for p in parts if status == m.APPROVED and p.status != m.APPROVED])
    moved = False
    for part in parts:
        moved = moved or ((part.status == ON_THE_BOARDS) != (status == ON_THE_BOARDS))
        part.status = status
    if moved:
        refresh_competition(s, comp.id, new_version=False)
