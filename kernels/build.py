"""Builds the runtime images in which submissions are run (`compete image build [--all]`).

Two runtimes, each with one package list here (`RUNTIMES`):

- `jupyter-compete/runtime:py3` (`DEFAULT_IMAGE`), the default: the current
  scientific stack;
- `jupyter-compete/runtime:legacy` (`LEGACY_IMAGE`): the same Python with the
  last releases before numpy 1.24 removed `np.float`, `np.int`, `np.bool`
  and friends (numpy 1.23.5 and the scipy, pandas, scikit-learn, matplotlib
  of that time), for the programs of CodaLab-era bundles that name
  `codalab/codalab-legacy:*` images (see `kernels.images.LEGACY_ALIASES`).

Two ways lead to the same image (a venv at /opt/venv with the runtime's
packages, user `participant` uid 1000, workdir /app/program):

- online: `docker build` of `kernels/Dockerfile`, when a container registry
  answers;
- offline: a Debian root filesystem made by `debootstrap` (cached as a tarball
  under ~/.cache/jupyter-compete, so once per machine), `docker import`, then a
  build container that pip-installs the packages from PyPI, and `docker commit`.
  This is the path for machines that reach PyPI and Debian but no registry.

Both paths get the package list from here (the Dockerfile takes it as its
`PACKAGES` build argument), so that they cannot drift apart.

The image carries a label with a hash of its build inputs; a build is skipped
when an image with that tag and that hash is already there, so every test
session and every `compete image build` after the first is free.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

from .images import docker_client, split_tag

DEFAULT_IMAGE = "jupyter-compete/runtime:py3"
LEGACY_IMAGE = "jupyter-compete/runtime:legacy"


def read_requirements(path: Path) -> tuple[str, ...]:
    """The requirement lines of a runtime's list (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line)


# Each runtime's packages, pinned, in a file of its own: the image is built from
# it, and scripts/bootstrap.sh installs the default one into the project's
# environment (the servers' Python where they have no Docker).
REQUIREMENTS = {
    DEFAULT_IMAGE: Path(__file__).with_name("requirements-py3.txt"),
    LEGACY_IMAGE: Path(__file__).with_name("requirements-legacy.txt"),
}
PACKAGES = read_requirements(REQUIREMENTS[DEFAULT_IMAGE])
LEGACY_PACKAGES = read_requirements(REQUIREMENTS[LEGACY_IMAGE])


class Runtime(NamedTuple):
    """One runtime image: its tag, its packages, and a line for people."""

    tag: str
    packages: tuple[str, ...]
    summary: str


RUNTIMES = {
    DEFAULT_IMAGE: Runtime(DEFAULT_IMAGE, PACKAGES, "Python 3.11 with numpy 2.4, scipy, pandas 3.1, "
                                                    "scikit-learn 1.9, matplotlib and ipywidgets"),
    LEGACY_IMAGE: Runtime(LEGACY_IMAGE, LEGACY_PACKAGES,
                          "Python 3.11 with numpy 1.23.5, scipy 1.9.3, pandas 1.5.3, scikit-learn 1.1.3 and "
                          "matplotlib 3.6.3, the last releases with np.float, np.int and np.bool"),
}


def runtime_for(tag: str) -> Runtime:
    """The runtime built as `tag`: a known one, else the default runtime's packages under that tag."""
    known = RUNTIMES.get(tag)
    return known if known else Runtime(tag, PACKAGES, RUNTIMES[DEFAULT_IMAGE].summary)
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_INCLUDE = "python3,python3-venv,python3-pip"
INPUTS_LABEL = "jupyter-compete.build-inputs"
BASE_REPOSITORY = "jupyter-compete/base"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_IMAGE_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # installed by python3-pip's ca-certificates
# Left out of the root filesystem tarball: package caches that only make the
# base layer bigger (a later `rm` cannot shrink a layer below it).
_TAR_EXCLUDES = ("./var/cache/apt/archives/*.deb", "./var/lib/apt/lists/*")
DOCKERFILE = Path(__file__).with_name("Dockerfile")
REGISTRY_PROBE = "https://registry-1.docker.io/v2/"

# Runs as root inside the offline build container.
_OFFLINE_SCRIPT = r"""
set -eu
python3 -m venv /opt/venv
/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip
/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check $PACKAGES
useradd --uid 1000 --create-home --shell /bin/bash participant
mkdir -p /app/program /app/output /app/shared
chown participant:participant /app/output /app/shared
# `python` for programs that call it by that name outside the venv's PATH.
ln -sf /opt/venv/bin/python /usr/local/bin/python
rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /root/.cache
/opt/venv/bin/python -c "import numpy, scipy, pandas, sklearn, matplotlib, papermill, ipykernel, ipywidgets, yaml"
"""

# What `docker commit` records: the same configuration as the Dockerfile's.
_RUNTIME_ENV = [
    "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG=C.UTF-8",
    "PYTHONUNBUFFERED=1",
    "MPLBACKEND=Agg",
]

# Bump when the build code changes what the image holds in a way that the
# inputs hashed below do not show (mounts, commit configuration, ...).
RECIPE_VERSION = "2"

LogFn = Callable[[str], None]


class BuildError(RuntimeError):
    """The runtime image could not be built; the message says what to do."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "jupyter-compete"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_inputs_hash(tag: str = DEFAULT_IMAGE) -> str:
    """A hash of everything the image built as `tag` is made from (both build paths)."""
    packages = runtime_for(tag).packages
    h = hashlib.sha256()
    for part in (RECIPE_VERSION.encode(), DOCKERFILE.read_bytes(), "\n".join(packages).encode(), SUITE.encode(),
                 MIRROR.encode(), DEBOOTSTRAP_INCLUDE.encode(), " ".join(_TAR_EXCLUDES).encode(),
                 _OFFLINE_SCRIPT.encode(),
                 "\n".join(_RUNTIME_ENV).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def registry_reachable(timeout: float = 3.0) -> bool:
    """True when Docker Hub answers at all (a 401 is an answer)."""
    # Loaded only for this probe: the CLI imports this module for every command.
    import requests

    try:
        requests.get(REGISTRY_PROBE, timeout=timeout)
        return True
    except requests.RequestException:
        return False


def build_image(tag: str = DEFAULT_IMAGE, *, offline: Optional[bool] = None, log: LogFn = print) -> str:
    """Build the runtime image as `tag` unless it is already current; returns the image id.

    `tag` picks the package list (`runtime_for`): LEGACY_IMAGE builds the
    legacy runtime, any other tag the default one.  `offline=None` builds
    from the Dockerfile when a registry answers and offline otherwise;
    True/False force one way.
    """
    packages = runtime_for(tag).packages
    inputs = build_inputs_hash(tag)
    client = docker_client(timeout=600)
    try:
        current = _current_image(client, tag, inputs)
        if current:
            return current
        # Two test sessions (or a CLI and a test) must not build at the same time.
        with _lock(cache_dir() / "build.lock"):
            current = _current_image(client, tag, inputs)
            if current:
                return current
            if offline is None:
                offline = not registry_reachable()
            if offline:
                log(f"building {tag} offline (debootstrap + PyPI); this takes a few minutes once")
                return _build_offline(client, tag, inputs, packages, log)
            log(f"building {tag} from {DOCKERFILE}")
            return _build_online(client, tag, inputs, packages, log)
    finally:
        client.close()


def build_all(*, offline: Optional[bool] = None, log: LogFn = print) -> dict[str, str]:
    """Build every runtime (`compete image build --all`); returns {tag: image id}."""
    return {tag: build_image(tag, offline=offline, log=log) for tag in RUNTIMES}


def _current_image(client, tag: str, inputs: str) -> Optional[str]:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    if (image.labels or {}).get(INPUTS_LABEL) == inputs:
        return image.id
    return None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_online(client, tag: str, inputs: str, packages: tuple[str, ...], log: LogFn) -> str:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    try:
        image, lines = client.images.build(
            path=str(DOCKERFILE.parent), dockerfile=DOCKERFILE.name, tag=tag, rm=True,
            labels={INPUTS_LABEL: inputs}, buildargs={"PACKAGES": " ".join(packages)},
        )
    except docker.errors.BuildError as exc:
        tail = "".join(str(item.get("stream", "")) for item in list(exc.build_log)[-20:])
        raise BuildError(f"docker build of {DOCKERFILE} failed: {exc.msg}\n{tail}") from None
    for item in lines:
        text = str(item.get("stream", "")).rstrip()
        if text:
            log(text)
    return image.id


def _rootfs_tarball(log: LogFn) -> Path:
    recipe = f"{SUITE} {MIRROR} {DEBOOTSTRAP_INCLUDE} {' '.join(_TAR_EXCLUDES)}"
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    tarball = cache_dir() / f"rootfs-{SUITE}-{key}.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed: run `bash scripts/ensure_docker.sh` as root "
                         "(or `apt-get install -y debootstrap`), then build again")
    if os.geteuid() != 0:
        raise BuildError("the offline image build runs debootstrap, which needs root: "
                         "run `compete image build` as root once")
    root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir()))
    try:
        log(f"debootstrap {SUITE} into {root} (about a minute)")
        _run(["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}", SUITE, str(root), MIRROR],
             "debootstrap")
        partial = tarball.with_suffix(".tar.partial")
        excludes = [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
        _run(["tar", "--numeric-owner", *excludes, "-C", str(root), "-cf", str(partial), "."], "tar")
        os.replace(partial, tarball)  # atomic: a crash never leaves a half tarball in the cache
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tarball


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise BuildError(f"{what} failed with exit code {proc.returncode}:\n{tail}")


def _base_image(client, log: LogFn) -> str:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    tarball = _rootfs_tarball(log)
    name = f"{BASE_REPOSITORY}:{tarball.stem}"
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    log(f"docker import {tarball} as {name}")
    repository, tag = split_tag(name)
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    client.images.get(name)  # raises if the import did not produce it
    return name


def _build_offline(client, tag: str, inputs: str, packages: tuple[str, ...], log: LogFn) -> str:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    from docker.types import Mount

    base = _base_image(client, log)
    environment = {"PACKAGES": " ".join(packages)}
    mounts = []
    if Path(HOST_CA_BUNDLE).is_file():
        # Only for the build: lets pip through a TLS-inspecting proxy.  Bound
        # over the image's own bundle (which exists), so the engine creates no
        # mount point that `commit` would keep, and bind-mounted content is
        # never committed.  A host-config mount, not `volumes=`: the latter
        # also declares a VOLUME in the container config, which `commit` keeps.
        mounts.append(Mount(_IMAGE_CA_BUNDLE, HOST_CA_BUNDLE, type="bind", read_only=True))
        environment["PIP_CERT"] = _IMAGE_CA_BUNDLE
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if os.environ.get(name):
            environment[name] = os.environ[name]
    # Build-only settings are exported by the script itself: `commit` would
    # merge a container's environment into the image's.
    prelude = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in environment.items())
    container = client.containers.create(
        base, ["sh", "-c", prelude + _OFFLINE_SCRIPT], user="root",
        mounts=mounts,
    )
    try:
        container.start()
        tail: deque[str] = deque(maxlen=30)
        pending = b""
        for chunk in container.logs(stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip()
                tail.append(text)
                if text and not text.startswith(("  Downloading", "  Using cached")):
                    log(text)
        status = container.wait()
        if status.get("StatusCode") != 0:
            raise BuildError(
                f"installing the packages into the runtime image failed (exit code "
                f"{status.get('StatusCode')}); is PyPI reachable from containers? Last lines:\n"
                + "\n".join(tail))
        superseded = _image_id(client, tag)
        repository, image_tag = split_tag(tag)
        image = container.commit(
            repository=repository, tag=image_tag or "latest",
            conf={
                "Env": _RUNTIME_ENV,
                "User": "participant",
                "WorkingDir": "/app/program",
                "Cmd": ["python3"],
                "Labels": {INPUTS_LABEL: inputs},
            },
        )
        log(f"built {tag} ({image.id[:19]})")
    finally:
        container.remove(force=True)
    _prune(client, keep_image=image.id, superseded=superseded, keep_base=base)
    return image.id


def _image_id(client, name: str) -> Optional[str]:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        return None


def _prune(client, *, keep_image: str, superseded: Optional[str], keep_base: str) -> None:
    """Remove what earlier recipes left: the replaced image, older base images and tarballs.

    Best effort: an image still used by a container stays.
    """
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    stale = [superseded] if superseded and superseded != keep_image else []
    for image in client.images.list(name=BASE_REPOSITORY):
        if keep_base not in image.tags:
            stale.extend(image.tags)
    for name in stale:
        try:
            client.images.remove(name)
        except docker.errors.APIError:
            pass
    keep_tarball = split_tag(keep_base)[1]
    for tarball in cache_dir().glob(f"rootfs-{SUITE}-*.tar"):
        if tarball.stem != keep_tarball:
            tarball.unlink(missing_ok=True)

