"""Helpers of the participant-side tests: the API in-process, a platform that really runs submissions."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest

from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.client import CompeteClient
from tests.service.api_harness import ApiServer

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"
DEMO_NOTEBOOK = DEMO / "starting_kit" / "starting_kit.ipynb"


def client_for(srv: ApiServer, name: str, **kwargs) -> CompeteClient:
    return CompeteClient(srv.base, f"token-{name}", **kwargs)


def wait_for(condition, timeout: float = 10.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


class RunningStack:
    """A platform with the demo competition, a real dispatcher ticking in the background, and the API."""

    def __init__(self, home: Path):
        from hub_extension.dispatch import Dispatcher

        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.slug, _ = self.platform.create_competition(DEMO, LOCAL_ADMIN)
        self.dispatcher = Dispatcher(self.platform)
        self.server = ApiServer(self.platform, dispatcher=self.dispatcher).start()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="test-dispatch")
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.3):
            try:
                self.dispatcher.tick()
            except Exception:  # noqa: BLE001 - the service logs and retries; so does this loop
                pass

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(10)
        self.server.stop()
        self.dispatcher.close()
        self.platform.close()


def failing_notebook(tmp_path: Path) -> Path:
    nb = nbformat.read(str(DEMO_NOTEBOOK), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, str(path))
    return path
