"""Who is asking, and the role rules: who organizes a competition, who may create one.

The roles of an actor come from the hub (admin, the group `organizers`, the
scopes of the request's token); what they let the actor do in a competition is
decided here and nowhere else.
"""
from __future__ import annotations

import dataclasses
import hmac
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from .. import models as m
from ..errors import Forbidden, NotFound

ORGANIZERS_GROUP = "organizers"


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is asking.  The CLI acts as a local admin."""

    username: Optional[str]
    is_admin: bool = False
    groups: frozenset[str] = frozenset()
    # False when the request's token lacks the scopes of organizer powers (a
    # down-scoped token): the person then acts as a participant everywhere,
    # even in the competitions they created or that name them.
    organizer_powers: bool = True
    # The secret of a private competition's link, when the request carried one (`?secret=`).
    secret: Optional[str] = None

    @property
    def is_anonymous(self) -> bool:
        return self.username is None


LOCAL_ADMIN = Actor("admin", is_admin=True)


def is_organizer(actor: Actor, comp: m.Competition) -> bool:
    if actor.is_admin:
        return True
    if actor.username is None or not actor.organizer_powers:
        return False
    # The hub group `organizers` may create competitions; each competition is
    # then run by its creator and the organizers its bundle or owner names.
    return actor.username == comp.created_by or actor.username in (comp.admin_names or [])


# A registration that lets its holder into a private competition without the link.
SEEING_REGISTRATIONS = frozenset({m.APPROVED, m.PENDING})


def not_found(slug: str) -> NotFound:
    """The answer for a competition that does not exist, or that the actor may not know exists."""
    return NotFound(f"no competition {slug!r}; `compete competition list` shows the slugs")


def may_see(actor: Actor, comp: Any, secret: Optional[str] = None, *, session: Optional[Session] = None) -> bool:
    """Whether the actor may know the competition exists (its page, boards, files, API).

    Organizers always; published and archived competitions everyone; a
    private one its approved or pending participants (invited, or registered
    through the link) and whoever holds the secret of its link; a draft its
    organizers only.  `comp` is a row (or anything with its `id`, `status`,
    `secret`, `created_by` and `admin_names`); `session` is needed for a
    private competition when `comp` is not attached to one.
    """
    status = comp.status or m.PUBLISHED
    if status in (m.PUBLISHED, m.ARCHIVED) or is_organizer(actor, comp):
        return True
    if status != m.PRIVATE:
        return False
    given = secret if secret is not None else actor.secret
    if given and comp.secret and hmac.compare_digest(given.encode(), comp.secret.encode()):
        return True
    s = session or object_session(comp)
    if actor.username is None or s is None:
        return False
    registration = s.scalar(select(m.Participant.status).where(
        m.Participant.competition_id == comp.id, m.Participant.username == actor.username))
    return registration in SEEING_REGISTRATIONS
def may_name_organizers(actor: Actor, comp: m.Competition) -> bool:
    """The creator and the admins choose a competition's co-organizers; co-organizers only see them."""
    return actor.is_admin or (is_organizer(actor, comp) and actor.username == comp.created_by)


def require_organizer(actor: Actor, comp: m.Competition) -> None:
    """Organizers only; who may not even see the competition is told it does not exist."""
    if not is_organizer(actor, comp):
        if not may_see(actor, comp):
            raise not_found(comp.slug)
        raise Forbidden(f"only the organizers of {comp.slug!r} may do this")


def may_create_competitions(actor: Actor) -> bool:
    """Hub admins and the hub group `organizers` create competitions (and queues)."""
    return actor.is_admin or (actor.organizer_powers and ORGANIZERS_GROUP in actor.groups)


def require_organizer_role(actor: Actor) -> None:
    if not may_create_competitions(actor):
        raise Forbidden("only members of the hub group 'organizers' may create competitions")
