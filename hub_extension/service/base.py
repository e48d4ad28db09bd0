"""Request handler base classes of the competition service.

`BaseHandler` turns the hub identity of a request (a HubOAuth cookie set by the
OAuth login, or an `Authorization: token ...` header) into an
`hub_extension.app.Actor`, renders pages with the Jinja environment and turns
platform errors into HTTP answers.  `ApiHandler` speaks JSON.  Handlers hold no
rules: they parse a request, call one `Platform` method with the actor, and
write what it returns.

Roles come from the scopes of the token that made the request (`actor_from_hub_model`):
a hub admin's token limited to `access:services!service=competitions` is a participant.

XSRF: a request authenticated by the hub cookie must carry the XSRF token when
it changes something (form field `_xsrf`, header `X-XSRFToken`, or `?_xsrf=`);
a request authenticated by a token header is exempt, as in JupyterHub itself.

A page opened by a browser that is logged in to the hub but not yet to the
service (it holds the hub's session cookie, no service login) goes through the
OAuth login at once and comes back logged in (`follow_hub_session`), once: a
short-lived marker cookie keeps a failed OAuth login from looping.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

from jupyterhub.services.auth import HubOAuthenticated, HubOAuthCallbackHandler, UserNotAllowed
from markupsafe import Markup, escape
from tornado import web

from ..app import ORGANIZERS_GROUP, Actor, Forbidden, PlatformError
from ..bundles.model import BundleError
from .readers import Answers, answer_json, json_default

log = logging.getLogger("compete.service")

ANONYMOUS = Actor(None)
# The custom scopes that decide a request's role (declared in jupyterhub_config.py).  Only
# the scopes of the token that made the request count, never who its owner is:
# - ADMIN_SCOPES: the platform's admin powers: `admin-ui`, held by the hub's `admin`
#   role only (JupyterHub allows no custom scope in that role, and `admin-ui` opens
#   nothing of the hub's REST API by itself), or the custom admin scope, for a role
#   an operator makes;
# - CREATE_SCOPE: create competitions and queues, and run the ones you organize (the
#   role of the group `organizers`, or any role a hub admin gives it to);
# - ORGANIZE_SCOPE: run the competitions that name you as an organizer (every user holds it).
# A token with none of them (e.g. only `access:services!service=competitions`, or a
# single-user server's token by default) acts as a participant, even for a hub admin.
ADMIN_SCOPE = "custom:competitions:admin"
ADMIN_SCOPES = frozenset({"admin-ui", ADMIN_SCOPE})
CREATE_SCOPE = "custom:competitions:create"
ORGANIZE_SCOPE = "custom:competitions:organize"
FILE_CHUNK = 256 * 1024
# Participant-made HTML (an executed notebook, detailed results) runs nothing on our origin.
SANDBOX_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Whole numbers in a query string (offsets, phase numbers) stay far inside a database integer.
MAX_QUERY_INT = 2**31 - 1
# JupyterHub's SESSION_COOKIE_NAME: set at login and cleared at logout, on the hub's base URL
# ("/" by default), so every service's pages receive it.  Imported from the hub's handlers it
# would load the whole hub application into the service.
HUB_SESSION_COOKIE = "jupyterhub-session-id"
# Set before sending a browser with a hub session through the OAuth login: while it lasts,
# a browser that came back without a login (the login failed) sees the page as anonymous.
HUB_LOGIN_TRIED_COOKIE = "compete-hub-login-tried"
HUB_LOGIN_TRIED_SECONDS = 600

# Short codes of HTTP errors raised by tornado or by the hub glue.
_HTTP_CODES = {
    400: "bad_request",
    401: "login_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "limit_reached",
    500: "internal_error",
    502: "hub_unavailable",
}


@functools.lru_cache(maxsize=1)
def service_version() -> str:
    """The installed version (read from the package metadata once: /health asks often)."""
    try:
        return metadata.version("jupyter-compete")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def describe_error(exc: Optional[BaseException], status: int, actor: Actor) -> tuple[int, str, str, dict[str, Any]]:
    """(status, code, message, extra fields) of an error answer."""
    if isinstance(exc, BundleError):
        problems = [str(p) for p in exc.problems]
        message = f"the bundle has {len(problems)} problem(s); nothing was created or changed"
        return 400, "bundle_invalid", message, {"problems": problems}
    if isinstance(exc, Forbidden) and actor.is_anonymous:
        return 401, "login_required", f"log in first: {exc}", {}
    if isinstance(exc, PlatformError):
        return exc.status, exc.code, str(exc), dict(getattr(exc, "extra", None) or {})
    if isinstance(exc, web.HTTPError):
        message = exc.log_message % exc.args if exc.log_message and exc.args else (exc.log_message or "")
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "error")
        return exc.status_code, code, message or exc.reason or _HTTP_CODES.get(exc.status_code, "error"), {}
    if status >= 500:
        return status, "internal_error", "an unexpected error; the service log has the details", {}
    return status, _HTTP_CODES.get(status, "error"), "", {}


def actor_from_hub_model(model: dict[str, Any]) -> Actor:
    """The actor of a hub user model (`/hub/api/user`), whose `scopes` are the request token's.

    The hub's `admin` flag and the group `organizers` give nothing by themselves:
    admin powers need one of ADMIN_SCOPES in the token, creating competitions
    needs CREATE_SCOPE (or an admin scope), and running the competitions that name the
    user needs one of those or ORGANIZE_SCOPE.  A token without them acts as
    a participant.
    """
    scopes = set(model.get("scopes") or ())
    is_admin = bool(ADMIN_SCOPES & scopes)
    may_create = is_admin or CREATE_SCOPE in scopes
    groups = set(model.get("groups") or ())
    if may_create:
        # A hub role may grant the custom scope instead of the group membership.
        groups.add(ORGANIZERS_GROUP)
    else:
        groups.discard(ORGANIZERS_GROUP)
    return Actor(
        str(model["name"]),
        is_admin=is_admin,
        groups=frozenset(groups),
        organizer_powers=may_create or ORGANIZE_SCOPE in scopes,
    )


class XsrfError(web.HTTPError):
    code = "xsrf"

    def __init__(self, detail: str):
        super().__init__(
            403,
            "the XSRF token is missing or wrong (%s): reload the page, or send the `_xsrf` value "
            "of the `_xsrf` cookie as the X-XSRFToken header",
            detail,
        )


class HubAuthFromSettings:
    """Handlers share the application's `hub_auth` (a HubOAuth, or a stand-in in tests)."""

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, value):  # HubAuthenticated's setter; the application's object wins
        raise AttributeError("hub_auth is set in the application settings")


class OAuthCallbackHandler(HubAuthFromSettings, HubOAuthCallbackHandler):
    """`{prefix}oauth_callback`: finishes the hub's OAuth login and sets the service cookie."""


class BaseHandler(HubAuthFromSettings, HubOAuthenticated, web.RequestHandler):
    """A request with a hub identity.

    After `prepare`, `self.actor` is who is asking (anonymous when not logged
    in), `self.hub_user` the hub's user model (or None) and
    `self.token_authenticated` says whether a token header authenticated it.
    """

    actor: Actor = ANONYMOUS
    hub_user: Optional[dict[str, Any]] = None
    token_authenticated = False
    # Pages log in a browser that has a hub session at once; API clients never get a redirect.
    follows_hub_session = True
    # The hub knows the user, but their token lacks the scope to use this service.
    access_denied = False
    _authenticating = False
    _xsrf_failure: Optional[str] = None

    # -- shortcuts -------------------------------------------------------------------
    @property
    def platform(self):
        return self.settings["platform"]

    @property
    def dispatcher(self):
        return self.settings.get("dispatcher")

    @property
    def prefix(self) -> str:
        return self.settings["service_prefix"]

    @property
    def hub_prefix(self) -> str:
        return self.settings["hub_prefix"]

    async def stream_file(self, path: Path) -> None:
        """Send the file at `path` as the body, in chunks (headers are the caller's)."""
        self.set_header("Content-Length", str(path.stat().st_size))
        with path.open("rb") as fh:
            while True:
                chunk = fh.read(FILE_CHUNK)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        self.finish()

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a slow platform call (bundle import, export, upload) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings.get("blocking_pool"), functools.partial(fn, *args, **kwargs))

    async def read_board(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A leaderboard read (`readers.BoardReaders.NAMES`): in the reader processes when the service has
        them, else on the blocking pool.  `answer_json` is `leaderboard_answer` with its page as JSON text."""

        def here() -> Any:
            if name == "answer_json":
                return self.run_blocking(answer_json, self.platform.leaderboard_answer, *args,
                                         answers=self.settings.setdefault("board_answers", Answers()), **kwargs)
            return self.run_blocking(getattr(self.platform, name), *args, **kwargs)

        readers = self.settings.get("board_readers")
        if readers is None:
            return await here()
        return await readers.read(name, *args, fallback=here, **kwargs)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Content-Security-Policy", "frame-ancestors 'self'")

    # -- identity --------------------------------------------------------------------
    async def prepare(self) -> None:
        await self.authenticate()
        self.follow_hub_session()

    def follow_hub_session(self) -> None:
        """Send an anonymous page request that carries a hub session through the OAuth login, once."""
        if not self.follows_hub_session or self.request.method not in ("GET", "HEAD"):
            return
        tried = self.get_cookie(HUB_LOGIN_TRIED_COOKIE)
        if not self.actor.is_anonymous or self.hub_user:
            if tried:
                self.clear_cookie(HUB_LOGIN_TRIED_COOKIE, path=self.prefix)
            return
        if tried or not self.get_cookie(HUB_SESSION_COOKIE) or not getattr(self.hub_auth, "login_url", ""):
            return
        self.set_cookie(HUB_LOGIN_TRIED_COOKIE, "1", path=self.prefix, max_age=HUB_LOGIN_TRIED_SECONDS,
                        httponly=True, samesite="Lax")
        self.redirect(self.get_login_url())
        raise web.Finish()

    async def authenticate(self) -> None:
        self._authenticating = True
        try:
            model = await self.hub_auth.get_user(self, sync=False)
        finally:
            self._authenticating = False
        if self._xsrf_failure is not None:
            raise XsrfError(self._xsrf_failure)
        if model:
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                # Known to the hub, but their token may not use this service.
                self.access_denied = True
                raise web.HTTPError(
                    403, "your hub token may not use the competition service (it lacks the scope "
                    "access:services!service=%s); ask a hub admin", self.settings.get("service_name", "competitions"))
        self._hub_auth_user_cache = model
        self.hub_user = model
        self.token_authenticated = bool(getattr(self, "_token_authenticated", False))
        if model and model.get("kind", "user") == "user":
            self.actor = actor_from_hub_model(model)
        else:
            # Services and unknown callers act as nobody.
            self.actor = ANONYMOUS
        secret = self.get_query_argument("secret", None)
        if secret:
            # A private competition's link: the platform decides what it opens (`app.actors.may_see`).
            self.actor = dataclasses.replace(self.actor, secret=secret[:200])

    def get_current_user(self) -> Optional[dict[str, Any]]:
        return getattr(self, "_hub_auth_user_cache", None)

    def check_xsrf_cookie(self) -> None:
        # Tornado calls this before `prepare`, when nobody is known yet; the real
        # check runs while the hub cookie is read (token requests are exempt).
        if not self._authenticating:
            return
        try:
            super().check_xsrf_cookie()
        except web.HTTPError as exc:
            self._xsrf_failure = exc.log_message or "mismatch"
            raise

    def require_login(self) -> Actor:
        """The logged-in actor; anonymous browsers are sent to the hub login."""
        if self.access_denied:
            raise web.HTTPError(403, "your hub account may not use the competition service; ask a hub admin")
        if self.actor.is_anonymous:
            if self.request.method in ("GET", "HEAD"):
                self.redirect(self.get_login_url())
                raise web.Finish()
            raise Forbidden("this needs a logged-in user")
        return self.actor

    # -- pages -----------------------------------------------------------------------
    @property
    def executor_warning(self) -> Optional[str]:
        """The executor fallback warning, shown to organizers and admins only."""
        warning = self.settings.get("executor_warning")
        actor = self.actor
        if warning and self.platform.may_create_competitions(actor):
            return warning
        return None

    def page_context(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "prefix": self.prefix,
            "hub_prefix": self.hub_prefix,
            "xsrf_form_html": Markup(self.xsrf_form_html()),
            "executor_warning": self.executor_warning,
            "static_url": self.static_url,
            "request_path": self.request.path,
            "logout_url": f"{self.hub_prefix}logout",
            "version": self.settings.get("compete_version", ""),
            # Carried on by forms of a page reached through a private competition's link.
            "link_secret": self.actor.secret,
        }

    def render_template(self, template_name: str, **context: Any) -> str:
        template = self.settings["jinja_env"].get_template(template_name)
        namespace = self.page_context()
        namespace.update(context)
        return template.render(**namespace)

    def render_page(self, template_name: str, **context: Any) -> None:
        """Render `templates/service/<template_name>` and finish the request."""
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(self.render_template(template_name, **context))

    # -- errors ----------------------------------------------------------------------
    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (PlatformError, BundleError)):
            log.info("%s %s refused for %s: %s", self.request.method, self.request.path,
                     self.actor.username or "anonymous", str(value).splitlines()[0] if str(value) else typ.__name__)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, code, message, extra = describe_error(exc, status_code, self.actor)
        if status == 401 and self.request.method in ("GET", "HEAD") and not self.token_authenticated:
            # A page that needs a login: send the browser to the hub's login.
            try:
                self.redirect(self.get_login_url())
                return
            except web.HTTPError:
                pass
        self.set_status(status)
        self.write_error_body(status, code, message, extra)

    def write_error_body(self, status: int, code: str, message: str, extra: dict[str, Any]) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        try:
            body = self.render_template("error.html", status=status, code=code, message=message, **extra)
        except Exception:  # noqa: BLE001 - the error page itself must never fail
            log.exception("could not render error.html")
            body = (
                f"<!doctype html><title>{status}</title><h1>{status} {escape(code)}</h1>"
                f"<p>{escape(message)}</p>"
            )
        self.finish(body)


class ApiHandler(BaseHandler):
    """A JSON endpoint: token or cookie auth, JSON errors, pagination."""

    follows_hub_session = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def require_login(self) -> Actor:
        if self.access_denied:
            raise web.HTTPError(403, "your hub account may not use the competition service; ask a hub admin")
        if self.actor.is_anonymous:
            raise Forbidden("this needs a logged-in user or an `Authorization: token ...` header")
        return self.actor

    def get_login_url(self) -> str:
        # API clients get 401, never a redirect.
        raise web.HTTPError(401, "log in first")

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, default=json_default))

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty)."""
        body = self.request.body
        if not body:
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlatformError(f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PlatformError("the request body must be a JSON object")
        return data

    def int_argument(self, name: str, default: Optional[int] = None, *, minimum: Optional[int] = None) -> Optional[int]:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise PlatformError(f"?{name}= must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise PlatformError(f"?{name}= must be at least {minimum}, got {value}")
        if abs(value) > MAX_QUERY_INT:
            raise PlatformError(f"?{name}= must be at most {MAX_QUERY_INT}, got {raw[:40]!r}")
        return value

    def paging(self) -> tuple[int, int]:
        """(offset, limit) from `?offset=&limit=`; limit defaults to 50 and is capped at 200."""
        offset = self.int_argument("offset", 0, minimum=0)
        limit = self.int_argument("limit", DEFAULT_LIMIT, minimum=1)
        return offset, min(limit, MAX_LIMIT)

    def write_page(self, items: list[Any], total: int, offset: int, limit: int) -> None:
        self.write_json({"items": items, "total": total, "offset": offset, "limit": limit})

    def write_error_body(self, status: int, code: str, message: str, extra: dict[str, Any]) -> None:
        if status == 401:
            self.set_header("WWW-Authenticate", 'token realm="JupyterHub"')
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"error": {"code": code, "message": message, **extra}}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, code, message, extra = describe_error(exc, status_code, self.actor)
        self.set_status(status)
        self.write_error_body(status, code, message, extra)


class NotFoundHandler(BaseHandler):
    """Unknown paths: a JSON 404 under the API, the error page elsewhere."""

    def prepare(self):  # noqa: D401 - no identity needed to say "not found"
        raise web.HTTPError(404, "no such page: %s", self.request.path)

    def write_error_body(self, status, code, message, extra):
        if self.request.path.startswith(f"{self.prefix}api/"):
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish(json.dumps({"error": {"code": code, "message": message}}))
        else:
            super().write_error_body(status, code, message, extra)
