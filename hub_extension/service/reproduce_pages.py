"""The submission page's Reproduce button: `POST submissions/<id>/reproduce` (`queue` in the form: the
organizer's choice of queue).  What the page shows of provenance and reproductions: `reproduction_view`.
"""
from __future__ import annotations

from .pages import PageHandler


class ReproducePageHandler(PageHandler):
    def post(self, submission_id: str) -> None:
        actor = self.require_login()
        sid = int(submission_id)
        queue = (self.get_body_argument("queue", "") or "").strip() or None
        made = self.platform.reproduce(sid, actor, queue=queue)
        self.notice(f"Submission {sid} is reproduced as submission {made['id']}, pinned to what it ran with.")
        self.back(f"{self.prefix}submissions/{sid}")


def reproduce_page_routes(prefix: str) -> list[tuple[str, type]]:
    return [(rf"{prefix}submissions/([0-9]{{1,9}})/reproduce", ReproducePageHandler)]
