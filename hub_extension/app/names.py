"""Names as a viewer sees them: display names, and the pseudonyms of anonymous leaderboards.

Every page, answer and file that shows a user by name asks this module: a
user is shown by the display name of their profile when they set one, else
by their hub username (`shown_names`).  On an anonymous board (the
competition's `anonymous_leaderboard`, which a board may override) everyone
but the organizers sees each entrant as a stable pseudonym instead: an HMAC
of the platform's secret (a file under the home, made once), the competition
and the entrant (the team when a row stands for one, the user otherwise).  It
cannot be told from the username without the secret, and it is the same on
every request and after every rebuild.  The viewer sees their own name on
their own row; organizers see display names and usernames.

Names come from one statement per request (`shown_names`, `team_names`),
however many rows are shown.
"""
from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path
from typing import Any, Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m

# The file of the platform's pseudonym key, under the home.
SECRET_FILE = "pseudonym_secret"
# Every pseudonym starts so; display names may not (no one passes for an anonymous entrant).
PSEUDONYM_PREFIX = "Anonymous-"
# A baseline's organizer, as participants see it on an anonymous board.
ORGANIZERS_NAME = "organizers"
# Usernames looked up by one IN list at most; a longer list reads the profiles whole (one statement still).
IN_LIST_MAX = 500

_secrets: dict[str, bytes] = {}
_secrets_lock = threading.Lock()


def platform_secret(home: str) -> bytes:
    """The key of pseudonyms, kept in `home` (mode 0600) so that they survive restarts; made once.

    Made under a temporary name and linked into place, so that two processes
    starting at once agree on one key.
    """
    with _secrets_lock:
        found = _secrets.get(home)
        if found is not None:
            return found
        path = Path(home) / SECRET_FILE
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_bytes(32).hex())
            try:
                os.link(tmp, path)  # fails when another process made it first: theirs is kept
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        key = bytes.fromhex(path.read_text().strip())
        if len(key) < 32:
            raise RuntimeError(f"{path}: the pseudonym key is too short; delete the file to make a new one")
        _secrets[home] = key
        return key


def entrant(username: str, team_id: Optional[int] = None) -> str:
    """Who a board row stands for: the team when it has one, the user otherwise."""
    return f"team:{team_id}" if team_id is not None else f"user:{username}"


@functools.lru_cache(maxsize=65536)  # a board of many rows is named on every read
def pseudonym(secret: bytes, competition_id: int, who: str) -> str:
    """The stable pseudonym of an entrant (`entrant`) in a competition."""
    digest = hmac.new(secret, f"{competition_id}\x00{who}".encode(), hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.b32encode(digest[:5]).decode()


def is_anonymous(competition_setting: Optional[bool], board_setting: Optional[bool]) -> bool:
    """Whether a board hides names: its own setting when it has one, else its competition's."""
    return bool(competition_setting) if board_setting is None else bool(board_setting)


def display_names(s: Session, usernames: Iterable[str]) -> dict[str, str]:
    """The display names set by these users (those without one are absent), in one statement."""
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    q = select(m.Profile.username, m.Profile.display_name).where(m.Profile.display_name.is_not(None),
                                                                  m.Profile.display_name != "")
    if len(wanted) <= IN_LIST_MAX:
        q = q.where(m.Profile.username.in_(sorted(wanted)))
    return {u: name for u, name in s.execute(q) if u in wanted}


def profiles_of(s: Session, usernames: Iterable[str]) -> dict[str, dict[str, Optional[str]]]:
    """{username: {"display_name", "affiliation"}} of these users who have a profile, in one statement
    (for organizers' lists)."""
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    q = select(m.Profile.username, m.Profile.display_name, m.Profile.affiliation)
    if len(wanted) <= IN_LIST_MAX:
        q = q.where(m.Profile.username.in_(sorted(wanted)))
    return {u: {"display_name": name or None, "affiliation": affiliation or None}
            for u, name, affiliation in s.execute(q) if u in wanted}


def shown_names(s: Session, usernames: Iterable[str]) -> dict[str, str]:
    """{username: what a viewer sees}: the display name when set, else the username; one statement."""
    wanted = [u for u in usernames if u]
    names = display_names(s, wanted)
    return {u: names.get(u, u) for u in wanted}


def team_names(s: Session, team_ids: Iterable[Optional[int]]) -> dict[int, str]:
    """{team id: its name}, in one statement (none without ids)."""
    ids = sorted({i for i in team_ids if i is not None})
    if not ids:
        return {}
    return dict(s.execute(select(m.Team.id, m.Team.name).where(m.Team.id.in_(ids))).all())


@dataclasses.dataclass(frozen=True)
class Naming:
    """How one viewer sees the entrants of one board."""

    competition_id: int
    anonymous: bool
    organizer: bool
    viewer: Optional[str]
    secret: bytes

    @property
    def hides(self) -> bool:
        """Names are replaced by pseudonyms for this viewer."""
        return self.anonymous and not self.organizer

    def usernames_needed(self, usernames: Iterable[str]) -> set[str]:
        """Whose display names this viewer's answer shows: everyone's, or only their own on a hidden board."""
        if self.hides:
            return {self.viewer} if self.viewer else set()
        return set(usernames)

    def name(self, username: str, team_id: Optional[int], shown: dict[str, str], teams: dict[int, str]) -> str:
        """One entrant's name for this viewer, from the names read (`shown`, `teams`)."""
        own = bool(self.viewer) and username == self.viewer
        return self._name(username, team_id, shown, teams, own)

    def _name(self, username: str, team_id: Optional[int], shown: dict[str, str], teams: dict[int, str],
              own: bool) -> str:
        if self.hides and not own:
            return pseudonym(self.secret, self.competition_id, entrant(username, team_id))
        if team_id is not None and team_id in teams:
            return teams[team_id]
        return shown.get(username, username)

    def rows(self, s: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Board rows (`participant` the hub username, `team_id` when a team's) named for this viewer, as
        new dicts; organizers keep the username as `username`."""
        if not rows:
            return rows
        # A team's row names the team as `participant` and its member as `submitted_by`.
        shown = shown_names(s, self.usernames_needed(r.get("submitted_by") or r["participant"] for r in rows))
        teams = team_names(s, (r.get("team_id") for r in rows))
        named = []
        for r in rows:
            username = r.get("submitted_by") or r["participant"]
            row = dict(r)
            own = bool(r.get("own")) or (bool(self.viewer) and r.get("team_id") is None and username == self.viewer)
            if r.get("baseline"):
                if self.hides:
                    row["participant"] = ORGANIZERS_NAME
            else:
                row["participant"] = self._name(username, r.get("team_id"), shown, teams, own)
            if self.organizer:
                row["username"] = username
            elif self.hides and not own:
                for key in ("team_id", "team", "submitted_by"):  # a team's page lists its members
                    row.pop(key, None)
            named.append(row)
        return named

    def history(self, s: Session, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Best-score history points ([{at, value, username, column}]) named for this viewer: `participant`
        is the name shown; `username` stays for organizers only."""
        shown = shown_names(s, self.usernames_needed(p.get("username") or "" for p in points))
        named = []
        for p in points:
            username = p.get("username") or ""
            point = {k: v for k, v in p.items() if k != "username"}
            point["participant"] = self.name(username, p.get("team_id"), shown, {}) if username else ""
            if self.organizer:
                point["username"] = username
            named.append(point)
        return named
