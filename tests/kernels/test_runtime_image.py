"""The default runtime image, built for real: contents, user, configuration, caching."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from kernels.build import DEFAULT_IMAGE, INPUTS_LABEL, build_image, build_inputs_hash

REPO = Path(__file__).resolve().parents[2]


def run_in_image(client, image: str, command: str) -> str:
    output = client.containers.run(image, ["sh", "-c", command], remove=True, network_disabled=True)
    return output.decode()


def test_image_has_the_scientific_stack_on_both_python_names(docker_engine, runtime_image):
    output = run_in_image(docker_engine, runtime_image, (
        "python --version && python3 -c 'import numpy, pandas, sklearn, scipy, matplotlib, papermill, "
        "ipykernel, yaml; print(\"imports ok\")' && jupyter kernelspec list"))
    assert output.startswith("Python 3.")
    assert "imports ok" in output
    assert "python3" in output  # the kernel papermill asks for


def test_image_runs_as_participant_in_app_program(docker_engine, runtime_image):
    output = run_in_image(docker_engine, runtime_image, "id -u; id -un; pwd; env")
    uid, name, cwd, *env = output.splitlines()
    assert (uid, name, cwd) == ("1000", "participant", "/app/program")
    # Build-only settings must not leak into the runtime.
    assert not any(line.startswith(("PIP_CERT=", "PACKAGES=")) for line in env)


def test_image_config_and_input_label(docker_engine, runtime_image):
    image = docker_engine.images.get(runtime_image)
    config = image.attrs["Config"]
    assert config["User"] == "participant"
    assert config["WorkingDir"] == "/app/program"
    assert not config.get("Volumes")
    assert image.labels[INPUTS_LABEL] == build_inputs_hash()


def test_build_is_skipped_when_the_image_is_current(runtime_image, docker_engine):
    messages: list[str] = []
    started = time.monotonic()
    image_id = build_image(DEFAULT_IMAGE, log=messages.append)
    assert time.monotonic() - started < 5
    assert image_id == docker_engine.images.get(DEFAULT_IMAGE).id
    assert messages == []


def test_ensure_docker_is_quiet_and_idempotent_when_ready(docker_engine):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "ensure_docker.sh")], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == "" and proc.stderr == ""
