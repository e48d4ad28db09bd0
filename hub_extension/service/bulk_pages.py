"""Pages of the bulk and destructive acts: each is shown first with what it acts on, then done.

Rerunning a whole phase and migrating it show the count and the submissions
(`confirm.html`) and send that count back: when it changed meanwhile, the
page comes again with the count now (`CountChanged`).  Deleting a submission
shows it and asks once more.  The acts themselves are the application's
(`reruns`, `phases`, `deletions`); these handlers only ask and redirect.
"""
from __future__ import annotations

from typing import Any

from ..errors import CountChanged, Forbidden, NotFound, PlatformError
from .pages import PageHandler, _organizer_detail, confirm_field


def _phase_confirmation(handler: PageHandler, slug: str, number: int, act: str) -> dict[str, Any]:
    """What confirm.html shows before migrating (`migrate`) or rerunning (`rerun-all`) phase `number`."""
    comp = _organizer_detail(handler, slug)
    base = handler.competition_url(slug, f"/phases/{number}")
    if act == "migrate":
        plan = handler.platform.migration_plan(slug, number, handler.actor)
        title = f"Migrate phase {number} to phase {number + 1}"
        question = (f"Each participant's last finished submission of phase {number} (or the one chosen for the "
                    f"leaderboard) runs again in phase {number + 1}; submissions migrated before are left out.")
        button = f"Migrate {plan['count']} submission{'' if plan['count'] == 1 else 's'}"
        action = f"{base}/migrate"
    else:
        plan = handler.platform.rerun_plan(slug, number, handler.actor)
        title = f"Rerun all of phase {number}"
        question = (f"Every submission of phase {number} that is not a rerun and was not cancelled runs again, "
                    "each as a new submission linked to its original and counted against no limit.")
        button = f"Rerun {plan['count']} submission{'' if plan['count'] == 1 else 's'}"
        action = f"{base}/rerun-all"
    return {"comp": comp, "title": title, "question": question, "count": plan["count"], "items": plan["items"],
            "confirm": plan["count"], "action": action, "button": button, "danger": False, "nav": "phases",
            "back": handler.competition_url(slug, "/phases")}


class PhaseConfirmHandler(PageHandler):
    """GET `competitions/<slug>/phases/<n>/confirm/(migrate|rerun-all)`: the count and the form that acts."""

    def get(self, slug: str, number: str, act: str) -> None:
        self.require_login()
        self.show("confirm.html", **_phase_confirmation(self, slug, int(number), act))


class PhaseRerunAllHandler(PageHandler):
    """POST `competitions/<slug>/phases/<n>/rerun-all` with the confirmed count."""

    def post(self, slug: str, number: str) -> None:
        actor = self.require_login()
        n = int(number)
        try:
            done = self.platform.rerun_phase(slug, n, actor, confirm=confirm_field(self))
        except CountChanged as exc:
            self.notice(str(exc), "error")
            self.redirect(self.competition_url(slug, f"/phases/{n}/confirm/rerun-all"))
            return
        ids = [d["id"] for d in done["submissions"]]
        self.notice(f"{done['count']} submission{'' if done['count'] == 1 else 's'} of phase {n} run again"
                    + (f" (submissions {ids[0]} to {ids[-1]})" if ids else "") + ".")
        self.redirect(self.competition_url(slug, "/phases"))


class SubmissionDeleteHandler(PageHandler):
    """`submissions/<id>/delete`: GET asks, POST deletes (its owner, or the organizers)."""

    def get(self, submission_id: str) -> None:
        actor = self.require_login()
        sid = int(submission_id)
        sub = self.platform.submission_view(sid, actor)
        comp = self.platform.competition_detail(sub["competition"], actor)
        self.show("confirm.html", comp=comp, title=f"Delete submission {sid}",
                  question=("The submission, its scores, logs and outputs are removed for good, and the "
                            "leaderboard no longer shows it."),
                  count=1, items=[sub], confirm=None, action=f"{self.prefix}submissions/{sid}/delete",
                  button=f"Delete submission {sid}", danger=True, nav="submissions",
                  back=f"{self.prefix}submissions/{sid}")

    def post(self, submission_id: str) -> None:
        actor = self.require_login()
        sid = int(submission_id)
        try:
            done = self.platform.delete_submission(sid, actor)
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.notice(f"Submission {sid} was not deleted: {exc}", "error")
            self.redirect(f"{self.prefix}submissions/{sid}")
            return
        self.notice(f"Submission {sid} is deleted.")
        self.redirect(self.competition_url(done["competition"], "/submissions"))


def bulk_page_routes(prefix: str) -> list[tuple[str, type]]:
    """The routes of these pages under `prefix` (which ends with a slash)."""
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [
        (rf"{comp}/phases/([0-9]{{1,9}})/confirm/(migrate|rerun-all)", PhaseConfirmHandler),
        (rf"{comp}/phases/([0-9]{{1,9}})/rerun-all", PhaseRerunAllHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})/delete", SubmissionDeleteHandler),
    ]
