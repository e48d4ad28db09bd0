"""Headless Chromium takes part in a competition from the Notebook 7 interface.

The same participant's path as tests/hub_extension/lab/test_lab_browser.py, in the
other front end the widgets are made for.  A registered participant gets the
starting kit through the service's API (`POST .../phases/1/open_in_lab`: the
service starts their real `jupyterhub-singleuser` server and writes the kit
there), logs in on the hub's login page and opens the kit's notebook at
`/user/<name>/notebooks/<path>`, Notebook 7's own page, not JupyterLab's
`/lab`.  There it runs all cells from the Run menu (a real kernel), sees the
Leaderboard widget's table and the Submit widget's button render, types an
edit into a cell without saving, clicks Submit (the widget saves the
notebook through Notebook 7's application object first: the submitted file
holds the edit) and watches the submission reach Finished with its score,
then finds its own new row in the leaderboard widget after the widget
refreshes, and asks again with the widget's Refresh button.  On a failure the
page's screenshot is kept (see tests/support/browser.py).
"""
from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import quote, urljoin

import nbformat
import pytest

from tests.support.browser import browser_login
from tests.support.lab import FRONT_END_TIMEOUT_MS, run_all_cells, submit_from_widgets, upload_demo_competition

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

# Where the front end loads the widget manager's scripts from (a federated extension).
WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"


def test_a_participant_takes_part_from_notebook7(hub, browser_pages, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"norg-{suffix}", groups=["organizers"])
    participant, password = f"nann-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(participant, password=password)
    slug = upload_demo_competition(hub, tmp_path, organizer, f"Flowers in Notebook 7 {suffix}")
    try:
        take_part_in_notebook7(hub, browser_pages, slug, participant, password, tmp_path)
    finally:
        hub.stop_server(participant)


def watch_widget_errors(page) -> list[str]:
    """Errors of the widget manager's own scripts on `page` (uncaught, or logged to the console).

    Only those: Notebook 7.6 itself throws one at start-up in any notebook,
    widgets or not (its shortcuts settings: "reading 'schema'").
    """
    errors: list[str] = []

    def uncaught(error) -> None:
        if WIDGET_MANAGER in (error.stack or ""):
            errors.append(f"{error}: {error.stack}")

    def logged(message) -> None:
        if message.type == "error" and WIDGET_MANAGER in (message.location or {}).get("url", ""):
            errors.append(message.text)

    page.on("pageerror", uncaught)
    page.on("console", logged)
    return errors


def take_part_in_notebook7(hub, browser_pages, slug, participant, password, tmp_path):
    from playwright.sync_api import expect

    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - started, 1)

    # -- registered, with the starting kit in the participant's server ---------------------------
    client = hub.user_client(participant)
    resp = client.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    resp = client.post(f"api/v1/competitions/{slug}/phases/1/open_in_lab", timeout=180)
    assert resp.status_code == 200, resp.text
    kit = resp.json()
    assert kit["folder"] == f"competitions/{slug}" and kit["notebook"] == "starting_kit.ipynb", kit
    assert "starting_kit.ipynb" in kit["written"], kit
    mark("kit delivered")

    # -- Notebook 7: log in, open the kit's notebook on its own page --------------------------------
    page = browser_pages()
    page.set_default_timeout(FRONT_END_TIMEOUT_MS)
    widget_errors = watch_widget_errors(page)
    browser_login(page, hub, participant, password)
    notebook_path = f"{kit['folder']}/{kit['notebook']}"
    page.goto(urljoin(hub.url, f"user/{quote(participant)}/notebooks/{quote(notebook_path)}"))
    expect(page).to_have_url(re.compile(rf"/user/{re.escape(participant)}/notebooks/{re.escape(notebook_path)}$"))
    mark("in Notebook 7")

    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    expect(page.locator("#jp-title h1")).to_have_text("starting_kit")
    # The kernel is up: its name in the notebook's toolbar, the execution indicator idle.
    expect(notebook.locator(".jp-KernelName")).to_contain_text("Python 3")
    expect(notebook.locator("[data-jp-item-name='executionProgress'] .jp-Notebook-ExecutionIndicator")
           ).to_have_attribute("data-status", "idle")
    # This is Notebook 7's application, not JupyterLab's, and it is reachable for the Submit
    # widget's save (expose_app_in_browser).
    assert page.evaluate("window.jupyterapp && window.jupyterapp.name") == "Jupyter Notebook"
    assert page.locator("#jp-MainMenu").is_visible() and not page.locator(".jp-LabShell").count()
    mark("kernel ready")

    # -- run all cells, submit from the widget, see the new row -------------------------------------
    run_all_cells(page, notebook)
    mark("cells ran")
    edit = f"# edited in Notebook 7, not saved {uuid.uuid4().hex[:8]}"

    def edit_without_saving() -> None:
        # A line typed at the end of the first code cell; the notebook is not saved (the Submit
        # widget's "This notebook, saved first" saves it).
        notebook.locator(".jp-CodeCell .cm-content").first.click()
        page.keyboard.press("Control+End")
        page.keyboard.press("Enter")
        page.keyboard.type(edit)
        expect(notebook.locator(".jp-CodeCell .cm-content").first).to_contain_text(edit)

    submitted = submit_from_widgets(page, notebook, hub, slug, participant, mark, before_submit=edit_without_saving)
    row, accuracy = submitted.row, submitted.accuracy

    # The widget saved the notebook through Notebook 7's application object (not the Ctrl+S
    # fallback): its save script answered "saved" with the notebook's path.
    reply = json.loads(notebook.locator(".compete-save-reply input").input_value())
    assert reply["status"] == "saved" and reply["detail"] == notebook_path, reply
    # What was submitted is the notebook as the browser held it: the unsaved edit and the outputs
    # of the run (the kit's notebook arrived without outputs).
    resp = client.get(f"api/v1/submissions/{submitted.submission['id']}/file")
    assert resp.status_code == 200, resp.text
    sent = nbformat.reads(resp.content.decode("utf-8"), as_version=4)
    assert edit in sent.cells[1].source, sent.cells[1].source
    assert any("wrote 45 predictions" in output.get("text", "") for cell in sent.cells if cell.cell_type == "code"
               for output in cell.outputs), "the submitted notebook has no outputs of the run"

    # Ask again with the widget's Refresh button: the status line says when, the row stays.  (Its
    # own timer asks next only 30 s after the refresh that brought the row.)
    board = notebook.locator(".compete-leaderboard-widget")
    updated = board.locator(".compete-leaderboard-status")
    expect(updated).to_contain_text("Updated")
    before = updated.inner_text()
    time.sleep(1.1)  # the status shows seconds: the next refresh reads differently
    board.locator("button", has_text="Refresh").click()
    expect(updated).not_to_have_text(before, timeout=10_000)
    expect(updated).to_contain_text("Updated")
    expect(row).to_contain_text(f"{accuracy:.3f}")
    mark("refreshed by its button")

    row.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "notebook7-leaderboard-row.png"))  # kept with the test's files
    assert not widget_errors, f"the widget manager reported errors: {widget_errors}"
    print("timings (s since the start):", timings)
