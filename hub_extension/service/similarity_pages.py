"""The organizers' pages of similarity signals: the pairs of a competition, one pair side by side.

`{comp}/similarity` lists the pairs at or above `?min=` (default: the
threshold), the submissions that could not be read, and a button that signs
what waits now; `{comp}/similarity/{pair}` shows both sources in a
side-by-side diff (as read, or `?view=normalized` as compared), every line
escaped by the template, and the verdict form.  See `app.similarity`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from .. import similarity as sim
from ..app.similarity import VERDICTS
from .pages import PageHandler, _organizer_detail
from .similarity_api import min_argument


def _iso(data: Any) -> Any:
    """Dates as the templates' `when` reads them (ISO text), through dicts and lists."""
    if isinstance(data, dt.datetime):
        return data.isoformat()
    if isinstance(data, dict):
        return {k: _iso(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_iso(v) for v in data]
    return data


class SimilarityPage(PageHandler):
    async def get(self, slug: str) -> None:
        comp = _organizer_detail(self, slug)
        minimum = min_argument(self.get_query_argument("min", None))
        listing = await self.run_blocking(self.platform.similarity_pairs, slug, self.actor, minimum)
        self.show("similarity.html", comp=comp, listing=_iso(listing))

    async def post(self, slug: str) -> None:
        """Sign every code and notebook submission waiting, now."""
        done = await self.run_blocking(self.platform.scan_similarity, slug, self.require_login())
        self.notice(f"{done['signed']} submission(s) signed ({done['errors']} with an error), "
                    f"{done['pairs']} pair(s) found.")
        self.redirect(self.competition_url(slug, "/similarity"))


class SimilarityPairPage(PageHandler):
    async def get(self, slug: str, pair: str) -> None:
        comp = _organizer_detail(self, slug)
        view = "normalized" if self.get_query_argument("view", "") == "normalized" else "source"
        detail = await self.run_blocking(self.platform.similarity_pair, slug, int(pair), self.actor)
        rows = sim.side_by_side(detail["first"][view], detail["second"][view])
        self.show("similarity_pair.html", comp=comp, pair=_iso(detail), rows=rows, view=view, verdicts=VERDICTS)

    async def post(self, slug: str, pair: str) -> None:
        verdict = self.get_body_argument("verdict", "") or None
        await self.run_blocking(self.platform.set_similarity_verdict, slug, int(pair), verdict, self.require_login())
        self.notice(f"Verdict on pair {pair}: {verdict or 'none'}.")
        self.redirect(self.competition_url(slug, f"/similarity/{pair}"))


def similarity_page_routes(prefix: str) -> list[tuple[str, type]]:
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [
        (rf"{comp}/similarity", SimilarityPage),
        (rf"{comp}/similarity/([0-9]{{1,18}})", SimilarityPairPage),
    ]
