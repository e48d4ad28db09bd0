"""The REST API of fact sheets, under `{prefix}api/v1/competitions/{slug}/`.

`fact_sheet`: the questions (GET to whoever sees the competition; PUT
`{"questions": [...]}` by its organizers, saved as the editor saves);
`leaderboards/{board}/fact_sheet_columns`: which questions a board shows (PUT
`{"keys": [...]}`); `phases/{n}/fact_sheets.csv`: a phase's answers, one row
per submission (organizers).  Answers themselves are sent with a submission
(`fact_sheet` of `POST .../submissions`, see `api.SubmissionsHandler`).
"""
from __future__ import annotations

from typing import Any

from .editor_api import EditHandler
from .uploads import safe_upload_name


class FactSheetHandler(EditHandler):
    def get(self, slug: str) -> None:
        self.write_json({"questions": self.platform.fact_sheet(slug, self.actor)})

    async def put(self, slug: str) -> None:
        actor = self.require_login()
        questions = self.json_body().get("questions")
        self.write_edit(await self.run_blocking(self.platform.save_fact_sheet, slug, questions, actor))


class FactSheetColumnsHandler(EditHandler):
    async def put(self, slug: str, board: str) -> None:
        actor = self.require_login()
        keys = self.json_body().get("keys")
        self.write_edit(await self.run_blocking(self.platform.save_fact_sheet_columns, slug, board, keys, actor))


class FactSheetCsvHandler(EditHandler):
    async def get(self, slug: str, number: str) -> None:
        name, text = await self.run_blocking(self.platform.fact_sheet_csv, slug, int(number), self.require_login())
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{safe_upload_name(name, "fact_sheets.csv")}"')
        self.finish(text)


def fact_sheet_api_routes(comp: str, number: str) -> list[Any]:
    """The fact sheet routes under a competition's API path `comp` (`number`: a phase's number pattern)."""
    return [
        (rf"{comp}/fact_sheet", FactSheetHandler),
        (rf"{comp}/leaderboards/(?P<board>[A-Za-z0-9_.-]{{1,120}})/fact_sheet_columns", FactSheetColumnsHandler),
        (rf"{comp}/phases/{number}/fact_sheets\.csv", FactSheetCsvHandler),
    ]
