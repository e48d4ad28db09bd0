"""Profiles: the display name and affiliation a hub user chooses to be shown by.

A user without a profile, or without a display name, is shown by their hub
username (`names.shown_names`).  Only the user edits their own profile; the
values are checked here, with a message that says what to change: a length,
no control or invisible formatting characters (nothing that hides or reverses
text), and no display name that passes for an anonymous board's pseudonym.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Optional

from .. import models as m
from ..errors import PlatformError
from .actors import Actor
from .context import Context
from .names import PSEUDONYM_PREFIX

DISPLAY_NAME_MAX = 60
AFFILIATION_MAX = 200
# Fields a user may set, with their longest length.
FIELDS = {"display_name": DISPLAY_NAME_MAX, "affiliation": AFFILIATION_MAX}


def clean_field(field: str, value: Any) -> Optional[str]:
    """A profile field as stored (spaces trimmed; empty is None), or PlatformError saying what to fix."""
    label = field.replace("_", " ")
    if value is None:
        return None
    if not isinstance(value, str):
        raise PlatformError(f"{label}: must be text, got {type(value).__name__}")
    value = " ".join(value.split()) if value.strip() else ""
    if not value:
        return None
    if len(value) > FIELDS[field]:
        raise PlatformError(f"{label}: at most {FIELDS[field]} characters, got {len(value)}; shorten it")
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")), None)
    if bad is not None:
        raise PlatformError(f"{label}: contains a control or invisible character (U+{ord(bad):04X}); "
                            "use letters, digits, spaces and punctuation")
    if field == "display_name" and value.lower().startswith(PSEUDONYM_PREFIX.lower()):
        raise PlatformError(f"display name: may not start with {PSEUDONYM_PREFIX!r} (the pseudonyms of "
                            "anonymous leaderboards do); choose another")
    return value


def profile_view(username: str, profile: Optional[m.Profile]) -> dict[str, Any]:
    return {
        "username": username,
        "display_name": profile.display_name if profile else None,
        "affiliation": profile.affiliation if profile else None,
        "shown_as": (profile.display_name if profile and profile.display_name else username),
        "updated_at": profile.updated_at.isoformat() if profile and profile.updated_at else None,
    }


class Profiles:
    """Users' own profiles, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    @staticmethod
    def _user(actor: Actor) -> str:
        if actor.username is None:
            raise PlatformError("log in to see or change your profile")
        return actor.username

    def profile(self, actor: Actor) -> dict[str, Any]:
        """The actor's own profile: display name, affiliation, and the name others see."""
        username = self._user(actor)
        with self.ctx.db.session() as s:
            return profile_view(username, s.get(m.Profile, username))

    def save_profile(self, actor: Actor, changes: dict[str, Any]) -> dict[str, Any]:
        """Set the actor's display name and affiliation (fields absent stay as they are; "" or None clears);
        the profile after.  Nothing is saved when a field is refused."""
        username = self._user(actor)
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise PlatformError(f"unknown profile field(s) {', '.join(unknown)}; "
                                f"a profile has {', '.join(FIELDS)}")
        cleaned = {field: clean_field(field, value) for field, value in changes.items()}
        with self.ctx.db.session() as s:
            profile = s.get(m.Profile, username)
            if profile is None:
                profile = m.Profile(username=username, mail={})
                s.add(profile)
            for field, value in cleaned.items():
                setattr(profile, field, value)
            profile.updated_at = m.utcnow()
            s.flush()
            return profile_view(username, profile)
