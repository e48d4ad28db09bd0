"""The pages of the competition editor: forms over the competition's model, beside the YAML view.

`{comp}/edit/overview`, `/edit/pages` (a page's Markdown or HTML with a live
preview, `static/page_preview.js`), `/edit/phases` and `/edit/leaderboards` (each
also adding and removing phases or columns) and
`/edit/tasks` (a task's or phase's new program or data, as a zip).  Each form
posts here; the handler turns the form into values and calls the platform's
editor, which saves through the same reading as a bundle upload.  A refused
save shows the form again as typed with every problem; a save shows the form
with what was saved and the upload's warnings.  Each page shows the warnings
of the competition as it stands, so none is lost between saves.
"""
from __future__ import annotations

from typing import Any

from tornado import web

from ..app import NotFound
from .pages import PageHandler, _organizer_detail
from .uploads import StreamedUpload

SECTIONS = {"overview": "edit_overview.html", "pages": "edit_pages.html", "phases": "edit_phases.html",
            "leaderboards": "edit_leaderboards.html", "tasks": "edit_tasks.html"}
DATA_KINDS = {"task": ("scoring_program", "ingestion_program", "reference_data", "input_data"),
              "phase": ("starting_kit", "public_data")}


class EditorPage(PageHandler):
    """A section of the editor: its form, the model it edits and what the last save said."""

    def editor_context(self, slug: str, section: str, **extra: Any) -> dict[str, Any]:
        comp = _organizer_detail(self, slug)
        spec = self.platform.editable_spec(slug, self.actor)
        keys = [ref.value for owner in [*spec.tasks, *spec.phases]
                for ref in vars(owner).values() if getattr(ref, "kind", None) == "key"]
        context = {"comp": comp, "spec": spec, "section": section, "datasets": self.platform.dataset_info(keys),
                   "problems": [], "warnings": None, "saved": False, "form": {}, "data_kinds": DATA_KINDS}
        context.update(extra)
        if context["warnings"] is None:
            context["warnings"] = self.platform.current_warnings(slug, self.actor)
        return context

    def show_section(self, slug: str, section: str, **extra: Any) -> None:
        self.show(SECTIONS[section], **self.editor_context(slug, section, **extra))

    def answer(self, slug: str, section: str, edit: Any, **extra: Any) -> None:
        """The section again: with every problem and the form as typed, or saved with its warnings."""
        if edit.problems:
            self.set_status(400)
        context = self.editor_context(slug, section, problems=edit.problems, warnings=edit.warnings,
                                      saved=edit.saved, **extra)
        self.render_page(SECTIONS[section], notices=[], **context)

    def form_values(self, names: list[str], flags: tuple[str, ...] = ()) -> dict[str, Any]:
        """The posted fields among `names`; a checkbox not sent is off (when its form lists it)."""
        values: dict[str, Any] = {}
        for name in names:
            if name in flags:
                values[name] = self.get_body_argument(name, "") in ("1", "on", "true", "yes")
            else:
                raw = self.get_body_argument(name, None)
                if raw is not None:
                    values[name] = raw
        return values


class OverviewPage(EditorPage):
    """The overview, with the terms' text and their live preview (as a page's)."""

    FIELDS = ["title", "description", "docker_image", "queue", "contact_email", "admin_names",
              "registration_auto_approve", "enable_detailed_results", "terms"]
    FLAGS = ("registration_auto_approve", "enable_detailed_results")
    FIELDS += ["allow_teams"]
    FLAGS += ("allow_teams",)
    FIELDS += ["anonymous_leaderboard"]
    FLAGS += ("anonymous_leaderboard",)
    FIELDS += ["enable_forum"]
    FLAGS += ("enable_forum",)

    def editor_context(self, slug: str, section: str, **extra: Any) -> dict[str, Any]:
        context = super().editor_context(slug, section, **extra)
        fmt = self.platform.terms_format(context["spec"])
        text = context["form"].get("terms", context["spec"].terms or "")
        context.update(terms_format=fmt, preview=self.platform.preview_page(slug, text, fmt, self.actor))
        return context

    def get(self, slug: str) -> None:
        self.show_section(slug, "overview")

    async def post(self, slug: str) -> None:
        values = self.form_values(self.FIELDS, self.FLAGS)
        edit = await self.run_blocking(self.platform.save_overview, slug, values, self.require_login())
        self.answer(slug, "overview", edit, form=values if edit.problems else {})


class PagesPage(EditorPage):
    """The list of pages, one page's editor (`?page=NAME`, or `?page=` for a new one)."""

    def editor_context(self, slug: str, section: str, **extra: Any) -> dict[str, Any]:
        context = super().editor_context(slug, section, **extra)
        editing, form = context.get("editing"), context["form"]
        page = next((p for p in context["spec"].pages if p.name == editing), None) if editing else None
        if editing is not None and not page and editing and not form:
            raise NotFound(f"competition {slug!r} has no page {editing!r}")
        content = form.get("content", page.content if page else "")
        fmt = form.get("format", page.format if page else "markdown")
        # What the preview shows before any script runs: the same rendering as the API's.
        context["preview"] = (self.platform.preview_page(slug, content, fmt, self.actor)
                              if fmt in ("markdown", "html") else "")
        return context

    def get(self, slug: str) -> None:
        name = self.get_query_argument("page", None)
        self.show_section(slug, "pages", editing=name, form={})

    async def post(self, slug: str) -> None:
        actor = self.require_login()
        name = self.get_body_argument("name", "") or None
        title = self.get_body_argument("title", "") or ""
        content = self.get_body_argument("content", "") or ""
        fmt = self.get_body_argument("format", "markdown") or "markdown"
        edit = await self.run_blocking(self.platform.save_page, slug, name, actor, title=title, content=content,
                                       fmt=fmt)
        form = {"name": name, "title": title, "content": content, "format": fmt}
        self.answer(slug, "pages", edit, editing=(name or "") if edit.problems else None, form=form)


class PageActionPage(EditorPage):
    """POST `edit/pages/NAME/(up|down|delete)`."""

    async def post(self, slug: str, name: str, action: str) -> None:
        actor = self.require_login()
        if action == "delete":
            edit = await self.run_blocking(self.platform.delete_page, slug, name, actor)
        else:
            edit = await self.run_blocking(self.platform.move_page, slug, name, -1 if action == "up" else 1, actor)
        self.answer(slug, "pages", edit, editing=None)


class PhasesPage(EditorPage):
    FIELDS = ["name", "description", "start", "end", "max_submissions", "max_submissions_per_day",
              "execution_time_limit", "gpus", "queue", "auto_migrate", "hide_results", "hide_output",
              "hide_prediction_output", "hide_score_output", "results_only", "allow_network"]
    FLAGS = ("auto_migrate", "hide_results", "hide_output", "hide_prediction_output", "hide_score_output",
             "results_only", "allow_network")

    def get(self, slug: str, *_: str) -> None:
        self.show_section(slug, "phases")

    async def post(self, slug: str, number: str) -> None:
        values = self.form_values(self.FIELDS, self.FLAGS)
        edit = await self.run_blocking(self.platform.save_phase, slug, int(number), values, self.require_login())
        self.answer(slug, "phases", edit, form={"number": int(number), **values} if edit.problems else {})


class LeaderboardsPage(EditorPage):
    def get(self, slug: str, *_: str) -> None:
        self.show_section(slug, "leaderboards")

    async def post(self, slug: str, board: str) -> None:
        keys = self.get_body_arguments("key")
        columns = []
        for key in keys:
            columns.append({
                "key": key,
                "title": self.get_body_argument(f"{key}.title", ""),
                "sorting": self.get_body_argument(f"{key}.sorting", "desc"),
                "precision": self.get_body_argument(f"{key}.precision", ""),
                "hidden": self.get_body_argument(f"{key}.hidden", "") == "on",
                "computation": self.get_body_argument(f"{key}.computation", ""),
                "source_keys": self.get_body_argument(f"{key}.source_keys", ""),
            })
        edit = await self.run_blocking(self.platform.save_columns, slug, board, columns, self.require_login())
        form = {"board": board, "columns": {c["key"]: c for c in columns}} if edit.problems else {}
        self.answer(slug, "leaderboards", edit, form=form)


class BoardAnonymityPage(EditorPage):
    """POST `edit/leaderboards/BOARD/anonymity`: the board hides names, shows them, or follows the competition."""

    async def post(self, slug: str, board: str) -> None:
        choice = self.get_body_argument("anonymous", "")
        edit = await self.run_blocking(self.platform.save_board_anonymity, slug, board, choice, self.require_login())
        self.answer(slug, "leaderboards", edit)


class ColumnAddPage(EditorPage):
    """POST `edit/leaderboards/BOARD/columns`: a new column (key, title, sorting, precision)."""

    async def post(self, slug: str, board: str) -> None:
        values = self.form_values(["key", "title", "sorting", "precision"])
        edit = await self.run_blocking(self.platform.add_column, slug, board, values, self.require_login())
        self.answer(slug, "leaderboards", edit, form={"board": board, "new": values} if edit.problems else {})


class ColumnRemovePage(EditorPage):
    """POST `edit/leaderboards/BOARD/columns/KEY/delete`."""

    async def post(self, slug: str, board: str, column: str) -> None:
        edit = await self.run_blocking(self.platform.remove_column, slug, board, column, self.require_login())
        self.answer(slug, "leaderboards", edit)


class PhaseAddPage(EditorPage):
    """POST `edit/phases/new`: a phase after the last (name, start)."""

    async def post(self, slug: str) -> None:
        values = self.form_values(["name", "start"])
        edit = await self.run_blocking(self.platform.add_phase, slug, values, self.require_login())
        self.answer(slug, "phases", edit, form={"number": "new", **values} if edit.problems else {})


class PhaseRemovePage(EditorPage):
    """POST `edit/phases/N/delete`."""

    async def post(self, slug: str, number: str) -> None:
        edit = await self.run_blocking(self.platform.remove_phase, slug, int(number), self.require_login())
        self.answer(slug, "phases", edit)


class TasksPage(EditorPage):
    FIELDS = ["name", "description", "scoring_docker_image", "ingestion_docker_image"]

    def get(self, slug: str, *_: str) -> None:
        self.show_section(slug, "tasks")

    async def post(self, slug: str, index: str) -> None:
        values = self.form_values(self.FIELDS)
        edit = await self.run_blocking(self.platform.save_task, slug, int(index), values, self.require_login())
        self.answer(slug, "tasks", edit, form={"index": int(index), **values} if edit.problems else {})


@web.stream_request_body
class DataUploadPage(StreamedUpload, EditorPage):
    """POST `edit/(task|phase)s/N/WHAT`: a new program or dataset as a zip (multipart field `file`)."""

    upload_field = "file"

    async def post(self, slug: str, owner: str, number: str, what: str) -> None:
        path = self.uploaded_file()  # first: it raises what prepare refused (login, XSRF)
        edit = await self.run_blocking(self.platform.replace_data, slug, owner, int(number), what, path, path.name,
                                       self.require_login())
        self.answer(slug, "tasks", edit)


def editor_page_routes(prefix: str) -> list[tuple[str, type]]:
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)/edit"
    page = r"([A-Za-z0-9_.-]{1,120})"
    return [
        (rf"{comp}/overview", OverviewPage),
        (rf"{comp}/pages", PagesPage),
        (rf"{comp}/pages/{page}/(up|down|delete)", PageActionPage),
        (rf"{comp}/phases", PhasesPage),
        (rf"{comp}/phases/([0-9]{{1,9}})", PhasesPage),
        (rf"{comp}/leaderboards", LeaderboardsPage),
        (rf"{comp}/leaderboards/([A-Za-z0-9_.-]{{1,120}})", LeaderboardsPage),
        (rf"{comp}/leaderboards/([A-Za-z0-9_.-]{{1,120}})/columns", ColumnAddPage),
        (rf"{comp}/leaderboards/([A-Za-z0-9_.-]{{1,120}})/anonymity", BoardAnonymityPage),
        (rf"{comp}/leaderboards/([A-Za-z0-9_.-]{{1,120}})/columns/([A-Za-z0-9_.-]{{1,120}})/delete",
         ColumnRemovePage),
        (rf"{comp}/phases/new", PhaseAddPage),
        (rf"{comp}/phases/([0-9]{{1,9}})/delete", PhaseRemovePage),
        (rf"{comp}/tasks", TasksPage),
        (rf"{comp}/tasks/([0-9]{{1,9}})", TasksPage),
        (rf"{comp}/(task)s/([0-9]{{1,9}})/(scoring_program|ingestion_program|reference_data|input_data)",
         DataUploadPage),
        (rf"{comp}/(phase)s/([0-9]{{1,9}})/(starting_kit|public_data)", DataUploadPage),
    ]
