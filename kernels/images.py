"""Which runtime image a step runs in, and whether a Docker engine is there at all.

Competition bundles name images of the public registries (for example
`codalab/codalab-legacy:py37`).  A worker that cannot pull them (no registry,
air-gapped organizer machines) maps them through an alias table to images it
has, and falls back to the platform's default runtime, so that a bundle runs
unchanged wherever the worker is.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

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


def resolve_image(
    requested: Optional[str],
    aliases: dict[str, str],
    default: str,
    *,
    log: Optional[Callable[[str], None]] = None,
) -> str:
    """The image a step should run in.

    In order: the requested image when it is present locally; its alias
    target; the requested image pulled from its registry (short timeout);
    else the default runtime.  Never raises: an unknown image degrades to the
    default, and `log` is told why.
    """
    say = log or log_.info
    if not requested:
        return default
    # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
    import docker

    client = docker_client(timeout=PULL_TIMEOUT)
    try:
        if image_exists(requested, client):
            return requested
        if requested in aliases:
            target = aliases[requested]
            say(f"image {requested} is mapped to {target} on this worker")
            return target
        repository, tag = split_tag(requested)
        try:
            client.images.pull(repository, tag=tag or "latest")
            return requested
        except (docker.errors.APIError, docker.errors.DockerException, OSError) as exc:
            say(f"image {requested} is not available here and could not be pulled "
                f"({_first_line(exc)}); using {default}")
        except Exception as exc:  # e.g. requests timeouts: the registry is unreachable
            say(f"image {requested} could not be pulled ({type(exc).__name__}); using {default}")
        return default
    finally:
        client.close()


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
