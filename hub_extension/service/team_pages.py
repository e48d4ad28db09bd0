"""The team pages of a competition: the list, a team's page, its forms, and the invitation link.

`{comp}/teams` lists the teams, the viewer's team and their invitations, and
the form that creates a team; `{comp}/teams/<id>` shows a team's members (and,
to its members, its invitations and submissions) with the forms its owner,
its members and its invitees use; `{comp}/teams/join/<token>` is the
invitation link: it shows the team, and its button joins it.  Each form posts
here and answers with a redirect and a notice; a refusal comes back as an
error notice that says why (the rules are `app.teams`).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from ..app import Forbidden, NotFound, PlatformError
from .pages import PageHandler

# The acts of a team's page, with the notice each gives.
ACTS = "invite|link|newlink|linkoff|accept|decline|leave|owner|dissolve"


class TeamListHandler(PageHandler):
    """GET: the teams; POST `name`, `description`: create a team (its page next)."""

    def get(self, slug: str) -> None:
        actor = self.actor
        comp = self.platform.competition_detail(slug, actor)
        self.show("teams.html", comp=comp, listing=self.platform.team_list(slug, actor))

    def post(self, slug: str) -> None:
        actor = self.require_login()
        try:
            team_id = self.platform.create_team(slug, self.get_body_argument("name", "") or "", actor,
                                                description=self.get_body_argument("description", "") or "")
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.notice(f"The team was not created: {exc}", "error")
            self.redirect(self.competition_url(slug, "/teams"))
            return
        self.notice("Your team is created. Invite others by their hub user name, or share its invitation link.")
        self.redirect(self.competition_url(slug, f"/teams/{team_id}"))


class TeamPageHandler(PageHandler):
    """GET `teams/<id>`: a team's page."""

    def get(self, slug: str, team_id: str) -> None:
        actor = self.actor
        team = self.platform.team(slug, int(team_id), actor)
        comp = self.platform.competition_detail(slug, actor)
        link = (f"{self.request.protocol}://{self.request.host}{self.prefix}competitions/{slug}/teams/join/"
                f"{team['invite_token']}") if team.get("invite_token") else None
        self.show("team.html", comp=comp, team=team, link=link)


class TeamActHandler(PageHandler):
    """POST `teams/<id>/<act>`: one act of the team's page, then back to it (to the list when it is gone)."""

    def post(self, slug: str, team_id: str, act: str) -> None:
        actor = self.require_login()
        n = int(team_id)
        page = self.competition_url(slug, f"/teams/{n}")
        acts: dict[str, tuple[Callable[[], Any], str]] = {
            "invite": (lambda: self._invite(slug, n, actor), ""),
            "link": (lambda: self.platform.invitation_link(slug, n, actor), "The invitation link is below."),
            "newlink": (lambda: self.platform.invitation_link(slug, n, actor, new=True),
                        "A new invitation link is below; the old one no longer works."),
            "linkoff": (lambda: self.platform.invitation_link(slug, n, actor, off=True),
                        "The invitation link no longer works."),
            "accept": (lambda: self.platform.answer_invitation(slug, n, True, actor),
                       "You joined the team: your submissions are now the team's."),
            "decline": (lambda: self.platform.answer_invitation(slug, n, False, actor), "You declined the invitation."),
            "leave": (lambda: self.platform.leave_team(slug, n, actor), "You left the team."),
            "owner": (lambda: self.platform.hand_over_team(slug, n, self.get_body_argument("username", "") or "",
                                                           actor), "The team is handed over."),
            "dissolve": (lambda: self.platform.dissolve_team(slug, n, actor),
                         "The team is dissolved; its submissions stand for the members who made them."),
        }
        do, said = acts[act]
        try:
            do()
        except (Forbidden, NotFound) as exc:
            if act in ("accept", "decline"):
                self.notice(str(exc), "error")
                self.redirect(self.competition_url(slug, "/teams"))
                return
            raise
        except PlatformError as exc:
            self.notice(str(exc), "error")
            self.redirect(page)
            return
        if said:
            self.notice(said)
        gone = act in ("leave", "decline", "dissolve")
        self.redirect(self.competition_url(slug, "/teams") if gone else page)

    def _invite(self, slug: str, team_id: int, actor: Any) -> None:
        names = [n for n in re.split(r"[\s,]+", self.get_body_argument("usernames", "") or "") if n]
        if not names:
            raise PlatformError("type the hub user names to invite, separated by commas or spaces")
        for result in self.platform.invite_to_team(slug, team_id, names, actor):
            if result["invited"]:
                self.notice(f"{result['username']} is invited; they accept on the competition's Teams page.")
            else:
                self.notice(result["error"], "error")


class TeamJoinHandler(PageHandler):
    """`teams/join/<token>`: GET shows the team the link leads to; POST joins it."""

    def get(self, slug: str, token: str) -> None:
        actor = self.require_login()
        comp = self.platform.competition_detail(slug, actor)
        self.show("team_join.html", comp=comp, team=self.platform.team_by_link(slug, token, actor), token=token)

    def post(self, slug: str, token: str) -> None:
        actor = self.require_login()
        try:
            team_id = self.platform.join_by_link(slug, token, actor)
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.notice(f"You did not join: {exc}", "error")
            self.redirect(self.competition_url(slug, f"/teams/join/{token}"))
            return
        self.notice("You joined the team: your submissions are now the team's.")
        self.redirect(self.competition_url(slug, f"/teams/{team_id}"))


def team_page_routes(prefix: str) -> list[tuple[str, type]]:
    """The routes of these pages under `prefix` (which ends with a slash)."""
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [
        (rf"{comp}/teams", TeamListHandler),
        (rf"{comp}/teams/join/([A-Za-z0-9_-]{{1,100}})", TeamJoinHandler),
        (rf"{comp}/teams/([0-9]{{1,9}})", TeamPageHandler),
        (rf"{comp}/teams/([0-9]{{1,9}})/({ACTS})", TeamActHandler),
    ]
