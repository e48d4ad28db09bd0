"""Headless Chromium through the real hub: a fact sheet answered in the Submit widget, exported by the organizer.

The organizer gives the demo competition a fact sheet (a required text, a
checkbox, a select shown on the leaderboard).  A participant logs in on the
hub's login page, registers, opens the kit in JupyterLab, runs its cells and,
in the Submit widget, first clicks Submit with the required question empty
(the widget names it; nothing is sent), then answers every question and
submits; the submission is scored.  The organizer logs in, sees the answers
on the submission page, and downloads the phase's answers as CSV from the
submissions page: one row for the submission, one column per question.
"""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest

from tests.support.browser import browser_login, browser_register
from tests.support.lab import FRONT_END_TIMEOUT_MS, run_all_cells, submit_from_widgets, upload_demo_competition

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

QUESTIONS = [
    {"key": "method", "type": "text", "title": "Method name", "is_required": True},
    {"key": "extra_data", "type": "checkbox", "title": "Used extra data"},
    {"key": "family", "type": "select", "title": "Model family", "selection": ["rules", "trees", "nets"],
     "is_on_leaderboard": True},
]


def test_a_fact_sheet_answered_in_the_submit_widget_is_exported_by_the_organizer(hub, browser_pages, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    organizer, organizer_password = f"forg-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(organizer, groups=["organizers"], password=organizer_password)
    participant, password = f"fann-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(participant, password=password)
    title = f"Flowers with a fact sheet {suffix}"
    slug = upload_demo_competition(hub, tmp_path, organizer, title)
    resp = hub.user_client(organizer).put(f"api/v1/competitions/{slug}/fact_sheet", json={"questions": QUESTIONS})
    assert resp.status_code == 200, resp.text
    try:
        answer_in_the_widget(hub, browser_pages, slug, title, participant, password)
    finally:
        hub.stop_server(participant)
    export_as_organizer(hub, browser_pages, slug, title, organizer, organizer_password, participant)


def answer_in_the_widget(hub, browser_pages, slug, title, participant, password):
    from playwright.sync_api import expect

    page = browser_pages()
    page.set_default_timeout(FRONT_END_TIMEOUT_MS)
    browser_login(page, hub, participant, password)
    browser_register(page, title)
    page.click("#open-in-lab button[type=submit]")
    page.wait_for_url(re.compile(rf"/user/{re.escape(participant)}/lab/tree/competitions/{slug}/"))
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"Python 3.*\|\s*Idle")).first).to_be_visible()
    run_all_cells(page, notebook)

    def answer() -> None:
        box = notebook.locator(".compete-submit")
        sheet = box.locator(".compete-fact-sheet")
        expect(sheet).to_contain_text("Method name *")
        # The required question left empty: said by the widget, nothing sent.
        box.locator(".compete-submit-button").click()
        expect(box.locator(".compete-submit-status")).to_contain_text(
            "fact sheet: 'Method name' (method) is required: answer it to submit")
        assert hub.user_client(participant).get(f"api/v1/competitions/{slug}/submissions").json()["total"] == 0
        sheet.locator(".compete-fact-method input").fill("Petal-length rule")
        sheet.locator(".compete-fact-extra_data input[type=checkbox]").check()
        sheet.locator(".compete-fact-family select").select_option("rules")

    done = submit_from_widgets(page, notebook, hub, slug, participant, lambda step: None, before_submit=answer)
    view = hub.user_client(participant).get(f"api/v1/submissions/{done.submission['id']}").json()
    answers = {q["key"]: q["answer"] for q in view["fact_sheet"]}
    assert answers == {"method": "Petal-length rule", "extra_data": True, "family": "rules"}


def export_as_organizer(hub, browser_pages, slug, title, organizer, password, participant):
    from playwright.sync_api import expect

    page = browser_pages()
    browser_login(page, hub, organizer, password)
    page.click("#competitions-nav-link")
    page.click(f"#competition-list a:has-text('{title}')")
    page.click(f"a[href$='/competitions/{slug}/submissions']")
    row = page.locator(f"#submissions tbody tr:has-text('{participant}')").first
    expect(row).to_be_visible()
    # The answers on the submission page.
    sid = row.get_attribute("data-submission")
    page.goto(page.url.split(f"competitions/{slug}/")[0] + f"submissions/{sid}")
    answers = page.locator("#fact-sheet-answers")
    expect(answers.locator("tr[data-question='method'] td")).to_have_text("Petal-length rule")
    expect(answers.locator("tr[data-question='extra_data'] td")).to_have_text("yes")
    page.go_back()
    with page.expect_download() as info:
        page.click("#fact-sheet-downloads a[data-fact-sheets='1']")
    download = info.value
    assert download.suggested_filename == f"{slug}-phase1-fact-sheets.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["submission"], r["participant"], r["method"], r["extra_data"], r["family"]) for r in rows] == \
        [(sid, participant, "Petal-length rule", "true", "rules")]
