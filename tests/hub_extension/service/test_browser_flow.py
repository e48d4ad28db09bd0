"""Headless Chromium walks the platform as people do: hub login page, links, forms.

An organizer logs in on the hub's login page, follows the hub home page's link
to the competitions, creates a competition by uploading a bundle in the
form; a participant logs in in a browser of their own, follows the nav bar's
link, registers, submits a predictions zip, watches the status change by
itself, and finds their score on the leaderboard.  Everything is clicked,
nothing is typed into the address bar after the login page.
"""
from __future__ import annotations

import re
import uuid

import pytest

from tests.support.browser import browser_login, browser_register
from tests.support.hub import demo_bundle_zip, sample_predictions_zip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

SCORING_TIMEOUT_MS = 180_000


def test_organizer_and_participant_walk_the_whole_path_by_clicking(hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, organizer_password = f"borg-{suffix}", f"pw-{uuid.uuid4().hex}"
    participant, participant_password = f"bpart-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(organizer, groups=["organizers"], password=organizer_password)
    hub.create_user(participant, password=participant_password)
    title = f"Flowers in the browser {suffix}"
    bundle = demo_bundle_zip(tmp_path, title)

    # -- the organizer ------------------------------------------------------------------------
    page = browser_pages()
    browser_login(page, hub, organizer, organizer_password)
    assert page.url.endswith("/hub/home"), page.url
    page.click("#competitions-home-link")
    expect(page.locator("main > h1")).to_have_text("Competitions")
    # The service knows who logged in on the hub (OAuth, no confirmation page).
    expect(page.locator("header .who")).to_contain_text(organizer)
    page.click("header nav >> text=New competition")
    page.set_input_files("#bundle-file", str(bundle))
    page.click("#create-form button[type=submit]")
    expect(page.locator(".comp-head h1")).to_have_text(title)
    slug = re.search(r"/competitions/([^/?#]+)$", page.url).group(1)
    expect(page.locator("#organizer-note")).to_be_visible()

    # -- the participant, in a browser of their own -----------------------------------------
    page = browser_pages()
    browser_login(page, hub, participant, participant_password)
    browser_register(page, title)

    page.click("#registration-status >> text=Make a submission")
    expect(page.locator("#left-today")).to_be_visible()
    page.set_input_files("#submission-file", str(sample_predictions_zip(tmp_path)))
    page.click("#submit-form button[type=submit]")
    # The submissions page follows the status by itself until the run is over.
    row = page.locator("#submissions tbody tr").first
    expect(row.locator("[data-status]")).to_have_text("Finished", timeout=SCORING_TIMEOUT_MS)
    submission_id = int(row.get_attribute("data-submission"))

    page.click("nav.subnav >> text=Leaderboard")
    mine = page.locator(f"#leaderboard tr.mine[data-participant='{participant}']")
    expect(mine).to_have_count(1)
    assert int(mine.get_attribute("data-submission")) == submission_id

    # The page shows what the API says, at the column's precision (the column's rank follows).
    board = hub.user_client(participant).get(f"api/v1/competitions/{slug}/leaderboard").json()
    accuracy = next(r for r in board["rows"] if r["participant"] == participant)["scores"]["accuracy"]
    shown = re.escape(f"{accuracy:.3f}")
    expect(mine.locator("td[data-column=accuracy]")).to_have_text(re.compile(rf"^\s*{shown}(\s|$)"))
