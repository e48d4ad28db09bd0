"""Helpers of the participant-side tests: a platform that really runs submissions behind the service,
and the steps the browser tests share (JupyterLab 4 and Notebook 7 run the same starting kit).

`running` (module-scoped) is a `RunningStack`: the demo competition, a real
dispatcher ticking in the background on a local Dask cluster with the
`process` executor, and the service in-process (tests/support/service_harness.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import nbformat
import pytest

from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.client import CompeteClient
from hub_extension.dispatch import Dispatcher

from .hub import demo_bundle_zip
from .paths import DEMO
from .service_harness import ServiceServer, token_for

DEMO_NOTEBOOK = DEMO / "starting_kit" / "starting_kit.ipynb"


def client_for(srv: ServiceServer, name: str, **kwargs) -> CompeteClient:
    """The participant client of `name` (with a token of all their scopes)."""
    return CompeteClient(srv.base, token_for(name), **kwargs)


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
        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.slug, _ = self.platform.create_competition(DEMO, LOCAL_ADMIN)
        self.dispatcher = Dispatcher(self.platform)
        self.server = ServiceServer(self.platform, dispatcher=self.dispatcher).start()
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


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A `RunningStack` for the tests of one module."""
    stack = RunningStack(tmp_path_factory.mktemp("running-home"))
    yield stack
    stack.close()


def failing_notebook(tmp_path: Path) -> Path:
    nb = nbformat.read(str(DEMO_NOTEBOOK), as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, str(path))
    return path


# -- the browser tests: a participant runs the starting kit and submits from its widgets --------------
FRONT_END_TIMEOUT_MS = 120_000
SCORING_TIMEOUT_MS = 240_000


def upload_demo_competition(hub, tmp_path: Path, organizer: str, title: str) -> str:
    """The demo bundle under `title`, uploaded by `organizer` to the hub's service; its slug."""
    resp = hub.user_client(organizer).post(
        "api/v1/competitions", files={"file": ("bundle.zip", demo_bundle_zip(tmp_path, title).read_bytes())})
    assert resp.status_code == 201, resp.text
    return resp.json()["slug"]


def run_all_cells(page, notebook, until: str = "wrote 45 predictions") -> None:
    """Run > Run All Cells, as a person does; waits until an output says `until` (the demo kit's baseline
    wrote its predictions)."""
    # Playwright loads only for the browser tests (its import is slow).
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect

    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    # Should the front end still ask which kernel to use, a person would take the one it offers.
    choose = page.locator(".jp-Dialog:has-text('Select Kernel') .jp-Dialog-button.jp-mod-accept")
    try:
        choose.wait_for(state="visible", timeout=2_000)
        choose.click()
    except PlaywrightTimeout:
        pass
    # The baseline ran in the real kernel and wrote its predictions.
    expect(notebook.locator(".jp-OutputArea-output", has_text=until)).to_be_visible(timeout=FRONT_END_TIMEOUT_MS)


@dataclass
class WidgetSubmission:
    """What `submit_from_widgets` saw: the new row of the leaderboard widget and the submission."""

    row: Any  # the participant's row in the leaderboard widget (a Playwright locator)
    accuracy: float
    submission: dict[str, Any]  # as the service lists it


def submit_from_widgets(page, notebook, hub, slug: str, participant: str, mark,
                        before_submit: Optional[Callable[[], None]] = None) -> WidgetSubmission:
    """After the kit's cells ran: the widgets render, Submit scores the notebook, the leaderboard gets the row.

    `notebook` is the locator of the open notebook; `mark(step)` records the
    time of each step; `before_submit()`, if given, runs once the widgets are
    there, just before the click on Submit.
    """
    # Playwright loads only for the browser tests (its import is slow).
    from playwright.sync_api import expect

    # -- the widgets render --------------------------------------------------------------------
    submit_box = notebook.locator(".compete-submit")
    expect(submit_box.locator(".compete-submit-button")).to_be_enabled(timeout=FRONT_END_TIMEOUT_MS)
    board = notebook.locator(".compete-leaderboard-widget")
    expect(board.locator("table.compete-leaderboard")).to_be_visible(timeout=FRONT_END_TIMEOUT_MS)
    # Nobody has submitted yet: no row of this participant.
    expect(board.locator(f"tr[data-participant='{participant}']")).to_have_count(0)
    mark("widgets rendered")

    # -- submit from the widget and watch it end ------------------------------------------------------
    if before_submit is not None:
        before_submit()
    submit_box.locator(".compete-submit-button").click()
    status = submit_box.locator(".compete-submit-status")
    finished = status.locator("[data-status='Finished']")
    failed = status.locator("[data-status='Failed']")
    expect(finished.or_(failed)).to_be_visible(timeout=SCORING_TIMEOUT_MS)
    assert not failed.count(), f"the submission failed: {status.inner_text()}"
    mark("submission finished")
    scores = status.locator(".compete-scores")
    expect(scores).to_be_visible(timeout=10_000)

    # What the service recorded: this participant's finished notebook submission and its score.
    client = hub.user_client(participant)
    mine = client.get(f"api/v1/competitions/{slug}/submissions").json()["items"]
    assert len(mine) == 1 and mine[0]["status"] == "Finished", mine
    assert mine[0]["filename"].endswith(".ipynb"), mine[0]
    accuracy = mine[0]["scores"]["accuracy"]
    assert 0.8 < accuracy <= 1.0
    expect(scores).to_contain_text(f"{accuracy:.3f}", timeout=10_000)

    # -- the leaderboard widget shows the new row after its refresh ---------------------------------
    row = board.locator(f"tr.compete-own-row[data-participant='{participant}']")
    expect(row).to_have_count(1, timeout=60_000)
    expect(row).to_contain_text(f"{accuracy:.3f}", timeout=10_000)
    mark("row on the leaderboard")
    return WidgetSubmission(row=row, accuracy=accuracy, submission=mine[0])
