"""The service's pages over real HTTP, with hub identities from a cookie (no tests here).

`PageServer` runs `make_app` on a free port in a thread of its own.  Its
`hub_auth` is the real `HubOAuth` except for the one call that asks the hub
who a token belongs to: here the token (from the cookie the browser would get
after the OAuth login, or an `Authorization: token ...` header) is simply a
user name from `USERS`.  So the XSRF checks, the login redirect and the
cookie/token split are the hub's own code.

`Browser` is a `requests.Session` logged in as one user: `get`, and `post`
with the XSRF token of its cookie, as a form in a page would send it.
"""
from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path
from typing import Any, Optional

import requests

from hub_extension.app import Platform
from tests.service import builders
from tests.service.api_harness import USERS, role_scopes  # name -> hub user model fields, as the API tests have them

PREFIX = "/services/competitions/"
LOGIN_COOKIE = "compete-test-login"
EXECUTOR_WARNING = "Submissions run with the 'process' executor, which does not isolate them."



def make_hub_auth(users: dict[str, dict[str, Any]]):
    from jupyterhub.services.auth import HubOAuth

    class NameTokenHubAuth(HubOAuth):
        """HubOAuth whose tokens are user names (the hub's answer, without a hub)."""

        def _get_token_cookie(self, handler):
            return handler.get_cookie(LOGIN_COOKIE) or None

        def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
            return self._call_coroutine(sync, self._model_for, token)

        async def _model_for(self, token):
            if token not in users:
                return None
            fields = users[token]
            return {
                "kind": "user",
                "name": token,
                "admin": bool(fields.get("admin")),
                "groups": list(fields.get("groups", [])),
                # What the service's OAuth token of a browser login carries.
                "scopes": ["access:services!service=competitions"] + role_scopes(token),
            }

    return NameTokenHubAuth(
        api_token="test-token", oauth_client_id="service-competitions", base_url=PREFIX, hub_prefix="/hub/",
        api_url="http://127.0.0.1:1/hub/api",
    )


class PageServer:
    """The service application on 127.0.0.1:<free port>, served from a thread."""

    def __init__(self, platform: Platform, *, executor_warning: Optional[str] = EXECUTOR_WARNING, dispatcher=None):
        self.platform = platform
        self.executor_warning = executor_warning
        self.dispatcher = dispatcher
        self.port: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="page-server", daemon=True)

    def start(self) -> "PageServer":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the page server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"the page server failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from tornado.httpserver import HTTPServer
        from tornado.netutil import bind_sockets

        from hub_extension.service.app import make_app

        app = make_app(
            self.platform,
            prefix=PREFIX,
            dispatcher=self.dispatcher,
            hub_auth=make_hub_auth(USERS),
            executor_warning=self.executor_warning,
            cookie_secret=b"page-tests-cookie-secret-0123456789abcdef",
        )
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app, max_body_size=self.platform.config.max_upload_bytes + (1 << 20))
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()
            app.settings["blocking_pool"].shutdown(wait=False)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def browser(self, user: Optional[str] = None) -> "Browser":
        return Browser(self, user)


class Browser(requests.Session):
    """A browser session of one hub user (None: not logged in)."""

    def __init__(self, server: PageServer, user: Optional[str]):
        super().__init__()
        self.server = server
        self.user = user
        if user is not None:
            self.cookies.set(LOGIN_COOKIE, user, path="/")

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        if path.startswith("/"):
            return f"http://127.0.0.1:{self.server.port}{path}"
        return self.server.base + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 60)
        return super().get(self.url(path), **kwargs)

    def xsrf(self) -> str:
        """The `_xsrf` value a page's forms carry (from the `_xsrf` cookie, fetched once)."""
        token = self.cookies.get("_xsrf")
        if token is None:
            page = self.get("")
            assert page.status_code == 200, page.text[:500]
            found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
            token = self.cookies.get("_xsrf") or (found.group(1) if found else None)
        assert token, "the pages set no _xsrf cookie"
        return token

    def post(self, path: str, data: Optional[dict] = None, *, xsrf: bool = True, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        data = dict(data or {})
        if xsrf:
            data.setdefault("_xsrf", self.xsrf())
            if "files" in kwargs:
                # Upload forms stream their body: their action carries the token, as the pages write it.
                kwargs.setdefault("params", {"_xsrf": data["_xsrf"]})
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 120)
        return super().post(self.url(path), data=data, **kwargs)

    def follow(self, response: requests.Response) -> requests.Response:
        """The page a redirect answer leads to."""
        assert response.status_code in (301, 302, 303), (response.status_code, response.text[:500])
        return self.get(response.headers["Location"])


def start_server(platform: Platform, **kwargs: Any) -> PageServer:
    previous = os.environ.get("COMPETE_STRICT_TEMPLATES")
    os.environ["COMPETE_STRICT_TEMPLATES"] = "1"
    try:
        return PageServer(platform, **kwargs).start()
    finally:
        if previous is None:
            os.environ.pop("COMPETE_STRICT_TEMPLATES", None)
        else:
            os.environ["COMPETE_STRICT_TEMPLATES"] = previous


def make_platform(tmp_path: Path) -> Platform:
    return Platform(home=str(tmp_path / "home"))


def visible_text(html: str) -> str:
    """A page without its tags, scripts and attributes: what a reader sees."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"(?s)<[^>]+>", " ", html))


__all__ = ["PREFIX", "Browser", "PageServer", "USERS", "builders", "make_platform", "start_server", "visible_text"]


def ok(response, status: int = 200):
    """`response` after checking its status (the page's start in the message when it differs)."""
    assert response.status_code == status, (response.status_code, response.url, response.text[:2000])
    return response
