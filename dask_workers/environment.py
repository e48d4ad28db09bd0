"""The environment of processes that run submissions: an allow-list, never a secret.

A process the platform starts to run submissions (the default queue's
workers, an organizer queue's scheduler) and `compete worker` on an
organizer's machine hold only these variables of whoever started them: the
names in `PASSED_ENV`, and those starting with `PASSED_ENV_PREFIXES`, unless
the name looks like a secret (`SECRET_NAME`: a hub token, an OAuth secret, a
database URL, ...).

Worker side: standard library only.  The platform's dispatcher and queues
use it from here.
"""
from __future__ import annotations

import os
import re
from typing import Optional

# What a process running submissions may inherit from the platform: these names,
# and names with these prefixes, unless the name looks like a secret.
PASSED_ENV = frozenset({
    "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM", "SHELL", "VIRTUAL_ENV",
    # the docker executor finds its engine with these
    "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR",
    # GPU machines and private CAs of organizers' workers
    "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR",
})
PASSED_ENV_PREFIXES = ("LC_", "DASK_", "PYTHON", "MALLOC_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_", "NVIDIA_")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE|API_?KEY|DB_URL|DATABASE|JUPYTERHUB|OAUTH|COMPETE_",
                         re.I)


def process_environment(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment of a process the platform starts to run submissions (or a queue's scheduler).

    An allow-list of the service's own variables: the hub token
    (`JUPYTERHUB_API_TOKEN`), the OAuth client secret, `COMPETE_DB_URL` and
    anything else named like a secret never reach it.
    """
    env = {
        name: value for name, value in os.environ.items()
        if (name in PASSED_ENV or name.startswith(PASSED_ENV_PREFIXES)) and not SECRET_NAME.search(name)
    }
    env.update(extra or {})
    return env


__all__ = ["PASSED_ENV", "PASSED_ENV_PREFIXES", "SECRET_NAME", "process_environment"]
