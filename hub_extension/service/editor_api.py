"""The REST API of the competition editor, under `{prefix}api/v1/competitions/{slug}/`.

Each route changes one part of the competition's model (a page, a board's
columns, a phase's settings, the overview, a task's program or data) and
saves it through the same reading as a bundle upload (`app.editor`).  A save
answers `{"saved": true, "warnings": [...]}`; a refused one 400 with
`error.problems` (every problem at once) and `error.warnings`.  The routes
are listed in `api.api_routes` and documented in `openapi.yaml`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from tornado import web

from ..app import PlatformError
from .base import ApiHandler
from .uploads import StreamedUpload


class EditHandler(ApiHandler):
    """An edit of the competition: answers what the save said."""

    def write_edit(self, edit: Any) -> None:
        if edit.problems:
            self.set_status(400)
            self.write_error_body(400, "bundle_invalid",
                                  f"the edit has {len(edit.problems)} problem(s); nothing was saved",
                                  {"problems": edit.problems, "warnings": edit.warnings})
            return
        self.write_json(edit.to_dict())


class SpecHandler(ApiHandler):
    """GET the competition's model as the forms edit it (datasets by key, with what is known of them)."""

    def get(self, slug: str) -> None:
        spec = self.platform.editable_spec(slug, self.require_login())
        keys = [getattr(t, kind).value for t in spec.tasks
                for kind in ("scoring_program", "ingestion_program", "reference_data", "input_data")
                if getattr(t, kind) is not None]
        keys += [getattr(p, kind).value for p in spec.phases for kind in ("starting_kit", "public_data")
                 if getattr(p, kind) is not None]
        self.write_json({"spec": dataclasses.asdict(spec), "datasets": self.platform.dataset_info(keys)})


class PreviewHandler(ApiHandler):
    """POST `{"text", "format"}`: the page as participants would see it, sanitized as an upload's."""

    def post(self, slug: str) -> None:
        body = self.json_body()
        text, fmt = body.get("text", ""), body.get("format", "markdown")
        self.write_json({"html": self.platform.preview_page(slug, text, fmt, self.require_login())})


class PageHandler(EditHandler):
    async def put(self, slug: str, name: str) -> None:
        body = self.json_body()
        if not isinstance(body.get("content"), str):
            raise PlatformError('send {"title": "...", "content": "<Markdown or HTML>", "format": "markdown"}')
        title = body.get("title")
        edit = await self.run_blocking(self.platform.save_page, slug, name, self.require_login(),
                                       title=str(title) if title is not None else name, content=body["content"],
                                       fmt=str(body.get("format", "markdown")))
        self.write_edit(edit)

    async def delete(self, slug: str, name: str) -> None:
        self.write_edit(await self.run_blocking(self.platform.delete_page, slug, name, self.require_login()))


class PageMoveHandler(EditHandler):
    async def post(self, slug: str, name: str, direction: str) -> None:
        offset = -1 if direction == "up" else 1
        self.write_edit(await self.run_blocking(self.platform.move_page, slug, name, offset, self.require_login()))


class ColumnsHandler(EditHandler):
    async def put(self, slug: str, board: str) -> None:
        columns = self.json_body().get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
            raise PlatformError('send {"columns": [{"key": "accuracy", "precision": 3, ...}, ...]}')
        self.write_edit(await self.run_blocking(self.platform.save_columns, slug, board, columns,
                                                self.require_login()))


    async def post(self, slug: str, board: str) -> None:
        body = self.json_body()
        if not isinstance(body.get("key"), str):
            raise PlatformError('send {"key": "recall", "title": "Recall", "sorting": "desc", "precision": 2}')
        self.write_edit(await self.run_blocking(self.platform.add_column, slug, board, body, self.require_login()))


class BoardAnonymityHandler(EditHandler):
    async def put(self, slug: str, board: str) -> None:
        body = self.json_body()
        if "anonymous" not in body:
            raise PlatformError('send {"anonymous": true}, false, or null for the competition\'s setting')
        self.write_edit(await self.run_blocking(self.platform.save_board_anonymity, slug, board, body["anonymous"],
                                                self.require_login()))


class ColumnHandler(EditHandler):
    async def delete(self, slug: str, board: str, column: str) -> None:
        self.write_edit(await self.run_blocking(self.platform.remove_column, slug, board, column,
                                                self.require_login()))


class PhaseAddHandler(EditHandler):
    async def post(self, slug: str) -> None:
        body = self.json_body()
        if not isinstance(body.get("name"), str) or not isinstance(body.get("start"), str):
            raise PlatformError('send {"name": "Final", "start": "2030-01-01 00:00"} (UTC)')
        self.write_edit(await self.run_blocking(self.platform.add_phase, slug, body, self.require_login()))


class PhaseSettingsHandler(EditHandler):
    async def put(self, slug: str, number: str) -> None:
        values = self.json_body()
        self.write_edit(await self.run_blocking(self.platform.save_phase, slug, int(number), values,
                                                self.require_login()))


class PhaseRemoveHandler(EditHandler):
    async def delete(self, slug: str, number: str) -> None:
        self.write_edit(await self.run_blocking(self.platform.remove_phase, slug, int(number),
                                                self.require_login()))


class OverviewHandler(EditHandler):
    async def put(self, slug: str) -> None:
        values = self.json_body()
        self.write_edit(await self.run_blocking(self.platform.save_overview, slug, values, self.require_login()))


class TaskSettingsHandler(EditHandler):
    async def put(self, slug: str, index: str) -> None:
        values = self.json_body()
        self.write_edit(await self.run_blocking(self.platform.save_task, slug, int(index), values,
                                                self.require_login()))


@web.stream_request_body
class DataUploadHandler(StreamedUpload, EditHandler):
    """POST a zip: the new program or data of a task (`tasks/{index}/...`) or phase (`phases/{number}/uploads/...`)."""

    upload_default_name = "upload.zip"

    async def post(self, slug: str, owner: str, number: str, what: str) -> None:
        path = self.uploaded_file()
        edit = await self.run_blocking(self.platform.replace_data, slug, owner, int(number), what, path, path.name,
                                       self.require_login())
        self.write_edit(edit)


def editor_api_routes(comp: str, number: str) -> list[Any]:
    """The editor's routes under a competition's API path `comp` (`number`: a phase's number pattern)."""
    page = r"(?P<name>[A-Za-z0-9_.-]{1,120})"
    return [
        (rf"{comp}/spec", SpecHandler),
        (rf"{comp}/preview", PreviewHandler),
        (rf"{comp}/overview", OverviewHandler),
        (rf"{comp}/pages/{page}", PageHandler),
        (rf"{comp}/pages/{page}/(?P<direction>up|down)", PageMoveHandler),
        (rf"{comp}/leaderboards/(?P<board>[A-Za-z0-9_.-]{{1,120}})/columns", ColumnsHandler),
        (rf"{comp}/phases/{number}/settings", PhaseSettingsHandler),
        (rf"{comp}/leaderboards/(?P<board>[A-Za-z0-9_.-]{{1,120}})/columns/(?P<column>[A-Za-z0-9_.-]{{1,120}})",
         ColumnHandler),
        (rf"{comp}/phases/{number}", PhaseRemoveHandler),
        (rf"{comp}/tasks/(?P<index>[0-9]{{1,9}})", TaskSettingsHandler),
        (rf"{comp}/(?P<owner>task)s/(?P<number>[0-9]{{1,9}})/"
         r"(?P<what>scoring_program|ingestion_program|reference_data|input_data)", DataUploadHandler),
        (rf"{comp}/(?P<owner>phase)s/(?P<number>[0-9]{{1,9}})/uploads/(?P<what>starting_kit|public_data)",
         DataUploadHandler),
        (rf"{comp}/leaderboards/(?P<board>[A-Za-z0-9_.-]{{1,120}})/anonymity", BoardAnonymityHandler),
    ]
