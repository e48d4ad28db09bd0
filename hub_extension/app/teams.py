"""Teams: participants entering a competition together, as one leaderboard entry with shared limits.

In a competition that allows teams (`allow_teams`), an approved participant
creates a team and becomes its owner; the owner invites other approved
participants by hub user name, or shares the team's invitation link; an
invitee accepts or declines; a member leaves; the owner hands the team over
to a member, or dissolves it.  A user is a member of at most one team per
competition.

A member's submissions are made for the team (`submissions.team_id`): the
phase's limits count the team's submissions and its members' own, under the
team's row lock (`submissions`), and the boards rank the team as one entrant
(`standings.team_entrant`).  Joining is refused, with the numbers, when the
team's submissions and the joiner's own would together pass a limit of a phase
that is still open.  Joining and creating take the participant's row lock
first, so one user never lands in two teams at once.  Dissolving gives the
team's submissions back to the members who made them; the boards are ranked
again.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Optional

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Conflict, Forbidden, NotFound, PlatformError
from .actors import Actor, is_organizer
from .context import Context
from .names import shown_names
from .records import find_participant, find_team, phases_in_order, require_active, visible_competition
from .registrations import require_approved
from .standings import refresh_competition
from .submissions import used_counts

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_INVITES = 50
# Submissions listed on a team's page, newest first.
TEAM_PAGE_SUBMISSIONS = 50


def shown(username: str) -> str:
    """How a user is named on the team pages before display names are read (`_with_display_names`)."""
    return username


def _with_display_names(s: Session, view: dict[str, Any]) -> dict[str, Any]:
    """A team's view with its members' and invitees' display names, read in one statement."""
    people = [*view.get("members", []), *view.get("invited", [])]
    names = shown_names(s, {p["username"] for p in people})
    for p in people:
        p["shown"] = names.get(p["username"], p["username"])
    return view


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise PlatformError("a team needs a name")
    if len(text) > MAX_NAME:
        raise PlatformError(f"a team's name has at most {MAX_NAME} characters, got {len(text)}")
    return text


class Teams:
    """Creating, joining, leaving and handing over teams, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- reading ---------------------------------------------------------------------------------
    def team_list(self, slug: str, actor: Actor) -> dict[str, Any]:
        """The competition's teams (name, owner, members) to whoever may see the competition, with the
        actor's team and the invitations waiting for them."""
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            rows = s.scalars(select(m.Team).where(m.Team.competition_id == comp.id).order_by(m.Team.name)).all()
            mine = find_team(s, comp.id, actor.username)
            invited = s.scalars(
                select(m.Team).join(m.TeamMember, m.TeamMember.team_id == m.Team.id)
                .where(m.TeamMember.competition_id == comp.id, m.TeamMember.username == actor.username,
                       m.TeamMember.status == m.INVITED).order_by(m.Team.name)).all() if actor.username else []
            return {
                "competition": comp.slug,
                "allow_teams": comp.allow_teams,
                "teams": [self._summary(t) for t in rows],
                "my_team": mine.id if mine is not None else None,
                "invitations": [self._summary(t) for t in invited],
            }

    def team(self, slug: str, team_id: int, actor: Actor) -> dict[str, Any]:
        """A team as its page shows it: its members to everyone who may see the competition; its pending
        invitations, its invitation link (the owner) and its submissions to its members and the organizers."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            member = any(x.username == actor.username and x.status == m.MEMBER for x in team.members)
            insider = member or is_organizer(actor, comp)
            view = self._summary(team)
            view.update({
                "description": team.description,
                "created_at": team.created_at.isoformat(),
                "is_member": member,
                "is_owner": team.owner == actor.username,
                "my_invitation": any(x.username == actor.username and x.status == m.INVITED for x in team.members),
                "invited": [{"username": x.username, "shown": shown(x.username), "invited_by": x.invited_by,
                             "invited_at": x.invited_at.isoformat()}
                            for x in team.members if x.status == m.INVITED] if insider else [],
                "invite_token": team.invite_token if team.owner == actor.username else None,
                "submissions": self._submissions(s, comp, team) if insider else [],
            })
            return _with_display_names(s, view)

    @staticmethod
    def _submissions(s: Session, comp: m.Competition, team: m.Team) -> list[dict[str, Any]]:
        """The latest submissions made for the team (what its page lists; all of them on the submissions page)."""
        numbers = {ph.id: n for n, ph in enumerate(phases_in_order(comp), start=1)}
        rows = s.execute(
            select(m.Submission.id, m.Submission.phase_id, m.Participant.username, m.Submission.status,
                   m.Submission.submitted_at, m.Submission.filename)
            .join(m.Participant, m.Participant.id == m.Submission.participant_id)
            .where(m.Submission.team_id == team.id).order_by(m.Submission.id.desc()).limit(TEAM_PAGE_SUBMISSIONS)
        ).all()
        return [{"id": sid, "phase": numbers.get(phase_id), "submitted_by": shown(username), "status": status,
                 "submitted_at": at.isoformat(), "filename": filename}
                for sid, phase_id, username, status, at, filename in rows]

    def team_by_link(self, slug: str, token: str, actor: Actor) -> dict[str, Any]:
        """The team an invitation link leads to, before joining it."""
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            self._open_to_teams(comp, "joining teams")
            team = self._linked(s, comp, token)
            return self._summary(team)

    @staticmethod
    def _linked(s: Session, comp: m.Competition, token: str) -> m.Team:
        team = s.scalars(select(m.Team).where(m.Team.competition_id == comp.id,
                                              m.Team.invite_token == str(token))).first() if token else None
        if team is None:
            raise NotFound("this invitation link is not valid (any more); ask the team's owner for a new one")
        return team

    @staticmethod
    def _summary(team: m.Team) -> dict[str, Any]:
        members = [x for x in team.members if x.status == m.MEMBER]
        return {
            "id": team.id,
            "name": team.name,
            "owner": team.owner,
            "members": [{"username": x.username, "shown": shown(x.username), "role": x.role,
                         "joined_at": x.joined_at.isoformat() if x.joined_at else None} for x in members],
        }

    def _team(self, s: Session, slug: str, team_id: int, actor: Actor) -> tuple[m.Competition, m.Team]:
        comp = visible_competition(s, slug, actor)
        team = s.get(m.Team, team_id)
        if team is None or team.competition_id != comp.id:
            raise NotFound(f"competition {slug!r} has no team {team_id}")
        return comp, team

    @staticmethod
    def _open_to_teams(comp: m.Competition, doing: str) -> None:
        require_active(comp, doing)
        if not comp.allow_teams:
            raise Conflict(f"{comp.slug!r} does not allow teams; its organizers may allow them in the editor's "
                           "overview (Participants may enter as teams)")

    # -- creating and joining --------------------------------------------------------------------
    def create_team(self, slug: str, name: str, actor: Actor, *, description: str = "") -> int:
        """A new team with the actor as its owner and only member; its id."""
        name = _clean_name(name)
        description = str(description or "").strip()
        if len(description) > MAX_DESCRIPTION:
            raise PlatformError(f"a team's description has at most {MAX_DESCRIPTION} characters")
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            self._open_to_teams(comp, "creating teams")
            part = require_approved(s, comp, actor)
            _lock(s, part)
            self._not_in_a_team(s, comp, actor.username, "create another")
            taken = s.scalar(select(m.Team.id).where(m.Team.competition_id == comp.id,
                                                     func.lower(m.Team.name) == name.lower()))
            if taken is not None:
                raise Conflict(f"a team named {name!r} exists in {slug!r} already; choose another name")
            now = m.utcnow()
            team = m.Team(competition_id=comp.id, name=name, owner=actor.username, description=description,
                          created_at=now)
            team.members.append(m.TeamMember(competition_id=comp.id, username=actor.username, status=m.MEMBER,
                                             role=m.TEAM_OWNER, invited_by=actor.username, invited_at=now,
                                             joined_at=now))
            s.add(team)
            s.flush()
            return team.id

    def invite_to_team(self, slug: str, team_id: int, usernames: Any, actor: Actor) -> list[dict[str, Any]]:
        """Invite approved participants by hub user name (the owner); per name, `invited` or the reason
        it was not."""
        if isinstance(usernames, str):
            usernames = [usernames]
        if not isinstance(usernames, list) or not usernames or not all(isinstance(n, str) for n in usernames):
            raise PlatformError('send the hub user names to invite, as a list: {"usernames": ["ada", ...]}')
        names = list(dict.fromkeys(n.strip() for n in usernames if n.strip()))
        if not names or len(names) > MAX_INVITES:
            raise PlatformError(f"invite between 1 and {MAX_INVITES} user names at a time")
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            self._open_to_teams(comp, "inviting to teams")
            self._require_owner(team, actor, "invite")
            results = []
            for name in names:
                reason = self._cannot_invite(s, comp, team, name)
                if reason is None:
                    self._invite(s, comp, team, name, actor.username)
                results.append({"username": name, "invited": reason is None, **({"error": reason} if reason else {})})
            return results

    def _cannot_invite(self, s: Session, comp: m.Competition, team: m.Team, name: str) -> Optional[str]:
        part = find_participant(s, comp, name)
        if part is None or part.status != m.APPROVED:
            return f"{name} is not an approved participant of {comp.slug!r}; they must register first"
        row = next((x for x in team.members if x.username == name), None)
        if row is not None and row.status == m.MEMBER:
            return f"{name} is a member of {team.name!r} already"
        if row is not None and row.status == m.INVITED:
            return f"{name} is invited already"
        other = find_team(s, comp.id, name)
        if other is not None:
            return f"{name} is a member of the team {other.name!r}; they must leave it before joining another"
        return None

    @staticmethod
    def _invite(s: Session, comp: m.Competition, team: m.Team, name: str, by: str) -> None:
        row = next((x for x in team.members if x.username == name), None)
        if row is None:
            row = m.TeamMember(competition_id=comp.id, username=name)
            team.members.append(row)
        row.status, row.role, row.invited_by, row.invited_at, row.joined_at = m.INVITED, m.MEMBER, by, m.utcnow(), None
        s.flush()

    def invitation_link(self, slug: str, team_id: int, actor: Actor, *, new: bool = False,
                        off: bool = False) -> Optional[str]:
        """The token of the team's invitation link (the owner): made when missing or `new`; `off` ends it."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            self._open_to_teams(comp, "inviting to teams")
            self._require_owner(team, actor, "share the invitation link of")
            if off:
                team.invite_token = None
            elif new or team.invite_token is None:
                team.invite_token = secrets.token_urlsafe(24)
            return team.invite_token

    def answer_invitation(self, slug: str, team_id: int, accept: bool, actor: Actor,
                          *, now: Optional[dt.datetime] = None) -> str:
        """Accept or decline the actor's invitation to a team; the membership's status after."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            self._open_to_teams(comp, "answering invitations")
            row = next((x for x in team.members if x.username == actor.username and x.status == m.INVITED), None)
            if row is None:
                raise NotFound(f"you have no invitation to the team {team.name!r}")
            if not accept:
                row.status = m.DECLINED
                return row.status
            self._join(s, comp, team, row, actor, now or m.utcnow())
            return row.status

    def join_by_link(self, slug: str, token: str, actor: Actor, *, now: Optional[dt.datetime] = None) -> int:
        """Join the team whose invitation link carries `token`; the team's id."""
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            self._open_to_teams(comp, "joining teams")
            team = self._linked(s, comp, token)
            row = next((x for x in team.members if x.username == actor.username), None)
            if row is not None and row.status == m.MEMBER:
                return team.id
            if row is None:
                row = m.TeamMember(competition_id=comp.id, username=actor.username, invited_by=team.owner)
                team.members.append(row)
            self._join(s, comp, team, row, actor, now or m.utcnow())
            return team.id

    def _join(self, s: Session, comp: m.Competition, team: m.Team, row: m.TeamMember, actor: Actor,
              now: dt.datetime) -> None:
        part = require_approved(s, comp, actor)
        # The participant's lock, then the team's: the order a member's submission takes them in.
        _lock(s, part)
        s.execute(update(m.Team).where(m.Team.id == team.id).values(submission_seq=m.Team.submission_seq + 1))
        self._not_in_a_team(s, comp, actor.username, "join another")
        self._check_joining_limits(s, comp, team, part, now)
        row.status, row.role, row.joined_at = m.MEMBER, m.MEMBER, now
        s.flush()

    @staticmethod
    def _not_in_a_team(s: Session, comp: m.Competition, username: str, doing: str) -> None:
        current = find_team(s, comp.id, username)
        if current is not None:
            raise Conflict(f"you are a member of the team {current.name!r}; leave it before you {doing} team "
                           "(one team per competition)")

    @staticmethod
    def _check_joining_limits(s: Session, comp: m.Competition, team: m.Team, part: m.Participant,
                              now: dt.datetime) -> None:
        """Refuse joining when the team's submissions and the joiner's own would pass a limit of a phase that
        has not closed, saying the numbers."""
        for ph in phases_in_order(comp):
            if ph.end is not None and now >= ph.end:
                continue
            team_total, team_today = used_counts(s, comp, ph, part.id, team.id, now)
            own_total, own_today = used_counts(s, comp, ph, part.id, None, now)
            for limit, theirs, yours, what in ((ph.max_submissions, team_total, own_total, "submissions"),
                                               (ph.max_submissions_per_day, team_today, own_today,
                                                "submissions today (UTC)")):
                if limit is not None and theirs + yours > limit:
                    raise Conflict(
                        f"joining {team.name!r} would pass the limit of {limit} {what} in phase {ph.name!r}: "
                        f"the team has used {theirs} and you {yours}, {theirs + yours} together")

    # -- leaving, handing over, dissolving -------------------------------------------------------
    def leave_team(self, slug: str, team_id: int, actor: Actor) -> None:
        """Leave a team (a member who is not its owner: the owner hands it over or dissolves it)."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            self._open_to_teams(comp, "leaving teams")
            row = self._membership(team, actor)
            if team.owner == actor.username:
                raise Conflict(f"you own {team.name!r}: hand it over to another member, or dissolve it")
            row.status, row.joined_at = m.LEFT, None

    def hand_over_team(self, slug: str, team_id: int, username: str, actor: Actor) -> None:
        """Make another member the team's owner (the owner)."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            self._open_to_teams(comp, "handing teams over")
            self._require_owner(team, actor, "hand over")
            new = next((x for x in team.members if x.username == username and x.status == m.MEMBER), None)
            if new is None or username == actor.username:
                raise PlatformError(f"{username!r} is not another member of {team.name!r}; hand the team over to "
                                    "one of its members")
            self._membership(team, actor).role = m.MEMBER
            new.role = m.TEAM_OWNER
            team.owner = username

    def dissolve_team(self, slug: str, team_id: int, actor: Actor) -> dict[str, Any]:
        """Dissolve a team (its owner, or the organizers): its submissions go back to the members who made
        them, and the boards are ranked again; what was dissolved."""
        with self.ctx.db.session() as s:
            comp, team = self._team(s, slug, team_id, actor)
            require_active(comp, "dissolving teams")
            if team.owner != actor.username and not is_organizer(actor, comp):
                raise Forbidden(f"only the owner of {team.name!r} or the organizers may dissolve it")
            count = s.execute(update(m.Submission).where(m.Submission.team_id == team.id)
                              .values(team_id=None)).rowcount
            answer = {"id": team.id, "name": team.name, "submissions_returned": count}
            s.delete(team)
            refresh_competition(s, comp.id)
            return answer

    @staticmethod
    def _membership(team: m.Team, actor: Actor) -> m.TeamMember:
        row = next((x for x in team.members if x.username == actor.username and x.status == m.MEMBER), None)
        if row is None:
            raise Forbidden(f"you are not a member of {team.name!r}")
        return row

    @staticmethod
    def _require_owner(team: m.Team, actor: Actor, doing: str) -> None:
        if team.owner != actor.username:
            raise Forbidden(f"only the owner of {team.name!r} ({team.owner}) may {doing} it")


def _lock(s: Session, part: m.Participant) -> None:
    """The participant's row lock (PostgreSQL) or the write lock (SQLite), taken before reading memberships."""
    s.execute(update(m.Participant).where(m.Participant.id == part.id)
              .values(submission_seq=m.Participant.submission_seq))
