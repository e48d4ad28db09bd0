"""Judge kernels for users' servers, as the embedded default's start installs them (real Docker).

`install_judge_kernels` writes one kernel per runtime image on the machine
into the home, named after the image and its digest, with a state file the
service reads; a second start is fast; COMPETE_LAB_DOCKER=0 (users' servers
have no Docker) removes them and says why.  The state also says how the
servers' Python (this one) differs from each runtime's package list.  `compete kernel install
--local-packages` refuses an image it has no package list for.
"""
from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import time

from hub_extension.cli_kernel import (
    SERVERS_STATE, pinned_display_name, runtime_differences, pinned_kernel_name, read_servers_state, servers_folder, short_digest,
)
from hub_extension.config import Compete
from hub_extension.embedded import describe_judge_kernels, install_judge_kernels
from kernels.build import DEFAULT_IMAGE, LEGACY_IMAGE
from kernels.images import image_digest


def test_names_say_the_image_and_its_digest():
    digest = "sha256:" + "ab12cd34" + "0" * 56
    assert short_digest(digest) == "sha256:ab12cd34"
    assert short_digest(f"codalab/x@{digest}") == "sha256:ab12cd34"
    assert pinned_kernel_name("jupyter-compete/runtime:py3", digest) == "judge-jupyter-compete-runtime-py3-ab12cd34"
    assert pinned_display_name("jupyter-compete/runtime:py3", digest) == \
        "Judge: jupyter-compete/runtime:py3 (sha256:ab12cd34)"


def test_the_start_installs_a_kernel_per_runtime_here_and_none_without_docker(tmp_path, runtime_image):
    config = Compete(home=str(tmp_path), step_memory_mb=700, step_cpus=1.0, step_pids=123,
                     legacy_image="jupyter-compete/runtime:not-built-here")
    state = install_judge_kernels(tmp_path, config, environ={"COMPETE_LAB_DOCKER": "1"})
    digest = image_digest(DEFAULT_IMAGE)
    entry = state["kernels"][DEFAULT_IMAGE]
    assert state["docker"] is True and entry["digest"] == digest.rpartition("@")[2]
    assert "not-built-here" in state["missing"]["jupyter-compete/runtime:not-built-here"]
    spec = json.loads((servers_folder(tmp_path) / "kernels" / entry["name"] / "kernel.json").read_text())
    assert spec["display_name"] == entry["display_name"] and spec["argv"][0] == sys.executable
    assert spec["argv"][spec["argv"].index("--memory-mb") + 1] == "700"
    assert spec["argv"][spec["argv"].index("--pids") + 1] == "123"
    assert read_servers_state(tmp_path) == state
    assert entry["display_name"] in describe_judge_kernels(state)

    started = time.monotonic()
    assert install_judge_kernels(tmp_path, config, environ={"COMPETE_LAB_DOCKER": "1"}) == state
    assert time.monotonic() - started < 3.0  # already installed: no probe container

    # Without the setting: the same, whenever an engine answers (the default).
    unset = install_judge_kernels(tmp_path / "unset", config, environ={})
    assert unset["docker"] is True and unset["kernels"] == state["kernels"]

    # Simulated: the hub's setting says users' servers have no Docker engine.
    off = install_judge_kernels(tmp_path, config, environ={"COMPETE_LAB_DOCKER": "0"})
    assert off["docker"] is False and off["kernels"] == {} and "COMPETE_LAB_DOCKER=0" in off["reason"]
    assert not list((servers_folder(tmp_path) / "kernels").iterdir())
    assert json.loads((servers_folder(tmp_path) / SERVERS_STATE).read_text()) == off
    assert "none for users' servers" in describe_judge_kernels(off)


def test_the_state_says_how_the_servers_python_differs_from_each_runtime(tmp_path):
    config = Compete(home=str(tmp_path))
    state = install_judge_kernels(tmp_path, config, environ={"COMPETE_LAB_DOCKER": "0"})
    assert state["python"] == sys.executable
    # scripts/bootstrap.sh installed the default runtime's list into this environment, at its versions.
    assert state["packages"][DEFAULT_IMAGE] == []
    assert runtime_differences(DEFAULT_IMAGE) == []
    # The legacy runtime pins older releases: each difference names the package and both versions.
    legacy = state["packages"][LEGACY_IMAGE]
    here = importlib.metadata.version("numpy")
    assert f"numpy {here} here, 1.23.5 in the image" in legacy, legacy
    assert runtime_differences("someone/else:1") is None  # no package list: nothing to compare


def test_local_packages_refuses_an_image_without_a_package_list():
    proc = subprocess.run([sys.executable, "-m", "hub_extension.cli_kernel", "kernel", "install",
                           "--local-packages", "--image", "someone/else:1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "no package list for someone/else:1" in proc.stderr
