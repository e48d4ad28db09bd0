"""Builds the tornado application of the competition service.

`make_app` joins the REST API (`api.api_routes`), the pages
(`pages.page_routes`), the OAuth callback and the static files under one
prefix (`/services/competitions/` when the hub runs it).  The hub identity
comes from `hub_auth`: a `HubOAuth` configured from the JUPYTERHUB_* variables
the hub gives its services, unless the caller passes another.
"""
from __future__ import annotations

import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import jinja2
from jupyterhub.services.auth import HubOAuth
from tornado import web

from ..resources import templates
from . import api, bulk_pages, editor_pages, fact_sheet_pages, forum_pages, message_pages, pages, profile_pages, run_data
from . import similarity_pages
from . import probing_pages
from . import team_pages
from . import reproduce_pages
from .readers import BoardReaders
from .base import NotFoundHandler, OAuthCallbackHandler, service_version

SERVICE_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = templates("service")
STATIC_DIR = SERVICE_DIR / "static"
DEFAULT_PREFIX = "/services/competitions/"
access_log = logging.getLogger("tornado.access")
# A request slower than this is logged at INFO even when it succeeded.
SLOW_REQUEST_S = 1.0


def log_request(handler: web.RequestHandler) -> None:
    """The access log: errors and slow requests at INFO and above, other requests at DEBUG.

    Thousands of widgets poll leaderboards: a line for each of their
    answers would cost the service more than answering them.
    """
    status = handler.get_status()
    seconds = handler.request.request_time()
    if status >= 500:
        level = logging.ERROR
    elif status >= 400:
        level = logging.WARNING
    elif seconds >= SLOW_REQUEST_S:
        level = logging.INFO
    else:
        level = logging.DEBUG
    if access_log.isEnabledFor(level):
        access_log.log(level, "%d %s %.2fms", status, handler._request_summary(), 1000.0 * seconds)


def normalize_prefix(prefix: str) -> str:
    prefix = "/" + prefix.strip("/") + "/"
    return "/" if prefix == "//" else prefix


def make_jinja_env(template_dir: Path = TEMPLATE_DIR) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined if os.environ.get("COMPETE_STRICT_TEMPLATES") else jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def make_hub_auth(prefix: str, cache_max_age: int = 60):
    """A HubOAuth from the environment the hub gives a managed service."""
    return HubOAuth(
        api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
        base_url=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", prefix),
        cache_max_age=cache_max_age,
    )


def load_cookie_secret(home: Optional[str]) -> bytes:
    """The key that signs the service's cookies, kept in `home` so logins survive restarts."""
    if not home:
        return secrets.token_bytes(32)
    path = Path(home) / "service_cookie_secret"
    if path.is_file():
        data = bytes.fromhex(path.read_text().strip())
        if len(data) >= 32:
            return data
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data.hex())
    return data


def make_app(
    platform,
    *,
    prefix: str = DEFAULT_PREFIX,
    dispatcher=None,
    hub_auth=None,
    executor_warning: Optional[str] = None,
    cookie_secret: Optional[bytes] = None,
    hub_prefix: Optional[str] = None,
    board_readers: Any = "config",
    **settings: Any,
) -> web.Application:
    """The service application; `platform` is a `hub_extension.app.Platform`.

    `board_readers`: the processes that answer leaderboard reads
    (`readers.BoardReaders`); by default as many as `board_reader_processes`
    says, None for the service's own threads.  Whoever makes the application
    closes them (`app.settings["board_readers"].close()`).
    """
    prefix = normalize_prefix(prefix)
    if board_readers == "config":
        processes = platform.config.board_reader_processes
        board_readers = BoardReaders(platform.db.url, processes, platform.config.home) if processes > 0 else None
    if hub_auth is None:
        hub_auth = make_hub_auth(prefix)
    if hub_prefix is None:
        hub_prefix = getattr(hub_auth, "hub_prefix", None) or "/hub/"
    if cookie_secret is None:
        cookie_secret = load_cookie_secret(getattr(platform.config, "home", None))

    routes: list[Any] = [(rf"{prefix}oauth_callback", OAuthCallbackHandler)]
    routes += api.api_routes(prefix)
    routes += run_data.run_data_routes(prefix)
    routes += editor_pages.editor_page_routes(prefix)
    routes += forum_pages.forum_page_routes(prefix)
    routes += pages.page_routes(prefix)
    routes += bulk_pages.bulk_page_routes(prefix)
    routes += team_pages.team_page_routes(prefix)
    routes += profile_pages.profile_page_routes(prefix)
    routes += message_pages.message_page_routes(prefix)
    routes += fact_sheet_pages.fact_sheet_page_routes(prefix)
    routes += similarity_pages.similarity_page_routes(prefix)
    routes += probing_pages.probing_page_routes(prefix)
    routes += reproduce_pages.reproduce_page_routes(prefix)
    app_settings: dict[str, Any] = dict(
        platform=platform,
        dispatcher=dispatcher,
        hub_auth=hub_auth,
        service_prefix=prefix,
        hub_prefix=hub_prefix,
        jinja_env=make_jinja_env(),
        executor_warning=executor_warning,
        xsrf_cookies=True,
        cookie_secret=cookie_secret,
        static_path=str(STATIC_DIR),
        static_url_prefix=f"{prefix}static/",
        default_handler_class=NotFoundHandler,
        blocking_pool=ThreadPoolExecutor(max_workers=4, thread_name_prefix="compete-blocking"),
        board_readers=board_readers,
        compete_version=service_version(),
        login_url=getattr(hub_auth, "login_url", None) or f"{hub_prefix}login",
        log_function=log_request,
    )
    app_settings.update(settings)
    return web.Application(routes, **app_settings)
