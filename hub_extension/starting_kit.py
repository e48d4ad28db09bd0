"""Open in JupyterLab: a phase's starting kit and public data, put into the participant's own server.

The competition page's "Open in JupyterLab" (and `POST .../phases/<n>/open_in_lab`)
copies the files of the phase's starting kit and its public data into
`competitions/<slug>/` of the user's single-user server, then sends the browser
to the kit's notebook (else its README, else the folder).

Where they go is `plan_layout`'s decision, from the kit's own code: real kits
read their data with paths relative to the kit, as the two archives sit after
unzipping them side by side (`../input_data`, `../public_data`), or from a
folder inside the kit (`./public_data`, `data`).  A kit that reads `../NAME`
goes to `starting_kit/` with the public data in `NAME/` beside it; a kit that
reads `NAME` gets the data there; a kit that says nothing recognisable keeps
the first layout (the kit at the top, the data in `data/`, which the
platform's own notebooks read).  A kit archive that holds one folder keeps it,
and a data archive whose one folder is the folder the kit reads is not nested
in it again.  The files travel through the
server's contents API (what JupyterLab itself uses), through the proxy, with
the service's hub token; the server is started through the hub's REST API when
it is not running.  Any spawner whose servers the proxy reaches works the same
way: local processes (the embedded default) or DockerSpawner's containers.

Delivering again never destroys a participant's work.  A manifest next to the
files (`competition.json`) keeps the hash of each file as it was delivered:

- a file that is missing is written (the first time, or again after a delete);
- a file the participant has not changed is brought to the organizer's current
  version;
- a file the participant changed (or made at that path) stays as it is; when
  the organizer's version differs from what the participant has, it is put
  next to it (`NAME.update-<hash>.EXT`) and `UPDATES.md` says so, once per
  version.

When the layout changes (a participant who had the first layout opens a kit
that reads `../input_data`), the files are written at their new places and
nothing at the old places is touched or removed; `UPDATES.md` says what moved
and which old copies the participant had changed.

`plan_layout` and `plan_delivery` make these decisions from names and hashes
alone; `deliver` carries them out on a `LabServer`.  The use case the service calls (who may have which
files, then the delivery) is `Platform.open_in_lab` (`hub_extension.app.lab`).
The manifest also tells notebooks which competition their folder belongs to.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import posixpath
import re
import time
import zipfile
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable, Optional
from urllib.parse import quote, urljoin

from .errors import PlatformError

log = logging.getLogger("compete.starting_kit")

COMPETITIONS_FOLDER = "competitions"
DATA_FOLDER = "data"
# Where a kit that reads beside itself (`../input_data`) goes.
KIT_FOLDER = "starting_kit"
# Folder names kits read their data from, the likelier first when a kit names several.
DATA_NAMES = ("input_data", "public_data", "data", "sample_data", "dataset", "datasets")
# The files whose code is read for the paths a kit uses.
CODE_SUFFIXES = (".ipynb", ".py", ".r", ".jl")
# A kit's code file larger than this (a notebook full of outputs) is not read for the paths it uses.
CODE_SCAN_MAX_BYTES = 8 * 1024 * 1024
MANIFEST_NAME = "competition.json"
UPDATES_NAME = "UPDATES.md"
RESERVED = frozenset({MANIFEST_NAME, UPDATES_NAME})
# Files larger than this are sent in chunks (the contents API's large-file upload).
CHUNK_BYTES = 4 * 1024 * 1024
SERVER_START_TIMEOUT = 120.0
HTTP_TIMEOUT = 60.0
# Names a zip tool leaves behind; they are not part of a kit.
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")


class LabUnavailable(PlatformError):
    """The hub or the user's server did not do what delivering the files needs."""

    status = 502
    code = "lab_unavailable"


# -- the files -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class KitFile:
    """One file to deliver: its path inside the competition's folder, its hash, and how to read it.

    Files are read when they are written, one at a time: public data can be large.
    """

    path: str
    source: str  # "starting_kit" or "public_data"
    sha256: str
    read: Callable[[], bytes] = dataclasses.field(repr=False, compare=False)
    member: str = ""  # its name inside its archive ("" : the same as `path`)
    size: Optional[int] = None  # bytes, when known without reading it

    @classmethod
    def from_bytes(cls, path: str, data: bytes, source: str = "starting_kit", member: str = "") -> "KitFile":
        return cls(path=path, source=source, sha256=hashlib.sha256(data).hexdigest(), read=lambda: data,
                   member=member)

    @property
    def name(self) -> str:
        """Its name inside its archive."""
        return self.member or self.path

    def placed(self, path: str) -> "KitFile":
        """The same file delivered at `path`."""
        return dataclasses.replace(self, path=path, member=self.name)


def _safe_member(name: str) -> Optional[str]:
    """The member's path as delivered, or None for folders, tool leftovers and unsafe names."""
    if name.endswith("/") or any(part in name for part in _JUNK):
        return None
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or path.is_absolute() or ".." in parts:
        return None
    # The contents API refuses hidden files and folders by default.
    if any(p.startswith(".") for p in parts):
        return None
    return "/".join(parts)


def files_of_zip(archive: str | os.PathLike, *, prefix: str = "", source: str) -> list[KitFile]:
    """The files of a stored kit or data archive, under `prefix`."""
    archive = os.fspath(archive)
    found = []

    def reader(member: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with zipfile.ZipFile(archive) as zf:
                return zf.read(member)
        return read

    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = _safe_member(info.filename)
            if name is None:
                continue
            path = f"{prefix}/{name}" if prefix else name
            if path in RESERVED:
                log.warning("%s: the kit's %s is not delivered (the name is the platform's own)", archive, path)
                continue
            digest = hashlib.sha256()
            with zf.open(info) as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            found.append(KitFile(path=path, source=source, sha256=digest.hexdigest(), read=reader(info.filename),
                                 member=name, size=info.file_size))
    return sorted(found, key=lambda f: f.path)


def main_notebook(files: Iterable[KitFile]) -> Optional[str]:
    """The notebook to open: the starting kit's top-level notebook (one named like the kit first)."""
    notebooks = [f.path for f in files if f.source == "starting_kit" and f.path.endswith(".ipynb")]
    if not notebooks:
        return None
    return min(notebooks, key=lambda p: (p.count("/"), "starting" not in p.lower(), p))


def front_file(files: Iterable[KitFile]) -> Optional[str]:
    """What JupyterLab shows in front: the kit's notebook, else its README, else None (the folder)."""
    files = list(files)
    notebook = main_notebook(files)
    if notebook:
        return notebook
    readmes = [f.path for f in files if f.source == "starting_kit"
               and PurePosixPath(f.path).name.lower().startswith("readme")]
    if not readmes:
        return None
    order = (".md", ".txt", ".html", ".rst", "")
    return min(readmes, key=lambda p: (p.count("/"), order.index(PurePosixPath(p).suffix.lower())
                                       if PurePosixPath(p).suffix.lower() in order else len(order), p))


# -- the layout ----------------------------------------------------------------------------------
# `../input_data`, `./sample_data`, `..\\public_data`
_RELATIVE = re.compile(r"""(?<![\w.~/])(\.\.?)[/\\]+([A-Za-z0-9_][\w-]*)""")
# os.path.join('..', 'input_data'), Path('..') / 'input_data', file.path('..', 'input_data')
_JOINED = re.compile(r"""['"]\.\.['"]\s*\)?\s*[,/]\s*['"]([A-Za-z0-9_][\w-]*)""")
# a bare 'input_data' or "public_data/" (known data names only)
_BARE = re.compile(r"""['"](%s)/?['"]""" % "|".join(DATA_NAMES))


def _code_of(path: str, data: bytes) -> str:
    """The code of a kit file: a notebook's code cells, a script as it is."""
    text = data.decode("utf-8", "replace")
    if not path.lower().endswith(".ipynb"):
        return text
    try:
        cells = json.loads(text).get("cells") or []
    except (ValueError, AttributeError):
        return ""
    sources = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source") or ""
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return "\n".join(sources)


def kit_reads(code: dict[str, str]) -> dict[str, int]:
    """The folders the kit's code names, relative to the kit archive's root, with how often.

    `code` maps each file's name in the archive to its code.  A path is
    resolved from the folder of the file that names it: `../input_data` in a
    notebook at the archive's top is `../input_data` (beside the kit), in
    `starting_kit/README.ipynb` it is `input_data`.  Paths further up than
    beside the kit are left out.
    """
    found: dict[str, int] = {}
    for name, text in code.items():
        here = posixpath.dirname(name)
        refs = [f"{dots}/{folder}" for dots, folder in _RELATIVE.findall(text)]
        refs += [f"../{folder}" for folder in _JOINED.findall(text)]
        refs += _BARE.findall(_JOINED.sub(" ", text))
        for ref in refs:
            target = posixpath.normpath(posixpath.join(here, ref)) if here else posixpath.normpath(ref)
            if target.startswith("../..") or target in (".", ".."):
                continue
            found[target] = found.get(target, 0) + 1
    return found


def _single_folder(names: Iterable[str]) -> Optional[str]:
    """The one top-level folder all `names` are in, if there is one."""
    tops = {n.split("/", 1)[0] if "/" in n else None for n in names}
    return tops.pop() if len(tops) == 1 else None


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where a phase's two archives go inside the competition's folder ("" is its top)."""

    kit: str = ""  # the starting kit's archive is unzipped here
    data: str = DATA_FOLDER  # the public data's archive is unzipped here ...
    data_strip: str = ""  # ... without this one top-level folder of it (it is `data` itself)
    reads: str = ""  # the path in the kit's code the decision follows ("" : none found)

    @classmethod
    def from_json(cls, data: Any) -> "Layout":
        if not isinstance(data, dict):
            return cls()
        return cls(kit=str(data.get("starting_kit") or ""), data=str(data.get("public_data") or DATA_FOLDER),
                   data_strip=str(data.get("strip") or ""), reads=str(data.get("reads") or ""))

    def to_json(self) -> dict[str, str]:
        return {"starting_kit": self.kit, "public_data": self.data, "strip": self.data_strip, "reads": self.reads}

    def path_of(self, source: str, member: str) -> str:
        """Where the archive member `member` of `source` ("starting_kit" or "public_data") goes."""
        if source == "starting_kit":
            return f"{self.kit}/{member}" if self.kit else member
        if self.data_strip and member.startswith(self.data_strip + "/"):
            member = member[len(self.data_strip) + 1:]
        return f"{self.data}/{member}" if self.data else member

    def describe(self) -> str:
        kit = f"`{self.kit}/`" if self.kit else "the top of the folder"
        line = f"the starting kit at {kit}, the public data in `{self.data}/`"
        return line + (f" (the kit reads `{self.reads}`)" if self.reads else "")


# The layout of the first deliveries: the kit at the top, the data in data/.
FIRST_LAYOUT = Layout()


def plan_layout(kit_code: dict[str, str], kit_names: Iterable[str], data_names: Iterable[str]) -> Layout:
    """Where the kit and the public data go, so that the paths the kit's code reads resolve.

    `kit_code` is the code of the kit's notebooks and scripts by name in its
    archive (`_code_of`), `kit_names` and `data_names` the members of the two
    archives.  Folders the kit ships itself (`./sample_data`) are not where the
    public data goes.
    """
    kit_names, data_names = list(kit_names), list(data_names)
    data_top = _single_folder(data_names)
    shipped = set()
    for name in kit_names:
        parts = name.split("/")
        shipped.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    wanted = set(DATA_NAMES) | ({data_top} if data_top else set())
    candidates = {t: n for t, n in kit_reads(kit_code).items()
                  if posixpath.basename(t) in wanted and t not in shipped}
    if not data_names or not candidates:
        return FIRST_LAYOUT

    def rank(target: str):
        base = posixpath.basename(target)
        known = DATA_NAMES.index(base) if base in DATA_NAMES else -1
        return (-candidates[target], base != data_top, known, target)

    target = min(candidates, key=rank)
    reads = target
    if target.startswith("../"):
        kit, data = KIT_FOLDER, target[3:]
    else:
        kit, data = "", target
    strip = data_top if data_top and data_top == posixpath.basename(data) else ""
    return Layout(kit=kit, data=data, data_strip=strip, reads=reads)


def lay_out(kit: list[KitFile], data: list[KitFile]) -> tuple[Layout, list[KitFile]]:
    """The layout of a phase's kit and data files (read with no prefix), and the files at their places."""
    code = {f.name: _code_of(f.name, f.read()) for f in kit if f.name.lower().endswith(CODE_SUFFIXES)
            and (f.size is None or f.size <= CODE_SCAN_MAX_BYTES)}
    layout = plan_layout(code, [f.name for f in kit], [f.name for f in data])
    placed = []
    for f in [*kit, *data]:
        path = layout.path_of(f.source, f.name)
        if path in RESERVED:
            log.warning("the %s's %s is not delivered (the name is the platform's own)", f.source, path)
            continue
        placed.append(f.placed(path))
    return layout, sorted(placed, key=lambda f: (f.source != "starting_kit", f.path))


def moved_files(files: Iterable[KitFile], before: Layout, now: Layout, delivered: dict[str, str]) -> dict[str, str]:
    """Files delivered before at another place: new path -> old path (old paths the manifest lists)."""
    moved = {}
    for f in files:
        old = before.path_of(f.source, f.name)
        if old != f.path and old in delivered:
            moved[f.path] = old
    return moved


def update_copy_name(path: str, sha256: str) -> str:
    """Where the organizer's newer version of `path` goes: `dir/name.update-<hash8>.ext`."""
    pure = PurePosixPath(path)
    name = f"{pure.stem}.update-{sha256[:8]}{pure.suffix}"
    return str(pure.with_name(name))


def with_kernelspec(files: Iterable[KitFile], kernelspec: Optional[dict[str, str]]) -> list[KitFile]:
    """The files with `metadata.kernelspec` of the starting kit's notebooks set to `kernelspec`.

    The hash is the delivered file's, so a participant's edit is told from the
    delivered copy as for any file.  Notebooks that already name it, or are
    not JSON, stay as they are; `kernelspec=None` changes nothing.
    """
    def retargeted(f: KitFile) -> KitFile:
        try:
            notebook = json.loads(f.read())
            metadata = notebook.setdefault("metadata", {})
        except (ValueError, AttributeError, UnicodeDecodeError):
            return f
        if not isinstance(metadata, dict) or metadata.get("kernelspec") == kernelspec:
            return f
        metadata["kernelspec"] = dict(kernelspec)
        data = (json.dumps(notebook, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
        return KitFile.from_bytes(f.path, data, f.source)

    if not kernelspec:
        return list(files)
    return [retargeted(f) if f.source == "starting_kit" and f.path.endswith(".ipynb") else f for f in files]


# -- the decisions -------------------------------------------------------------------------------
@dataclasses.dataclass
class Manifest:
    """What was delivered into one competition's folder (kept there as `competition.json`)."""

    delivered: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> sha256 as delivered
    offered: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> sha256 of the update offered
    layout: Layout = FIRST_LAYOUT  # where the files were put (manifests without one: the first layout)

    @classmethod
    def from_json(cls, text: Optional[str]) -> "Manifest":
        """The manifest in `text`; an empty one when it is missing or unreadable (nothing is then assumed)."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            files = data.get("files") or {}
            delivered = {str(p): str(v["sha256"]) for p, v in files.items() if isinstance(v, dict) and v.get("sha256")}
            offered = {str(p): str(h) for p, h in (data.get("offered") or {}).items() if isinstance(h, str)}
            layout = Layout.from_json(data.get("layout"))
        except (ValueError, AttributeError, TypeError):
            return cls()
        return cls(delivered=delivered, offered=offered, layout=layout)

    def to_json(self, *, slug: str, title: str, phase: int, sources: dict[str, str], page: str = "") -> str:
        data = {
            "about": "Written by the competitions service when you open this competition in JupyterLab. "
                     "It lists the files it delivered, so that it never overwrites your changes.",
            "competition": slug,
            "title": title,
            "phase": phase,
            "page": page,
            "updated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "files": {p: {"sha256": h, "source": sources.get(p, "")} for p, h in sorted(self.delivered.items())},
            "offered": dict(sorted(self.offered.items())),
            "layout": self.layout.to_json(),
        }
        return json.dumps(data, indent=1) + "\n"


@dataclasses.dataclass
class Plan:
    """What to do with each file: write it, keep the participant's, or offer an update next to it."""

    write: list[str] = dataclasses.field(default_factory=list)
    keep: list[str] = dataclasses.field(default_factory=list)
    offer: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> where the update goes
    manifest: Manifest = dataclasses.field(default_factory=Manifest)  # as it is once the plan is carried out


def plan_delivery(files: Iterable[KitFile], manifest: Manifest, current: dict[str, Optional[str]]) -> Plan:
    """Decide, from hashes only, what delivering `files` does to the folder.

    `current` maps each file's path to the sha256 of what the server holds
    there now (None: nothing).  A file is only ever replaced when the server
    holds exactly what was delivered before; anything else is the participant's.
    """
    plan = Plan(manifest=Manifest(delivered=dict(manifest.delivered), offered=dict(manifest.offered),
                                  layout=manifest.layout))
    for f in files:
        new, now, before = f.sha256, current.get(f.path), manifest.delivered.get(f.path)
        if now is None or (before is not None and now == before and now != new):
            # Missing, or untouched since it was delivered: the organizer's version goes in.
            plan.write.append(f.path)
            plan.manifest.delivered[f.path] = new
            plan.manifest.offered.pop(f.path, None)
        elif now == new:
            plan.keep.append(f.path)
            plan.manifest.delivered[f.path] = new
            plan.manifest.offered.pop(f.path, None)
        else:
            # The participant's own version: never touched.  The organizer's is offered
            # when it is not the one the participant started from, and only once.
            plan.keep.append(f.path)
            if new != before and manifest.offered.get(f.path) != new:
                plan.offer[f.path] = update_copy_name(f.path, new)
                plan.manifest.offered[f.path] = new
    return plan


def updates_note(previous: Optional[str], offers: dict[str, str], *, title: str, phase: int,
                 when: Optional[dt.datetime] = None, moved: Optional[dict[str, str]] = None,
                 changed: Iterable[str] = (), layout: Optional[Layout] = None) -> str:
    """`UPDATES.md` with the newly offered updates (and the files that moved) on top of what it said before.

    `moved` maps new paths to old ones; `changed` lists the old paths whose
    copy the participant changed (or deleted).
    """
    when = when or dt.datetime.now(dt.timezone.utc)
    header = "# Updates of the starting kit\n"
    lines = [f"## {when:%Y-%m-%d %H:%M} UTC: phase {phase} of {title}", ""]
    if moved:
        changed = set(changed)
        where = layout.describe() if layout else "new places"
        lines += [
            f"The files of the kit moved: they are now laid out as after unzipping the starting kit and the "
            f"public data side by side ({where}), so that the paths the kit reads work as they are. "
            "Nothing at the old places was changed or removed: your copies stay there. "
            "Once you have taken what you need from them, you may delete them.",
            "",
        ]
        for new, old in sorted(moved.items()):
            mine = " (you changed your copy there: carry your changes over)" if old in changed else ""
            lines.append(f"- `{old}` is now `{new}`{mine}")
        lines.append("")
    if offers:
        lines += [
            "The organizers changed these files after you changed your copy. Your version is kept as it is; "
            "theirs is next to it. Compare the two and take what you want from theirs.",
            "",
        ]
        lines += [f"- `{path}`: the new version is `{copy}`" for path, copy in sorted(offers.items())]
    entry = "\n".join(lines) + "\n"
    older = (previous or "").strip()
    if older.startswith(header.strip()):
        older = older[len(header.strip()):].strip()
    return header + "\n" + entry + ("\n" + older + "\n" if older else "")


# -- the hub and the user's server ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LabAccess:
    """How the service reaches the hub's REST API and, through the proxy, users' servers."""

    hub_api_url: str  # ends in /hub/api/
    token: str  # the service's token: scopes `servers` and `access:servers`
    public_url: str  # the proxy as the service reaches it, ending in /
    timeout: float = SERVER_START_TIMEOUT

    @classmethod
    def from_environment(cls, environ: Optional[dict[str, str]] = None) -> "LabAccess":
        """From what the hub gives its managed services, and COMPETE_PUBLIC_URL (the proxy).

        Without COMPETE_PUBLIC_URL, the hub's public URL serves when the hub
        has one (`c.JupyterHub.public_url`).
        """
        env = os.environ if environ is None else environ
        api_url, token = env.get("JUPYTERHUB_API_URL", ""), env.get("JUPYTERHUB_API_TOKEN", "")
        if not (api_url and token):
            raise LabUnavailable("the service does not run under JupyterHub here (no JUPYTERHUB_API_URL and "
                                 "JUPYTERHUB_API_TOKEN), so it cannot reach users' servers")
        public = env.get("COMPETE_PUBLIC_URL", "")
        hub_public = env.get("JUPYTERHUB_PUBLIC_HUB_URL", "").rstrip("/")
        if not public and hub_public.endswith("/hub"):
            public = hub_public[: -len("hub")]
        if not public:
            raise LabUnavailable("set COMPETE_PUBLIC_URL in the service's environment (the proxy's address as "
                                 "the service reaches it, e.g. http://127.0.0.1:8000/) to open kits in JupyterLab")
        public = public if public.endswith("/") else public + "/"
        return cls(hub_api_url=api_url.rstrip("/") + "/", token=token, public_url=public)


class LabServer:
    """One user's default server: started through the hub, its files through the contents API."""

    def __init__(self, access: LabAccess, username: str, session=None):
        # requests loads only when a kit is delivered: the façade, and so every CLI command, imports this module.
        import requests

        self.access = access
        self.username = username
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"token {access.token}"
        self.server_url: Optional[str] = None  # /user/<name>/ once running

    # -- the hub ----------------------------------------------------------------------
    def _hub(self, method: str, path: str, **kwargs: Any):
        import requests  # loaded by __init__ already: the name only (see there)

        url = urljoin(self.access.hub_api_url, path)
        try:
            return self.session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise LabUnavailable(f"the hub did not answer at {self.access.hub_api_url}: {exc}") from None

    def _server_model(self) -> Optional[dict[str, Any]]:
        resp = self._hub("GET", f"users/{quote(self.username)}")
        if resp.status_code == 403:
            raise LabUnavailable("the hub refused to tell the service about your server: give the service the "
                                 "scopes `servers` and `access:servers` (jupyterhub_config.py, role "
                                 "competitions-service)")
        if resp.status_code == 404:
            raise LabUnavailable(f"the hub knows no user {self.username!r}")
        if resp.status_code != 200:
            raise LabUnavailable(f"the hub answered {resp.status_code} about your server: {resp.text[:200]}")
        return (resp.json().get("servers") or {}).get("")

    def ensure_running(self) -> str:
        """Start the server unless it runs; returns its URL path (/user/<name>/) once it is ready."""
        started = time.monotonic()
        if not self._server_model():
            resp = self._hub("POST", f"users/{quote(self.username)}/server")
            if resp.status_code == 403:
                raise LabUnavailable("the hub refused to start your server for the service: give the service "
                                     "the scope `servers` (jupyterhub_config.py, role competitions-service)")
            # 400: it started meanwhile, or is starting; either way, wait for it below.
            if resp.status_code not in (201, 202, 400):
                raise LabUnavailable(f"the hub could not start your server ({resp.status_code}): "
                                     f"{_hub_message(resp)}; start it from the hub's home page, then try again")
        seen = False
        while True:
            server = self._server_model()
            if server:
                seen = True
                if server.get("ready"):
                    self.server_url = server["url"]
                    return self.server_url
            elif seen or time.monotonic() - started > 15:
                # It was starting and is gone (or never appeared): the spawn failed.
                raise LabUnavailable("your server did not start; start it from the hub's home page to see "
                                     "why, then try again")
            if time.monotonic() - started > self.access.timeout:
                raise LabUnavailable(f"your server did not start within {self.access.timeout:.0f} s; try again "
                                     "in a moment")
            time.sleep(0.5)

    # -- the contents API ----------------------------------------------------------------
    def _contents_url(self, path: str) -> str:
        if self.server_url is None:
            raise RuntimeError("ensure_running() first")
        return urljoin(self.access.public_url, f"{self.server_url.lstrip('/')}api/contents/{quote(path)}")

    def _contents(self, method: str, path: str, **kwargs: Any):
        import requests  # loaded by __init__ already: the name only (see there)

        try:
            return self.session.request(method, self._contents_url(path), timeout=HTTP_TIMEOUT,
                                        allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise LabUnavailable(f"your server did not answer at {self.access.public_url}: {exc}") from None

    def _refused(self, action: str, path: str, resp) -> LabUnavailable:
        hint = ""
        if resp.status_code in (302, 401, 403):
            hint = " (the service's token may not use your server: it needs the scope `access:servers`)"
        return LabUnavailable(f"your server refused to {action} {path} ({resp.status_code}){hint}: "
                              f"{_server_message(resp)}")

    def file_hash(self, path: str) -> Optional[str]:
        """The sha256 of the file at `path` (None: nothing there; a folder hashes to 'folder')."""
        resp = self._contents("GET", path, params={"type": "file", "content": "0", "hash": "1"})
        if resp.status_code == 404:
            return None
        if resp.status_code == 400 and "directory" in resp.text.lower():
            return "folder"
        if resp.status_code != 200:
            raise self._refused("read", path, resp)
        model = resp.json()
        if model.get("hash") and model.get("hash_algorithm") == "sha256":
            return model["hash"]
        # A server without hashes in its contents API (jupyter_server < 2.11): read the bytes.
        data = self.read(path)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def read(self, path: str) -> Optional[bytes]:
        resp = self._contents("GET", path, params={"type": "file", "format": "base64", "content": "1"})
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._refused("read", path, resp)
        return base64.b64decode(resp.json().get("content") or "")

    def make_folder(self, path: str) -> None:
        """Make `path` and its parents (folders that exist are fine)."""
        parts = PurePosixPath(path).parts
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            resp = self._contents("PUT", folder, json={"type": "directory"})
            if resp.status_code not in (200, 201):
                raise self._refused("make the folder", folder, resp)

    def write(self, path: str, data: bytes) -> None:
        """Save `data` at `path` as it is (notebooks too: byte for byte, so that hashes compare)."""
        chunks = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
        for n, chunk in enumerate(chunks, start=1):
            body: dict[str, Any] = {"type": "file", "format": "base64",
                                    "content": base64.b64encode(chunk).decode("ascii")}
            if len(chunks) > 1:
                body["chunk"] = -1 if n == len(chunks) else n
            resp = self._contents("PUT", path, json=body)
            if resp.status_code not in (200, 201):
                raise self._refused("save", path, resp)


def _hub_message(resp) -> str:
    try:
        return str(resp.json().get("message") or resp.text[:200])
    except ValueError:
        return resp.text[:200]


_server_message = _hub_message


# -- the use case ---------------------------------------------------------------------------
def deliver(server: LabServer, folder: str, files: list[KitFile], *, slug: str, title: str, phase: int,
            page: str = "", layout: Layout = FIRST_LAYOUT) -> dict[str, Any]:
    """Carry the delivery out in `folder` of a running server; returns what was written, kept and offered.

    `files` are at their places in `layout` (`lay_out`); files delivered
    before at other places are listed in `moved`, and left where they are.
    """
    manifest_path = f"{folder}/{MANIFEST_NAME}"
    raw = server.read(manifest_path)
    manifest = Manifest.from_json(raw.decode("utf-8", "replace") if raw is not None else None)
    moved = moved_files(files, manifest.layout, layout, manifest.delivered)
    changed = [old for old in moved.values() if server.file_hash(f"{folder}/{old}") != manifest.delivered[old]]
    current = {f.path: server.file_hash(f"{folder}/{f.path}") for f in files}
    plan = plan_delivery(files, manifest, current)
    plan.manifest.layout = layout
    by_path = {f.path: f for f in files}

    made: set[str] = set()

    def write(path: str, data: bytes) -> None:
        parent = str(PurePosixPath(f"{folder}/{path}").parent)
        if parent not in made:
            server.make_folder(parent)
            made.add(parent)
        server.write(f"{folder}/{path}", data)

    for path in plan.write:
        write(path, by_path[path].read())
    for path, copy in plan.offer.items():
        new = by_path[path]
        if server.file_hash(f"{folder}/{copy}") != new.sha256:
            write(copy, new.read())
    if plan.offer or moved:
        previous = server.read(f"{folder}/{UPDATES_NAME}")
        note = updates_note(previous.decode("utf-8", "replace") if previous is not None else None, plan.offer,
                            title=title, phase=phase, moved=moved, changed=changed, layout=layout)
        write(UPDATES_NAME, note.encode("utf-8"))
    sources = {f.path: f.source for f in files}
    sources.update({p: "" for p in plan.manifest.delivered if p not in sources})
    # Last: a delivery cut short leaves no claim about files that never arrived.
    write(MANIFEST_NAME, plan.manifest.to_json(slug=slug, title=title, phase=phase, sources=sources,
                                               page=page).encode("utf-8"))
    return {
        "written": plan.write,
        "kept": plan.keep,
        "updated": sorted(plan.offer),
        "update_copies": dict(sorted(plan.offer.items())),
        "note": f"{folder}/{UPDATES_NAME}" if plan.offer or moved else None,
        "moved": dict(sorted(moved.items())),
        "layout": {"starting_kit": f"{folder}/{layout.kit}".rstrip("/"), "public_data": f"{folder}/{layout.data}",
                   "reads": layout.reads},
    }


__all__ = [
    "FIRST_LAYOUT",
    "KitFile",
    "LabAccess",
    "Layout",
    "LabServer",
    "LabUnavailable",
    "Manifest",
    "Plan",
    "deliver",
    "files_of_zip",
    "front_file",
    "kit_reads",
    "lay_out",
    "main_notebook",
    "moved_files",
    "plan_delivery",
    "plan_layout",
    "update_copy_name",
    "updates_note",
    "with_kernelspec",
]
