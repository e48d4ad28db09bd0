"""The REST API of the competition service, under `{prefix}api/v1/`.

Every handler parses the request, calls one `Platform` method
with the actor, and writes the JSON it returns; errors are
`{"error": {"code", "message"}}`.  `openapi.yaml` beside this file documents
every route, and a test checks that the document and `api_routes` agree.

Uploads (bundles, submissions) are streamed to a temporary file, capped at
`c.Compete.max_upload_bytes`; send either `multipart/form-data` with a `file`
field, or the raw bytes with `?filename=NAME`.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import yaml
from sqlalchemy import text
from tornado import web

from ..app import NotFound, PlatformError
from ..app.fact_sheets import answers_from_json
from ..app.lifecycle import upload_notice
from .base import SANDBOX_CSP, ApiHandler, service_version
from .editor_api import PhaseAddHandler, editor_api_routes
from .probing_api import probing_api_routes
from .fact_sheet_api import fact_sheet_api_routes
from .similarity_api import similarity_api_routes
from .profile_api import ProfileHandler
from .forum_api import forum_api_routes
from .message_api import message_api_routes
from .hub_users import unknown_user_notes
from .team_api import team_api_routes
from .reproduce_api import reproduce_api_routes
from .uploads import StreamedUpload, safe_upload_name
from .zip_stream import send_zip

log = logging.getLogger("compete.service")
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")

SLUG = r"(?P<slug>[a-z0-9][a-z0-9-]*)"
# Ids in paths fit a database integer (longer ones are no route: 404).
NUMBER = r"(?P<number>[0-9]{1,9})"
SUBMISSION = r"(?P<submission_id>[0-9]{1,18})"
QUEUE = r"(?P<name>[a-z0-9][a-z0-9-]*)"


def _flag(value: Optional[str]) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


# -- base classes --------------------------------------------------------------------------------
class FileResponse:
    """Mixin: stream a file to the client."""

    async def send_file(self, path: Path, *, filename: Optional[str] = None, content_type: str,
                        inline: bool = False, sandbox: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise web.HTTPError(404, "the file is gone from the store")
        self.set_header("Content-Type", content_type)
        if filename:
            disposition = "inline" if inline else "attachment"
            self.set_header("Content-Disposition", f'{disposition}; filename="{safe_upload_name(filename, "file")}"')
        if sandbox:
            self.set_header("Content-Security-Policy", SANDBOX_CSP)
        await self.stream_file(path)


@web.stream_request_body
class UploadHandler(StreamedUpload, ApiHandler):
    """An API request whose body is a file (see `uploads.StreamedUpload`)."""


# -- service -------------------------------------------------------------------------------------
class HealthCheck:
    """The database check of /health, in a thread of its own (never queued behind uploads or
    imports in the blocking pool), shared by concurrent polls and reused for `max_age` seconds.

    A full integrity check reads the whole SQLite file, so it runs at the first
    poll and then at most every `full_every` seconds; polls in between run a
    query that costs the same whatever the database holds.
    """

    def __init__(self, max_age: float = 2.0, full_every: float = 300.0):
        self.max_age = max_age
        self.full_every = full_every
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compete-health")
        self.checked_at = float("-inf")
        self.full_checked_at = float("-inf")
        self.last: Optional[str] = None
        self.running: Optional[asyncio.Future] = None

    async def problem(self, engine) -> Optional[str]:
        loop = asyncio.get_running_loop()
        if loop.time() - self.checked_at < self.max_age:
            return self.last
        if self.running is None:
            full = loop.time() - self.full_checked_at >= self.full_every
            if full:
                self.full_checked_at = loop.time()
            self.running = asyncio.ensure_future(loop.run_in_executor(self.pool, database_problem, engine, full))
        running = self.running
        try:
            self.last = await asyncio.shield(running)
            self.checked_at = loop.time()
        finally:
            if self.running is running and running.done():
                self.running = None
        return self.last


def database_problem(engine, full: bool = True) -> Optional[str]:
    """What is wrong with the database (None when it answers correctly).

    SQLite, `full`: `PRAGMA quick_check` reads every page of the file (a
    corrupted `compete.sqlite` fails it); else a read of the schema.  Other
    databases: a trivial query.
    """
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite" and full:
                rows = [row[0] for row in conn.execute(text("PRAGMA quick_check"))]
                if rows != ["ok"]:
                    return "; ".join(str(r) for r in rows[:5])
            elif engine.dialect.name == "sqlite":
                conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar()
            else:
                conn.execute(text("SELECT 1")).scalar()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


class HealthHandler(ApiHandler):
    """No login needed: the hub and load balancers poll it.  503 when the database fails its check."""

    async def prepare(self) -> None:
        pass

    async def get(self) -> None:
        problem = await self.settings.setdefault(
            "health_check", HealthCheck(self.settings.get("health_max_age", 2.0))).problem(self.platform.db.engine)
        if problem:
            # The detail goes to the log only: it may name files of the service's machine.
            log.error("health check: the database fails: %s", problem)
            self.write_json({"status": "unavailable", "version": service_version(),
                             "message": "the database does not answer correctly; see the service log"}, status=503)
            return
        self.write_json({"status": "ok", "version": service_version()})


class OpenApiHandler(ApiHandler):
    async def prepare(self) -> None:
        pass

    def get(self) -> None:
        doc = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
        doc["info"]["version"] = service_version()
        doc["servers"] = [{"url": f"{self.prefix}api/v1"}]
        self.write_json(doc)


class WhoAmIHandler(ApiHandler):
    def get(self) -> None:
        actor = self.require_login()
        self.write_json({
            "name": actor.username,
            "admin": actor.is_admin,
            "groups": sorted(actor.groups),
            "may_create_competitions": actor.is_admin or "organizers" in actor.groups,
        })


# -- competitions --------------------------------------------------------------------------------
class CompetitionsHandler(UploadHandler):
    upload_default_name = "bundle.zip"

    def get(self) -> None:
        offset, limit = self.paging()
        found = self.platform.list_competitions(
            search=self.get_query_argument("search", None) or None,
            status=self.get_query_argument("status", None) or None,
            actor=self.actor,
        )
        self.write_page(found[offset:offset + limit], len(found), offset, limit)

    async def post(self) -> None:
        path = self.uploaded_file()
        slug, warnings = await self.run_blocking(self.platform.create_competition, path, self.actor)
        named = self.platform.organizers(slug, self.actor)["co_organizers"]
        warnings = warnings + await self.run_blocking(unknown_user_notes, named)
        self.set_header("Location", f"{self.prefix}api/v1/competitions/{slug}")
        lifecycle = self.platform.lifecycle(slug, self.actor)
        self.write_json({"slug": slug, "warnings": warnings, "lifecycle": lifecycle["status"],
                         "notice": upload_notice(lifecycle, f"POST {self.prefix}api/v1/competitions/{slug}/lifecycle "
                                                            '{"status": "published"} opens it to everyone')},
                        status=201)


class CompetitionHandler(ApiHandler):
    def get(self, slug: str) -> None:
        self.write_json(self.platform.competition_detail(slug, self.actor))

    async def delete(self, slug: str) -> None:
        confirm = self.json_body().get("confirm")
        if confirm is None:
            confirm = self.get_query_argument("confirm", None)
        if not isinstance(confirm, str):
            raise PlatformError(f'send {{"confirm": "{slug}"}}: the slug, typed, confirms the deletion')
        self.write_json(await self.run_blocking(self.platform.delete_competition, slug, confirm,
                                                self.require_login()))


class LifecycleHandler(ApiHandler):
    """GET the lifecycle (organizers); POST {"status": "draft" | "published" | "private" | "archived"}."""

    def get(self, slug: str) -> None:
        self.write_json(self.platform.lifecycle(slug, self.require_login()))

    def post(self, slug: str) -> None:
        status = self.json_body().get("status")
        if not isinstance(status, str):
            raise PlatformError('send {"status": "draft" | "published" | "private" | "archived"}')
        self.write_json(self.platform.set_lifecycle(slug, status, self.require_login()))


class SecretHandler(ApiHandler):
    """POST: a new secret link for a private competition (the old one stops working)."""

    def post(self, slug: str) -> None:
        self.write_json(self.platform.rotate_secret(slug, self.require_login()))


class InvitationsHandler(ApiHandler):
    """POST {"usernames": [...]}: register these hub users, approved."""

    def post(self, slug: str) -> None:
        usernames = self.json_body().get("usernames")
        if not isinstance(usernames, list):
            raise PlatformError('send {"usernames": ["ada", "grace"]}')
        self.write_json(self.platform.invite(slug, usernames, self.require_login()))


class LogoHandler(FileResponse, ApiHandler):
    async def get(self, slug: str) -> None:
        path = self.platform.competition_logo(slug, self.actor)
        head = Path(path).read_bytes()[:16]
        kinds = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"),
                 (b"RIFF", "image/webp"))
        content_type = next((t for sig, t in kinds if head.startswith(sig)), "application/octet-stream")
        # Private: a draft's or a private competition's logo must not stay in a shared cache.
        self.set_header("Cache-Control", "private, max-age=300")
        await self.send_file(path, content_type=content_type)


class CompetitionYamlHandler(ApiHandler):
    def get(self, slug: str) -> None:
        self.write_json({"yaml": self.platform.competition_yaml(slug, self.actor)})

    async def put(self, slug: str) -> None:
        body = self.json_body()
        text = body.get("yaml")
        if not isinstance(text, str):
            raise PlatformError('send {"yaml": "<the new competition.yaml>"}')
        edit = await self.run_blocking(self.platform.save_competition_yaml, slug, text, self.actor)
        if edit.problems:
            self.set_status(400)
            self.write_error_body(400, "bundle_invalid",
                                  f"competition.yaml has {len(edit.problems)} problem(s); nothing was saved",
                                  {"problems": edit.problems, "warnings": edit.warnings})
            return
        self.write_json({"saved": True, "warnings": edit.warnings,
                         "competition": self.platform.competition_detail(slug, self.actor)})


class ExportHandler(FileResponse, ApiHandler):
    async def get(self, slug: str) -> None:
        light = _flag(self.get_query_argument("light", None))
        tmp = Path(tempfile.mkdtemp(prefix="compete-export-"))
        try:
            name = f"{slug}{'-light' if light else ''}.zip"
            out = await self.run_blocking(self.platform.export_competition, slug, tmp / name,
                                          light=light, actor=self.actor)
            await self.send_file(out, filename=name, content_type="application/zip")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# -- phases --------------------------------------------------------------------------------------
class PhasesHandler(PhaseAddHandler):
    """GET the phases; POST a new one (the editor's)."""

    def get(self, slug: str) -> None:
        self.write_json({"items": self.platform.phases_view(slug, self.actor)})


class PhaseActionHandler(ApiHandler):
    """POST open / close / migrate on one phase; GET migrate: what it would re-run (the count to confirm)."""

    def get(self, slug: str, number: str, action: str) -> None:
        if action != "migrate":
            raise web.HTTPError(405, "GET works on migrate only (what it would re-run); POST %s", action)
        self.write_json(self.platform.migration_plan(slug, int(number), self.actor))

    def post(self, slug: str, number: str, action: str) -> None:
        n = int(number)
        if action == "open":
            self.write_json(self.platform.open_phase_now(slug, n, self.actor))
        elif action == "close":
            self.write_json(self.platform.close_phase_now(slug, n, self.actor))
        else:
            ids = self.platform.migrate_submissions(slug, n, self.actor, confirm=self.json_body().get("confirm"))
            self.write_json({"submissions": ids})


class PhaseRerunHandler(ApiHandler):
    """GET: what rerunning the whole phase would run (the count to confirm); POST {"confirm": N}: run it."""

    def get(self, slug: str, number: str) -> None:
        self.write_json(self.platform.rerun_plan(slug, int(number), self.actor))

    async def post(self, slug: str, number: str) -> None:
        confirm = self.json_body().get("confirm")
        done = await self.run_blocking(self.platform.rerun_phase, slug, int(number), self.actor, confirm=confirm)
        self.write_json(done, status=201)


class PhaseZipHandler(ApiHandler):
    """Every submission of the phase, its files, outputs and logs, as one streamed zip (organizers)."""

    async def get(self, slug: str, number: str) -> None:
        bundle = await self.run_blocking(self.platform.phase_bundle, slug, int(number), self.actor)
        await send_zip(self, bundle)


class PhaseDatesHandler(ApiHandler):
    def put(self, slug: str, number: str) -> None:
        body = self.json_body()
        if "start" not in body:
            raise PlatformError('send {"start": "2030-01-31T12:00", "end": "2030-03-01T00:00" or null} (UTC)')
        self.write_json(self.platform.set_phase_dates(slug, int(number), body.get("start"), body.get("end"),
                                                      self.actor))


class PhaseBaselinesHandler(ApiHandler):
    """GET the phase's solutions; POST runs each as a baseline submission of the caller (organizers)."""

    def get(self, slug: str, number: str) -> None:
        n = int(number)
        found = next((p for p in self.platform.phase_solutions(slug, self.actor) if p["phase"] == n), None)
        if found is None:
            raise NotFound(f"competition {slug!r} has no phase {n}")
        self.write_json({"phase": n, "items": found["solutions"]})

    async def post(self, slug: str, number: str) -> None:
        actor = self.require_login()
        result = await self.run_blocking(self.platform.run_baselines, slug, int(number), actor)
        self.write_json(result, status=201)


class PhaseDownloadHandler(FileResponse, ApiHandler):
    async def get(self, slug: str, number: str, what: str) -> None:
        path, filename = self.platform.phase_download(slug, int(number), what, self.actor)
        await self.send_file(path, filename=filename, content_type="application/zip")


class OpenInLabHandler(ApiHandler):
    """POST: the phase's starting kit and public data into the caller's JupyterLab."""

    async def post(self, slug: str, number: str) -> None:
        actor = self.require_login()
        # `lab_access` in the settings (tests); else the hub's environment, read after the permission checks.
        result = await self.run_blocking(self.platform.open_in_lab, slug, int(number), actor,
                                         self.settings.get("lab_access"), page=f"{self.prefix}competitions/{slug}")
        self.write_json(result)


# -- registration --------------------------------------------------------------------------------
class RegistrationHandler(ApiHandler):
    def post(self, slug: str) -> None:
        actor = self.require_login()
        accept = bool(self.json_body().get("accept_terms")) or _flag(self.get_query_argument("accept_terms", None))
        status = self.platform.register(slug, actor.username, actor, accept_terms=accept)
        self.write_json({"competition": slug, "username": actor.username, "status": status}, status=201)


class ParticipantsHandler(ApiHandler):
    def get(self, slug: str) -> None:
        offset, limit = self.paging()
        rows = self.platform.participants(slug, self.actor)
        self.write_page(rows[offset:offset + limit], len(rows), offset, limit)


class ParticipantHandler(ApiHandler):
    def put(self, slug: str, username: str) -> None:
        status = self.json_body().get("status")
        if not isinstance(status, str):
            raise PlatformError('send {"status": "approved" | "denied" | "removed" | "banned" | "pending"}')
        self.platform.set_registration(slug, username, status, self.actor)
        self.write_json({"competition": slug, "username": username, "status": status})


class ParticipantsBulkHandler(ParticipantHandler):
    """POST: one status for many participants; PUT: the participant whose user name is `bulk`."""

    def post(self, slug: str) -> None:
        body = self.json_body()
        status = body.get("status")
        if not isinstance(status, str):
            raise PlatformError('send {"usernames": [...], "status": "approved" | "denied" | "removed" | "banned" '
                                '| "reinstate"}')
        if status == "reinstate":
            results = self.platform.bulk_reinstate(slug, body.get("usernames"), self.actor)
        else:
            results = self.platform.bulk_set_registration(slug, body.get("usernames"), status, self.actor)
        self.write_json({"competition": slug, "status": status, "results": results})

    def put(self, slug: str) -> None:  # type: ignore[override]
        super().put(slug, "bulk")


class OrganizersHandler(ApiHandler):
    """GET: the creator and co-organizers (organizers); PUT: name the co-organizers (creator, admins)."""

    def get(self, slug: str) -> None:
        self.write_json(self.platform.organizers(slug, self.actor))

    async def put(self, slug: str) -> None:
        after = self.platform.set_organizers(slug, self.json_body().get("usernames"), self.actor)
        after["notes"] += await self.run_blocking(unknown_user_notes, after["co_organizers"])
        self.write_json(after)


# -- submissions ---------------------------------------------------------------------------------
class SubmissionsHandler(UploadHandler):
    upload_default_name = "submission.zip"

    def get(self, slug: str) -> None:
        offset, limit = self.paging()
        page = self.platform.submissions_view(
            slug, self.actor,
            username=self.get_query_argument("username", None) or None,
            phase=self.int_argument("phase", None, minimum=1),
            status=self.get_query_argument("status", None) or None,
            offset=offset, limit=limit,
        )
        self.write_page(page["items"], page["total"], page["offset"], page["limit"])

    async def post(self, slug: str) -> None:
        path = self.uploaded_file()
        phase = self.field("phase")
        if phase is not None and not phase.isdigit():
            raise PlatformError(f"phase must be a phase number, got {phase!r}")
        actor = self.actor
        sid = await self.run_blocking(
            self.platform.submit, slug, path, username=actor.username, phase=int(phase) if phase else None,
            actor=actor, description=(self.field("description") or "")[:1000],
            fact_sheet=answers_from_json(self.field("fact_sheet")),
        )
        self.set_header("Location", f"{self.prefix}api/v1/submissions/{sid}")
        self.write_json(await self.run_blocking(self.platform.submission_view, sid, actor), status=201)


class SubmissionsLeftHandler(ApiHandler):
    def get(self, slug: str) -> None:
        actor = self.require_login()
        self.write_json(self.platform.submissions_left(slug, actor.username, self.int_argument("phase", None, minimum=1),
                                                       actor=actor))


class SubmissionHandler(ApiHandler):
    def get(self, submission_id: str) -> None:
        self.write_json(self.platform.submission_view(int(submission_id), self.actor))

    async def delete(self, submission_id: str) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.delete_submission, int(submission_id), actor))


class SubmissionBundleHandler(ApiHandler):
    """One submission's files, outputs and logs as a streamed zip with its manifest (organizers)."""

    async def get(self, submission_id: str) -> None:
        bundle = await self.run_blocking(self.platform.submission_bundle, int(submission_id), self.actor)
        await send_zip(self, bundle)


class SubmissionLogHandler(ApiHandler):
    def get(self, submission_id: str, task: str, step: str, stream: str) -> None:
        text = self.platform.submission_log(int(submission_id), self.actor, int(task), step, stream)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(text)


ARTIFACT_TYPES = {".html": "text/html; charset=UTF-8", ".ipynb": "application/x-ipynb+json",
                  ".json": "application/json", ".txt": "text/plain; charset=UTF-8"}


class SubmissionArtifactHandler(FileResponse, ApiHandler):
    async def get(self, submission_id: str, name: str) -> None:
        path = self.platform.submission_artifact(int(submission_id), self.actor, name)
        content_type = ARTIFACT_TYPES.get(Path(path).suffix, "application/octet-stream")
        await self.send_file(path, filename=f"{submission_id}-{Path(path).name}", content_type=content_type,
                             inline=content_type.startswith("text/"), sandbox=True)


class SubmissionFileHandler(FileResponse, ApiHandler):
    async def get(self, submission_id: str) -> None:
        path, filename = self.platform.submission_file(int(submission_id), self.actor)
        await self.send_file(path, filename=filename, content_type="application/octet-stream")


class SubmissionActionHandler(ApiHandler):
    """POST rerun / cancel."""

    def post(self, submission_id: str, action: str) -> None:
        sid = int(submission_id)
        if action == "rerun":
            new_id = self.platform.rerun(sid, self.actor)
            self.write_json(self.platform.submission_view(new_id, self.actor), status=201)
        else:
            self.write_json(self.platform.cancel_submission(sid, self.actor, self.dispatcher))


class SubmissionFlagHandler(ApiHandler):
    """PUT hidden / selected: {"hidden": bool} or {"selected": bool}."""

    def put(self, submission_id: str, flag: str) -> None:
        value = self.json_body().get(flag)
        if not isinstance(value, bool):
            raise PlatformError(f'send {{"{flag}": true}} or {{"{flag}": false}}')
        if flag == "hidden":
            self.write_json(self.platform.set_hidden(int(submission_id), value, self.actor))
        else:
            self.write_json(self.platform.set_selected(int(submission_id), value, self.actor))


# -- leaderboards --------------------------------------------------------------------------------
class LeaderboardHandler(ApiHandler):
    """GET the board: every row by default, or `?offset=&limit=` (rows by rank) plus the viewer's own row.

    The ETag comes from the board's version counter, read before the board: an
    `If-None-Match` that still matches is answered 304 from one small read.
    Both reads are one call to the board readers (processes of their own,
    `readers`): thousands of widgets poll boards, and the service's loop stays
    free for everything else (`/health` included).
    """

    async def get(self, slug: str) -> None:
        phase = self.int_argument("phase", None, minimum=1)
        board = self.get_query_argument("board", None) or None
        offset = self.int_argument("offset", 0, minimum=0)
        limit = self.int_argument("limit", None, minimum=1)
        query = f"phase={phase}&board={board}&offset={offset}&limit={limit}"
        etag, body = await self.read_board(
            "answer_json", slug, phase, actor=self.actor, board=board, offset=offset, limit=limit, query=query,
            if_none_match=if_none_match(self.request.headers.get("If-None-Match", "")))
        if etag is not None:
            self.set_header("Etag", etag)
        if body is None:
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(body)


def if_none_match(header: str) -> list[str]:
    """The entity tags of an `If-None-Match` header (weak ones compared as strong, as tornado does)."""
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


async def first_chunk(handler: Any, chunks: Any) -> str:
    """The first chunk of a generator of text, taken on the blocking pool (a wrong slug or board fails here,
    before any header is sent)."""
    try:
        return await handler.run_blocking(next, chunks)
    except BaseException:
        chunks.close()
        raise


async def stream_text(handler: Any, chunks: Any) -> None:
    """Write a generator's remaining text chunks as they come, each made on the blocking pool."""
    try:
        while (chunk := await handler.run_blocking(next, chunks, None)) is not None:
            handler.write(chunk)
            await handler.flush()
    finally:
        chunks.close()
    handler.finish()


class LeaderboardCsvHandler(ApiHandler):
    async def get(self, slug: str) -> None:
        phase = self.int_argument("phase", None, minimum=1)
        board = self.get_query_argument("board", None) or None
        chunks = self.platform.leaderboard_csv_chunks(slug, phase, actor=self.actor, board=board)
        first = await first_chunk(self, chunks)
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        name = f"{slug}-phase{phase or 'current'}{'-' + board if board else ''}-leaderboard.csv"
        self.set_header("Content-Disposition", f'attachment; filename="{safe_upload_name(name, "leaderboard.csv")}"')
        self.write(first)
        await stream_text(self, chunks)


class LeaderboardHistoryHandler(ApiHandler):
    async def get(self, slug: str) -> None:
        items = await self.read_board(
            "best_score_history",
            slug, self.int_argument("phase", None, minimum=1), self.get_query_argument("board", None) or None,
            self.actor)
        self.write_json({"items": items})


# -- queues --------------------------------------------------------------------------------------
class QueuesHandler(ApiHandler):
    def get(self) -> None:
        actor = self.require_login()
        self.write_json({"items": self.platform.list_queues(actor)})

    async def post(self) -> None:
        actor = self.require_login()
        body = self.json_body()
        name, competition = body.get("name"), body.get("competition")
        if not isinstance(name, str) or (competition is not None and not isinstance(competition, str)):
            raise PlatformError('send {"name": "my-gpus", "competition": "<slug>" (optional)}')
        info = await self.run_blocking(self.platform.create_queue, name, actor, competition=competition)
        self.write_json(info, status=201)


class QueueHandler(ApiHandler):
    def get(self, name: str) -> None:
        self.write_json(self.platform.queue_detail(name, self.require_login()))


class QueueCredentialsHandler(ApiHandler):
    def get(self, name: str) -> None:
        data = self.platform.worker_credentials(name, self.require_login())
        self.set_header("Content-Type", "application/json")
        self.set_header("Content-Disposition", f'attachment; filename="{name}-credentials.json"')
        self.finish(data)


class QueueRotateHandler(ApiHandler):
    async def post(self, name: str) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.rotate_credentials, name, actor))


# -- administration ------------------------------------------------------------------------------
class StorageHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.run_blocking(self.platform.storage_use, self.require_login()))


# -- statistics ----------------------------------------------------------------------------------
class CompetitionStatisticsHandler(ApiHandler):
    """GET a competition's statistics tables (its organizers and hub admins)."""

    async def get(self, slug: str) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.competition_statistics, slug, actor))


class PlatformStatisticsHandler(ApiHandler):
    """GET the platform's statistics tables (hub admins)."""

    async def get(self) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.platform_statistics, actor))


def api_routes(prefix: str) -> list[Any]:
    api = f"{prefix}api/v1"
    comp = f"{api}/competitions/{SLUG}"
    sub = f"{api}/submissions/{SUBMISSION}"
    return [
        (rf"{api}/health", HealthHandler),
        (rf"{api}/openapi.json", OpenApiHandler),
        (rf"{api}/me", WhoAmIHandler),
        (rf"{api}/competitions", CompetitionsHandler),
        (rf"{comp}", CompetitionHandler),
        (rf"{comp}/logo", LogoHandler),
        (rf"{comp}/yaml", CompetitionYamlHandler),
        (rf"{comp}/export", ExportHandler),
        (rf"{comp}/phases", PhasesHandler),
        (rf"{comp}/phases/{NUMBER}/(?P<action>open|close|migrate)", PhaseActionHandler),
        (rf"{comp}/phases/{NUMBER}/dates", PhaseDatesHandler),
        (rf"{comp}/phases/{NUMBER}/(?P<what>starting_kit|public_data)", PhaseDownloadHandler),
        (rf"{comp}/phases/{NUMBER}/open_in_lab", OpenInLabHandler),
        (rf"{comp}/phases/{NUMBER}/baselines", PhaseBaselinesHandler),
        (rf"{comp}/registration", RegistrationHandler),
        (rf"{comp}/participants", ParticipantsHandler),
        (rf"{comp}/participants/bulk", ParticipantsBulkHandler),
        (rf"{comp}/participants/(?P<username>[^/]+)", ParticipantHandler),
        (rf"{comp}/organizers", OrganizersHandler),
        (rf"{comp}/submissions", SubmissionsHandler),
        (rf"{comp}/submissions_left", SubmissionsLeftHandler),
        (rf"{comp}/leaderboard", LeaderboardHandler),
        (rf"{comp}/leaderboard\.csv", LeaderboardCsvHandler),
        (rf"{comp}/leaderboard/history", LeaderboardHistoryHandler),
        (rf"{sub}", SubmissionHandler),
        (rf"{sub}/logs/(?P<task>[0-9]+)/(?P<step>[a-z]+)/(?P<stream>[a-z]+)", SubmissionLogHandler),
        (rf"{sub}/artifacts/(?P<name>[a-z_]+)", SubmissionArtifactHandler),
        (rf"{sub}/file", SubmissionFileHandler),
        (rf"{sub}/(?P<action>rerun|cancel)", SubmissionActionHandler),
        (rf"{sub}/(?P<flag>hidden|selected)", SubmissionFlagHandler),
        (rf"{api}/queues", QueuesHandler),
        (rf"{api}/queues/{QUEUE}", QueueHandler),
        (rf"{api}/queues/{QUEUE}/credentials", QueueCredentialsHandler),
        (rf"{api}/queues/{QUEUE}/rotate", QueueRotateHandler),
        (rf"{api}/admin/storage", StorageHandler),
        (rf"{comp}/statistics", CompetitionStatisticsHandler),
        (rf"{api}/admin/statistics", PlatformStatisticsHandler),
        (rf"{comp}/phases/{NUMBER}/rerun", PhaseRerunHandler),
        (rf"{comp}/phases/{NUMBER}/submissions\.zip", PhaseZipHandler),
        (rf"{sub}/bundle\.zip", SubmissionBundleHandler),
        (rf"{comp}/lifecycle", LifecycleHandler),
        (rf"{comp}/secret", SecretHandler),
        (rf"{comp}/invitations", InvitationsHandler),
        *editor_api_routes(comp, NUMBER),
        *team_api_routes(comp),
        (rf"{api}/profile", ProfileHandler),
        *forum_api_routes(comp),
        *message_api_routes(api, comp),
        *fact_sheet_api_routes(comp, NUMBER),
        *similarity_api_routes(comp),
        *probing_api_routes(comp),
        *reproduce_api_routes(comp, sub, NUMBER),
    ]
