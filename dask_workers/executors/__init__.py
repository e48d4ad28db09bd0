"""Executors: how a worker runs the steps of a submission.

`make_executor` picks one by name, as the `executor` option of the service
and of `compete worker` says: `docker` (isolated, for production),
`process` (`UnsafeProcessExecutor`: no isolation, for trusted code in
development), `auto` (Docker when an engine answers, else the process
executor with a warning), or the import string of any `Executor` subclass
(`package.module:Class` or `package.module.Class`).

An executor's options are traits (`c.DockerExecutor.user`, ...): `make_executor`
builds it with a traitlets `Config` holding them, which on a worker is the
job's `executor_config` (the platform's sections for executor classes).
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Mapping, Optional

from traitlets.config import Config

from kernels.images import docker_available

from .base import Executor

log = logging.getLogger(__name__)

EXECUTOR_NAMES = ("docker", "process", "auto")
# Short name -> import string of the class.
EXECUTOR_CLASSES = {
    "docker": "dask_workers.executors.docker:DockerExecutor",
    "process": "dask_workers.executors.process:UnsafeProcessExecutor",
}


def _import_class(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{spec!r} is not an import string")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    return value


def executor_class(name: str) -> type[Executor]:
    """The class of the executor `name`: a short name (`docker`, `process`) or an import string.

    `auto` is not resolved here (see `resolve_name`).
    """
    spec = EXECUTOR_CLASSES.get(name, name)
    if ":" not in spec and "." not in spec:
        raise ValueError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTOR_NAMES)}, "
                         "or the import string (module:Class) of an Executor subclass")
    try:
        cls = _import_class(spec)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"unknown executor {name!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Executor)):
        raise ValueError(f"executor {name!r} is not a subclass of dask_workers.executors.Executor")
    return cls


def resolve_name(name: str) -> str:
    """`name`, with `auto` replaced by `docker` when an engine answers, else `process` (with a warning)."""
    if name != "auto":
        return name
    if docker_available():
        return "docker"
    log.warning(
        "no Docker engine answers: falling back to the process executor, which does NOT "
        "isolate submissions; use it for trusted code only"
    )
    return "process"


def executor_config(settings: Optional[Mapping[str, Mapping[str, Any]]]) -> Config:
    """A traitlets `Config` of executor settings by class name (a job's `executor_config`)."""
    return Config({str(section): dict(values) for section, values in (settings or {}).items()
                   if isinstance(values, Mapping)})


def make_executor(name: str, config: Optional[Config | Mapping[str, Any]] = None, **options: Any) -> Executor:
    """The executor called `name`, configured by `config` (sections by class name), with `options` as traits."""
    cls = executor_class(resolve_name(name))
    if config is not None and not isinstance(config, Config):
        config = executor_config(config)
    return cls(config=config or Config(), **options)


__all__ = ["EXECUTOR_CLASSES", "EXECUTOR_NAMES", "Executor", "docker_available", "executor_class",
           "executor_config", "make_executor", "resolve_name"]
