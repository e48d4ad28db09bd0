"""The participant's client of the competition service, for a notebook or a script.

In a participant's JupyterLab (a single-user server spawned by the hub) it
needs no set-up: `CompeteClient()` finds the service and authenticates with
the server's own hub token::

    from hub_extension.client import CompeteClient
    compete = CompeteClient()
    compete.register("demo-flower-species", accept_terms=True)
    sub = compete.submit("demo-flower-species")        # this notebook, as saved on disk
    compete.follow(sub["id"], on_change=lambda s: print(s["status"]))
    compete.leaderboard("demo-flower-species")          # a pandas DataFrame

Where the service is: `url`, else `COMPETE_SERVICE_URL` (the service's base
URL, ending in `/services/competitions/`), else derived from the hub's public
URL (`JUPYTERHUB_PUBLIC_HUB_URL`) or its API URL (`JUPYTERHUB_API_URL`,
`.../hub/api` -> `.../services/competitions/`).  The token is `token`, else
`JUPYTERHUB_API_TOKEN`; it is sent as `Authorization: token ...` and needs the
scope `access:services!service=competitions`.

Everything goes through the service's REST API (`/api/v1/`, documented in
`hub_extension/service/openapi.yaml`); the client holds no rule of its own.
An error answer raises `CompeteError` with the server's code and message (not
registered, phase closed, limit reached...).  Uploads stream from disk; a
folder is zipped first, without `.ipynb_checkpoints`, `__pycache__` and
`.git`.  GET answers carry an ETag and the leaderboard is asked for with
`If-None-Match`, so polling it costs the service a 304 when nothing changed.

This module imports only the standard library and `requests` (pandas when a
DataFrame is asked for), so it loads in any participant kernel.
"""
from __future__ import annotations

import collections
import json
import os
import re
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional
from urllib.parse import quote, urlsplit

import requests

from .contract import Status, submission_kind_of

__all__ = ["CompeteClient", "CompeteError", "CompeteTimeout", "Logs", "current_notebook_path",
           "service_url_from_env", "submission_kind"]

SERVICE_NAME = "competitions"
API_PREFIX = "api/v1/"
TERMINAL = Status.TERMINAL
# Folders never worth sending: editor and VCS leftovers, bytecode.
SKIPPED_FOLDERS = frozenset({".ipynb_checkpoints", "__pycache__", ".git"})
PAGE_LIMIT = 200
CHUNK = 256 * 1024
# Leaderboards (and other GETs) remembered with their ETag.
CACHE_ENTRIES = 64


class CompeteError(Exception):
    """The service refused a request, or could not be reached.

    `code` is the API's error code (`not_found`, `forbidden`,
    `submission_limit`, `login_required`, ...; `unreachable` when no answer
    came), `message` the server's explanation, `status` the HTTP status (None
    when no answer came), `problems` the list the server gave, if any.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None, *,
                 problems: Optional[list[str]] = None):
        self.code = code
        self.message = message
        self.status = status
        self.problems = list(problems or [])
        super().__init__(message)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {p}" for p in self.problems)])

    def __repr__(self) -> str:
        return f"CompeteError({self.code!r}, {self.message!r}, {self.status!r})"


class CompeteTimeout(CompeteError):
    """`follow` gave up waiting; `info` is the submission as last seen."""

    def __init__(self, message: str, info: dict[str, Any]):
        super().__init__("timeout", message)
        self.info = info


class Logs(list):
    """The captured output of a submission's steps: dicts of `task`, `step`, `stream`, `text`.

    `str(logs)` (and `print(logs)`) shows them one after the other with a heading each.
    """

    def __str__(self) -> str:
        if not self:
            return "(no logs)"
        parts = []
        for entry in self:
            text = entry["text"].rstrip("\n")
            parts.append(f"--- task {entry['task']} {entry['step']} {entry['stream']} ---\n{text or '(empty)'}")
        return "\n".join(parts)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


# -- where the service is ------------------------------------------------------------------------
def service_url_from_env(env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The service's base URL from the environment of a hub-spawned server, or None."""
    env = os.environ if env is None else env
    explicit = (env.get("COMPETE_SERVICE_URL") or "").strip()
    if explicit:
        return explicit.rstrip("/") + "/"
    public_hub = (env.get("JUPYTERHUB_PUBLIC_HUB_URL") or "").strip()
    if public_hub and urlsplit(public_hub).netloc:
        return _service_beside(public_hub)
    api = (env.get("JUPYTERHUB_API_URL") or "").strip()
    if api and urlsplit(api).netloc:
        return _service_beside(api)
    return None


def _service_beside(hub_url: str) -> str:
    """`http://h/x/hub/api` or `http://h/x/hub/` -> `http://h/x/services/competitions/`."""
    url = hub_url.rstrip("/") + "/"
    base = re.sub(r"hub/(api/)?$", "", url)
    if base == url:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}/"
    return f"{base}services/{SERVICE_NAME}/"


# -- which notebook this kernel runs -----------------------------------------------------------------
def current_notebook_path(env: Optional[Mapping[str, str]] = None, *, timeout: float = 5.0) -> Path:
    """The notebook file the running kernel belongs to.

    First `JPY_SESSION_NAME`, which jupyter_server sets in a kernel's
    environment when it starts the kernel for a notebook; if that file is gone
    (the notebook was renamed since), the sessions API of the running Jupyter
    servers, matched on this kernel's id.  Raises `CompeteError` (code
    `notebook_unknown`) when neither tells.
    """
    env = os.environ if env is None else env
    named = (env.get("JPY_SESSION_NAME") or "").strip()
    if named:
        found = _existing_notebook(Path(named))
        if found is not None:
            return found
    kernel_id = _kernel_id()
    if kernel_id:
        for server_url, token, root in _jupyter_servers(env):
            api_path = _session_path(server_url, token, kernel_id, timeout)
            if api_path is None:
                continue
            for base in ([Path(root)] if root else []) + [Path.cwd()]:
                found = _existing_notebook(base / api_path) or _existing_notebook(base / Path(api_path).name)
                if found is not None:
                    return found
    hint = f" (JPY_SESSION_NAME={named!r} is not a notebook file here)" if named else ""
    raise CompeteError(
        "notebook_unknown",
        "cannot tell which notebook this kernel runs" + hint + ": pass the notebook's path, "
        "e.g. submit(competition, 'my_notebook.ipynb')")


def _existing_notebook(path: Path) -> Optional[Path]:
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, Path.cwd() / path.name]
    for candidate in candidates:
        if candidate.suffix == ".ipynb" and candidate.is_file():
            return candidate.resolve()
    return None


def _kernel_id() -> Optional[str]:
    """The id of the kernel this code runs in (from its connection file's name), or None outside one."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    try:
        if kernelapp is None or not kernelapp.IPKernelApp.initialized():
            return None
        name = Path(kernelapp.IPKernelApp.instance().connection_file).name
    except Exception:  # noqa: BLE001 - an odd kernel: no id to offer
        return None
    found = re.match(r"kernel-(.+)\.json$", name)
    return found.group(1) if found else None


def _jupyter_servers(env: Mapping[str, str]) -> Iterable[tuple[str, str, Optional[str]]]:
    """(url, token, root directory) of the Jupyter servers this kernel may belong to."""
    seen = set()
    own = (env.get("JUPYTERHUB_SERVICE_URL") or "").strip()
    if own:
        seen.add(own.rstrip("/"))
        yield own.rstrip("/") + "/", env.get("JUPYTERHUB_API_TOKEN", ""), env.get("JUPYTERHUB_ROOT_DIR") or None
    try:
        # Optional: jupyter_server is there inside a Jupyter server's kernels only.
        from jupyter_server.serverapp import list_running_servers

        servers = list(list_running_servers())
    except Exception:  # noqa: BLE001 - jupyter_server missing or its runtime folder unreadable
        servers = []
    for info in servers:
        url = str(info.get("url") or "").rstrip("/")
        if not url or url in seen:
            continue
        seen.add(url)
        yield url + "/", str(info.get("token") or ""), info.get("root_dir") or info.get("notebook_dir")


def _session_path(server_url: str, token: str, kernel_id: str, timeout: float) -> Optional[str]:
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        resp = requests.get(server_url + "api/sessions", headers=headers, timeout=timeout)
        sessions = resp.json() if resp.status_code == 200 else []
    except (requests.RequestException, ValueError):
        return None
    for session in sessions if isinstance(sessions, list) else []:
        if (session.get("kernel") or {}).get("id") == kernel_id:
            return session.get("path") or session.get("notebook", {}).get("path")
    return None


# -- the client ----------------------------------------------------------------------------------
class CompeteClient:
    """A participant's (or anyone's) client of the competition service's REST API."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, *, timeout: float = 60.0,
                 upload_timeout: float = 600.0, session: Optional[requests.Session] = None):
        base = (url or service_url_from_env() or "").strip()
        if not base:
            raise CompeteError(
                "no_service",
                "where is the competition service? Pass url='https://HUB/services/competitions/' or set "
                "COMPETE_SERVICE_URL (in a JupyterLab started by the hub it is set for you)")
        if not urlsplit(base).scheme:
            raise CompeteError("no_service", f"the service URL must start with http:// or https://, got {base!r}")
        self.url = base.rstrip("/") + "/"
        self.api_url = self.url + API_PREFIX
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN") or None
        self.timeout = timeout
        self.upload_timeout = upload_timeout
        self.session = session or requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"token {self.token}"
        self.session.headers.setdefault("Accept", "application/json")
        # (method, path under the API, status) of the latest requests: what a test or a curious user can check.
        self.request_log: collections.deque = collections.deque(maxlen=500)
        self._cache: collections.OrderedDict[str, tuple[str, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._username: Optional[str] = None

    def __repr__(self) -> str:
        return f"CompeteClient({self.url!r})"

    @property
    def prefix(self) -> str:
        """The path part of the service URL (`/services/competitions/`): links that work in the browser."""
        return urlsplit(self.url).path or "/"

    # -- HTTP ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, params: Optional[dict[str, Any]] = None,
                 ok: Iterable[int] = (200,), timeout: Any = None, **kwargs: Any) -> requests.Response:
        url = self.api_url + path
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self.session.request(method, url, params=params, timeout=timeout or self.timeout,
                                        allow_redirects=False, **kwargs)
        except requests.ConnectionError as exc:
            self._log(method, path, None)
            raise CompeteError("unreachable", f"cannot reach the competition service at {self.url}: "
                               f"{_first_line(exc)}") from None
        except requests.Timeout:
            self._log(method, path, None)
            raise CompeteError("unreachable", f"the competition service at {self.url} did not answer in time "
                               f"({method} {path})") from None
        self._log(method, path, resp.status_code)
        if resp.status_code not in tuple(ok):
            raise self._error(resp)
        return resp

    def _log(self, method: str, path: str, status: Optional[int]) -> None:
        with self._lock:
            self.request_log.append((method, path, status))

    def _error(self, resp: requests.Response) -> CompeteError:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            return CompeteError(str(err.get("code") or "error"), str(err.get("message") or resp.reason or status),
                                status, problems=err.get("problems"))
        if status in (301, 302, 303, 307, 308):
            where = resp.headers.get("Location", "?")
            return CompeteError("redirected", f"the service at {self.url} redirected to {where}: the URL is not the "
                                "competition service's, or the request was not authenticated (no hub token?)", status)
        if status == 404:
            return CompeteError("not_found", f"no competition service answers at {self.url} (404); set "
                                "COMPETE_SERVICE_URL to the service's address, e.g. "
                                "https://HUB/services/competitions/", status)
        text = re.sub(r"<[^>]+>", " ", resp.text or "")
        text = " ".join(text.split())[:300]
        return CompeteError(_http_code(status), f"the service answered {status} {resp.reason}: {text}".rstrip(": "),
                            status)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._request(method, path, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise CompeteError("bad_answer", f"{method} {path}: the service did not answer JSON "
                               f"({resp.headers.get('Content-Type', '?')})", resp.status_code) from None

    def _all_pages(self, path: str, params: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._json("GET", path, params={**(params or {}), "offset": offset, "limit": PAGE_LIMIT})
            batch = page.get("items") or []
            items.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total") or 0):
                return items

    def get_cached(self, path: str, params: Optional[dict[str, Any]] = None) -> tuple[Any, bool]:
        """GET `path` (under the API) with `If-None-Match`: (data, changed since the last call).

        An unchanged answer (304) costs the service no JSON and returns the
        very object the previous call returned.
        """
        params = {k: v for k, v in (params or {}).items() if v is not None}
        key = path + "?" + "&".join(f"{k}={params[k]}" for k in sorted(params))
        with self._lock:
            cached = self._cache.get(key)
        headers = {"If-None-Match": cached[0]} if cached else {}
        resp = self._request("GET", path, params=params, headers=headers, ok=(200, 304))
        if resp.status_code == 304 and cached is not None:
            return cached[1], False
        data = resp.json()
        etag = resp.headers.get("Etag")
        with self._lock:
            if etag:
                self._cache[key] = (etag, data)
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
            else:
                self._cache.pop(key, None)
        return data, True

    # -- who ----------------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        """Who the token belongs to: `{"name", "admin", "groups", "may_create_competitions"}`."""
        info = self._json("GET", "me")
        self._username = info.get("name")
        return info

    @property
    def username(self) -> Optional[str]:
        """The hub user of the token (asked once)."""
        if self._username is None:
            self.me()
        return self._username

    # -- competitions and phases -----------------------------------------------------------
    def competitions(self, search: Optional[str] = None, status: Optional[str] = None) -> list[dict[str, Any]]:
        """Every competition (`status`: upcoming, running or finished; `search`: words to find)."""
        return self._all_pages("competitions", {"search": search, "status": status})

    def competition(self, slug: str) -> dict[str, Any]:
        """One competition: pages, phases (the current one marked), your registration, submissions left."""
        return self._json("GET", f"competitions/{_seg(slug)}")

    def phases(self, slug: str) -> list[dict[str, Any]]:
        """The phases in order, numbered from 1; `state` is past, current or future."""
        return self._json("GET", f"competitions/{_seg(slug)}/phases")["items"]

    def phase(self, slug: str, number: Optional[int] = None) -> Optional[dict[str, Any]]:
        """One phase (default: the one open now; None when none is): dates, limits, `execution_time_limit`,
        `accepts` (the kinds of submission it takes: results, code, notebook) and `image` (the judge's)."""
        detail = self.competition(slug)
        wanted = number if number is not None else detail.get("current_phase")
        return next((p for p in detail.get("phases") or [] if p.get("number") == wanted), None)

    def register(self, slug: str, *, accept_terms: bool = False) -> dict[str, Any]:
        """Register yourself: `{"competition", "username", "status"}` (approved, or pending approval).

        A competition with terms (`competition(slug)["terms"]`) needs `accept_terms=True`.
        """
        return self._json("POST", f"competitions/{_seg(slug)}/registration", ok=(200, 201),
                          json={"accept_terms": bool(accept_terms)})

    def submissions_left(self, slug: str, phase: Optional[int] = None) -> dict[str, Optional[int]]:
        """`{"today": n, "total": n}` in the phase (default: the one open now); None means no limit."""
        return self._json("GET", f"competitions/{_seg(slug)}/submissions_left", params={"phase": phase})

    # -- teams ------------------------------------------------------------------------------
    def teams(self, slug: str) -> dict[str, Any]:
        """The competition's teams, your team's id (`my_team`) and the invitations waiting for you."""
        return self._json("GET", f"competitions/{_seg(slug)}/teams")

    def create_team(self, slug: str, name: str, *, invite: Optional[list[str]] = None) -> dict[str, Any]:
        """Create a team that you own (where the competition allows teams), inviting these hub users; the team."""
        team = self._json("POST", f"competitions/{_seg(slug)}/teams", ok=(201,), json={"name": name})
        if invite:
            team["invitations"] = self._json("POST", f"competitions/{_seg(slug)}/teams/{int(team['id'])}/invitations",
                                             json={"usernames": list(invite)})["results"]
        return team

    def join_team(self, slug: str, team_id: int, *, accept: bool = True) -> dict[str, Any]:
        """Accept (or, with `accept=False`, decline) your invitation to a team."""
        answer = "accept" if accept else "decline"
        return self._json("POST", f"competitions/{_seg(slug)}/teams/{int(team_id)}/{answer}")

    # -- submissions ------------------------------------------------------------------------
    def submit(self, slug: str, path: Optional[str | os.PathLike] = None, *, phase: Optional[int] = None,
               description: str = "", fact_sheet: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """Submit and return the new submission (its `id`, `status`...).

        `path` is a notebook (.ipynb), a zip, or a folder (zipped here, without
        .ipynb_checkpoints, __pycache__ and .git); None submits the notebook
        this kernel runs, as saved on disk (save it first: Ctrl+S).  `phase`
        defaults to the phase open now.  `fact_sheet`: answers to the
        competition's fact sheet by question key (`competition(slug)["fact_sheet"]`
        lists the questions): text, True/False for a checkbox, one of a select's choices.
        """
        target = current_notebook_path() if path is None else Path(path).expanduser()
        if not target.exists():
            raise CompeteError("no_file", f"{target}: no such file or folder")
        if target.is_dir():
            with tempfile.TemporaryDirectory(prefix="compete-submit-") as tmp:
                archive = zip_folder(target, Path(tmp) / f"{target.resolve().name or 'submission'}.zip")
                return self._upload(slug, archive, phase=phase, description=description, fact_sheet=fact_sheet)
        return self._upload(slug, target, phase=phase, description=description, fact_sheet=fact_sheet)

    def _upload(self, slug: str, file: Path, *, phase: Optional[int], description: str,
                fact_sheet: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        size = file.stat().st_size
        params = {"filename": file.name, "phase": phase, "description": description or None,
                  "fact_sheet": json.dumps(fact_sheet) if fact_sheet else None}
        with open(file, "rb") as fh:
            try:
                resp = self._request(
                    "POST", f"competitions/{_seg(slug)}/submissions", params=params, data=fh,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                    ok=(201,), timeout=(self.timeout, self.upload_timeout))
            except CompeteError as exc:
                if exc.code == "unreachable" and size > 8 * 1024 * 1024:
                    # A server refusing a large body closes the connection while it is being sent.
                    raise CompeteError("unreachable", f"{exc.message}; {file.name} is {size} bytes: it may be over "
                                       "the service's upload size limit") from None
                raise
        return resp.json()

    def submission(self, submission_id: int) -> dict[str, Any]:
        """One submission: status, history, scores (visible columns only), runs, waiting position."""
        return self._json("GET", f"submissions/{int(submission_id)}")

    def submissions(self, slug: str, phase: Optional[int] = None, status: Optional[str] = None) -> list[dict[str, Any]]:
        """Your submissions to a competition, newest first (organizers: everyone's)."""
        return self._all_pages(f"competitions/{_seg(slug)}/submissions", {"phase": phase, "status": status})

    def cancel(self, submission_id: int) -> dict[str, Any]:
        """Cancel a submission that has not finished."""
        return self._json("POST", f"submissions/{int(submission_id)}/cancel")

    def select(self, submission_id: int, selected: bool = True) -> None:
        """Put a finished submission on the leaderboard (or take it off), where the phase lets you choose."""
        self._json("PUT", f"submissions/{int(submission_id)}/selected", json={"selected": bool(selected)})

    def reproduce(self, submission_id: int, *, queue: Optional[str] = None) -> dict[str, Any]:
        """Run a submission again exactly as it ran (its image digest, programs and data): organizers,
        or you for your own where the phase allows it.  `queue`: organizers only."""
        return self._json("POST", f"submissions/{int(submission_id)}/reproduce", ok=(201,),
                          json={"queue": queue} if queue else {})

    def comparison(self, submission_id: int) -> dict[str, Any]:
        """A submission's scores beside its latest reproduction's, and the inputs that differed."""
        return self._json("GET", f"submissions/{int(submission_id)}/comparison")

    def provenance(self, submission_id: int) -> dict[str, Any]:
        """What each run of a submission ran with and where (organizers)."""
        return self._json("GET", f"submissions/{int(submission_id)}/provenance")

    def manifest(self, submission_id: int) -> dict[str, Any]:
        """The submission's manifest signed by the platform (organizers); `compete manifest verify` checks it."""
        return self._json("GET", f"submissions/{int(submission_id)}/manifest")

    def follow(self, submission_id: int, *, timeout: Optional[float] = None, interval: float = 2.0,
               on_change: Optional[Callable[[dict[str, Any]], None]] = None,
               stop: Optional[threading.Event] = None, board_timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the submission is Finished, Failed or Cancelled; return it then.

        A Finished submission is returned once the leaderboards include it
        (`on_leaderboard` is no longer false: they are ranked again apart from
        recording the result), so that a leaderboard read next shows it; after
        `board_timeout` more seconds it is returned anyway, `on_leaderboard`
        still false.  `on_change(info)` is called with the first answer and
        after each change of status, of the position in the queue or of
        `on_leaderboard`.  Raises `CompeteTimeout` after `timeout` seconds
        while the submission has not ended (with the last answer as `.info`);
        setting the `stop` event returns the last answer at once.  A few failed
        polls in a row (the network, a restarting service) are retried before
        giving up.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        board_deadline: Optional[float] = None
        seen: Optional[tuple[Any, ...]] = None
        info: dict[str, Any] = {}
        failures = 0
        while True:
            try:
                info = self.submission(submission_id)
                failures = 0
            except CompeteError as exc:
                failures += 1
                if exc.status is not None and exc.status < 500 or failures >= 5:
                    raise
            else:
                mark = (info.get("status"), (info.get("waiting") or {}).get("position"), info.get("on_leaderboard"))
                if mark != seen:
                    seen = mark
                    if on_change is not None:
                        on_change(info)
                if info.get("status") in TERMINAL:
                    if info.get("on_leaderboard") is not False:
                        return info
                    board_deadline = board_deadline or time.monotonic() + board_timeout
                    if time.monotonic() >= board_deadline:
                        return info  # ended; its leaderboards are late, and the answer says so
            if deadline is not None and time.monotonic() >= deadline:
                if info.get("status") in TERMINAL:
                    return info
                raise CompeteTimeout(f"submission {submission_id} is still {info.get('status', '?')} after "
                                     f"{timeout:g} s", info)
            wait = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
            if stop is not None:
                if stop.wait(wait):
                    return info
            else:
                time.sleep(wait)

    def logs(self, submission_id: int) -> Logs:
        """The captured stdout and stderr of each step you may see (`print(...)` them)."""
        info = self.submission(submission_id)
        found = Logs()
        for run in info.get("runs") or []:
            for stream in run.get("logs") or []:
                path = f"submissions/{int(submission_id)}/logs/{int(run['task'])}/{_seg(run['step'])}/{_seg(stream)}"
                text = self._request("GET", path).text
                found.append({"task": run["task"], "step": run["step"], "stream": stream, "text": text})
        return found

    def executed_notebook(self, submission_id: int, path: Optional[str | os.PathLike] = None) -> Path:
        """Download the notebook as the platform ran it (outputs and the failing cell included).

        Saved to `path`, or to `submission-<id>-executed.ipynb` in the current folder.
        """
        target = Path(path) if path is not None else Path(f"submission-{int(submission_id)}-executed.ipynb")
        resp = self._request("GET", f"submissions/{int(submission_id)}/artifacts/executed_notebook", stream=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as fh:
                for chunk in resp.iter_content(CHUNK):
                    fh.write(chunk)
            partial.replace(target)
        finally:
            resp.close()
            if partial.exists():
                partial.unlink()
        return target

    # -- leaderboards -----------------------------------------------------------------------
    def leaderboard_json(self, slug: str, phase: Optional[int] = None, *, board: Optional[str] = None) -> dict[str, Any]:
        """The leaderboard as the service sends it to you (hidden columns and boards are never sent).

        `{"competition", "phase", "board", "title", "note", "columns": [{"key",
        "title", "sorting", "precision"}], "rows": [{"rank", "participant",
        "submission", "submitted_at", "scores", "ranks", "average_rank"}]}`.
        Asked with `If-None-Match`: an unchanged leaderboard is the same object as before.
        """
        data, _ = self.get_cached(f"competitions/{_seg(slug)}/leaderboard", {"phase": phase, "board": board})
        return data

    def leaderboard(self, slug: str, phase: Optional[int] = None, *, board: Optional[str] = None):
        """The leaderboard as a pandas DataFrame: rank, participant, one column per score, submission.

        Score columns are named by their titles; `df.attrs` holds the
        competition, phase, board, note and the columns' keys and sorting.
        """
        return leaderboard_frame(self.leaderboard_json(slug, phase, board=board))

    # -- forum --------------------------------------------------------------------------------
    def forum_threads(self, slug: str, search: Optional[str] = None) -> list[dict[str, Any]]:
        """The competition forum's threads, pinned first, then by their last post (`search`: words to find)."""
        return self._all_pages(f"competitions/{_seg(slug)}/forum/threads", {"q": search})

    def forum_thread(self, slug: str, thread_id: int) -> dict[str, Any]:
        """A thread with every post (`items`, oldest first; `html` is each post rendered)."""
        path = f"competitions/{_seg(slug)}/forum/threads/{int(thread_id)}"
        thread = self._json("GET", path, params={"offset": 0, "limit": PAGE_LIMIT})
        while len(thread["items"]) < int(thread.get("total") or 0):
            more = self._json("GET", path, params={"offset": len(thread["items"]), "limit": PAGE_LIMIT})["items"]
            if not more:
                break
            thread["items"].extend(more)
        return thread

    def ask(self, slug: str, title: str, body: str, *, submission_id: Optional[int] = None) -> dict[str, Any]:
        """Open a thread in the competition's forum (Markdown `body`); `submission_id` refers it to one of your
        submissions, whose logs stay yours."""
        payload: dict[str, Any] = {"title": title, "body": body}
        if submission_id is not None:
            payload["submission_id"] = int(submission_id)
        return self._json("POST", f"competitions/{_seg(slug)}/forum/threads", ok=(201,), json=payload)

    def reply(self, slug: str, thread_id: int, body: str) -> dict[str, Any]:
        """Reply in a thread of the competition's forum (Markdown `body`); the new post."""
        return self._json("POST", f"competitions/{_seg(slug)}/forum/threads/{int(thread_id)}/posts", ok=(201,),
                          json={"body": body})

    # -- announcements, messages, profile -----------------------------------------------------
    def announcements(self, slug: str) -> list[dict[str, Any]]:
        """The competition's announcements that reached you (organizers: every one), newest first."""
        return self._all_pages(f"competitions/{_seg(slug)}/announcements")

    def announce(self, slug: str, subject: str, body: str, *, phase: Optional[int] = None,
                 team: Optional[int] = None) -> dict[str, Any]:
        """Send an announcement (organizers) to every participant, to a phase's or to a team's (Markdown `body`);
        its recipients and their mail status."""
        payload: dict[str, Any] = {"subject": subject, "body": body}
        if phase is not None:
            payload["phase"] = int(phase)
        if team is not None:
            payload["team"] = int(team)
        return self._json("POST", f"competitions/{_seg(slug)}/announcements", ok=(201,), json=payload)

    def messages(self) -> list[dict[str, Any]]:
        """Your messages from every competition (announcements and notices), newest first."""
        return self._all_pages("messages")

    def message(self, message_id: int) -> dict[str, Any]:
        """One of your messages, which reading marks read."""
        return self._json("GET", f"messages/{int(message_id)}")

    def mail_settings(self, **changes: Any) -> dict[str, Any]:
        """Your mail address and the kinds of mail you get; `email=` or `mail={kind: bool}` change them."""
        if not changes:
            return self._json("GET", "me/mail")
        return self._json("PUT", "me/mail", json=changes)

    def profile(self, **changes: Any) -> dict[str, Any]:
        """Your profile; `display_name=` or `affiliation=` change it ("" clears), shown on boards and in forums."""
        if not changes:
            return self._json("GET", "profile")
        return self._json("PUT", "profile", json=changes)


def leaderboard_frame(data: dict[str, Any]):
    """A DataFrame of a leaderboard answer (see `CompeteClient.leaderboard`)."""
    import pandas as pd  # start-up cost: loaded only when a DataFrame is asked for

    columns = list(data.get("columns") or [])
    fixed = {"rank", "participant", "submission", "submitted_at"}
    titles: list[str] = []
    for col in columns:
        title = str(col.get("title") or col["key"])
        if title in fixed or title in titles:
            title = str(col["key"])
        titles.append(title)
    records = []
    for row in data.get("rows") or []:
        scores = row.get("scores") or {}
        record: dict[str, Any] = {"rank": row.get("rank"), "participant": row.get("participant")}
        for col, title in zip(columns, titles):
            value = scores.get(col["key"])
            record[title] = float("nan") if value is None else value
        record["submission"] = row.get("submission")
        record["submitted_at"] = pd.to_datetime(row.get("submitted_at"), utc=True) if row.get("submitted_at") else None
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=["rank", "participant", *titles, "submission", "submitted_at"])
    frame.attrs.update({
        "competition": data.get("competition"),
        "phase": data.get("phase"),
        "board": data.get("board"),
        "title": data.get("title"),
        "note": data.get("note") or "",
        "columns": [{"key": c.get("key"), "title": t, "sorting": c.get("sorting")} for c, t in zip(columns, titles)],
    })
    return frame


def submission_kind(path: str | os.PathLike) -> str:
    """What the service will take `path` for, by its own rule: `notebook` (.ipynb), `code` (a folder with a
    `metadata` file at its top, a zip with one at its top or one folder down), else `results` (predictions).
    """
    return submission_kind_of(path) or "results"


def zip_folder(folder: Path, archive: Path) -> Path:
    """Zip `folder`'s files into `archive` (paths relative to the folder), skipping `SKIPPED_FOLDERS`.

    Symbolic links are refused: what they point to may be outside the folder.
    """
    folder = Path(folder)
    count = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS)
            base = Path(root)
            for name in dirs + sorted(files):
                if (base / name).is_symlink():
                    raise CompeteError("symlink", f"{base / name} is a symbolic link: copy the file into the "
                                       "folder or leave it out, then submit again")
            for name in sorted(files):
                path = base / name
                zf.write(path, path.relative_to(folder).as_posix())
                count += 1
    if count == 0:
        archive.unlink()
        raise CompeteError("empty", f"{folder} has no files to submit")
    return archive


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _http_code(status: int) -> str:
    return {400: "bad_request", 401: "login_required", 403: "forbidden", 404: "not_found", 413: "too_large",
            429: "limit_reached", 502: "bad_gateway", 503: "unavailable"}.get(status, "error")
