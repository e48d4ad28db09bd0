"""A real JupyterHub with the competitions service, once per test session, and its clients.

`hub` starts `jupyterhub -f jupyterhub_config.py` once per test session, as a
subprocess, through a test-only config file that loads the real one and
changes only what a second hub on the same machine needs: free ports, a
temporary COMPETE_HOME (hub and platform SQLite files, demo accounts), the
`process` executor (the Docker executor has its own tests), and an admin
service whose token the tests use for the hub's REST API.  Users' servers are
the real ones of the embedded default: `jupyterhub-singleuser` with JupyterLab
(a start takes a few seconds; tests start them only when they need one).  It
waits until the hub, the proxy and the competitions service answer, and stops
them at the end of the session.  `Hub` has the helpers: users, groups, tokens,
passwords, servers (and their contents API), and clients that go through the
proxy.

`demo_bundle_zip` and `sample_predictions_zip` are the demo's bundle and
predictions, zipped as people upload them.  The browser fixtures are in
tests/support/browser.py.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import quote, urljoin

import psutil
import pytest
import requests

from hub_extension.app import Platform, zip_folder
from hub_extension.embedded import (
    ACCOUNTS_FILE, AccountFile, leftover_processes, read_demo_accounts, stop_processes,
)

from .components import terminate
from .paths import DEMO as DEMO_BUNDLE
from .paths import REPO
from .queues import stop_default_queue

HUB_CONFIG = REPO / "jupyterhub_config.py"
SERVICE = "competitions"
SERVICE_PREFIX = f"/services/{SERVICE}/"
HUB_START_TIMEOUT = float(os.environ.get("COMPETE_TEST_HUB_TIMEOUT", "180"))
HUB_STOP_TIMEOUT = 45.0
ADMIN_SERVICE = "test-admin"


def demo_bundle_zip(tmp_path: Path, title: str) -> Path:
    """The demo bundle (templates/demo) under another title, zipped as an organizer uploads it."""
    folder = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, folder)
    yaml_path = folder / "competition.yaml"
    yaml_path.write_text(re.sub(r"^title: .*$", f'title: "{title}"', yaml_path.read_text(), count=1, flags=re.M))
    archive = tmp_path / "bundle.zip"
    zip_folder(folder, archive)
    return archive


def sample_predictions_zip(tmp_path: Path, name: str = "petal_rule") -> Path:
    """One of the demo's sample predictions, zipped as a participant uploads it."""
    archive = tmp_path / f"{name}.zip"
    zip_folder(DEMO_BUNDLE / "sample_submissions" / name, archive)
    return archive


# How long a browser test waits for one demo submission to be scored.
SCORING_TIMEOUT_S = 180


def wait_finished(client: "ServiceClient", submission: int, timeout: float = SCORING_TIMEOUT_S) -> dict:
    """Poll a submission through the API until it ends, and, Finished, until the leaderboards include it
    (the service ranks them apart from recording the result); its last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"api/v1/submissions/{submission}").json()
        if state["terminal"] and state.get("on_leaderboard") is not False:
            return state
        assert time.monotonic() < deadline, f"submission {submission} still {state['status']}"
        time.sleep(0.5)


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class HubError(AssertionError):
    """The hub did not start (the message ends with its log), or a call to its REST API failed."""


class ServiceClient:
    """HTTP through the proxy to the competitions service, as one hub user (or nobody).

    Paths are relative to the service prefix: `client.get("api/v1/health")`.
    With a token, requests carry `Authorization: token ...`; `session` may be
    a logged-in browser-like session (see `Hub.login`) instead.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, session: Optional[requests.Session] = None):
        self.base_url = base_url
        self.session = session or requests.Session()
        self.token = token
        if token:
            self.session.headers["Authorization"] = f"token {token}"

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/"))

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def xsrf_token(self) -> Optional[str]:
        """The service's XSRF cookie of a cookie session (the hub sets one of its own too)."""
        tokens = {cookie.path: cookie.value for cookie in self.session.cookies if cookie.name == "_xsrf"}
        return tokens.get(SERVICE_PREFIX) or tokens.get(SERVICE_PREFIX.rstrip("/"))

    def xsrf_headers(self) -> dict[str, str]:
        """The X-XSRFToken header for an unsafe request of a cookie session."""
        token = self.xsrf_token()
        return {"X-XSRFToken": token} if token else {}


@dataclasses.dataclass
class Hub:
    """A running hub: its address, home, log and an admin token for its REST API."""

    url: str  # the public address, through the proxy, ending in /
    home: Path
    log_path: Path
    admin_token: str
    process: subprocess.Popen
    start_seconds: float = 0.0

    # -- logs and state ------------------------------------------------------------------
    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no hub log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def service_url(self) -> str:
        return urljoin(self.url, SERVICE_PREFIX.lstrip("/"))

    def demo_accounts(self, role: Optional[str] = None) -> list:
        """The demo accounts the first start created (`DemoAccount`s), of one role or all."""
        return [a for a in read_demo_accounts(self.home) if role is None or a.role == role]

    # -- the hub's REST API ------------------------------------------------------------------
    def api(self, method: str, path: str, *, token: Optional[str] = None, expect: Iterable[int] = (200, 201, 204),
            **kwargs: Any) -> requests.Response:
        """Call `/hub/api/<path>` as the admin service (or with `token`); fails on an unexpected status."""
        kwargs.setdefault("timeout", 30)
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {token or self.admin_token}"
        resp = requests.request(method, urljoin(self.url, f"hub/api/{path.lstrip('/')}"), headers=headers, **kwargs)
        if expect and resp.status_code not in set(expect):
            raise HubError(f"{method} /hub/api/{path}: {resp.status_code} {resp.text[:500]}")
        return resp

    def create_user(self, name: Optional[str] = None, *, groups: Iterable[str] = (), admin: bool = False,
                    password: Optional[str] = None) -> str:
        """A hub user (a fresh unique name unless `name`), in `groups`; with `password`, able to log in."""
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        resp = self.api("POST", f"users/{name}", json={"admin": admin} if admin else None, expect=(201, 409))
        if resp.status_code == 409 and admin:
            self.api("PATCH", f"users/{name}", json={"admin": True})
        for group in groups:
            self.add_to_group(group, [name])
        if password is not None:
            self.set_password(name, password)
        return name

    def add_to_group(self, group: str, users: Iterable[str]) -> None:
        self.api("POST", f"groups/{group}", expect=(201, 409))
        self.api("POST", f"groups/{group}/users", json={"users": list(users)})

    def remove_from_group(self, group: str, users: Iterable[str]) -> None:
        self.api("DELETE", f"groups/{group}/users", json={"users": list(users)})

    def set_password(self, name: str, password: str) -> None:
        """Let `name` log in through the hub's login page (the embedded default's account file)."""
        AccountFile(self.home / ACCOUNTS_FILE).set_password(name, password)

    def token_for(self, name: str, scopes: Optional[list[str]] = None, note: str = "test") -> str:
        """A new API token of user `name`: their own permissions, or only `scopes`."""
        body: dict[str, Any] = {"note": note, "expires_in": 3600}
        if scopes is not None:
            body["scopes"] = scopes
        return self.api("POST", f"users/{name}/tokens", json=body).json()["token"]

    def start_server(self, name: str, timeout: float = 90) -> dict:
        """Start `name`'s single-user server (JupyterLab); returns the hub's server model once it is ready."""
        self.api("POST", f"users/{name}/server", expect=(201, 202, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"users/{name}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return server
            time.sleep(0.25)
        raise HubError(f"the server of {name!r} did not start within {timeout:.0f} s; the hub log ends with:\n"
                       f"{self.log_tail()}")

    def stop_server(self, name: str, timeout: float = 60) -> None:
        """Stop `name`'s server and wait until the hub has it stopped (a server that never ran is fine)."""
        self.api("DELETE", f"users/{name}/server", expect=(202, 204, 400))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.api("GET", f"users/{name}").json().get("servers", {}).get(""):
                return
            time.sleep(0.25)
        raise HubError(f"the server of {name!r} did not stop within {timeout:.0f} s")

    def server_contents(self, name: str) -> "ContentsClient":
        """The contents API of `name`'s running server, through the proxy, with the admin token."""
        return ContentsClient(urljoin(self.url, f"user/{name}/api/contents/"), self.admin_token)

    def server_environment(self, name: str) -> dict[str, str]:
        """The environment the spawner gave `name`'s running server (its API token included)."""
        server = self.api("GET", f"users/{name}").json()["servers"][""]
        return psutil.Process(server["state"]["pid"]).environ()

    # -- clients -----------------------------------------------------------------------------
    def client(self, token: Optional[str] = None) -> ServiceClient:
        """A client of the service through the proxy (anonymous without a token)."""
        return ServiceClient(self.service_url, token=token)

    def user_client(self, name: str, scopes: Optional[list[str]] = None) -> ServiceClient:
        return self.client(self.token_for(name, scopes))

    def login(self, username: str, password: str) -> ServiceClient:
        """A cookie session that logged in on the hub's login page and then into the service (OAuth)."""
        session = self.hub_login(username, password)
        # The service's login page runs the OAuth dance and sets the service's own cookie.
        landing = session.get(urljoin(self.service_url, "login"), timeout=60)
        service_cookies = [c.name for c in session.cookies if c.path.rstrip("/") == SERVICE_PREFIX.rstrip("/")
                           and c.name != "_xsrf"]
        if landing.status_code != 200 or not service_cookies:
            raise HubError(f"{username!r} logged in to the hub but not to the service: "
                           f"{landing.status_code} at {landing.url}")
        return ServiceClient(self.service_url, session=session)

    def hub_login(self, username: str, password: str) -> requests.Session:
        """A cookie session logged in on the hub's login page only."""
        session = requests.Session()
        login_url = urljoin(self.url, "hub/login")
        page = session.get(login_url, timeout=30)
        page.raise_for_status()
        found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        xsrf = found.group(1) if found else None
        resp = session.post(
            login_url, data={"username": username, "password": password, "_xsrf": xsrf},
            allow_redirects=False, timeout=30,
        )
        if resp.status_code != 302:
            raise HubError(f"login of {username!r} failed: {resp.status_code} {resp.text[:300]}")
        return session


class ContentsClient:
    """Files of one user's server through its contents API (what JupyterLab itself uses)."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def _url(self, path: str) -> str:
        return urljoin(self.base_url, quote(path.strip("/")))

    def model(self, path: str, *, content: bool = False) -> Optional[dict]:
        """The contents model of `path` (None when there is no such file or folder)."""
        resp = self.session.get(self._url(path), params={"content": int(content)}, timeout=30)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise HubError(f"GET contents {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def read_bytes(self, path: str) -> bytes:
        resp = self.session.get(self._url(path), params={"type": "file", "format": "base64", "content": 1},
                                timeout=30)
        if resp.status_code != 200:
            raise HubError(f"GET contents {path}: {resp.status_code} {resp.text[:300]}")
        return base64.b64decode(resp.json()["content"])

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def write_bytes(self, path: str, data: bytes) -> None:
        """Save a file as JupyterLab saves a participant's edit."""
        body = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode("ascii")}
        resp = self.session.put(self._url(path), json=body, timeout=30)
        if resp.status_code not in (200, 201):
            raise HubError(f"PUT contents {path}: {resp.status_code} {resp.text[:300]}")

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def delete(self, path: str) -> None:
        resp = self.session.delete(self._url(path), timeout=30)
        if resp.status_code not in (204, 404):
            raise HubError(f"DELETE contents {path}: {resp.status_code} {resp.text[:300]}")

    def listing(self, path: str = "") -> list[str]:
        """The names in a folder (empty when it does not exist)."""
        found = self.model(path, content=True)
        return sorted(item["name"] for item in (found or {}).get("content") or [])


def _test_config(path: Path, *, hub_api_port: int, proxy_api_port: int, service_port: int,
                 admin_token: str) -> None:
    path.write_text(textwrap.dedent(f"""\
        # A second hub next to any other on this machine: the real configuration,
        # other ports, and an admin service whose token the tests use.
        c = get_config()  # noqa: F821
        load_subconfig({str(HUB_CONFIG)!r})  # noqa: F821

        c.JupyterHub.hub_port = {hub_api_port}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        services = [dict(s) for s in c.JupyterHub.services]
        for service in services:
            if service["name"] == {SERVICE!r}:
                service["url"] = "http://127.0.0.1:{service_port}"
        # The hub's admin role: it may create admins and read servers' state (their pid).
        services.append({{"name": {ADMIN_SERVICE!r}, "api_token": {admin_token!r}, "admin": True,
                          "display": False}})
        c.JupyterHub.services = services
        """))


def _wait_until_ready(hub: Hub, deadline: float) -> None:
    """Until the hub says it runs (after it started the service) and both answer through the proxy."""
    while True:
        if hub.process.poll() is not None:
            raise HubError(f"jupyterhub exited with status {hub.process.returncode}; its log ends with:\n"
                           f"{hub.log_tail()}")
        if "JupyterHub is now running" in hub.log_path.read_text(errors="replace"):
            break
        if time.monotonic() > deadline:
            raise HubError(f"the hub did not start within {HUB_START_TIMEOUT:.0f} s; its log ends with:\n"
                           f"{hub.log_tail()}")
        time.sleep(0.25)
    checks = [urljoin(hub.url, "hub/api"), urljoin(hub.service_url, "api/v1/health")]
    last = ""
    for _ in range(20):
        try:
            statuses = [requests.get(url, timeout=10).status_code for url in checks]
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if all(status == 200 for status in statuses):
                return
            last = ", ".join(f"{url} -> {status}" for url, status in zip(checks, statuses))
        time.sleep(0.5)
    raise HubError(f"the hub runs but does not answer through the proxy ({last}); its log ends with:\n"
                   f"{hub.log_tail()}")


def _stop(process: subprocess.Popen, home: Path) -> None:
    """SIGTERM (the hub stops the proxy and the service itself), then stop whatever outlived it."""
    terminate(process, HUB_STOP_TIMEOUT)
    # A hub that failed to start, or was killed, leaves its proxy and service running,
    # and the default queue's process (which outlives a service on purpose).
    stop_processes(leftover_processes(home))
    platform = Platform(home=str(home))
    try:
        stop_default_queue(platform)
    finally:
        platform.close()


@contextlib.contextmanager
def start_hub(root: Path, extra_env: Optional[dict[str, str]] = None, extra_config: str = "",
              compete_config: str = "") -> Iterator[Hub]:
    """A real hub in `root` (its home, config and log), with `extra_env` in its environment, `extra_config`
    (lines of hub configuration) after the test configuration and `compete_config` (lines of the platform's
    configuration) after the tests' own; stopped at the end."""
    home = root / "home"
    home.mkdir()
    # The platform's own settings for this hub (read by the service and the first start).
    (home / "compete_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        "# Submissions run as local processes: the Docker executor has its own tests.\n"
        "c.Compete.executor = 'process'\n" + compete_config
    )
    (home / "jupyterhub-proxy.pid").unlink(missing_ok=True)
    public_port, hub_api_port, proxy_api_port, service_port = free_ports(4)
    admin_token = secrets.token_hex(32)
    config = root / "jupyterhub_test_config.py"
    _test_config(config, hub_api_port=hub_api_port, proxy_api_port=proxy_api_port,
                 service_port=service_port, admin_token=admin_token)
    if extra_config:
        config.write_text(config.read_text() + extra_config.rstrip("\n") + "\n")

    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
    env.update({
        "COMPETE_HOME": str(home),
        "COMPETE_HUB_IP": "127.0.0.1",
        "COMPETE_HUB_PORT": str(public_port),
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    jupyterhub = shutil.which("jupyterhub", path=str(bin_dir)) or "jupyterhub"
    log_path = root / "jupyterhub.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [jupyterhub, "-f", str(config)], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(url=f"http://127.0.0.1:{public_port}/", home=home, log_path=log_path,
              admin_token=admin_token, process=process)
    try:
        _wait_until_ready(hub, started + HUB_START_TIMEOUT)
        hub.start_seconds = time.monotonic() - started
        yield hub
    finally:
        _stop(process, home)


@pytest.fixture(scope="session")
def hub(tmp_path_factory, smtp_server) -> Iterator[Hub]:
    """The real hub with the competitions service, started once per session; its mail goes to the tests'
    SMTP server (`tests.support.mail`).

    Its users' servers may not use Docker (COMPETE_LAB_DOCKER=0): no judge
    kernels; their notebooks run in the project's Python, which has the
    default runtime's packages (the fallback environment).  `judge_hub` is
    the hub whose servers get the judge's kernels.
    """
    mail = f"c.Compete.smtp_host = '{smtp_server.host}'\nc.Compete.smtp_port = {smtp_server.port}\n"
    with start_hub(tmp_path_factory.mktemp("hub"), {"COMPETE_LAB_DOCKER": "0"}, compete_config=mail) as running:
        yield running


@pytest.fixture(scope="session")
def judge_hub(runtime_image, tmp_path_factory) -> Iterator[Hub]:
    """A hub of the embedded default as it starts where Docker answers: its users' servers get a judge
    kernel per runtime image on the machine (nothing set: that is the default)."""
    with start_hub(tmp_path_factory.mktemp("judge-hub"), {}) as running:
        yield running
