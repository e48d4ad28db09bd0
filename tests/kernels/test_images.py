"""Image resolution on a worker: local image, alias, pull, default."""
from __future__ import annotations

import pytest

from kernels import docker_available, image_digest, resolve_image
from kernels.images import split_tag


@pytest.mark.parametrize("name, expected", [
    ("python", ("python", None)),
    ("python:3.11", ("python", "3.11")),
    ("localhost:5000/org/img", ("localhost:5000/org/img", None)),
    ("localhost:5000/org/img:v2", ("localhost:5000/org/img", "v2")),
    ("img@sha256:abc", ("img", "sha256:abc")),
])
def test_split_tag(name, expected):
    assert split_tag(name) == expected


def test_docker_available(docker_engine):
    assert docker_available() is True


def test_docker_available_is_false_without_an_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert docker_available(timeout=1) is False


def test_local_image_is_used_as_it_is(runtime_image):
    assert resolve_image(runtime_image, {runtime_image: "other:1"}, "default:1") == runtime_image


def test_alias_maps_a_missing_image(runtime_image):
    aliases = {"codalab/codalab-legacy:py37": runtime_image}
    assert resolve_image("codalab/codalab-legacy:py37", aliases, "default:1") == runtime_image


def test_unpullable_image_falls_back_to_default_with_a_reason(runtime_image):
    messages: list[str] = []
    chosen = resolve_image("jupyter-compete/no-such-image:0", {}, runtime_image, log=messages.append)
    assert chosen == runtime_image
    assert "jupyter-compete/no-such-image:0" in messages[0] and runtime_image in messages[0]


def test_no_request_means_default(docker_engine):
    assert resolve_image(None, {}, "default:1") == "default:1"
    assert resolve_image("", {}, "default:1") == "default:1"


def test_image_digest(runtime_image, docker_engine):
    assert image_digest(runtime_image) == docker_engine.images.get(runtime_image).id
    assert image_digest("jupyter-compete/no-such-image:0") is None
