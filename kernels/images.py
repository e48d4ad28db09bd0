"""Which runtime image a step runs in, and whether a Docker engine is there at all.

Competition bundles name images of the public registries (for example
`codalab/codalab-legacy:py37`).  A worker maps them through an alias table
(`c.Compete.image_aliases`: exact names or shell patterns such as
`codalab/codalab-legacy:*`, first match wins) to images it has, and falls back
to the platform's default runtime when an image can be neither found nor
pulled, so that a bundle runs unchanged wherever the worker is.

`LEGACY_ALIASES` are the platform's own entries: the CodaLab-era images run on
the legacy runtime (numpy 1.23, where `np.float` still exists), except
`codalab/codalab-legacy:py312`, whose numpy 1.26 programs run on the default
runtime.  Every replacement is said: `resolve_image_choice` returns the image
asked for, the image used and why, for the run's log and record.
"""
from __future__ import annotations

import fnmatch
import logging
from typing import Callable, NamedTuple, Optional

log_ = logging.getLogger(__name__)

# Seconds: pinging or pulling must never hang a worker.
PING_TIMEOUT = 3.0
PULL_TIMEOUT = 30.0


def docker_client(timeout: float = 60.0):
    """A docker SDK client for the engine of this machine (DOCKER_HOST is honoured)."""
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    return docker.from_env(timeout=timeout)


def docker_available(timeout: float = PING_TIMEOUT) -> bool:
    """True when a Docker engine answers a ping within `timeout` seconds."""
    try:
        client = docker_client(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "not usable here"; callers say what to do
        return False


def image_exists(name: str, client=None) -> bool:
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    own = client is None
    client = client or docker_client()
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        if own:
            client.close()


def is_digest_reference(image: Optional[str]) -> bool:
    """Whether `image` names an image by its content (`sha256:<id>` or `name@sha256:<digest>`): such an
    image is never replaced by an alias or the default runtime (a reproduction is pinned to it)."""
    if not image:
        return False
    digest = image.rsplit("@", 1)[-1] if "@" in image else image
    return digest.startswith("sha256:") and len(digest) == 71 and all(c in "0123456789abcdef" for c in digest[7:])


def image_digest(name: str, client=None) -> Optional[str]:
    """The registry digest of a local image, else its content id; None if it is not here.

    Locally built images have no registry digest; their id (`sha256:...`) is
    already a hash of their content, which is what a result needs to record.
    """
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    own = client is None
    client = client or docker_client()
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    finally:
        if own:
            client.close()
    digests = image.attrs.get("RepoDigests") or []
    return digests[0] if digests else image.id


# Where the targets below stand for the platform's runtimes: LEGACY and DEFAULT
# are replaced by `legacy_aliases(legacy, default)`.
LEGACY = "<legacy runtime>"
DEFAULT = "<default runtime>"

# The platform's aliases for images of the CodaLab era, in order (first match
# wins).  Names are those of CodaLab's and Codabench's docs and bundles: the
# `codalab/codalab-legacy` tags (py2, py3, py37, py39, gpu, gpu310, ...: their
# numpy is older than 1.24) and names bundles give for the default image.
LEGACY_ALIASES: tuple[tuple[str, str], ...] = (
    ("codalab/codalab-legacy:py312", DEFAULT),  # numpy 1.26: np.float was already gone
    ("codalab/codalab-legacy", LEGACY),  # untagged, i.e. :latest
    ("codalab/codalab-legacy:*", LEGACY),
    ("codalab/codalab-legacy@*", LEGACY),
    ("codalab/default", LEGACY),
    ("codalab/default:*", LEGACY),
    ("codalab/competitions-v1-compute-worker", LEGACY),
    ("codalab/competitions-v1-compute-worker:*", LEGACY),
)

# Prefixes that name Docker Hub itself: `docker.io/codalab/x` is `codalab/x`.
_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/", "registry.hub.docker.com/")


def legacy_aliases(legacy: str, default: str) -> dict[str, str]:
    """LEGACY_ALIASES with the platform's legacy and default runtime names filled in."""
    return {pattern: {LEGACY: legacy, DEFAULT: default}.get(target, target) for pattern, target in LEGACY_ALIASES}


def merge_aliases(own: dict[str, str], platform: dict[str, str]) -> dict[str, str]:
    """The organizers' own entries first, then the platform's entries they do not name."""
    merged = dict(own)
    for pattern, target in platform.items():
        merged.setdefault(pattern, target)
    return merged


def _normalized(name: str) -> str:
    for prefix in _HUB_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if name.startswith("library/"):
        name = name[len("library/"):]
    return name


def alias_for(name: str, aliases: dict[str, str]) -> Optional[tuple[str, str]]:
    """(the entry that matched, its target) for `name`, or None.

    Entries are exact names or shell patterns (`*`, `?`, `[...]`), tried in
    order; an untagged name also matches as `:latest`.  A match whose target
    is empty or the name itself means "no alias" (the image is pulled as
    named) and is returned as None.
    """
    name = _normalized(name)
    forms = [name]
    if split_tag(name)[1] is None:
        forms.append(f"{name}:latest")
    for pattern, target in aliases.items():
        key = _normalized(str(pattern))
        patterned = any(ch in key for ch in "*?[")
        if any(form == key or (patterned and fnmatch.fnmatchcase(form, key)) for form in forms):
            if not target or _normalized(str(target)) == name:
                return None
            return str(pattern), str(target)
    return None


class ImageChoice(NamedTuple):
    """The image a step asked for, the image it runs in, and why they differ.

    `kind`: "alias" (an entry of the image aliases replaced it), "fallback"
    (the default runtime replaced it) or None (no replacement).
    """

    requested: Optional[str]
    used: str
    reason: Optional[str] = None
    kind: Optional[str] = None

    @property
    def replaced(self) -> bool:
        return bool(self.requested) and self.used != self.requested

    def describe(self) -> str:
        """One line for people: what runs instead of what, and why."""
        if not self.replaced:
            return f"runs on {self.used}"
        verb = "is mapped to" if self.kind == "alias" else "is replaced by"
        return f"image {self.requested} {verb} {self.used} on this worker: {self.reason}"


def expected_image(requested: Optional[str], aliases: dict[str, str], default: str) -> ImageChoice:
    """What a worker does with `requested`, as far as it can be told without its engine (upload checks).

    An aliased image is replaced by its target; any other image is pulled
    by the worker, or replaced by `default` when it cannot be had
    (`ImageChoice.reason` is None then: whether it can be had is the
    worker's to find out).
    """
    if not requested:
        return ImageChoice(None, default)
    match = alias_for(requested, aliases)
    if match:
        pattern, target = match
        return ImageChoice(requested, target, _alias_reason(pattern, requested), "alias")
    return ImageChoice(requested, requested)


def _alias_reason(pattern: str, requested: str) -> str:
    return f"by the entry {pattern!r} of the platform's image aliases (c.Compete.image_aliases)"


def resolve_image_choice(
    requested: Optional[str],
    aliases: dict[str, str],
    default: str,
    *,
    client=None,
) -> ImageChoice:
    """The image a step runs in, with the image it asked for and why they differ.

    In order: the requested image when it is present locally; its alias
    target when that is here (else the default runtime, saying which image to
    build); the requested image pulled from its registry (short timeout);
    else the default runtime.  Never raises.
    """
    if not requested:
        return ImageChoice(None, default)
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    own = client is None
    client = client or docker_client(timeout=PULL_TIMEOUT)
    try:
        if image_exists(requested, client):
            return ImageChoice(requested, requested)
        match = alias_for(requested, aliases)
        if match:
            pattern, target = match
            reason = _alias_reason(pattern, requested)
            if image_exists(target, client) or not image_exists(default, client):
                return ImageChoice(requested, target, reason, "alias")
            return ImageChoice(requested, default, f"the entry {pattern!r} of the platform's image aliases maps it "
                                                   f"to {target}, which this worker does not have (build it: "
                                                   f"`compete image build --all`)", "fallback")
        repository, tag = split_tag(requested)
        try:
            client.images.pull(repository, tag=tag or "latest")
            return ImageChoice(requested, requested)
        except (docker.errors.APIError, docker.errors.DockerException, OSError) as exc:
            why = _first_line(exc)
        except Exception as exc:  # e.g. requests timeouts: the registry is unreachable
            why = type(exc).__name__
        return ImageChoice(requested, default, f"it is not on this worker and could not be pulled ({why})",
                           "fallback")
    finally:
        if own:
            client.close()


def resolve_image(
    requested: Optional[str],
    aliases: dict[str, str],
    default: str,
    *,
    log: Optional[Callable[[str], None]] = None,
) -> str:
    """The image a step should run in (`resolve_image_choice`); `log` is told of any replacement."""
    choice = resolve_image_choice(requested, aliases, default)
    if choice.replaced:
        (log or log_.info)(choice.describe())
    return choice.used


def split_tag(name: str) -> tuple[str, Optional[str]]:
    """`host:5000/org/img:tag` -> (`host:5000/org/img`, `tag`); no tag -> None."""
    if "@" in name:  # pinned by digest: the digest is the "tag"
        repository, _, digest = name.partition("@")
        return repository, digest
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, None
    return repository, tag


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
