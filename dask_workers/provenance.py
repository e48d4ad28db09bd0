"""What a worker says about where and with what it ran a submission: the worker side of run provenance.

The platform records, for every run, the machine and the software it ran on
(`hub_extension.app.provenance` joins this to what the job said).  This
module gathers the worker's part, cheaply:

- the machine (`machine_facts`): host, CPU model and count from
  `/proc/cpuinfo`, GPU models and driver from `nvidia-smi` when it is there
  (bounded by a timeout); read once per worker process;
- the Python packages of each image a step ran in (`package_list_sha256`):
  a sha256 of the sorted `name==version` lines `importlib.metadata` lists
  inside the image, computed once per image digest (one short container,
  no network, bounded by a timeout) and kept in-process; for steps that ran
  in the worker's own Python (the process executor), of that environment.

Nothing here fails a run: a fact that cannot be read is recorded as missing,
with the reason.
"""
from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
from typing import Any, Optional

log = logging.getLogger(__name__)

# How long reading one image's package list may take (a container start and one Python run).
PACKAGES_TIMEOUT = 60.0
# The most of a package list read from an image.
PACKAGES_MAX_BYTES = 4 * 1024 * 1024
# How long `nvidia-smi` may take.
GPU_QUERY_TIMEOUT = 5.0
# Run inside the image: one `name==version` line per installed distribution, sorted, deduplicated.
PACKAGE_LIST_CODE = (
    "import importlib.metadata as m\n"
    "print('\\n'.join(sorted({f\"{(d.metadata['Name'] or '?').lower()}=={d.version}\" "
    "for d in m.distributions()})))\n"
)

_machine: Optional[dict[str, Any]] = None
_packages: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def cpu_model(text: Optional[str] = None) -> Optional[str]:
    """The CPU's model name, from `/proc/cpuinfo` (or `text`, its content); None when it does not say."""
    if text is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                text = fh.read(256 * 1024)
        except OSError:
            return platform.processor() or None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Model", "cpu model", "Processor") and value.strip():
            return value.strip()[:200]
    return None


def gpu_facts() -> list[dict[str, str]]:
    """One entry per GPU `nvidia-smi` lists ({"model", "driver"}); none without it."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        out = subprocess.run([tool, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=GPU_QUERY_TIMEOUT, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi did not list the GPUs: %s", exc)
        return [{"model": "?", "driver": "?", "error": f"nvidia-smi failed: {type(exc).__name__}"}]
    gpus = []
    for line in out.splitlines()[:16]:
        model, _, driver = line.partition(",")
        if model.strip():
            gpus.append({"model": model.strip()[:200], "driver": driver.strip()[:50]})
    return gpus


def machine_facts() -> dict[str, Any]:
    """The worker machine: host, CPU model and count, GPUs (read once per process)."""
    global _machine
    with _lock:
        if _machine is None:
            _machine = {
                "host": socket.gethostname()[:200],
                "cpu_model": cpu_model(),
                "cpu_count": os.cpu_count(),
                "gpus": gpu_facts(),
                "python": platform.python_version(),
            }
        return dict(_machine)


def _digest_of_lines(text: str) -> tuple[str, int]:
    lines = sorted({line.strip() for line in text.splitlines() if line.strip()})
    return hashlib.sha256("\n".join(lines).encode()).hexdigest(), len(lines)


def _image_packages(client: Any, image: str, timeout: float) -> dict[str, Any]:
    """Run the package listing in a short container of `image`: no network, no capabilities, removed after."""
    import requests  # comes with the docker SDK

    container = client.containers.create(
        image, command=["python3", "-c", PACKAGE_LIST_CODE], network_disabled=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], user="1000:1000", mem_limit="512m", pids_limit=64,
        labels={"jupyter-compete.provenance": "1"})
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            return {"sha256": None, "error": f"listing the image's packages took over {timeout:g} s"}
        # What the image prints is read up to a cap: an image's Python is a program like any other.
        chunks, size = [], 0
        for chunk in container.logs(stdout=True, stderr=False, stream=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > PACKAGES_MAX_BYTES:
                return {"sha256": None, "error": f"the image's package list is over {PACKAGES_MAX_BYTES} bytes"}
        text = b"".join(chunks).decode("utf-8", "replace")
        if status.get("StatusCode") != 0:
            return {"sha256": None, "error": f"listing the image's packages exited with {status.get('StatusCode')}"}
        sha, count = _digest_of_lines(text)
        return {"sha256": sha, "count": count}
    finally:
        try:
            container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - a record, not a reason to fail
            log.warning("could not remove the package-listing container: %s", exc)


def _own_packages() -> dict[str, Any]:
    try:
        out = subprocess.run([sys.executable, "-c", PACKAGE_LIST_CODE], capture_output=True, text=True,
                             timeout=PACKAGES_TIMEOUT, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return {"sha256": None, "error": f"listing the worker's packages failed: {type(exc).__name__}"}
    sha, count = _digest_of_lines(out)
    return {"sha256": sha, "count": count}


def package_list_sha256(executor: Any, digest: Optional[str], *, timeout: float = PACKAGES_TIMEOUT) -> dict[str, Any]:
    """{"sha256", "count"} of the packages of the image `digest` (once per digest per process), or
    {"sha256": None, "error"}; for an executor without images, of the worker's own Python."""
    client = getattr(executor, "client", None) if getattr(executor, "isolates", False) else None
    key = digest if client is not None else f"process:{sys.executable}"
    if client is not None and not digest:
        return {"sha256": None, "error": "the step's image is not known"}
    with _lock:
        if key in _packages:
            return dict(_packages[key])
    try:
        facts = _image_packages(client, digest, timeout) if client is not None else _own_packages()
    except Exception as exc:  # noqa: BLE001 - a record, not a reason to fail
        facts = {"sha256": None, "error": f"the image's packages could not be listed: {type(exc).__name__}: {exc}"[:300]}
    with _lock:
        if facts.get("sha256"):
            _packages[key] = facts
    return dict(facts)


def run_facts(executor: Any, digests: list[Optional[str]], *, queue: str, worker: str,
              started_at: str, ended_at: str) -> dict[str, Any]:
    """The worker's part of a run's provenance: machine, executor, package lists by image digest, times."""
    packages = {}
    for digest in dict.fromkeys(digests):
        facts = package_list_sha256(executor, digest)
        packages[digest or "worker"] = facts
    return {
        "worker": {"queue": queue, "name": worker, **machine_facts()},
        "executor": getattr(executor, "name", type(executor).__name__),
        "packages": packages,
        "started_at": started_at,
        "ended_at": ended_at,
    }
