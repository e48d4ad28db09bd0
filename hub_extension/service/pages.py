"""The server-rendered pages of the competition service.

Each handler reads the request, calls `Platform` methods with the actor and
renders a template of `templates/service/`; who may see or change what is
decided by the platform, never here.  Pages read without JavaScript; the only
script (`static/live_status.js`) refreshes the status of running submissions
from the JSON API.  Forms post to these handlers (uploads as multipart), carry
the XSRF token, and answer with a redirect and a one-time notice (a signed
cookie), or with the form again and the problems when the input is refused.
"""
from __future__ import annotations

import datetime as dt
import json
import mimetypes
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

from markupsafe import Markup, escape
from tornado import web

from .. import models as m
from ..app import Forbidden, NotFound, PlatformError
from ..app.lifecycle import upload_notice
from ..app.fact_sheets import answers_from_fields
from ..bundles.model import BundleError
from ..errors import CountChanged
from .api import first_chunk, stream_text
from .base import MAX_QUERY_INT, SANDBOX_CSP, BaseHandler
from .charts import COLUMN_TITLES, SECTIONS, TABLE_TITLES, TITLES, statistics_charts
from .hub_users import unknown_user_notes
from .reproduction_view import reproduction_context
from .uploads import StreamedUpload

# Rows on one page of a leaderboard.
LEADERBOARD_PAGE = 50

FLASH_COOKIE = "compete-flash"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Artifacts a browser may show inline; every other file is a download.
INLINE_TYPES = {"text/html", "text/plain", "text/csv", "application/json", "image/png", "image/jpeg", "image/gif",
                "image/webp", "image/svg+xml"}


# -- helpers ----------------------------------------------------------------------------
def safe_filename(name: str, default: str = "upload") -> str:
    """The last component of an uploaded file's name, with only harmless characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = SAFE_NAME.sub("_", base).strip("._")
    return base[:120] or default


def image_type(head: bytes) -> str:
    """The media type of an image from its first bytes (logos are stored without a name)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if b"<svg" in head.lower():
        return "image/svg+xml"
    return "application/octet-stream"


def parse_datetime(value: str, field: str) -> Optional[dt.datetime]:
    """A `datetime-local` form value (UTC, no zone) as a naive UTC datetime; '' is None."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PlatformError(f"{field}: not a date and time: {value!r} (use YYYY-MM-DD HH:MM, UTC)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def _sort_value(value: Any) -> tuple[int, Any]:
    # Missing values go last in either direction (see `sort_rows`).
    if value is None or (isinstance(value, float) and value != value):
        return (1, 0)
    return (0, value)


def sort_rows(rows: list[dict[str, Any]], key: str, order: str) -> list[dict[str, Any]]:
    """Rows ordered by one field (`scores.<key>` for a column), missing values last."""

    def get(row: dict[str, Any]) -> Any:
        if key in ("rank", "participant", "average_rank", "submitted_at"):
            return row.get(key)
        return (row.get("scores") or {}).get(key)

    present = [r for r in rows if _sort_value(get(r))[0] == 0]
    missing = [r for r in rows if _sort_value(get(r))[0] == 1]
    present.sort(key=lambda r: (get(r), r.get("rank") or 0), reverse=(order == "desc"))
    return present + missing


def best_score_chart(points: list[dict[str, Any]], *, title: str, width: int = 640, height: int = 240) -> Markup:
    """An inline SVG step chart of the best score over time (server-side, no script); empty without points
    (the page then says there is no data yet)."""
    pts = []
    for p in points:
        value = p.get("value")
        at = p.get("at")
        if value is None or at is None:
            continue
        when = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(str(at))
        pts.append((when.replace(tzinfo=None), float(value), str(p.get("participant") or p.get("username") or "")))
    if not pts:
        return Markup("")
    pts.sort(key=lambda p: p[0])
    left, right, top, bottom = 64, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    t0, t1 = pts[0][0], pts[-1][0]
    span = (t1 - t0).total_seconds() or 1.0
    values = [v for _, v, _ in pts]
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.05 or 0.5), hi + (abs(hi) * 0.05 or 0.5)

    def x(t: dt.datetime) -> float:
        # One point stands at the start: the best score since then.
        return left + (t - t0).total_seconds() / span * plot_w

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    path = []
    for i, (t, v, _) in enumerate(pts):
        if i == 0:
            path.append(f"M{x(t):.1f},{y(v):.1f}")
        else:
            path.append(f"H{x(t):.1f}V{y(v):.1f}")
    path.append(f"H{left + plot_w:.1f}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{hi:.4g}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{lo:.4g}</text>',
        f'<text x="{left}" y="{height - 12}">{t0:%Y-%m-%d %H:%M}</text>',
        # One point has one time, said once.
        f'<text x="{left + plot_w}" y="{height - 12}" text-anchor="end">{t1:%Y-%m-%d %H:%M}</text>'
        if len(pts) > 1 else f'<text x="{left + plot_w}" y="{height - 12}" text-anchor="end">now</text>',
        f'<path class="line" d="{" ".join(path)}"/>',
    ]
    for t, v, who in pts:
        label = f"{v:.6g} by {who} at {t:%Y-%m-%d %H:%M} UTC" if who else f"{v:.6g} at {t:%Y-%m-%d %H:%M} UTC"
        parts.append(
            f'<circle class="dot" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3.5" data-value="{v!r}">'
            f"<title>{escape(label)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- base class -------------------------------------------------------------------------
class PageHandler(BaseHandler):
    """A page: renders templates, keeps one-time notices, reads uploads."""

    def show(self, template: str, **context: Any) -> None:
        self.render_page(template, notices=self.take_notices(), **context)

    def render_template(self, template_name: str, **context: Any) -> str:
        # The live status script sends the token with its API calls (`X-XSRFToken`).
        token = self.xsrf_token
        context.setdefault("xsrf_token", token.decode() if isinstance(token, bytes) else token)
        return super().render_template(template_name, **context)

    # one-time notices, carried over a redirect in a signed cookie
    def notice(self, text: str, kind: str = "ok") -> None:
        pending = getattr(self, "_new_notices", [])
        pending.append({"kind": kind, "text": text[:2000]})
        self._new_notices = pending
        self.set_signed_cookie(
            FLASH_COOKIE, json.dumps(pending), expires_days=None, path=self.prefix, httponly=True, samesite="Lax"
        )

    def take_notices(self) -> list[dict[str, str]]:
        raw = self.get_signed_cookie(FLASH_COOKIE, max_age_days=1)
        if raw is None:
            return []
        self.clear_cookie(FLASH_COOKIE, path=self.prefix)
        try:
            items = json.loads(raw)
        except ValueError:
            return []
        return [i for i in items if isinstance(i, dict) and {"kind", "text"} <= set(i)]

    def back(self, default: str) -> None:
        """Redirect to the form's `next` field when it is a page of this service, else `default`."""
        target = self.get_body_argument("next", "") or ""
        if not target.startswith(self.prefix) or target.startswith("//") or "\\" in target:
            target = default
        self.redirect(target)

    def competition_url(self, slug: str, rest: str = "") -> str:
        return f"{self.prefix}competitions/{slug}{rest}"

    def query_int(self, name: str) -> Optional[int]:
        raw = self.get_query_argument(name, "") or ""
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise PlatformError(f"?{name}= must be a whole number, got {raw[:40]!r}") from None
        if abs(value) > MAX_QUERY_INT:
            raise PlatformError(f"?{name}= must be at most {MAX_QUERY_INT}, got {raw[:40]!r}")
        return value

    async def send_file(self, path: Path, *, filename: str, content_type: Optional[str] = None,
                        inline: bool = False) -> None:
        """Stream a file; HTML from submissions is sandboxed (no script, its own origin)."""
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"{filename} is not available")
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.set_header("Content-Type", content_type + ("; charset=UTF-8" if content_type.startswith("text/") else ""))
        if inline and content_type in INLINE_TYPES:
            self.set_header("Content-Disposition", f'inline; filename="{safe_filename(filename)}"')
        else:
            self.set_header("Content-Disposition", f'attachment; filename="{safe_filename(filename)}"')
        if content_type in ("text/html", "image/svg+xml"):
            self.set_header("Content-Security-Policy", SANDBOX_CSP)
        await self.stream_file(path)


# -- public pages ------------------------------------------------------------------------
class LoginHandler(PageHandler):
    """`login`: send the browser through the hub login, then back to the page it came from."""

    def get(self) -> None:
        self.require_login()
        target = self.get_query_argument("next", "") or ""
        if not target.startswith(self.prefix) or target.startswith("//"):
            target = self.prefix
        self.redirect(target)


class CompetitionListHandler(PageHandler):
    def get(self) -> None:
        search = (self.get_query_argument("q", "") or "").strip()
        status = self.get_query_argument("status", "") or ""
        competitions = self.platform.list_competitions(search=search or None, status=status or None, actor=self.actor)
        self.show("competitions.html", competitions=competitions, search=search, status=status)


class CompetitionHandler(PageHandler):
    def get(self, slug: str) -> None:
        comp = self.platform.competition_detail(slug, self.actor)
        # What the current phase's notebooks run in, said beside "Open in JupyterLab".
        current = next((p for p in comp["phases"] if p["state"] == "current"), None)
        environment = self.platform.lab.environment(slug, current["number"]) if current else None
        self.show("competition.html", comp=comp, lab_environment=environment)


class RegisterHandler(PageHandler):
    def post(self, slug: str) -> None:
        actor = self.require_login()
        accept = self.get_body_argument("accept_terms", "") == "yes"
        status = self.platform.register(slug, actor.username, actor, accept_terms=accept)
        if status == m.APPROVED:
            self.notice("You are registered: you can submit now.")
        else:
            self.notice("Your registration is recorded; the organizers will approve it.", "info")
        self.redirect(self.competition_url(slug))


class LogoHandler(PageHandler):
    async def get(self, slug: str) -> None:
        path = Path(self.platform.competition_logo(slug, self.actor))
        with path.open("rb") as fh:
            content_type = image_type(fh.read(512))
        self.set_header("Cache-Control", "private, max-age=300")
        await self.send_file(path, filename="logo", content_type=content_type, inline=True)


class PhaseDownloadHandler(PageHandler):
    """`competitions/<slug>/phases/<n>/(starting-kit|public-data)`: a zip download."""

    async def get(self, slug: str, number: str, what: str) -> None:
        kind = {"starting-kit": "starting_kit", "public-data": "public_data"}[what]
        path, filename = await self.run_blocking(
            self.platform.phase_download, slug, int(number), kind, self.actor
        )
        await self.send_file(path, filename=filename, content_type="application/zip")


class OpenInLabHandler(PageHandler):
    """`competitions/<slug>/phases/<n>/open-in-lab`: the kit into the user's JupyterLab, then there."""

    async def post(self, slug: str, number: str) -> None:
        actor = self.require_login()
        try:
            result = await self.run_blocking(self.platform.open_in_lab, slug, int(number), actor,
                                             self.settings.get("lab_access"), page=self.competition_url(slug))
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            # Back to the competition, saying why (the hub or the server did not answer).
            self.notice(f"Could not open the starting kit in JupyterLab: {exc}", "error")
            self.redirect(self.competition_url(slug))
            return
        # A path on the hub: the browser follows it through the proxy to its JupyterLab.
        self.redirect(result["url"])


class LeaderboardHandler(PageHandler):
    async def get(self, slug: str) -> None:
        actor = self.actor
        comp = await self.run_blocking(self.platform.competition_detail, slug, actor)
        phase = self.query_int("phase")
        board_key = self.get_query_argument("board", "") or None
        sort = self.get_query_argument("sort", "rank") or "rank"
        order_asked = self.get_query_argument("order", "")
        page_number = max(1, self.query_int("page") or 1)
        offset = (page_number - 1) * LEADERBOARD_PAGE
        by_rank = sort == "rank" and order_asked in ("", "asc")
        # By rank, the page is read as it is kept; sorted otherwise, every row is (a board's rows, not submissions).
        board = await self.read_board("leaderboard_view", slug, phase, actor=actor, board=board_key,
                                      offset=offset if by_rank else 0,
                                      limit=LEADERBOARD_PAGE if by_rank else None)
        phase_number = board.get("phase", phase)
        board_key = board.get("board") or board_key
        columns = board.get("columns", [])
        fields = ["rank", "participant", *[c["key"] for c in columns], "submitted_at"]
        fields += ["average_rank"] if board.get("average_rank_shown") else []
        if sort not in fields:
            sort = "rank"
        default_orders = {"rank": "asc", "participant": "asc", "average_rank": "asc", "submitted_at": "asc"}
        for c in columns:
            default_orders[c["key"]] = "asc" if c.get("sorting") == "asc" else "desc"
        order = self.get_query_argument("order", "") or default_orders[sort]
        if order not in ("asc", "desc"):
            order = default_orders[sort]
        total = int(board.get("total") or 0)
        rows = list(board.get("rows", []))
        # The viewer's own row, when it is not on this page, comes after it, set apart (`outside`).
        if by_rank:
            rows = [dict(r, outside=not offset < r["rank"] <= offset + LEADERBOARD_PAGE) for r in rows]
        else:
            ordered = sort_rows(rows, sort, order)
            shown = ordered[offset:offset + LEADERBOARD_PAGE]
            own = [r for r in ordered if r.get("own") and all(r is not x for x in shown)][:1]
            rows = [dict(r, outside=False) for r in shown] + [dict(r, outside=True) for r in own]
        pages = max(1, -(-total // LEADERBOARD_PAGE))

        def url(**changes: Any) -> str:
            args = {"phase": phase_number, "board": board_key, "sort": None if by_rank else sort,
                    "order": None if by_rank else order}
            args.update(changes)
            return f"{self.competition_url(slug, '/leaderboard')}?{urlencode({k: v for k, v in args.items() if v is not None})}"

        titles = [("rank", "#", True), ("participant", "Participant", False)]
        titles += [(c["key"], c["title"], True) for c in columns]
        if board.get("average_rank_shown"):
            titles.append(("average_rank", "Avg. rank", True))
        titles.append(("submitted_at", "Submitted", False))
        sort_columns = []
        for key, title, numeric in titles:
            next_order = ("desc" if order == "asc" else "asc") if key == sort else default_orders[key]
            sort_columns.append({"key": key, "title": title, "numeric": numeric,
                                 "url": url(sort=key, order=next_order, page=None)})
        csv_query = urlencode({k: v for k, v in {"phase": phase_number, "board": board_key}.items() if v is not None})
        history = await self.read_board("best_score_history", slug, phase_number, board_key, actor)
        primary = next((c for c in columns if c["key"] == board.get("primary_key")), columns[0] if columns else None)
        caption = ""
        if primary is not None:
            better = "lower" if primary.get("sorting") == "asc" else "higher"
            caption = f"Best {primary['title']} on the board over time ({better} is better)."
        # An empty board charts nothing, whatever history its phase has (say, nothing chosen yet under "Add").
        chart = best_score_chart(history if total else [], title=caption or "best score over time")
        self.show(
            "leaderboard.html",
            comp=comp,
            board=board,
            board_key=board_key,
            phase_number=phase_number,
            rows=rows,
            sort=sort,
            order=order,
            sort_columns=sort_columns,
            csv_url=f"{self.competition_url(slug, '/leaderboard.csv')}?{csv_query}",
            chart=chart,
            chart_caption=caption,
            page=page_number,
            pages=pages,
            total=total,
            first_rank=offset + 1,
            last_rank=min(offset + LEADERBOARD_PAGE, total),
            previous_url=url(page=page_number - 1 if page_number > 2 else None) if page_number > 1 else None,
            next_url=url(page=page_number + 1) if page_number < pages else None,
        )


class LeaderboardCsvHandler(PageHandler):
    async def get(self, slug: str) -> None:
        phase = self.query_int("phase")
        board_key = self.get_query_argument("board", "") or None
        chunks = self.platform.leaderboard_csv_chunks(slug, phase, actor=self.actor, board=board_key)
        first = await first_chunk(self, chunks)
        name = safe_filename(f"{slug}-phase{phase or 'current'}{'-' + board_key if board_key else ''}-leaderboard.csv")
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.write(first)
        await stream_text(self, chunks)


# -- participant pages --------------------------------------------------------------------
@web.stream_request_body
class SubmitHandler(StreamedUpload, PageHandler):
    """The submit form; its file streams to disk as it arrives (`uploads.StreamedUpload`)."""

    upload_field = "file"

    def context(self, slug: str) -> dict[str, Any]:
        actor = self.require_login()
        comp = self.platform.competition_detail(slug, actor)
        phase = next((p for p in comp["phases"] if p["state"] == "current"), None)
        left = {"today": None, "total": None}
        if phase is not None:
            left = self.platform.submissions_left(slug, actor.username, phase["number"], actor=actor)
        return {"comp": comp, "phase": phase, "left": left, "answers": {}}

    def get(self, slug: str) -> None:
        self.show("submit.html", **self.context(slug))

    async def post(self, slug: str) -> None:
        answers: dict[str, Any] = {}
        try:
            path = self.uploaded_file()  # first: it raises what prepare refused (login, XSRF)
            actor = self.require_login()
            raw_phase = self.field("phase") or ""
            phase = int(raw_phase) if raw_phase.isdigit() and len(raw_phase) < 10 else None
            description = (self.field("description") or "").strip()[:500]
            questions = self.platform.fact_sheet(slug, actor)
            answers = answers_from_fields(questions, self.field)
            submission_id = await self.run_blocking(
                self.platform.submit, slug, path, username=actor.username, phase=phase, actor=actor,
                description=description, fact_sheet=answers,
            )
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            # The form again, with why it was refused (limits, closed phase, wrong file).
            self.set_status(exc.status)
            context = self.context(slug)
            context["answers"] = answers  # what was typed stays in the form
            self.render_page("submit.html", notices=[{"kind": "error", "text": str(exc)}], **context)
            return
        self.notice(f"Submission {submission_id} received; its status updates below.")
        self.redirect(self.competition_url(slug, "/submissions"))


class SubmissionsHandler(PageHandler):
    """A participant's own submissions, or every submission for the organizers."""

    def get(self, slug: str) -> None:
        actor = self.require_login()
        comp = self.platform.competition_detail(slug, actor)
        username = (self.get_query_argument("username", "") or "").strip() or None
        phase = self.query_int("phase")
        status = self.get_query_argument("status", "") or None
        offset = max(self.query_int("offset") or 0, 0)
        limit = min(max(self.query_int("limit") or 50, 1), 200)
        page = self.platform.submissions_view(
            slug, actor, username=username, phase=phase, status=status, offset=offset, limit=limit
        )

        def page_url(new_offset: int) -> str:
            args = {"username": username, "phase": phase, "status": status, "offset": new_offset, "limit": limit}
            return f"{self.competition_url(slug, '/submissions')}?{urlencode({k: v for k, v in args.items() if v})}"

        self.show(
            "submissions.html",
            comp=comp,
            listing={"subs": page["items"], "total": page["total"], "offset": offset, "limit": limit},
            filters={"username": username, "phase": phase, "status": status},
            statuses=m.STATUSES,
            terminal=m.TERMINAL_STATUSES,
            score_columns=page["score_columns"],
            page_url=page_url,
        )


ARTIFACT_TITLES = {
    "executed_notebook": "Executed notebook (.ipynb)",
    "executed_notebook_html": "Executed notebook (HTML)",
    "detailed_results": "Detailed results",
}
# How much of each log the submission page shows inline; the raw link has more.
INLINE_LOG_BYTES = 64 * 1024


class SubmissionHandler(PageHandler):
    def get(self, submission_id: str) -> None:
        actor = self.require_login()
        sid = int(submission_id)
        sub = self.platform.submission_view(sid, actor)
        comp = self.platform.competition_detail(sub["competition"], actor)
        logs = []
        for run in sub.get("runs") or []:
            for stream in run.get("logs") or []:
                try:
                    text = self.platform.submission_log(sid, actor, run["task"], run["step"], stream,
                                                        max_bytes=INLINE_LOG_BYTES)
                except (NotFound, Forbidden):
                    continue
                logs.append({"task": run["task"], "step": run["step"], "stream": stream, "text": text})
        artifacts = [{"name": name, "title": ARTIFACT_TITLES.get(name, name.replace("_", " "))}
                     for name in sub.get("artifacts") or []]
        notebook = "executed_notebook_html" if "executed_notebook_html" in (sub.get("artifacts") or []) else None
        phase = next((p for p in comp["phases"] if p["number"] == sub["phase"]), None)
        repro = reproduction_context(self.platform, sub, actor, comp.get("is_organizer"), phase)
        self.show("submission.html", comp=comp, sub=sub, phase=phase, logs=logs, artifacts=artifacts,
                  notebook_html_name=notebook, repro=repro)


class SubmissionFileHandler(PageHandler):
    """A feedback file of a submission (executed notebook, detailed results)."""

    async def get(self, submission_id: str, name: str) -> None:
        actor = self.require_login()
        path = Path(self.platform.submission_artifact(int(submission_id), actor, name))
        await self.send_file(path, filename=path.name, inline=True)


class SubmittedFileHandler(PageHandler):
    """The file a participant submitted, for its owner and the organizers."""

    async def get(self, submission_id: str) -> None:
        actor = self.require_login()
        path, filename = self.platform.submission_file(int(submission_id), actor)
        await self.send_file(Path(path), filename=filename)


class SubmissionLogHandler(PageHandler):
    def get(self, submission_id: str, task: str, step: str, stream: str) -> None:
        actor = self.require_login()
        text = self.platform.submission_log(int(submission_id), actor, int(task), step, stream)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(text)


class SubmissionActionHandler(PageHandler):
    """`submissions/<id>/(select|unselect|rerun|cancel|hide|unhide)`: one form button each."""

    def post(self, submission_id: str, action: str) -> None:
        actor = self.require_login()
        sid = int(submission_id)
        platform = self.platform
        if action in ("select", "unselect"):
            platform.set_selected(sid, action == "select", actor)
            self.notice(f"Submission {sid} is {'shown on' if action == 'select' else 'taken off'} the leaderboard.")
        elif action == "rerun":
            new_id = platform.rerun(sid, actor)
            self.notice(f"Submission {sid} runs again as submission {new_id}.")
        elif action == "cancel":
            platform.cancel_submission(sid, actor, dispatcher=self.dispatcher)
            self.notice(f"Submission {sid} is being cancelled.")
        elif action in ("hide", "unhide"):
            platform.set_hidden(sid, action == "hide", actor)
            self.notice(f"Submission {sid} is {'hidden from' if action == 'hide' else 'shown on'} the leaderboard.")
        else:  # the route only lets the actions above through
            raise NotFound(f"no action {action!r}")
        self.back(f"{self.prefix}submissions/{sid}")


# -- organizer pages -----------------------------------------------------------------------
@web.stream_request_body
class NewCompetitionHandler(StreamedUpload, PageHandler):
    """The create form; the bundle streams to disk as it arrives (`uploads.StreamedUpload`)."""

    upload_field = "bundle"

    def context(self) -> dict[str, Any]:
        return {"max_upload_mb": self.platform.config.max_upload_bytes // (1024 * 1024)}

    def get(self) -> None:
        actor = self.require_login()
        self.platform.require_organizer_role(actor)
        self.show("create.html", problems=[], error=None, filename="", **self.context())

    async def post(self) -> None:
        filename = ""
        try:
            path = self.uploaded_file()  # first: it raises what prepare refused (login, XSRF)
            actor = self.require_login()
            filename = path.name
            slug, warnings = await self.run_blocking(self.platform.create_competition, path, actor)
            warnings += await self.run_blocking(unknown_user_notes, self.platform.organizers(slug, actor)["co_organizers"])
        except BundleError as exc:
            self.set_status(400)
            self.render_page("create.html", problems=[str(p) for p in exc.problems], filename=filename,
                             error=None, notices=[], **self.context())
            return
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.set_status(exc.status)
            self.render_page("create.html", error=str(exc), problems=[], filename=filename, notices=[],
                             **self.context())
            return
        self.notice(f"Competition {slug!r} created.")
        lifecycle = self.platform.lifecycle(slug, actor)
        self.notice(upload_notice(lifecycle, "the Publish button of its Lifecycle page opens it to everyone"),
                    "info")
        for warning in warnings:
            self.notice(f"warning: {warning}", "info")
        self.redirect(self.competition_url(slug))


class EditYamlHandler(PageHandler):
    def get(self, slug: str) -> None:
        actor = self.require_login()
        text = self.platform.competition_yaml(slug, actor)
        comp = self.platform.competition_detail(slug, actor)
        # What an upload of it would warn about, in view for as long as it is true.
        warnings = self.platform.current_warnings(slug, actor)
        self.show("edit.html", comp=comp, yaml_text=text, problems=[], warnings=warnings)

    async def post(self, slug: str) -> None:
        actor = self.require_login()
        text = self.get_body_argument("yaml", "") or ""
        edit = await self.run_blocking(self.platform.save_competition_yaml, slug, text, actor)
        comp = self.platform.competition_detail(slug, actor)
        if edit.problems:
            self.set_status(400)
            self.render_page("edit.html", comp=comp, yaml_text=text, problems=edit.problems,
                             warnings=edit.warnings, notices=[])
            return
        # The saved text again, with this save's warnings (an unknown key is dropped once said).
        self.render_page("edit.html", comp=comp, yaml_text=self.platform.competition_yaml(slug, actor), problems=[],
                         warnings=edit.warnings, notices=[{"kind": "ok", "text": "competition.yaml saved."}])


def _organizer_detail(handler: PageHandler, slug: str) -> dict[str, Any]:
    """The competition as its organizers see it; 403 for anyone else."""
    actor = handler.require_login()
    comp = handler.platform.competition_detail(slug, actor)
    if not comp.get("is_organizer"):
        raise Forbidden(f"only the organizers of {slug!r} may see this page")
    return comp


def _phases_page(handler: PageHandler, slug: str) -> dict[str, Any]:
    """What phases.html shows: the competition, each phase's solutions and what rerunning it would run
    (by phase number)."""
    comp = _organizer_detail(handler, slug)
    solutions = {p["phase"]: p["solutions"] for p in handler.platform.phase_solutions(slug, handler.actor)}
    reruns = {p["number"]: handler.platform.rerun_count(slug, p["number"], handler.actor) for p in comp["phases"]}
    return {"comp": comp, "solutions": solutions, "reruns": reruns}


def confirm_field(handler: PageHandler) -> Optional[int]:
    """The count a confirmation form sends back (None when it sends none)."""
    raw = handler.get_body_argument("confirm", "") or ""
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise PlatformError(f"confirm: must be the count you were shown, got {raw[:20]!r}")
    return int(raw)


class PhasesHandler(PageHandler):
    def get(self, slug: str) -> None:
        self.show("phases.html", **_phases_page(self, slug))


class PhaseActionHandler(PageHandler):
    """`competitions/<slug>/phases/<n>/(open|close|dates|migrate|baselines)`."""

    def post(self, slug: str, number: str, action: str) -> None:
        actor = self.require_login()
        n = int(number)
        platform = self.platform
        try:
            if action == "open":
                platform.open_phase_now(slug, n, actor)
                self.notice(f"Phase {n} is open.")
            elif action == "close":
                platform.close_phase_now(slug, n, actor)
                self.notice(f"Phase {n} is closed.")
            elif action == "dates":
                start = parse_datetime(self.get_body_argument("start", ""), "start")
                end = parse_datetime(self.get_body_argument("end", ""), "end")
                platform.set_phase_dates(slug, n, start, end, actor)
                self.notice(f"Dates of phase {n} saved.")
            elif action == "baselines":
                done = platform.run_baselines(slug, n, actor)
                runs = done["submissions"]
                self.notice(f"{len(runs)} baseline{'' if len(runs) == 1 else 's'} of phase {n} submitted"
                            + (f" ({', '.join(str(r['id']) for r in runs)})" if runs else "") + ".")
                for skipped in done["skipped"]:
                    self.notice(f"solution {skipped['solution']} ({skipped['name']}) not run: {skipped['reason']}.", "error")
            else:
                try:
                    ids = platform.migrate_submissions(slug, n, actor, confirm=confirm_field(self))
                except CountChanged as exc:
                    # Shown again with the count now, to be confirmed.
                    self.notice(str(exc), "error")
                    self.redirect(self.competition_url(slug, f"/phases/{n}/confirm/migrate"))
                    return
                self.notice(f"{len(ids)} submission{'' if len(ids) == 1 else 's'} of phase {n} "
                            f"re-run in phase {n + 1}.")
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            # The phases again, with why the change was refused.
            self.set_status(exc.status)
            self.render_page("phases.html", **_phases_page(self, slug),
                             notices=[{"kind": "error", "text": f"phase {n}: {exc}"}])
            return
        self.redirect(self.competition_url(slug, "/phases"))


class ParticipantsHandler(PageHandler):
    def get(self, slug: str) -> None:
        actor = self.require_login()
        participants = self.platform.participants(slug, actor)
        comp = self.platform.competition_detail(slug, actor)
        organizers = self.platform.organizers(slug, actor)
        self.show("participants.html", comp=comp, participants=participants, organizers=organizers)

    def post(self, slug: str) -> None:
        actor = self.require_login()
        username = self.get_body_argument("username", "") or ""
        status = self.get_body_argument("status", "") or ""
        self.platform.set_registration(slug, username, status, actor)
        self.notice(f"{username}: {status}{_LEAVES_BOARDS.get(status, '')}.")
        self.redirect(self.competition_url(slug, "/participants"))


# What a participant's new status does to the boards, said in the notice.
_LEAVES_BOARDS = {m.REMOVED: " (off every leaderboard)", m.BANNED: " (off every leaderboard; may not register again)"}


class ParticipantsBulkHandler(PageHandler):
    """`participants/bulk`: the checked participants of the participants page, one status for all."""

    def post(self, slug: str) -> None:
        actor = self.require_login()
        status = self.get_body_argument("status", "") or ""
        names = self.get_body_arguments("usernames")
        try:
            if status == "reinstate":
                results = self.platform.bulk_reinstate(slug, names, actor)
            else:
                results = self.platform.bulk_set_registration(slug, names, status, actor)
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.notice(str(exc), "error")
        else:
            changed = [r["username"] for r in results if "error" not in r]
            if changed and status == "reinstate":
                self.notice(f"{', '.join(changed)}: reinstated, approved and back on the leaderboards.")
            elif changed:
                self.notice(f"{', '.join(changed)}: {status}{_LEAVES_BOARDS.get(status, '')}.")
            for r in results:
                if "error" in r:
                    self.notice(r["error"], "error")
        self.redirect(self.competition_url(slug, "/participants"))


class OrganizersPageHandler(PageHandler):
    """`organizers`: the co-organizers form of the participants page (comma- or space-separated names)."""

    async def post(self, slug: str) -> None:
        actor = self.require_login()
        names = [n for n in re.split(r"[\s,]+", self.get_body_argument("usernames", "") or "") if n]
        try:
            after = self.platform.set_organizers(slug, names, actor)
            after["notes"] += await self.run_blocking(unknown_user_notes, after["co_organizers"])
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.notice(str(exc), "error")
        else:
            named = ", ".join(after["co_organizers"]) or "nobody"
            self.notice(f"Co-organizers: {named}. They must log in with exactly these hub user names.")
            for note in after["notes"]:
                self.notice(note, "info")
        self.redirect(self.competition_url(slug, "/participants"))


class ExportPageHandler(PageHandler):
    def get(self, slug: str) -> None:
        self.show("export.html", comp=_organizer_detail(self, slug))


class ExportDownloadHandler(PageHandler):
    async def get(self, slug: str) -> None:
        actor = self.require_login()
        light = self.get_query_argument("light", "") in ("1", "true", "yes")
        tmp = Path(tempfile.mkdtemp(prefix="compete-export-"))
        try:
            name = f"{slug}{'-light' if light else ''}.zip"
            out = await self.run_blocking(
                self.platform.export_competition, slug, tmp / name, light=light, actor=actor
            )
            await self.send_file(out, filename=name, content_type="application/zip")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class StatisticsPage(PageHandler):
    """A statistics page: each table's chart (drawn off the event loop, kept by its data) above the table."""

    async def show_statistics(self, stats: dict[str, Any], csv_base: str, **context: Any) -> None:
        charts = await self.run_blocking(statistics_charts, stats)
        sections = []
        for chart, tables in SECTIONS:
            if not all(name in stats for name in tables):
                continue
            sections.append({
                "name": chart or tables[0], "title": TITLES.get(chart) or TABLE_TITLES[tables[0]],
                "chart": charts.get(chart) if chart else None,
                "tables": [{"name": name, "data": stats[name], "csv_url": f"{csv_base}?table={name}",
                            "caption": TABLE_TITLES.get(name) or TITLES.get(name)} for name in tables],
            })
        self.show("statistics.html", stats=stats, sections=sections, summary=dict(stats["summary"]["rows"]),
                  csv_base=csv_base, column_titles=COLUMN_TITLES, fresh_for=self.platform.statistics.fresh_for,
                  **context)

    async def send_statistics_csv(self, name: str, slug: Optional[str]) -> None:
        table = self.get_query_argument("table", "") or ""
        if not table:
            raise PlatformError("say which table: ?table=per_day, participants, failures, durations, histogram"
                                + ("" if slug else ", queues or competitions"))
        text = await self.run_blocking(self.platform.statistics_csv, table, self.actor, slug)
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="{safe_filename(f"{name}-{table}.csv")}"')
        self.finish(text)


class CompetitionStatisticsHandler(StatisticsPage):
    """`competitions/<slug>/statistics`: the competition's statistics (its organizers)."""

    async def get(self, slug: str) -> None:
        comp = _organizer_detail(self, slug)
        stats = await self.run_blocking(self.platform.competition_statistics, slug, self.actor)
        await self.show_statistics(stats, self.competition_url(slug, "/statistics.csv"), comp=comp)


class CompetitionStatisticsCsvHandler(StatisticsPage):
    async def get(self, slug: str) -> None:
        self.require_login()
        await self.send_statistics_csv(f"{slug}-statistics", slug)


class PlatformStatisticsHandler(StatisticsPage):
    """`admin/statistics`: the platform's statistics, each queue's workers and each competition (admins)."""

    async def get(self) -> None:
        actor = self.require_login()
        stats = await self.run_blocking(self.platform.platform_statistics, actor)
        await self.show_statistics(stats, f"{self.prefix}admin/statistics.csv", comp=None)


class PlatformStatisticsCsvHandler(StatisticsPage):
    async def get(self) -> None:
        self.require_login()
        await self.send_statistics_csv("platform-statistics", None)
class LifecycleHandler(PageHandler):
    """`competitions/<slug>/lifecycle`: publish, make private (and its link), archive, invite, delete."""

    STATUSES = {"draft": m.DRAFT, "publish": m.PUBLISHED, "private": m.PRIVATE, "archive": m.ARCHIVED}

    def context(self, slug: str) -> dict[str, Any]:
        comp = _organizer_detail(self, slug)
        lifecycle = self.platform.lifecycle(slug, self.actor)
        link = None
        if lifecycle["secret"]:
            link = (f"{self.request.protocol}://{self.request.host}{self.competition_url(slug)}?"
                    + urlencode({"secret": lifecycle["secret"]}))
        return {"comp": comp, "lifecycle": lifecycle, "private_link": link}

    def get(self, slug: str) -> None:
        self.show("lifecycle.html", **self.context(slug))

    def post(self, slug: str) -> None:
        actor = self.require_login()
        action = self.get_body_argument("action", "") or ""
        try:
            if action == "delete":
                done = self.platform.delete_competition(slug, self.get_body_argument("confirm", "").strip(), actor)
                self.notice(f"{slug} is deleted with its {done['submissions']} submission(s); "
                            f"{len(done['datasets'])} stored file(s) no other competition used are removed.")
                self.redirect(self.prefix)
                return
            if action in self.STATUSES:
                after = self.platform.set_lifecycle(slug, self.STATUSES[action], actor)
                self.notice(f"{slug} is {after['status']} now.")
            elif action == "rotate":
                self.platform.rotate_secret(slug, actor)
                self.notice("A new private link is made; the old one opens nothing any more.")
            elif action == "invite":
                done = self.platform.invite(slug, self.get_body_argument("usernames", ""), actor)
                self.notice(f"Invited: {', '.join(done['invited']) or 'nobody new'}"
                            + (f"; already in: {', '.join(done['already'])}" if done["already"] else "") + ".")
                for skipped in done["skipped"]:
                    self.notice(f"{skipped['username']} not invited: {skipped['reason']}.", "error")
            else:
                raise PlatformError(f"unknown action {action[:40]!r}; one of publish, private, archive, draft, "
                                    "rotate, invite, delete")
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            # The panel again, with why the change was refused.
            self.set_status(exc.status)
            self.render_page("lifecycle.html", **self.context(slug), notices=[{"kind": "error", "text": str(exc)}])
            return
        self.redirect(self.competition_url(slug, "/lifecycle"))


# -- queues and admin ----------------------------------------------------------------------
def human_size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    size = float(value)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


class QueuesHandler(PageHandler):
    def context(self, actor) -> dict[str, Any]:
        competitions = self.platform.organized_competitions(actor)
        # The form is offered to those who may create a queue; `create_queue` decides.
        can_create = bool(competitions) or self.platform.may_create_competitions(actor)
        # Admins also see which process dispatches (the dispatcher lease).
        lease = self.platform.dispatcher_lease(actor) if actor.is_admin else None
        return {"queues": self.platform.list_queues(actor), "competitions": competitions,
                "can_create": can_create, "lease": lease}

    def get(self) -> None:
        actor = self.require_login()
        self.show("queues.html", form={"name": "", "competition": None}, error=None, **self.context(actor))

    async def post(self) -> None:
        actor = self.require_login()
        name = (self.get_body_argument("name", "") or "").strip()
        competition = self.get_body_argument("competition", "") or None
        try:
            await self.run_blocking(self.platform.create_queue, name, actor, competition=competition)
        except (Forbidden, NotFound):
            raise
        except PlatformError as exc:
            self.set_status(exc.status)
            self.render_page("queues.html", error=str(exc), form={"name": name, "competition": competition},
                             notices=[], **self.context(actor))
            return
        self.notice(f"Queue {name!r} created: download its credentials to attach a worker.")
        self.redirect(f"{self.prefix}queues/{name}")


class QueueHandler(PageHandler):
    def get(self, name: str) -> None:
        actor = self.require_login()
        self.show("queue.html", queue=self.platform.queue_detail(name, actor))


class QueueRotateHandler(PageHandler):
    async def post(self, name: str) -> None:
        actor = self.require_login()
        await self.run_blocking(self.platform.rotate_credentials, name, actor)
        self.notice(f"Queue {name!r} has new credentials: the old ones no longer attach. "
                    "Download these and attach each machine again.")
        self.redirect(f"{self.prefix}queues/{name}")


class QueueCredentialsHandler(PageHandler):
    def get(self, name: str) -> None:
        actor = self.require_login()
        data = self.platform.worker_credentials(name, actor)
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Disposition", f'attachment; filename="{safe_filename(name)}-credentials.json"')
        self.set_header("Cache-Control", "no-store")
        self.finish(data)


class AdminHandler(PageHandler):
    def get(self) -> None:
        actor = self.require_login()
        storage = self.platform.storage_use(actor)  # admins only: refuses anyone else
        self.show(
            "admin.html",
            competitions=self.platform.list_competitions(),
            queues=self.platform.list_queues(actor),
            lease=self.platform.dispatcher_lease(actor),
            storage=storage,
            human_size=human_size,
        )


# -- routes -------------------------------------------------------------------------------
def page_routes(prefix: str) -> list[tuple[str, type]]:
    """The page routes under `prefix` (which ends with a slash)."""
    slug = r"([a-z0-9][a-z0-9-]*)"
    comp = rf"{prefix}competitions/{slug}"
    return [
        (rf"{prefix}", CompetitionListHandler),
        (rf"{prefix}login", LoginHandler),
        (rf"{prefix}new", NewCompetitionHandler),
        (rf"{comp}/?", CompetitionHandler),
        (rf"{comp}/register", RegisterHandler),
        (rf"{comp}/logo", LogoHandler),
        (rf"{comp}/phases/([0-9]{{1,9}})/(starting-kit|public-data)", PhaseDownloadHandler),
        (rf"{comp}/phases/([0-9]{{1,9}})/open-in-lab", OpenInLabHandler),
        (rf"{comp}/leaderboard", LeaderboardHandler),
        (rf"{comp}/leaderboard\.csv", LeaderboardCsvHandler),
        (rf"{comp}/submit", SubmitHandler),
        (rf"{comp}/submissions", SubmissionsHandler),
        (rf"{comp}/edit", EditYamlHandler),
        (rf"{comp}/phases", PhasesHandler),
        (rf"{comp}/phases/([0-9]{{1,9}})/(open|close|dates|migrate|baselines)", PhaseActionHandler),
        (rf"{comp}/participants", ParticipantsHandler),
        (rf"{comp}/participants/bulk", ParticipantsBulkHandler),
        (rf"{comp}/organizers", OrganizersPageHandler),
        (rf"{comp}/export", ExportPageHandler),
        (rf"{comp}/export\.zip", ExportDownloadHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})", SubmissionHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})/(select|unselect|rerun|cancel|hide|unhide)", SubmissionActionHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})/files/([A-Za-z0-9._-]+)", SubmissionFileHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})/download", SubmittedFileHandler),
        (rf"{prefix}submissions/([0-9]{{1,9}})/logs/([0-9]{{1,9}})/([a-z_]+)/(stdout|stderr)", SubmissionLogHandler),
        (rf"{prefix}queues", QueuesHandler),
        (rf"{prefix}queues/([a-z0-9][a-z0-9-]*)", QueueHandler),
        (rf"{prefix}queues/([a-z0-9][a-z0-9-]*)/credentials", QueueCredentialsHandler),
        (rf"{prefix}queues/([a-z0-9][a-z0-9-]*)/rotate", QueueRotateHandler),
        (rf"{prefix}admin", AdminHandler),
        (rf"{comp}/statistics", CompetitionStatisticsHandler),
        (rf"{comp}/statistics\.csv", CompetitionStatisticsCsvHandler),
        (rf"{prefix}admin/statistics", PlatformStatisticsHandler),
        (rf"{prefix}admin/statistics\.csv", PlatformStatisticsCsvHandler),
        (rf"{comp}/lifecycle", LifecycleHandler),
    ]
