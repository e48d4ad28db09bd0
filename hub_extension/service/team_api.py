"""The REST API of teams, under `{prefix}api/v1/competitions/{slug}/teams`.

A competition's teams and one team (whoever may see the competition); creating
a team, inviting by hub user name, the invitation link, accepting or
declining, joining by the link, leaving, handing over and dissolving (the
rules are `app.teams`).  A member's submissions, and their logs, are read
through the submission routes.  The routes are listed in `api.api_routes`
and documented in `openapi.yaml`.
"""
from __future__ import annotations

from typing import Any

from ..app import PlatformError
from .base import ApiHandler

TEAM = r"(?P<team_id>[0-9]{1,9})"


class TeamsHandler(ApiHandler):
    """GET: the teams, the caller's team and invitations; POST `{"name", "description"}`: a new team."""

    def get(self, slug: str) -> None:
        self.write_json(self.platform.team_list(slug, self.actor))

    def post(self, slug: str) -> None:
        actor = self.require_login()
        body = self.json_body()
        description = body.get("description") or ""
        if not isinstance(description, str):
            raise PlatformError('send {"name": "...", "description": "..."} with text values')
        team_id = self.platform.create_team(slug, body.get("name") or "", actor, description=description)
        self.set_header("Location", f"{self.prefix}api/v1/competitions/{slug}/teams/{team_id}")
        self.write_json(self.platform.team(slug, team_id, actor), status=201)


class TeamHandler(ApiHandler):
    """GET: one team; DELETE: dissolve it (its owner, or the organizers)."""

    def get(self, slug: str, team_id: str) -> None:
        self.write_json(self.platform.team(slug, int(team_id), self.actor))

    def delete(self, slug: str, team_id: str) -> None:
        self.write_json(self.platform.dissolve_team(slug, int(team_id), self.require_login()))


class TeamInvitationsHandler(ApiHandler):
    """POST `{"usernames": [...]}`: invite approved participants (the owner); per name, invited or why not."""

    def post(self, slug: str, team_id: str) -> None:
        results = self.platform.invite_to_team(slug, int(team_id), self.json_body().get("usernames"),
                                               self.require_login())
        self.write_json({"team": int(team_id), "results": results})


class TeamLinkHandler(ApiHandler):
    """POST: the invitation link's token (the owner); `{"new": true}` makes a new one, `{"off": true}` ends it."""

    def post(self, slug: str, team_id: str) -> None:
        body = self.json_body()
        token = self.platform.invitation_link(slug, int(team_id), self.require_login(), new=bool(body.get("new")),
                                              off=bool(body.get("off")))
        self.write_json({"team": int(team_id), "token": token, "url": self._link(slug, token)})

    def _link(self, slug: str, token: Any) -> Any:
        return f"{self.prefix}competitions/{slug}/teams/join/{token}" if token else None


class TeamAnswerHandler(ApiHandler):
    """POST: accept or decline the caller's invitation."""

    def post(self, slug: str, team_id: str, answer: str) -> None:
        status = self.platform.answer_invitation(slug, int(team_id), answer == "accept", self.require_login())
        self.write_json({"team": int(team_id), "status": status})


class TeamJoinHandler(ApiHandler):
    """POST `{"token"}`: join the team whose invitation link carries the token."""

    def post(self, slug: str) -> None:
        actor = self.require_login()
        token = self.json_body().get("token")
        if not isinstance(token, str) or not token:
            raise PlatformError('send {"token": "..."}: the last part of the team\'s invitation link')
        team_id = self.platform.join_by_link(slug, token, actor)
        self.write_json(self.platform.team(slug, team_id, actor))


class TeamLeaveHandler(ApiHandler):
    """POST: leave the team (a member who does not own it)."""

    def post(self, slug: str, team_id: str) -> None:
        actor = self.require_login()
        self.platform.leave_team(slug, int(team_id), actor)
        self.write_json({"team": int(team_id), "username": actor.username, "status": "left"})


class TeamOwnerHandler(ApiHandler):
    """PUT `{"username"}`: hand the team over to another member (the owner)."""

    def put(self, slug: str, team_id: str) -> None:
        actor = self.require_login()
        username = self.json_body().get("username")
        if not isinstance(username, str) or not username:
            raise PlatformError('send {"username": "..."}: the member to hand the team over to')
        self.platform.hand_over_team(slug, int(team_id), username, actor)
        self.write_json(self.platform.team(slug, int(team_id), actor))


def team_api_routes(comp: str) -> list[tuple[str, type]]:
    """The team routes under a competition's API path `comp`."""
    return [
        (rf"{comp}/teams", TeamsHandler),
        (rf"{comp}/teams/join", TeamJoinHandler),
        (rf"{comp}/teams/{TEAM}", TeamHandler),
        (rf"{comp}/teams/{TEAM}/invitations", TeamInvitationsHandler),
        (rf"{comp}/teams/{TEAM}/link", TeamLinkHandler),
        (rf"{comp}/teams/{TEAM}/(?P<answer>accept|decline)", TeamAnswerHandler),
        (rf"{comp}/teams/{TEAM}/leave", TeamLeaveHandler),
        (rf"{comp}/teams/{TEAM}/owner", TeamOwnerHandler),
    ]
