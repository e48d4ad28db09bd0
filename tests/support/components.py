"""Real components (PostgreSQL, Docker, Chromium): skipped where missing, never under `CI=true`."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip a real-component test where the component is missing, but never in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: real-component tests must run)")
    pytest.skip(reason)
