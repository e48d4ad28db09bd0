"""The pages of fact sheets: the questions in the editor, a board's columns, a phase's answers as CSV.

`{comp}/edit/fact_sheet` (the questions, a section of the editor's overview),
`{comp}/edit/leaderboards/{board}/fact_sheet` (which questions the board shows
as columns, on the editor's leaderboards page) and
`{comp}/phases/{n}/fact_sheets.csv` (the organizers' download).  The Submit
page asks the questions (`pages.SubmitHandler`); the submission page shows
the answers.
"""
from __future__ import annotations

from typing import Any

from .editor_pages import EditorPage, OverviewPage
from .pages import PageHandler, safe_filename

class FactSheetEditPage(OverviewPage):
    """POST the questions: rows `q<i>.key`, `.type`, `.title`, `.selection` (one choice a line), the two flags."""

    async def post(self, slug: str) -> None:
        raw = self.get_body_argument("rows", "0") or "0"
        rows = int(raw) if raw.isdigit() and len(raw) < 4 else 0
        questions = [self.question(i) for i in range(min(rows, 100))]
        edit = await self.run_blocking(self.platform.save_fact_sheet, slug, questions, self.require_login())
        self.answer(slug, "overview", edit, form={"fact_sheet": questions} if edit.problems else {})

    def question(self, i: int) -> dict[str, Any]:
        field = (lambda name, default="": self.get_body_argument(f"q{i}.{name}", default) or default)
        return {"key": field("key").strip(), "type": field("type", "text"), "title": field("title"),
                "selection": field("selection"), "is_required": field("is_required") == "on",
                "is_on_leaderboard": field("is_on_leaderboard") == "on"}


class FactSheetColumnsPage(EditorPage):
    """POST which questions a board shows as columns (checkboxes `fact_sheet_column`)."""

    async def post(self, slug: str, board: str) -> None:
        keys = self.get_body_arguments("fact_sheet_column")
        edit = await self.run_blocking(self.platform.save_fact_sheet_columns, slug, board, keys, self.require_login())
        self.answer(slug, "leaderboards", edit)


class FactSheetCsvPage(PageHandler):
    """A phase's answers as CSV (organizers)."""

    async def get(self, slug: str, number: str) -> None:
        name, text = await self.run_blocking(self.platform.fact_sheet_csv, slug, int(number), self.require_login())
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{safe_filename(name)}"')
        self.finish(text)


def fact_sheet_page_routes(prefix: str) -> list[tuple[str, type]]:
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [
        (rf"{comp}/edit/fact_sheet", FactSheetEditPage),
        (rf"{comp}/edit/leaderboards/([A-Za-z0-9_.-]{{1,120}})/fact_sheet", FactSheetColumnsPage),
        (rf"{comp}/phases/([0-9]{{1,9}})/fact_sheets\.csv", FactSheetCsvPage),
    ]
