"""Who is asking, and the role rules: who organizes a competition, who may create one.

The roles of an actor come from the hub (admin, the group `organizers`, the
scopes of the request's token); what they let the actor do in a competition is
decided here and nowhere else.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from .. import models as m
from ..errors import Forbidden

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


def may_name_organizers(actor: Actor, comp: m.Competition) -> bool:
    """The creator and the admins choose a competition's co-organizers; co-organizers only see them."""
    return actor.is_admin or (is_organizer(actor, comp) and actor.username == comp.created_by)


def require_organizer(actor: Actor, comp: m.Competition) -> None:
    if not is_organizer(actor, comp):
        raise Forbidden(f"only the organizers of {comp.slug!r} may do this")


def may_create_competitions(actor: Actor) -> bool:
    """Hub admins and the hub group `organizers` create competitions (and queues)."""
    return actor.is_admin or (actor.organizer_powers and ORGANIZERS_GROUP in actor.groups)


def require_organizer_role(actor: Actor) -> None:
    if not may_create_competitions(actor):
        raise Forbidden("only members of the hub group 'organizers' may create competitions")
