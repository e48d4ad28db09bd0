"""Real components (PostgreSQL, Docker, Chromium): skipped where missing, never under `CI=true`; servers started by tests."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip a real-component test where the component is missing, but never in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: real-component tests must run)")
    pytest.skip(reason)


def first_answer(url: str, proc, log_path, timeout: float) -> requests.Response:
    """The first answer of `url` from the server process `proc`, waiting while it starts.

    Fails with the process's log when it exits first or does not answer within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, Path(log_path).read_text()
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            assert time.monotonic() < deadline, Path(log_path).read_text()
            time.sleep(0.3)


def child_processes(pid: int) -> list[int]:
    """The processes `pid` started, as the kernel lists them."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...)."""
    found, todo = [], [pid]
    while todo:
        for child in child_processes(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def wait_for(condition, timeout: float, what: str, diagnose=lambda: "") -> float:
    """Seconds until `condition()` held; fails the test after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnose()}")


def terminate(proc: "subprocess.Popen", timeout: float = 60) -> None:
    """SIGTERM a process the test started and wait for it; kill it when it does not stop in `timeout` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
