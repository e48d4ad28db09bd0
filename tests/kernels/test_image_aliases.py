"""CodaLab-era image names run on the legacy runtime; every replacement is said and the run records what it ran on."""
from __future__ import annotations

import uuid

import pytest
from traitlets.config import Config

from dask_workers.executors.docker import LABEL_WORKER, DockerExecutor
from hub_extension.config import Compete
from kernels.build import DEFAULT_IMAGE, LEGACY_IMAGE
from kernels.images import alias_for, expected_image, legacy_aliases, resolve_image_choice

PLATFORM = legacy_aliases(LEGACY_IMAGE, DEFAULT_IMAGE)


@pytest.mark.parametrize("name, target", [
    ("codalab/codalab-legacy:py37", LEGACY_IMAGE),
    ("codalab/codalab-legacy:py3", LEGACY_IMAGE),
    ("codalab/codalab-legacy:py39", LEGACY_IMAGE),
    ("codalab/codalab-legacy:gpu", LEGACY_IMAGE),
    ("codalab/codalab-legacy:py2", LEGACY_IMAGE),
    ("codalab/codalab-legacy", LEGACY_IMAGE),
    ("codalab/codalab-legacy:latest", LEGACY_IMAGE),
    ("docker.io/codalab/codalab-legacy:py37", LEGACY_IMAGE),
    ("codalab/codalab-legacy@sha256:" + "0" * 64, LEGACY_IMAGE),
    ("codalab/default", LEGACY_IMAGE),
    ("codalab/competitions-v1-compute-worker:latest", LEGACY_IMAGE),
    # numpy 1.26: its programs were written without np.float, for a current stack.
    ("codalab/codalab-legacy:py312", DEFAULT_IMAGE),
    ("python:3.11-slim", None),
    ("codalab/codalab-legacy-fork:py37", None),
    ("someone/codalab/codalab-legacy:py37", None),
])
def test_platform_aliases(name, target):
    match = alias_for(name, PLATFORM)
    assert (match[1] if match else None) == target


def test_the_platform_configuration_maps_codalab_images_by_default():
    compete = Compete()
    assert compete.legacy_image == LEGACY_IMAGE
    assert compete.image_aliases == PLATFORM
    choice = expected_image("codalab/codalab-legacy:py37", compete.image_aliases, compete.default_image)
    assert (choice.used, choice.kind) == (LEGACY_IMAGE, "alias")
    assert "codalab/codalab-legacy:*" in choice.reason and "c.Compete.image_aliases" in choice.reason


def test_organizers_entries_come_first_and_the_platform_entries_stay():
    config = Config()
    config.Compete.image_aliases = {"codalab/codalab-legacy:py37": "mine/scoring:1", "acme/*": "mine/acme:2",
                                    "codalab/codalab-legacy:py3": ""}
    aliases = Compete(config=config).image_aliases
    assert list(aliases)[:3] == ["codalab/codalab-legacy:py37", "acme/*", "codalab/codalab-legacy:py3"]
    assert alias_for("codalab/codalab-legacy:py37", aliases) == ("codalab/codalab-legacy:py37", "mine/scoring:1")
    assert alias_for("acme/x:1", aliases) == ("acme/*", "mine/acme:2")
    # An empty target: no alias, the worker pulls the image itself.
    assert alias_for("codalab/codalab-legacy:py3", aliases) is None
    # The platform's own entries still apply to what the organizer did not name.
    assert alias_for("codalab/codalab-legacy:py39", aliases)[1] == LEGACY_IMAGE


def test_the_legacy_image_setting_moves_the_platform_entries():
    config = Config()
    config.Compete.legacy_image = "site/legacy:2"
    assert alias_for("codalab/codalab-legacy:py37", Compete(config=config).image_aliases)[1] == "site/legacy:2"


def test_a_worker_runs_codalab_images_on_the_legacy_runtime(legacy_image, runtime_image):
    choice = resolve_image_choice("codalab/codalab-legacy:py37", PLATFORM, runtime_image)
    assert (choice.requested, choice.used, choice.kind) == ("codalab/codalab-legacy:py37", legacy_image, "alias")
    assert choice.describe().startswith(f"image codalab/codalab-legacy:py37 is mapped to {legacy_image}")


def test_an_alias_target_the_worker_lacks_falls_back_to_the_default_and_says_what_to_build(runtime_image):
    aliases = {"codalab/codalab-legacy:*": "jupyter-compete/not-built:0"}
    choice = resolve_image_choice("codalab/codalab-legacy:py37", aliases, runtime_image)
    assert (choice.used, choice.kind) == (runtime_image, "fallback")
    assert "jupyter-compete/not-built:0" in choice.reason and "compete image build --all" in choice.reason


def test_an_image_present_on_the_worker_is_used_as_it_is(legacy_image, runtime_image):
    choice = resolve_image_choice(runtime_image, {runtime_image: legacy_image}, "default:1")
    assert (choice.used, choice.replaced) == (runtime_image, False)


def test_the_run_records_the_image_it_ran_on_by_name_and_digest(make_step, legacy_image, runtime_image,
                                                                docker_engine):
    executor = DockerExecutor(default_image=runtime_image, image_aliases=dict(PLATFORM),
                              worker_id=f"test-{uuid.uuid4().hex[:8]}")
    messages: list[str] = []
    spec = make_step("scoring", "python -c 'import numpy; print(numpy.__version__)'",
                     image="codalab/codalab-legacy:py37")
    try:
        result = executor.run_step(spec, log=messages.append)
    finally:
        for container in docker_engine.containers.list(all=True,
                                                        filters={"label": f"{LABEL_WORKER}={executor.worker_id}"}):
            container.remove(force=True)
    assert result.ok, result
    assert result.stdout.strip() == "1.23.5"
    assert result.image == legacy_image
    assert result.image_digest == docker_engine.images.get(legacy_image).id
    assert any(f"image codalab/codalab-legacy:py37 is mapped to {legacy_image}" in m for m in messages), messages
