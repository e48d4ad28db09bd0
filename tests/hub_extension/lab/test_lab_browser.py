"""Headless Chromium takes part in a competition without leaving JupyterLab.

A participant logs in on the hub's login page, follows the nav bar to the
competitions, opens one, registers and clicks "Open in JupyterLab".  The
service starts their JupyterLab server (a real `jupyterhub-singleuser`) and
puts the starting kit there; the browser lands on the notebook, runs all its
cells from the Run menu (a real kernel: pandas, the baseline, the
predictions), sees the leaderboard widget render, clicks Submit in the Submit
widget and watches the submission reach Finished with its score (the
platform scores it on the local Dask queue with the process executor), then
finds its own new row in the leaderboard widget after the widget refreshes.
On a failure the page's screenshot is kept (see tests/support/browser.py).
"""
from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.support.browser import browser_login, browser_register
from tests.support.lab import (
    FRONT_END_TIMEOUT_MS as LAB_TIMEOUT_MS,
    run_all_cells,
    submit_from_widgets,
    upload_demo_competition,
)

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


def test_a_participant_takes_part_from_jupyterlab(hub, browser_pages, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"lorg-{suffix}", groups=["organizers"])
    participant, password = f"lann-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(participant, password=password)
    title = f"Flowers in JupyterLab {suffix}"
    slug = upload_demo_competition(hub, tmp_path, organizer, title)
    try:
        take_part_in_jupyterlab(hub, browser_pages, slug, title, participant, password, tmp_path)
    finally:
        hub.stop_server(participant)


def take_part_in_jupyterlab(hub, browser_pages, slug, title, participant, password, tmp_path):
    from playwright.sync_api import expect

    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    # -- the competition page: log in, find it, register, open it in JupyterLab --------------------
    page = browser_pages()
    page.set_default_timeout(LAB_TIMEOUT_MS)
    browser_login(page, hub, participant, password)
    browser_register(page, title)
    mark("registered")
    page.click("#open-in-lab button[type=submit]")
    page.wait_for_url(re.compile(rf"/user/{re.escape(participant)}/lab/tree/competitions/{slug}/starting_kit\.ipynb"))
    mark("in JupyterLab")

    # -- JupyterLab: the kit's notebook is open, its kernel ready ---------------------------------
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=LAB_TIMEOUT_MS)
    expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"Python 3.*\|\s*Idle")).first
           ).to_be_visible(timeout=LAB_TIMEOUT_MS)
    # The kit's files are beside it, as JupyterLab's file browser shows them.
    for name in ("competition.json", "data", "starting_kit.ipynb"):
        expect(page.get_by_role("listitem", name=re.compile(rf"^Name: {re.escape(name)} "))).to_be_visible()
    # The front end is reachable for the Submit widget's save (expose_app_in_browser).
    assert page.evaluate("typeof window.jupyterapp") == "object"
    mark("kernel ready")

    # Run > Run All Cells, as a person does; then the widgets, the submission and the new row.
    run_all_cells(page, notebook)
    row = submit_from_widgets(page, notebook, hub, slug, participant, mark).row
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "leaderboard-row.png"))  # kept with the test's files, to look at
    print("timings (s since the login):", timings)
