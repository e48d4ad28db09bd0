"""A competition's lifecycle: draft, published, private, archived, and deleted with its data.

A draft is seen by its organizers only (they may register and submit to test
it); a published competition by everyone; a private one is listed nowhere and
reached by its secret link, or by the invitations of its organizers; an
archived one is read-only, its pages and boards kept.  Who sees what is
`actors.may_see`; what an archived competition refuses is `records.require_active`.

Deleting takes a typed confirmation (the slug) and removes the competition's
rows, its submissions' files and every stored dataset no other competition
refers to: datasets are content-addressed, so two competitions uploaded from
the same files share them.
"""
from __future__ import annotations

import logging
import re
import secrets
from typing import Any, Iterable, Optional

from sqlalchemy import delete, select, union
from sqlalchemy.orm import Session

from .. import models as m
from ..contract import StoreLayout
from ..convert import dataset_keys, spec_from_competition
from ..errors import PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .records import find_participant, get_competition, require_active

log = logging.getLogger("compete.lifecycle")
# A hub user name, as an invitation names it.
USERNAME = re.compile(r"^[^\s/]{1,200}$")
MAX_INVITATIONS = 500


# What each lifecycle status means, as the organizer is told it.
NOTES = {
    m.DRAFT: "a draft: only its organizers see it (they may register and submit to test it)",
    m.PUBLISHED: "published: listed and open to everyone",
    m.PRIVATE: "private: listed nowhere; its participants and whoever has its secret link see it",
    m.ARCHIVED: "archived: read-only, its pages and leaderboards kept",
}


def upload_notice(view: dict[str, Any], how_to_publish: str) -> str:
    """What the organizer is told, at upload, of the state the competition starts in.

    `view` is its `lifecycle_view`; `how_to_publish` names the way to publish it from where they
    uploaded it (a page, the API, the CLI).
    """
    if view["status"] == m.DRAFT:
        return (f"It is {view['note']}. As on CodaLab and Codabench, an uploaded competition stays a draft "
                f"until it is published, unless its bundle says `published: true`: {how_to_publish}.")
    return f"It is {view['note']}, as its bundle's `published: true` asks."


def new_secret() -> str:
    return secrets.token_urlsafe(24)


def lifecycle_view(comp: m.Competition) -> dict[str, Any]:
    """The lifecycle of a competition as its organizers see it."""
    return {
        "competition": comp.slug,
        "status": comp.status,
        "status_changed_at": comp.status_changed_at.isoformat() if comp.status_changed_at else None,
        "secret": comp.secret if comp.status == m.PRIVATE else None,
        "note": NOTES.get(comp.status, comp.status),
    }


def _referenced_keys(s: Session) -> set[str]:
    """Every dataset key any row still refers to."""
    columns = [m.Task.scoring_program_key, m.Task.ingestion_program_key, m.Task.reference_data_key,
               m.Task.input_data_key, m.Phase.starting_kit_key, m.Phase.public_data_key, m.Solution.data_key,
               m.Competition.logo_key, m.Submission.file_key, m.Run.program_key]
    return {key for key in s.scalars(union(*(select(c) for c in columns))) if key}


class Lifecycle:
    """Publishing, making private, archiving and deleting competitions (their organizers)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def set_lifecycle(self, slug: str, status: str, actor: Actor) -> dict[str, Any]:
        """Move the competition to `status` (one of `models.COMPETITION_STATUSES`); its lifecycle after.

        Making it private gives it a secret link the first time (the same link after).
        """
        if status not in m.COMPETITION_STATUSES:
            raise PlatformError(f"unknown lifecycle status {status!r}; one of {', '.join(m.COMPETITION_STATUSES)}")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            if comp.status != status:
                log.info("%s moved %s from %s to %s", actor.username, slug, comp.status, status)
                comp.status = status
                comp.status_changed_at = m.utcnow()
            if status == m.PRIVATE and not comp.secret:
                comp.secret = new_secret()
            return lifecycle_view(comp)

    def lifecycle(self, slug: str, actor: Actor) -> dict[str, Any]:
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            return lifecycle_view(comp)

    def rotate_secret(self, slug: str, actor: Actor) -> dict[str, Any]:
        """A new secret link; the old one opens nothing any more (registrations made through it stay)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            comp.secret = new_secret()
            return lifecycle_view(comp)

    def invite(self, slug: str, usernames: Iterable[Any], actor: Actor) -> dict[str, Any]:
        """Register each of `usernames`, approved (they then see a private competition without the link).

        Returns `{"invited": [...], "already": [...], "skipped": [{"username", "reason"}]}`;
        a banned participant is skipped, not let back in.
        """
        names = self._usernames(usernames)
        done: dict[str, Any] = {"invited": [], "already": [], "skipped": []}
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            require_active(comp, "inviting participants")
            for name in names:
                part = find_participant(s, comp, name)
                if part is None:
                    s.add(m.Participant(competition_id=comp.id, username=name, status=m.APPROVED))
                    done["invited"].append(name)
                elif part.status == m.APPROVED:
                    done["already"].append(name)
                elif part.status == m.BANNED:
                    done["skipped"].append({"username": name, "reason": "banned from this competition; lift "
                                                                        "the ban on the participants page first"})
                else:
                    part.status = m.APPROVED
                    done["invited"].append(name)
        return done

    @staticmethod
    def _usernames(usernames: Iterable[Any]) -> list[str]:
        if isinstance(usernames, str):
            usernames = re.split(r"[\s,]+", usernames)
        names, bad = [], []
        for value in usernames:
            name = value.strip() if isinstance(value, str) else value
            if name == "":
                continue
            if not isinstance(name, str) or not USERNAME.match(name):
                bad.append(repr(name)[:60])
            elif name not in names:
                names.append(name)
        if bad:
            raise PlatformError(f"not a hub user name: {', '.join(bad)}; nobody was invited")
        if not names:
            raise PlatformError('name at least one hub user to invite: {"usernames": ["ada", "grace"]}')
        if len(names) > MAX_INVITATIONS:
            raise PlatformError(f"at most {MAX_INVITATIONS} invitations at a time, got {len(names)}")
        return names

    def delete_competition(self, slug: str, confirm: Optional[str], actor: Actor) -> dict[str, Any]:
        """Delete the competition, its submissions and the files only it used; `confirm` must be its slug.

        Returns `{"competition", "submissions", "datasets", "files"}`: how many
        submissions went, and the dataset keys and submission folders removed
        from the store.
        """
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            if confirm != slug:
                raise PlatformError(f"to delete {slug!r} with all its submissions and data, type its slug "
                                    f"{slug!r} as the confirmation; nothing was deleted")
            submissions = s.execute(
                select(m.Submission.id, m.Submission.file_key)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id)).all()
            ids = [sid for sid, _ in submissions]
            keys = set(dataset_keys(spec_from_competition(comp))) | {key for _, key in submissions if key}
            if ids:
                keys |= {k for k in s.scalars(select(m.Run.program_key).where(m.Run.submission_id.in_(ids))) if k}
            # The database removes what hangs off the row (phases, participants, submissions, runs, boards).
            s.execute(delete(m.Competition).where(m.Competition.id == comp.id))
            s.flush()
            unused = sorted(keys - _referenced_keys(s))
            if unused:
                s.execute(delete(m.Dataset).where(m.Dataset.key.in_(unused)))
        log.info("%s deleted %s: %d submissions, %d datasets no other competition uses",
                 actor.username, slug, len(ids), len(unused))
        # The rows are gone first: a file left by a failure below is unreachable, never a dangling row.
        removed = [key for key in unused if self._remove(lambda k=key: self.ctx.store.delete_dataset(k))]
        folders = [StoreLayout.submission_files(sid) for sid in ids]
        files = [f for f in folders if self._remove(lambda f=f: self.ctx.store.delete_file(f))]
        return {"competition": slug, "submissions": len(ids), "datasets": removed, "files": files}

    @staticmethod
    def _remove(remove: Any) -> bool:
        try:
            remove()
            return True
        except OSError as exc:
            log.warning("a file of a deleted competition could not be removed from the store: %s", exc)
            return False
