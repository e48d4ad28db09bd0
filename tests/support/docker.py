"""Fixtures for tests that use the real Docker engine and the real runtime image.

`runtime_image` makes sure, once per session, that an engine answers
(`scripts/ensure_docker.sh`, which installs and starts one as root) and that
the default runtime image is built (`kernels.build_image`, cached between
sessions); `legacy_image` does the same for the legacy runtime (numpy 1.23),
for the tests that need it.  When that is impossible the test fails under `CI=true` and is
skipped with the reason elsewhere.  `docker_executor` is a Docker executor
that leaves no container behind; `make_step` builds step specs on the image.
"""
from __future__ import annotations

import subprocess
import uuid
from typing import Callable, Optional

import pytest

from dask_workers.executors.docker import LABEL_WORKER, DockerExecutor
from dask_workers.spec import Limits, StepSpec
from kernels.build import DEFAULT_IMAGE, LEGACY_IMAGE, BuildError, build_image
from kernels.images import docker_available, docker_client

from .components import require
from .paths import REPO


@pytest.fixture(scope="session")
def docker_engine():
    """A docker SDK client of a running engine."""
    script = REPO / "scripts" / "ensure_docker.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        require(False, f"no Docker engine: {script.name} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    if not docker_available():
        require(False, "no Docker engine answers a ping, although ensure_docker.sh succeeded")
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def runtime_image(docker_engine) -> str:
    """The default runtime image, built once per machine."""
    try:
        build_image(DEFAULT_IMAGE, log=lambda line: None)
    except BuildError as exc:
        require(False, f"the runtime image could not be built: {exc}")
    return DEFAULT_IMAGE


@pytest.fixture(scope="session")
def legacy_image(docker_engine) -> str:
    """The legacy runtime image (kernels.build.LEGACY_IMAGE), built once per machine like the default one."""
    try:
        build_image(LEGACY_IMAGE, log=lambda line: None)
    except BuildError as exc:
        require(False, f"the legacy runtime image could not be built: {exc}")
    return LEGACY_IMAGE


@pytest.fixture
def docker_executor(runtime_image, docker_engine):
    """A Docker executor with a worker name of its own; checks that no container outlives a test."""
    executor = DockerExecutor(worker_id=f"test-{uuid.uuid4().hex[:8]}")
    yield executor
    executor.close()  # its warm containers go with it
    left = docker_engine.containers.list(all=True, filters={"label": f"{LABEL_WORKER}={executor.worker_id}"})
    for container in left:
        container.remove(force=True)
    assert not left, f"containers left behind by the executor: {[c.short_id for c in left]}"


@pytest.fixture
def make_step(tmp_path, runtime_image) -> Callable[..., StepSpec]:
    """Builds a StepSpec with its own folders: make_step(step, command, files={...}, **limits)."""
    counter = iter(range(1_000_000))

    def make(step: str = "scoring", command: Optional[str] = None, *, program: Optional[dict[str, str]] = None,
             inputs: Optional[dict[str, str]] = None, submission_id: int = 1, notebook: Optional[str] = None,
             image: Optional[str] = None, shared: bool = False, **limits) -> StepSpec:
        root = tmp_path / f"step{next(counter)}"
        program_dir = root / "program"
        output_dir = root / "output"
        input_dir = root / "input"
        program_dir.mkdir(parents=True)
        output_dir.mkdir()
        for name, text in (program or {}).items():
            (program_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (program_dir / name).write_text(text)
        if inputs is not None:
            input_dir.mkdir()
            for name, text in inputs.items():
                (input_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (input_dir / name).write_text(text)
        shared_dir = root / "shared" if shared else None
        return StepSpec(
            submission_id=submission_id, task_index=0, step=step, image=image or runtime_image,
            program_dir=str(program_dir), output_dir=str(output_dir),
            input_dir=str(input_dir) if inputs is not None else None,
            shared_dir=str(shared_dir) if shared_dir else None,
            command=command, notebook=notebook, limits=Limits(**{"time_limit": 20.0, **limits}),
        )

    return make
