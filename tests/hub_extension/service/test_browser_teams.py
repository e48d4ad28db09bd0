"""Headless Chromium through the real hub: two participants form a team and enter as one.

The organizer uploads the demo bundle with `allow_teams: true` and two
submissions per entrant.  One participant logs in on the hub's login page,
opens the Teams tab, creates a team and invites the other by hub user name;
the other, logged in in a browser of their own, accepts on the Teams page.
The first submits (scored by the real dispatcher): both see the submission on
the team's page and open it; the public leaderboard shows one entry, the
team's name; the second member's submission uses the team's last one, and
then the first is refused with the team's limit.
"""
from __future__ import annotations

import re
import time
import uuid
import zipfile

import pytest

from tests.support.browser import browser_login
from tests.support.hub import SERVICE_PREFIX, demo_bundle_zip, sample_predictions_zip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

SCORING_TIMEOUT = 180


def teams_bundle(tmp_path, title: str) -> bytes:
    """The demo bundle allowing teams, with two submissions per entrant."""
    archive = demo_bundle_zip(tmp_path, title)
    out = tmp_path / "teams.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "competition.yaml":
                text = re.sub(r"max_submissions: 100", "max_submissions: 2", data.decode(), count=1)
                data = (text + "\nallow_teams: true\n").encode()
            dst.writestr(item, data)
    return out.read_bytes()


def submit(hub, username: str, slug: str, predictions):
    with open(predictions, "rb") as fh:
        return hub.user_client(username).post(f"api/v1/competitions/{slug}/submissions",
                                              files={"file": ("predictions.zip", fh)})


def test_two_participants_form_a_team_share_its_submissions_board_entry_and_limit(hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, owner, mate = f"torg-{suffix}", f"towl-{suffix}", f"tmate-{suffix}"
    passwords = {name: f"pw-{uuid.uuid4().hex}" for name in (owner, mate)}
    hub.create_user(organizer, groups=["organizers"])
    for name, password in passwords.items():
        hub.create_user(name, password=password)
    resp = hub.user_client(organizer).post(
        "api/v1/competitions", files={"file": ("bundle.zip", teams_bundle(tmp_path, f"Teams {suffix}"))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    assert not [w for w in resp.json()["warnings"] if "allow_teams" in w], resp.json()["warnings"]
    for name in (owner, mate):
        resp = hub.user_client(name).post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
        assert resp.status_code == 201 and resp.json()["status"] == "approved", resp.text

    # The owner creates the team from the Teams tab and invites the other by hub user name.
    page = browser_pages()
    browser_login(page, hub, owner, passwords[owner])
    page.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}")
    expect(page.locator("header .who")).to_contain_text(owner)
    page.click("nav.subnav >> text=Teams")
    page.fill("#team-name", f"Owls {suffix}")
    page.click("#create-team button[type=submit]")
    expect(page.locator("#team-name")).to_have_text(f"Owls {suffix}")
    team_url = page.url
    page.fill("#invite-names", mate)
    page.click("#invite-form button[type=submit]")
    expect(page.locator(".notice").first).to_contain_text(f"{mate} is invited")
    expect(page.locator(f"#invited li[data-username='{mate}']")).to_have_count(1)

    # The invitee accepts in a browser of their own.
    other = browser_pages()
    browser_login(other, hub, mate, passwords[mate])
    other.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}/teams")
    other.click("#invitation-list button:has-text('Accept')")
    expect(other.locator(".notice").first).to_contain_text("You joined the team")
    expect(other.locator("#members li")).to_have_count(2)

    # The owner submits; the submission is the team's, and both members see it.
    resp = submit(hub, owner, slug, sample_predictions_zip(tmp_path, "petal_rule"))
    assert resp.status_code == 201, resp.text
    sid, deadline = resp.json()["id"], time.monotonic() + SCORING_TIMEOUT
    client = hub.user_client(mate)
    while not (state := client.get(f"api/v1/submissions/{sid}").json())["terminal"]:
        assert time.monotonic() < deadline, f"submission {sid} still {state['status']}:\n{hub.log_tail()}"
        time.sleep(0.5)
    assert state["status"] == "Finished", (state, hub.log_tail())
    for viewer in (page, other):
        viewer.goto(team_url)
        row = viewer.locator(f"#team-submissions tr[data-submission='{sid}']")
        expect(row).to_contain_text(owner)
        row.locator("a").first.click()
        expect(viewer.locator("body")).to_contain_text("Finished")

    # The public board: one entry, the team's name.
    board = browser_pages()
    board.goto(f"{hub.service_url}competitions/{slug}/leaderboard")
    rows = board.locator("#leaderboard tbody tr[data-participant]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-participant", f"Owls {suffix}")
    expect(rows.first.locator("a.team")).to_have_text(f"Owls {suffix}")

    # The limit is the team's: the other member's submission is its second and last.
    resp = submit(hub, mate, slug, sample_predictions_zip(tmp_path, "constant"))
    assert resp.status_code == 201, resp.text
    resp = submit(hub, owner, slug, sample_predictions_zip(tmp_path, "constant"))
    assert resp.status_code == 429, resp.text
    assert f"your team 'Owls {suffix}' has used all 2 submissions" in resp.json()["error"]["message"]
