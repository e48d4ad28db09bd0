"""Headless Chromium through the real hub: an organizer removes a participant and the board follows.

Two participants submit (through the API, scored by the real dispatcher); the
organizer logs in on the hub's login page, is not offered to register on their
own competition, opens the participants page from the competition's nav bar
and clicks Remove in one participant's row: that participant's row leaves the
public leaderboard page, and the other participant's moves up.  Reinstate
brings the row back at the rank it had.  The co-organizers a bundle names,
and those named on the participants page, are checked against the hub's users.
"""
from __future__ import annotations

import io
import time
import uuid
import zipfile

import pytest

from tests.support.browser import browser_login
from tests.support.hub import SERVICE_PREFIX, demo_bundle_zip, sample_predictions_zip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

SCORING_TIMEOUT = 180


def submit_and_wait(hub, username: str, slug: str, predictions) -> None:
    client = hub.user_client(username)
    resp = client.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    with open(predictions, "rb") as fh:
        resp = client.post(f"api/v1/competitions/{slug}/submissions", files={"file": ("predictions.zip", fh)})
    assert resp.status_code == 201, resp.text
    sid, deadline = resp.json()["id"], time.monotonic() + SCORING_TIMEOUT
    while not (state := client.get(f"api/v1/submissions/{sid}").json())["terminal"]:
        assert time.monotonic() < deadline, f"submission {sid} still {state['status']}:\n{hub.log_tail()}"
        time.sleep(0.5)
    assert state["status"] == "Finished", (state, hub.log_tail())


def with_admin_names(archive, names: str) -> bytes:
    """The bundle `archive` with `admin_names: names` in its competition.yaml."""
    out = io.BytesIO()
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "competition.yaml":
                data = data + f"\nadmin_names: {names}\n".encode()
            dst.writestr(item, data)
    return out.getvalue()


def board_rows(page) -> list[tuple[str, str]]:
    """(rank, participant) of each row of the leaderboard page."""
    rows = page.locator("#leaderboard tbody tr[data-participant]")
    return [(rows.nth(i).locator("td").first.inner_text().strip(), rows.nth(i).get_attribute("data-participant"))
            for i in range(rows.count())]


def test_removing_a_participant_takes_their_row_off_the_board_and_reinstating_brings_it_back(
        hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, password = f"porg-{suffix}", f"pw-{uuid.uuid4().hex}"
    good, weak = f"pgood-{suffix}", f"pweak-{suffix}"
    helper, ghost = f"phelp-{suffix}", f"ghost-{suffix}"
    hub.create_user(organizer, groups=["organizers"], password=password)
    for user in (good, weak, helper):
        hub.create_user(user)
    title = f"Participants in the browser {suffix}"
    resp = hub.user_client(organizer).post(
        "api/v1/competitions", files={"file": ("bundle.zip", with_admin_names(demo_bundle_zip(tmp_path, title),
                                                                                f"{helper}, {ghost}"))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    # The hub is asked about the co-organizers the bundle names: the one it does not know is said.
    unknown = [w for w in resp.json()["warnings"] if "is not a user of this hub" in w]
    assert unknown == [f"admin_names: {ghost!r} is not a user of this hub: nobody organizes as {ghost!r} until an "
                       "account of exactly that name exists"]
    submit_and_wait(hub, good, slug, sample_predictions_zip(tmp_path, "petal_rule"))
    submit_and_wait(hub, weak, slug, sample_predictions_zip(tmp_path, "constant"))

    # Anyone's view of the public board, in a browser of its own (not logged in).
    board = browser_pages()
    board_url = f"{hub.service_url}competitions/{slug}/leaderboard"
    board.goto(board_url)
    before = board_rows(board)
    assert [p for _, p in before] == [good, weak], before

    page = browser_pages()
    browser_login(page, hub, organizer, password)
    # The service's login runs the hub's OAuth, then lands on the competition.
    page.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}")
    expect(page.locator("header .who")).to_contain_text(organizer)
    expect(page.locator("#registration-status")).to_contain_text("You organize this competition")
    expect(page.locator("#register-form")).to_have_count(0)
    page.click("nav.subnav >> text=Participants")
    row = page.locator(f"#participants tr[data-username='{good}']")
    expect(row.locator(".status")).to_have_text("approved")
    row.locator("button:has-text('Remove')").click()
    expect(page.locator(".notice").first).to_contain_text(f"{good}: removed (off every leaderboard)")
    expect(row.locator(".status")).to_have_text("removed")

    board.goto(board_url)
    expect(board.locator(f"#leaderboard tr[data-participant='{good}']")).to_have_count(0)
    assert board_rows(board) == [("1", weak)]

    row.locator("button:has-text('Reinstate')").click()
    expect(row.locator(".status")).to_have_text("approved")
    board.goto(board_url)
    expect(board.locator(f"#leaderboard tr[data-participant='{good}']")).to_have_count(1)
    assert board_rows(board) == before

    # The co-organizers, named on the same page; the hub is asked about each name.
    expect(page.locator("#organizer-list .co-organizer")).to_have_text([helper, ghost])
    page.fill("#co-organizers", f"{helper} nobody-{suffix}")
    page.click("#organizers-form button[type=submit]")
    expect(page.locator("#organizer-list .co-organizer")).to_have_text([helper, f"nobody-{suffix}"])
    expect(page.locator(".notice", has_text=f"'nobody-{suffix}' is not a user of this hub")).to_have_count(1)
    expect(page.locator(".notice", has_text=f"'{helper}' is not")).to_have_count(0)
