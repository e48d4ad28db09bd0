"""The service in-process over real HTTP, with a stand-in for the hub's token lookup.

`ServiceServer` runs `make_app` with a real Platform on a free port, in a
thread of its own, with strict templates (an undefined name fails a render).
Its `hub_auth` is the real `HubOAuth` except for the one call that asks the
hub who a token belongs to (`user_for_token`).  Here the tokens of the people
of tests/support/builders.py (`USERS`) are:

- `token-<name>`: every scope the person holds, as jupyterhub_config.py grants
  them (the organize scope to everyone, the create scope to the group
  `organizers`, the admin scope to hub admins); what a browser login's OAuth
  token carries, and a full API token;
- `scoped-<name>`: only the scope to call the service (a down-scoped token);
- `narrow-<name>`: not even that.

Everything else is the hub's own code: the signed service cookie the OAuth
login sets, the XSRF checks, the login redirect, the scope check.  Clients:
`server.client(name)` sends a token header (the REST API, as scripts call it),
`server.cookie_client(name)` the service cookie with its XSRF header, and
`server.browser(name)` is a cookie session that posts forms with their
`_xsrf` field, as the pages do.  The real hub runs in
tests/hub_extension/service/test_api_matrix.py.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import threading
from typing import Any, Optional

import pytest
import requests
from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from hub_extension.service.app import make_app

PREFIX = "/services/competitions/"
ACCESS_SCOPE = "access:services!service=competitions"
ADMIN_SCOPE = "admin-ui"  # what the hub's admin role holds
CREATE_SCOPE = "custom:competitions:create"
ORGANIZE_SCOPE = "custom:competitions:organize"
SESSION_ID = "test-session"
EXECUTOR_WARNING = "Submissions run with the 'process' executor, which does not isolate them."

USERS: dict[str, dict[str, Any]] = {
    "olga": {"groups": ["organizers"]},
    "oscar": {"groups": ["organizers"]},
    "ann": {},
    "ben": {},
    "nora": {},
    "root": {"admin": True},
    # Not in the group, but holds the custom scope through a hub role.
    "sam": {"scopes": ["custom:competitions:create"]},
}


def role_scopes(name: str) -> list[str]:
    """The role scopes the hub gives `name` (see jupyterhub_config.py)."""
    fields = USERS[name]
    scopes = [ORGANIZE_SCOPE] + list(fields.get("scopes", []))
    if "organizers" in fields.get("groups", []):
        scopes.append(CREATE_SCOPE)
    if fields.get("admin"):
        scopes.append(ADMIN_SCOPE)
    return scopes


def token_for(name: str, kind: str = "token") -> str:
    """The stand-in's token of `name`: `token` (all their scopes), `scoped` or `narrow`."""
    return f"{kind}-{name}"


def user_model(token: Optional[str]) -> Optional[dict[str, Any]]:
    """The hub's model of the owner of a stand-in token (None: no such token)."""
    kind, _, name = (token or "").partition("-")
    if kind not in ("token", "scoped", "narrow") or name not in USERS:
        return None
    fields = USERS[name]
    scopes = [f"read:users:name!user={name}"] + ([ACCESS_SCOPE] if kind != "narrow" else [])
    if kind == "token":
        scopes += role_scopes(name)
    return {"kind": "user", "name": name, "admin": bool(fields.get("admin")),
            "groups": list(fields.get("groups", [])), "scopes": scopes}


class StandInHubAuth(HubOAuth):
    """HubOAuth that knows three tokens of each person, as the hub's roles would scope them."""

    def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
        return self._call_coroutine(sync, self._model_for, token)

    async def _model_for(self, token):
        return user_model(token)


class StandInHubAPI:
    """The one hub API call a service makes for a token (`GET /hub/api/user`), over real HTTP.

    For service processes started as the hub starts them (`python -m
    hub_extension.service` with `JUPYTERHUB_API_URL` = `api_url`): it answers
    with `user_model` of the token the request carries, 403 for any other.
    """

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                token = self.headers.get("Authorization", "").partition(" ")[2]
                model = user_model(token) if self.path.rstrip("/") == "/hub/api/user" else None
                body = json.dumps(model if model else {"error": "unknown token"}).encode()
                self.send_response(200 if model else 403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="stand-in-hub-api")
        self._thread.start()

    def service_environment(self, port: int) -> dict[str, str]:
        """The variables the hub gives the managed service listening on `port`."""
        return {"JUPYTERHUB_API_URL": self.api_url, "JUPYTERHUB_API_TOKEN": "unused",
                "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}", "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
                "JUPYTERHUB_CLIENT_ID": "service-competitions", "JUPYTERHUB_BASE_URL": "/"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_hub_auth() -> StandInHubAuth:
    return StandInHubAuth(
        api_token="unused", api_url="http://127.0.0.1:9/hub/api", hub_prefix="/hub/", base_url=PREFIX,
        oauth_client_id="service-competitions", oauth_redirect_uri=f"http://127.0.0.1{PREFIX}oauth_callback",
        access_scopes={ACCESS_SCOPE}, cache_max_age=0,
    )


class ServiceServer:
    """The service application on 127.0.0.1:<free port>, served from a background thread.

    `executor_warning` is the header warning of a platform on the process
    executor (None: no warning); `settings` go to `make_app`.
    """

    def __init__(self, platform, *, dispatcher=None, executor_warning: Optional[str] = EXECUTOR_WARNING,
                 **settings: Any):
        self.platform = platform
        self.dispatcher = dispatcher
        self.hub_auth = make_hub_auth()
        self.cookie_secret = b"service-tests-cookie-secret-0123"
        # Leaderboards are read in the service's threads unless a test asks for reader processes.
        settings.setdefault("board_readers", None)
        previous = os.environ.get("COMPETE_STRICT_TEMPLATES")
        os.environ["COMPETE_STRICT_TEMPLATES"] = "1"  # read when make_app builds its template environment
        try:
            self.app = make_app(platform, prefix=PREFIX, dispatcher=dispatcher, hub_auth=self.hub_auth,
                                executor_warning=executor_warning, cookie_secret=self.cookie_secret, **settings)
        finally:
            if previous is None:
                os.environ.pop("COMPETE_STRICT_TEMPLATES", None)
            else:
                os.environ["COMPETE_STRICT_TEMPLATES"] = previous
        self.port = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="service-server")

    # -- running ---------------------------------------------------------------------------
    def start(self) -> "ServiceServer":
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the service did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"the service failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(self.app, max_body_size=self.platform.config.max_upload_bytes + (1 << 20))
        server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.app.settings["blocking_pool"].shutdown(wait=False)
        if self.app.settings.get("board_readers") is not None:
            self.app.settings["board_readers"].close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    # -- identities ------------------------------------------------------------------------
    def login_cookie(self, name: str) -> dict[str, str]:
        """The service cookie the OAuth login of `name` sets: {"name": ..., "value": ...}."""
        value = web.create_signed_value(self.cookie_secret, self.hub_auth.cookie_name, token_for(name))
        return {"name": self.hub_auth.cookie_name, "value": value.decode()}

    # -- clients ---------------------------------------------------------------------------
    def client(self, name: Optional[str] = None, *, narrow: bool = False, scoped: bool = False) -> "Client":
        """Anonymous, or `name` with a token header (`scoped`: only the scope to call the service)."""
        session = requests.Session()
        if name:
            kind = "narrow" if narrow else "scoped" if scoped else "token"
            session.headers["Authorization"] = f"token {token_for(name, kind)}"
        return Client(self.base, session)

    def cookie_client(self, name: str) -> "Client":
        """`name` with the service cookie the OAuth login would have set, and its XSRF token."""
        cookie = self.login_cookie(name)
        xsrf_id = f"{SESSION_ID}:{hashlib.sha256(token_for(name).encode()).hexdigest()}".encode()
        xsrf = base64.urlsafe_b64encode(web.create_signed_value(self.cookie_secret, "_xsrf", xsrf_id)).rstrip(b"=")
        session = requests.Session()
        session.headers["Cookie"] = (f"{cookie['name']}={cookie['value']}; jupyterhub-session-id={SESSION_ID}; "
                                     f"_xsrf={xsrf.decode()}")
        return Client(self.base, session, xsrf=xsrf.decode())

    def browser(self, user: Optional[str] = None) -> "Browser":
        """A browser session of `user`, logged in (None: not logged in)."""
        return Browser(self, user)


class Client:
    """Requests to the REST API, with the XSRF header on unsafe ones when it has a token."""

    def __init__(self, base: str, session: requests.Session, xsrf: Optional[str] = None):
        self.base = base
        self.session = session
        self.xsrf = xsrf

    def request(self, method: str, path: str, *, with_xsrf: bool = True, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.xsrf and with_xsrf and method not in ("GET", "HEAD"):
            headers["X-XSRFToken"] = self.xsrf
        return self.session.request(method, self.base + path.lstrip("/"), headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)


class Browser(requests.Session):
    """A browser session of one hub user (None: not logged in): `get`, and `post` with the page's XSRF token."""

    def __init__(self, server: ServiceServer, user: Optional[str]):
        super().__init__()
        self.server = server
        self.user = user
        if user is not None:
            cookie = server.login_cookie(user)
            self.cookies.set(cookie["name"], cookie["value"], path="/")

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


def start_server(platform, **kwargs: Any) -> ServiceServer:
    """A started `ServiceServer` (stop it with `.stop()`)."""
    return ServiceServer(platform, **kwargs).start()


def visible_text(html: str) -> str:
    """A page without its tags, scripts and attributes: what a reader sees."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"(?s)<[^>]+>", " ", html))


def ok(response, status: int = 200):
    """`response` after checking its status (the page's start in the message when it differs)."""
    assert response.status_code == status, (response.status_code, response.url, response.text[:2000])
    return response


@pytest.fixture
def server(platform):
    """The service on the test's platform."""
    srv = ServiceServer(platform).start()
    yield srv
    srv.stop()
