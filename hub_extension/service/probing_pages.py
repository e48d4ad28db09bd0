"""The page form of probing-resistant boards: `{comp}/edit/leaderboards/{board}/probing` (organizers).

On the editor's leaderboards page: the decimals the public board shows and
its Ladder (`app.probing`), saved as every edit is.
"""
from __future__ import annotations

from typing import Any, Optional

from ..app.editor import Edit
from .editor_pages import EditorPage


class BoardProbingPage(EditorPage):
    """POST `display_precision` (blank: as stored), `ladder` (blank, fixed, parameter_free), `ladder_step`."""

    async def post(self, slug: str, board: str) -> None:
        def value(name: str) -> Optional[str]:
            return (self.get_body_argument(name, "") or "").strip() or None

        settings: dict[str, Any] = {"display_precision": value("display_precision"), "ladder": value("ladder"),
                                    "ladder_step": value("ladder_step")}
        problems = []
        for name, kind in (("display_precision", int), ("ladder_step", float)):
            if settings[name] is not None:
                try:
                    settings[name] = kind(settings[name])
                except ValueError:
                    problems.append(f"leaderboard {board!r}: {name} must be a number, got {settings[name]!r}")
        if settings["ladder"] != "fixed":
            settings["ladder_step"] = None  # a step typed for another ladder than the fixed one is not kept
        if problems:  # nothing saved; the editor page says why (it shows itself to organizers only)
            edit: Any = Edit(problems=problems)
        else:
            edit = await self.run_blocking(self.platform.set_probing, slug, board, self.require_login(), **settings)
        self.answer(slug, "leaderboards", edit)


def probing_page_routes(prefix: str) -> list[tuple[str, type]]:
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [(rf"{comp}/edit/leaderboards/([A-Za-z0-9_.-]{{1,120}})/probing", BoardProbingPage)]
