"""The legacy runtime image, built for real: numpy 1.23 with np.float, the same layout as the default one, caching."""
from __future__ import annotations

import time

from hub_extension.cli import main
from kernels.build import (DEFAULT_IMAGE, DOCKERFILE, INPUTS_LABEL, LEGACY_IMAGE, LEGACY_PACKAGES, PACKAGES, RUNTIMES,
                           _build_online, build_image, build_inputs_hash, runtime_for)

from .test_runtime_image import run_in_image

STACK_VERSIONS = ("import sys, numpy, scipy, pandas, sklearn, matplotlib, papermill, ipykernel, yaml; "
                  "print(sys.version_info[:2], numpy.__version__, scipy.__version__, pandas.__version__, "
                  "sklearn.__version__, matplotlib.__version__)")


def test_legacy_image_has_the_last_releases_before_the_removals(docker_engine, legacy_image):
    output = run_in_image(docker_engine, legacy_image, f'python -c "{STACK_VERSIONS}"')
    assert output.split() == ["(3,", "11)", "1.23.5", "1.9.3", "1.5.3", "1.1.3", "3.6.3"], output


def test_np_float_and_friends_work_in_the_legacy_image_only(docker_engine, legacy_image, runtime_image):
    program = ("import warnings; warnings.simplefilter('ignore'); import numpy as np; "
               "print(np.array(['1.5', '2'], dtype=np.float).sum(), np.int(7), np.bool(1), np.object)")
    assert run_in_image(docker_engine, legacy_image, f'python -c "{program}"').split()[:3] == ["3.5", "7", "True"]
    # The default runtime's numpy has no np.float: what breaks CodaLab-era programs there.
    probe = "import numpy as np; print(hasattr(np, 'float'))"
    assert run_in_image(docker_engine, runtime_image, f'python -c "{probe}"').strip() == "False"


def test_legacy_image_is_laid_out_like_the_default_one(docker_engine, legacy_image):
    output = run_in_image(docker_engine, legacy_image, "id -u; id -un; pwd; which python; jupyter kernelspec list")
    uid, name, cwd, python, *kernels = output.splitlines()
    assert (uid, name, cwd, python) == ("1000", "participant", "/app/program", "/opt/venv/bin/python")
    assert any("python3" in line for line in kernels)  # the kernel papermill asks for
    config = docker_engine.images.get(legacy_image).attrs["Config"]
    assert config["User"] == "participant" and config["WorkingDir"] == "/app/program"
    assert not any(item.startswith(("PACKAGES=", "PIP_CERT=")) for item in config["Env"])


def test_each_runtime_carries_the_hash_of_its_own_inputs(docker_engine, legacy_image, runtime_image):
    assert docker_engine.images.get(legacy_image).labels[INPUTS_LABEL] == build_inputs_hash(LEGACY_IMAGE)
    assert docker_engine.images.get(runtime_image).labels[INPUTS_LABEL] == build_inputs_hash(DEFAULT_IMAGE)
    assert build_inputs_hash(LEGACY_IMAGE) != build_inputs_hash(DEFAULT_IMAGE)
    assert build_inputs_hash() == build_inputs_hash(DEFAULT_IMAGE)


def test_legacy_build_is_skipped_when_the_image_is_current(docker_engine, legacy_image):
    messages: list[str] = []
    started = time.monotonic()
    image_id = build_image(LEGACY_IMAGE, log=messages.append)
    assert time.monotonic() - started < 5
    assert image_id == docker_engine.images.get(LEGACY_IMAGE).id
    assert messages == []


def test_compete_image_build_all_builds_both_and_the_plain_command_the_default(docker_engine, legacy_image,
                                                                                runtime_image, capsys):
    assert main(["image", "build", "--all"]) == 0
    lines = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert lines == {DEFAULT_IMAGE: docker_engine.images.get(DEFAULT_IMAGE).id,
                     LEGACY_IMAGE: docker_engine.images.get(LEGACY_IMAGE).id}
    assert main(["image", "build"]) == 0
    assert capsys.readouterr().out.strip() == docker_engine.images.get(DEFAULT_IMAGE).id
    assert main(["image", "build", "--all", "--tag", "x:1"]) == 2


class _RecordingImages:
    """Stands in for the engine's image API to see what the online build asks for."""

    def __init__(self):
        self.calls: list[dict] = []

    def build(self, **kwargs):
        self.calls.append(kwargs)
        return type("Image", (), {"id": "sha256:built"})(), []


def test_one_package_list_per_runtime_for_both_build_paths():
    assert RUNTIMES[DEFAULT_IMAGE].packages == PACKAGES
    assert RUNTIMES[LEGACY_IMAGE].packages == LEGACY_PACKAGES
    assert "numpy==1.23.5" in LEGACY_PACKAGES and "numpy==1.23.5" not in PACKAGES
    # Every package of both runtimes is pinned (the servers' Python gets the default one's versions).
    assert all("==" in p for p in PACKAGES + LEGACY_PACKAGES), (PACKAGES, LEGACY_PACKAGES)
    assert {p.split("==")[0] for p in PACKAGES} == {p.split("==")[0] for p in LEGACY_PACKAGES} >= {"ipywidgets"}
    assert runtime_for("my/own:tag").packages == PACKAGES  # `--tag` builds the default runtime under that tag
    # The Dockerfile takes the list as its build argument: the online build passes the runtime's own.
    text = DOCKERFILE.read_text()
    assert "ARG PACKAGES=" in text and "${PACKAGES}" in text
    images = _RecordingImages()
    client = type("Client", (), {"images": images})()
    _build_online(client, LEGACY_IMAGE, "inputs", runtime_for(LEGACY_IMAGE).packages, log=lambda line: None)
    (call,) = images.calls
    assert call["buildargs"] == {"PACKAGES": " ".join(LEGACY_PACKAGES)}
    assert call["tag"] == LEGACY_IMAGE and call["labels"] == {INPUTS_LABEL: "inputs"}
