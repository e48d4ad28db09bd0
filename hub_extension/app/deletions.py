"""Deleting a submission: its owner (or the organizers) removes it, its runs, scores and files.

The rules follow CodaLab's and Codabench's: a participant may delete their
own submissions, but not one that stands on the leaderboard of a phase that
has ended (the final standings stay as they were announced), nor, in a phase
whose rule is `Add`, one they put on the board (that rule does not let them
take it off).  Nobody deletes a submission that is still running (cancel it
first) or one that was run again (a rerun or a migration keeps its parent).
Organizers may delete any other submission of their competition.

The boards of the phase are rebuilt in the transaction that deletes, so no
reader sees a row of a submission that is gone.  Once committed, the
submission's own files go from the store (logs, outputs, feedback), and the
file submitted unless something else still refers to the same stored bytes.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Optional

from sqlalchemy import func, select

from .. import models as m
from ..contract import StoreLayout
from ..errors import Forbidden, PlatformError
from .actors import Actor
from .context import Context
from .records import phase_number, phase_rule, require_active
from .standings import refresh_phase
from .visibility import submission_context

log = logging.getLogger("compete.deletions")


def _on_board(s: Any, sub: m.Submission) -> bool:
    return bool(s.scalar(select(func.count()).select_from(m.BoardRow).where(
        m.BoardRow.phase_id == sub.phase_id, m.BoardRow.submission_id == sub.id)))


def _refuse(s: Any, sub: m.Submission, ph: m.Phase, comp: m.Competition, organizer: bool,
            now: dt.datetime) -> Optional[str]:
    """Why `sub` may not be deleted by this actor (None: it may)."""
    if sub.status not in m.TERMINAL_STATUSES:
        return f"submission {sub.id} is {sub.status}; cancel it first, then delete it"
    children = list(s.scalars(select(m.Submission.id).where(m.Submission.parent_id == sub.id)
                              .order_by(m.Submission.id)))
    if children:
        listed = ", ".join(str(c) for c in children[:10]) + (" …" if len(children) > 10 else "")
        return (f"submission {sub.id} was run again as submission(s) {listed}, which keep it as their original; "
                "delete those first")
    if organizer:
        return None
    if ph.end is not None and ph.end <= now and _on_board(s, sub):
        return (f"submission {sub.id} is on the final leaderboard of phase {ph.name!r}, which has ended; "
                "it cannot be deleted (ask the organizers)")
    if sub.selected and phase_rule(comp, ph) == "Add":
        return (f"submission {sub.id} is on the leaderboard, and in phase {ph.name!r} a submission shown there "
                "cannot be taken off")
    return None


class Deletions:
    """Deleting submissions, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def delete_submission(self, submission_id: int, actor: Actor, *,
                          now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Delete a submission (its owner or the organizers, under the rules above); what was removed.

        Returns `{"id", "competition", "phase", "was_on_leaderboard", "file_removed"}`.
        """
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if sub.baseline and not organizer:
                raise Forbidden(f"submission {submission_id} is a baseline of the organizers")
            if not organizer and part.username != actor.username:
                raise Forbidden(f"submission {submission_id} was made by {part.username}; only they or the "
                                "organizers may delete it")
            require_active(comp, "deleting submissions")
            reason = _refuse(s, sub, ph, comp, organizer, now)
            if reason:
                raise PlatformError(reason)
            on_board = _on_board(s, sub)
            file_key, phase_id = sub.file_key, sub.phase_id
            number = phase_number(comp, ph)
            s.delete(sub)
            refresh_phase(s, phase_id)
            shared = bool(file_key) and self._still_used(s, file_key, comp)
            answer = {"id": submission_id, "competition": comp.slug, "phase": number,
                      "was_on_leaderboard": on_board, "file_removed": bool(file_key) and not shared}
        self._remove_files(submission_id, file_key if answer["file_removed"] else None)
        log.info("submission %s deleted by %s", submission_id, actor.username)
        return answer

    @staticmethod
    def _still_used(s: Any, key: str, comp: m.Competition) -> bool:
        """Whether stored bytes `key` are still referred to: another submission, a dataset, a logo."""
        if s.scalar(select(func.count()).select_from(m.Submission).where(m.Submission.file_key == key)):
            return True
        if s.get(m.Dataset, key) is not None:
            return True
        return bool(s.scalar(select(func.count()).select_from(m.Competition).where(m.Competition.logo_key == key)))

    def _remove_files(self, submission_id: int, file_key: Optional[str]) -> None:
        """The submission's files out of the store; a failure is logged, the deletion stands."""
        store = self.ctx.store
        try:
            store.delete_file(StoreLayout.submission_files(submission_id))
            if file_key:
                store.delete_dataset(file_key)
        except (OSError, ValueError, KeyError):
            log.exception("the files of deleted submission %s could not all be removed", submission_id)
