"""Submissions: the participant submits within the phase's dates and limits, and chooses what the board shows.

`submit` checks the phase is open, the participant approved and the limits,
then inserts, in one transaction that holds the participant's row lock (and
their team's), so concurrent submissions of one participant, or of one team's
members, never pass a limit together.  A member of a team submits for the
team: its limits count the team's submissions and its members' own.  Also
here: what a participant has left, the organizers' rerun and hide, the
participant's choice for the leaderboard, and cancelling.
"""
from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from .. import models as m
from ..bundles.unpack import check_zip_file
from ..contract import submission_kind_of
from ..errors import Forbidden, LimitReached, NotFound, PlatformError
from .actors import LOCAL_ADMIN, Actor, is_organizer, require_organizer
from .context import Context
from .fact_sheets import check_answers
from .records import (
    CHOOSING_RULES,
    find_participant,
    find_team,
    get_competition,
    get_phase,
    phase_rule,
    require_active,
    visible_competition,
)
from .registrations import organizer_entry, require_approved
from .runs import UPLOAD_NOTE, Runs
from .standings import refresh_phase
from .visibility import submission_context


def submission_kind(path: Path) -> str:
    """`notebook` for an .ipynb, `code` for a zip/folder with a `metadata` file, else `results`.

    The rule holds in every phase, with or without an ingestion program, as
    on CodaLab and Codabench: a zip without `metadata` is predictions.  In a
    task with an ingestion program the worker still runs that program beside
    the copied predictions, as Codabench does, and does not hold its exit
    against the submission (`dask_workers.pipeline`), so a Codabench
    `model.py`-only zip is still read by such a program.
    """
    kind = submission_kind_of(path)
    if kind is None:
        raise PlatformError(f"{path.name}: submit a .zip, a folder or a .ipynb notebook")
    return kind


def zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_symlink():
                raise PlatformError(f"{p}: symbolic links cannot be submitted")
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())


def _utc_day_start(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _counted_statuses(comp: m.Competition) -> tuple[str, ...]:
    """Statuses that do not use up a submission (failed never do; cancelled do in Codabench)."""
    return (m.FAILED,) if comp.dialect == "codabench" else (m.FAILED, m.CANCELLED)


def team_members_own(team_id: int):
    """The participants of a team's members (their registrations in the team's competition)."""
    return (select(m.Participant.id)
            .join(m.TeamMember, and_(m.TeamMember.competition_id == m.Participant.competition_id,
                                     m.TeamMember.username == m.Participant.username))
            .where(m.TeamMember.team_id == team_id, m.TeamMember.status == m.MEMBER))


def _entrant_clause(participant_id: int, team_id: Optional[int]):
    """The submissions of an entrant: a participant's, or a team's and its members' own (made outside it)."""
    if team_id is None:
        return m.Submission.participant_id == participant_id
    return or_(m.Submission.team_id == team_id,
               and_(m.Submission.team_id.is_(None), m.Submission.participant_id.in_(team_members_own(team_id))))


def _used_query(comp: m.Competition, ph: m.Phase, participant_id: int, team_id: Optional[int] = None):
    """Count of the submissions that use up the participant's (or their team's) allowance in the phase."""
    return select(func.count(m.Submission.id)).where(
        m.Submission.phase_id == ph.id,
        _entrant_clause(participant_id, team_id),
        m.Submission.status.not_in(_counted_statuses(comp)),
        m.Submission.parent_id.is_(None),
        m.Submission.baseline.is_(False),  # an organizer's baselines count against no limit
        m.Submission.reproduces_id.is_(None),  # nor do reproductions
    )


def used_counts(s: Session, comp: m.Competition, ph: m.Phase, participant_id: int, team_id: Optional[int],
                now: dt.datetime) -> tuple[int, int]:
    """(in all, today UTC): the submissions an entrant has used in a phase."""
    base = _used_query(comp, ph, participant_id, team_id)
    return s.scalar(base), s.scalar(base.where(m.Submission.submitted_at >= _utc_day_start(now)))


def _check_limits(s: Session, comp: m.Competition, ph: m.Phase, part: m.Participant, now: dt.datetime,
                  team: Optional[m.Team] = None) -> None:
    base = _used_query(comp, ph, part.id, team.id if team is not None else None)
    who = f"your team {team.name!r} has" if team is not None else "you have"
    if ph.max_submissions is not None:
        total = s.scalar(base)
        if total >= ph.max_submissions:
            raise LimitReached(
                f"{who} used all {ph.max_submissions} submissions of phase {ph.name!r}"
            )
    if ph.max_submissions_per_day is not None:
        if ph.max_submissions_per_day == 0:
            raise LimitReached(f"phase {ph.name!r} accepts no submissions (0 per day)")
        today = s.scalar(base.where(m.Submission.submitted_at >= _utc_day_start(now)))
        if today >= ph.max_submissions_per_day:
            raise LimitReached(
                f"{who} used all {ph.max_submissions_per_day} submissions of today (UTC) in phase "
                f"{ph.name!r}; try again after 00:00 UTC"
            )


def allowance(s: Session, comp: m.Competition, ph: m.Phase, part: Optional[m.Participant],
              now: dt.datetime) -> dict[str, Optional[int]]:
    """`{"total", "today"}`: the submissions a participant (their team, if any) has left in a phase (None: no
    limit)."""
    used_total = used_today = 0
    if part is not None:
        team = find_team(s, comp.id, part.username)
        used_total, used_today = used_counts(s, comp, ph, part.id, team.id if team is not None else None, now)
    total = None if ph.max_submissions is None else max(ph.max_submissions - used_total, 0)
    today = None if ph.max_submissions_per_day is None else max(ph.max_submissions_per_day - used_today, 0)
    if total is not None and today is not None:
        today = min(today, total)
    return {"total": total, "today": today}


def add_rerun(s: Session, old: m.Submission, now: dt.datetime, note: str = "") -> m.Submission:
    """A new submission running `old` again in its phase, linked to it (`parent_id`), in the caller's session.

    A rerun counts against no limit (`_used_query` leaves out submissions with a parent).
    """
    note = note or f"rerun of {old.id}"
    new = m.Submission(
        phase_id=old.phase_id,
        participant_id=old.participant_id,
        kind=old.kind,
        filename=old.filename,
        file_key=old.file_key,
        status=m.SUBMITTED,
        submitted_at=now,
        status_changed_at=now,
        parent_id=old.id,
        description=note,
        baseline=old.baseline,  # a baseline's rerun is still its solution's entry
        solution_index=old.solution_index,
        team_id=old.team_id,  # a team's submission run again is still the team's
        fact_sheet=dict(old.fact_sheet or {}),  # the same work, the same answers
    )
    s.add(new)
    s.flush()
    s.add(m.StatusChange(submission_id=new.id, status=m.SUBMITTED, at=now, note=note))
    return new


def _chosen_with(sub: m.Submission, part: m.Participant):
    """The submissions a choice for the board is made among: the team's when `sub` is a team's, else the
    participant's."""
    if sub.team_id is not None:
        return m.Submission.team_id == sub.team_id
    return m.Submission.participant_id == part.id


class Submissions:
    """Submitting and the choices about a submission, over the shared context and the runs ledger."""

    def __init__(self, ctx: Context, runs: Runs):
        self.ctx = ctx
        self.runs = runs

    def submit(
        self,
        slug: str,
        path: str | Path,
        *,
        username: str,
        phase: Optional[int] = None,
        actor: Optional[Actor] = None,
        now: Optional[dt.datetime] = None,
        description: str = "",
        fact_sheet: Optional[dict[str, Any]] = None,
    ) -> int:
        """Record a submission of `path` (zip, folder or .ipynb); returns its id.

        Checks the phase is open, the participant approved, the limits and the
        fact sheet's answers (`fact_sheets.check_answers`), then inserts, in one
        transaction that holds the participant's row lock.
        """
        actor = actor or Actor(username)
        now = now or m.utcnow()
        path = Path(path)
        if not path.exists():
            raise PlatformError(f"{path.name}: no such file or folder")
        kind = submission_kind(path)
        noted = self._check_submission_zip(path)
        file_key = self._store_submission_file(path)
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            require_active(comp, "submission")
            if actor.username != username and not is_organizer(actor, comp):
                raise Forbidden("you can submit only as yourself")
            ph = get_phase(comp, phase, now)
            # An organizer does not register: their own first submission enters them.
            own = actor.username == username and is_organizer(actor, comp)
            part = organizer_entry(s, comp, username) if own else find_participant(s, comp, username)
            if part is None:
                raise Forbidden(f"{username!r} is not registered in {slug!r}; register first")
            if part.status != m.APPROVED:
                raise Forbidden(f"{username!r} cannot submit to {slug!r}: registration is {part.status}")
            if ph.start and now < ph.start:
                raise PlatformError(f"phase {ph.name!r} opens at {ph.start:%Y-%m-%d %H:%M} UTC")
            if ph.end and now >= ph.end:
                raise PlatformError(f"phase {ph.name!r} closed at {ph.end:%Y-%m-%d %H:%M} UTC")
            if ph.results_only and kind != "results":
                raise PlatformError(f"phase {ph.name!r} accepts predictions only, not {kind} submissions")
            # The row lock: concurrent submissions of one participant queue up here.
            s.execute(
                update(m.Participant)
                .where(m.Participant.id == part.id)
                .values(submission_seq=m.Participant.submission_seq + 1)
            )
            # A member submits for their team: its row lock, after the participant's (the order joining keeps).
            team = None if not comp.allow_teams else find_team(s, comp.id, part.username)
            if team is not None:
                s.execute(update(m.Team).where(m.Team.id == team.id)
                          .values(submission_seq=m.Team.submission_seq + 1))
            _check_limits(s, comp, ph, part, now, team)
            answers = check_answers(comp.fact_sheet, fact_sheet)
            sub = m.Submission(
                phase_id=ph.id,
                participant_id=part.id,
                kind=kind,
                filename=path.name,
                file_key=file_key,
                status=m.SUBMITTED,
                submitted_at=now,
                status_changed_at=now,
                description=description,
                warnings=[f"{UPLOAD_NOTE}{note}" for note in noted],
                team_id=team.id if team is not None else None,
                fact_sheet=answers,
            )
            s.add(sub)
            s.flush()
            s.add(m.StatusChange(submission_id=sub.id, status=m.SUBMITTED, at=now))
            return sub.id

    def submissions_left(self, slug: str, username: str, phase: Optional[int] = None,
                         now: Optional[dt.datetime] = None, *, actor: Optional[Actor] = None) -> dict[str, Optional[int]]:
        """What `username` may still submit in a phase; `actor` (default: `username` themselves) must see it."""
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor or Actor(username))
            ph = get_phase(comp, phase, now)
            return allowance(s, comp, ph, find_participant(s, comp, username), now)

    def _check_submission_zip(self, path: Path) -> list[str]:
        """Refuse a submission zip that breaks the unpack caps of bundles, before anything is stored.

        Reads the zip's central directory only (member count, sizes, ratios,
        paths, links): a small zip that would expand to gigabytes is refused at
        once.  The sizes it declares may lie, so the worker checks again while
        it unpacks.
        """
        if path.is_dir() or not zipfile.is_zipfile(path):
            return []
        noted: list[str] = []
        problems = check_zip_file(path, path.name, self.ctx.unpack_limits(), noted)
        if problems:
            c = self.ctx.config
            lines = "; ".join(f"{p.key} {p.message}" if p.key != "(archive)" else f"it {p.message}"
                              for p in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise PlatformError(
                f"the submission zip cannot be accepted: {lines}{more}. Nothing was stored; rebuild the zip "
                f"within the limits (at most {c.unpack_max_members} files, "
                f"{c.unpack_max_total_bytes} bytes unpacked in all, {c.unpack_max_file_bytes} "
                f"bytes per file, compression ratio up to {c.unpack_max_ratio:.0f}:1)"
            )
        return noted

    def _store_submission_file(self, path: Path) -> str:
        if path.is_dir():
            with tempfile.TemporaryDirectory() as tmp:
                archive = Path(tmp) / "submission.zip"
                zip_folder(path, archive)
                return self.ctx.store.put_dataset_file(archive)
        cap = self.ctx.config.max_upload_bytes
        if path.stat().st_size > cap:
            raise PlatformError(f"{path.name} is {path.stat().st_size} bytes; the largest accepted is {cap}")
        return self.ctx.store.put_dataset_file(path)

    # -- what the leaderboard shows -----------------------------------------------------------
    def select_for_leaderboard(self, submission_id: int, actor: Actor) -> None:
        """The participant's manual choice (rule Add): show this submission on the board."""
        with self.ctx.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            part = s.get(m.Participant, sub.participant_id)
            comp = s.get(m.Competition, part.competition_id)
            if actor.username != part.username and not is_organizer(actor, comp):
                raise Forbidden("you can choose only your own submissions")
            for other in s.scalars(
                select(m.Submission).where(_chosen_with(sub, part), m.Submission.phase_id == sub.phase_id)
            ):
                other.selected = other.id == sub.id
            refresh_phase(s, sub.phase_id, history=False)

    def set_selected(self, submission_id: int, selected: bool, actor: Actor) -> None:
        """The participant's choice of what the leaderboard shows, where the phase's rule lets them."""
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            require_active(comp, "choosing what the leaderboard shows")
            if not organizer:
                require_approved(s, comp, actor)
            rule = phase_rule(comp, ph)
            if rule not in CHOOSING_RULES:
                raise PlatformError(f"in phase {ph.name!r} the leaderboard shows submissions by the rule {rule}; "
                                    "there is nothing to choose")
            if selected and sub.status != m.FINISHED:
                raise PlatformError(f"submission {submission_id} is {sub.status}; only finished ones can be shown")
            if not selected and rule == "Add" and not organizer:
                raise PlatformError("in this phase a submission shown on the leaderboard cannot be taken off")
            if selected and rule != "Add_And_Delete_Multiple":
                for other in s.scalars(select(m.Submission).where(
                        _chosen_with(sub, part), m.Submission.phase_id == ph.id,
                        m.Submission.id != sub.id)):
                    other.selected = False
            sub.selected = bool(selected)
            refresh_phase(s, sub.phase_id, history=False)

    def set_hidden(self, submission_id: int, hidden: bool, actor: Actor) -> None:
        """Hide a submission from the leaderboard, or show it again (organizers)."""
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if not organizer:
                raise Forbidden(f"only the organizers of {comp.slug!r} may hide submissions")
            require_active(comp, "hiding submissions")
            sub.hidden = bool(hidden)
            s.add(m.StatusChange(submission_id=sub.id, status=sub.status, at=m.utcnow(),
                                 note=f"{'hidden' if hidden else 'shown'} by {actor.username}"))
            refresh_phase(s, sub.phase_id)

    # -- running again, and stopping ------------------------------------------------------------
    def rerun(self, submission_id: int, actor: Actor = LOCAL_ADMIN) -> int:
        """Run a submission again as a new submission (not counted against the limits)."""
        with self.ctx.db.session() as s:
            old = s.get(m.Submission, submission_id)
            if old is None:
                raise NotFound(f"no submission {submission_id}")
            comp = s.get(m.Competition, s.get(m.Phase, old.phase_id).competition_id)
            require_organizer(actor, comp)
            require_active(comp, "running submissions again")
            return add_rerun(s, old, m.utcnow()).id

    def cancel_submission(self, submission_id: int, actor: Actor, dispatcher: Any = None) -> None:
        """Cancel a submission that has not finished (its owner or the organizers)."""
        with self.ctx.db.session() as s:
            sub, *_ = submission_context(s, submission_id, actor)
            if sub.status in m.TERMINAL_STATUSES:
                raise PlatformError(f"submission {submission_id} is already {sub.status}")
        if dispatcher is not None:
            dispatcher.cancel(submission_id)
        else:
            self.runs.set_status(submission_id, m.CANCELLED, note=f"cancelled by {actor.username}")
