"""Executors: how a worker runs the steps of a submission.

`make_executor` picks one by name, as the `executor` option of the service
and of `compete worker` says: `docker` (isolated, for production),
`process` (no isolation, for trusted code in development), or `auto`
(Docker when an engine answers, else the process executor with a warning).
"""
from __future__ import annotations

import logging
from typing import Any

from kernels.images import docker_available

from .base import Executor

log = logging.getLogger(__name__)

EXECUTOR_NAMES = ("docker", "process", "auto")


def make_executor(name: str, **options: Any) -> Executor:
    """The executor called `name`, built with `options` (passed to its constructor)."""
    if name == "auto":
        if docker_available():
            name = "docker"
        else:
            log.warning(
                "no Docker engine answers: falling back to the process executor, which does NOT "
                "isolate submissions; use it for trusted code only"
            )
            name = "process"
    if name == "docker":
        from .docker import DockerExecutor

        return DockerExecutor(**options)
    if name == "process":
        from .process import ProcessExecutor

        return ProcessExecutor(**options)
    raise ValueError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTOR_NAMES)}")


__all__ = ["Executor", "EXECUTOR_NAMES", "docker_available", "make_executor"]
