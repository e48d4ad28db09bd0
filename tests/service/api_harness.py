"""The service's REST API over real HTTP, in-process, with a stand-in for the hub's token check.

`ApiServer` runs `make_app` on a free port in a thread of its own.  Its
`hub_auth` is the real `HubOAuth` except for the one call that asks the hub
who a token belongs to (`user_for_token`): here a token is `token-<name>`
for the people of tests/service/builders.py.  Everything else is the hub's
own code: the signed service cookie the OAuth login sets, the XSRF checks,
the scope check.  The real hub runs in tests/service/test_api_matrix.py.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from typing import Any, Optional

import requests
from tornado import web

PREFIX = "/services/competitions/"
ACCESS_SCOPE = "access:services!service=competitions"
ADMIN_SCOPE = "admin-ui"  # what the hub's admin role holds
CREATE_SCOPE = "custom:competitions:create"
ORGANIZE_SCOPE = "custom:competitions:organize"
SESSION_ID = "test-session"

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


def make_hub_auth():
    from jupyterhub.services.auth import HubOAuth

    class StandInHubAuth(HubOAuth):
        """HubOAuth that knows three tokens of each person, as the hub's roles would scope them.

        `token-<name>`: every scope the person holds (as jupyterhub_config.py
        grants them: the organize scope to everyone, the create scope to the
        group `organizers`, the admin scope to hub admins); `scoped-<name>`:
        only the scope to call the service (a down-scoped token);
        `narrow-<name>`: not even that.
        """

        def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
            return self._call_coroutine(sync, self._model_for, token)

        async def _model_for(self, token):
            kind, _, name = (token or "").partition("-")
            if kind not in ("token", "scoped", "narrow") or name not in USERS:
                return None
            fields = USERS[name]
            scopes = [f"read:users:name!user={name}"] + ([ACCESS_SCOPE] if kind != "narrow" else [])
            if kind == "token":
                scopes += role_scopes(name)
            return {"kind": "user", "name": name, "admin": bool(fields.get("admin")),
                    "groups": list(fields.get("groups", [])), "scopes": scopes}

    return StandInHubAuth(
        api_token="unused", api_url="http://127.0.0.1:9/hub/api", hub_prefix="/hub/", base_url=PREFIX,
        oauth_client_id="service-competitions", oauth_redirect_uri=f"http://127.0.0.1{PREFIX}oauth_callback",
        access_scopes={ACCESS_SCOPE}, cache_max_age=0,
    )


class ApiServer:
    """The application on 127.0.0.1:<free port>, served from a background thread."""

    def __init__(self, platform, *, dispatcher=None, **settings: Any):
        from hub_extension.service.app import make_app

        self.hub_auth = make_hub_auth()
        self.cookie_secret = b"x" * 32
        self.app = make_app(platform, prefix=PREFIX, dispatcher=dispatcher, hub_auth=self.hub_auth,
                            cookie_secret=self.cookie_secret, **settings)
        self.platform = platform
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="api-server")
        self.port = 0

    def _run(self) -> None:
        async def main():
            from tornado.httpserver import HTTPServer
            from tornado.netutil import bind_sockets

            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            server = HTTPServer(self.app, max_body_size=self.platform.config.max_upload_bytes + (1 << 20))
            server.add_sockets(sockets)
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await self._stop.wait()
            server.stop()

        asyncio.run(main())

    def start(self) -> "ApiServer":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the API server did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.app.settings["blocking_pool"].shutdown(wait=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    # -- clients ------------------------------------------------------------------------
    def client(self, name: Optional[str] = None, *, narrow: bool = False, scoped: bool = False) -> "Client":
        """Anonymous, or `name` with a token header (`scoped`: only the scope to call the service)."""
        session = requests.Session()
        if name:
            kind = "narrow" if narrow else "scoped" if scoped else "token"
            session.headers["Authorization"] = f"token {kind}-{name}"
        return Client(self.base, session)

    def cookie_client(self, name: str) -> "Client":
        """`name` with the service cookie the OAuth login would have set, and its XSRF token."""
        token = f"token-{name}"
        cookie = web.create_signed_value(self.cookie_secret, self.hub_auth.cookie_name, token).decode()
        xsrf_id = f"{SESSION_ID}:{hashlib.sha256(token.encode()).hexdigest()}".encode()
        xsrf = base64.urlsafe_b64encode(web.create_signed_value(self.cookie_secret, "_xsrf", xsrf_id)).rstrip(b"=")
        session = requests.Session()
        session.headers["Cookie"] = (f"{self.hub_auth.cookie_name}={cookie}; jupyterhub-session-id={SESSION_ID}; "
                                     f"_xsrf={xsrf.decode()}")
        return Client(self.base, session, xsrf=xsrf.decode())


class Client:
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
