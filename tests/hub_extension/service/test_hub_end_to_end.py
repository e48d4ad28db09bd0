"""The whole path through a real hub and its proxy, as scripts and browsers take it.

An organizer (hub group `organizers`) uploads a bundle, a participant
registers and submits predictions, the service scores them on its local Dask
queue, and the score shows on the leaderboard: in the API and on the page.
"""
from __future__ import annotations

import html
import re
import time
import uuid

import pytest

from tests.support.hub import demo_bundle_zip, sample_predictions_zip

pytestmark = pytest.mark.slow

FINISHED, FAILED = "Finished", "Failed"


def wait_for_submission(client, submission_id: int, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        resp = client.get(f"api/v1/submissions/{submission_id}")
        assert resp.status_code == 200, resp.text
        view = resp.json()
        if view["status"] in (FINISHED, FAILED, "Cancelled"):
            return view
        time.sleep(0.5)
    raise AssertionError(f"submission {submission_id} still {view.get('status')!r} after {timeout:.0f} s: {view}")


def test_organizer_creates_participant_submits_leaderboard_shows_the_score(hub, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"org-{suffix}", groups=["organizers"])
    participant_password = f"pw-{uuid.uuid4().hex}"
    participant = hub.create_user(f"part-{suffix}", password=participant_password)
    as_organizer = hub.user_client(organizer)
    as_participant = hub.user_client(participant)

    # The organizer uploads a bundle (multipart, as the page's form and the CLI send it).
    title = f"Flowers through the hub {suffix}"
    bundle = demo_bundle_zip(tmp_path, title)
    with open(bundle, "rb") as fh:
        resp = as_organizer.post("api/v1/competitions", files={"file": ("bundle.zip", fh, "application/zip")})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    detail = as_organizer.get(f"api/v1/competitions/{slug}").json()
    assert detail["title"] == title
    assert detail["is_organizer"] is True

    # A participant may not create one.
    with open(bundle, "rb") as fh:
        resp = as_participant.post("api/v1/competitions", files={"file": ("bundle.zip", fh, "application/zip")})
    assert resp.status_code == 403, resp.text

    # The participant registers (the bundle approves at once) and submits predictions.
    resp = as_participant.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "approved"
    with open(sample_predictions_zip(tmp_path), "rb") as fh:
        resp = as_participant.post(f"api/v1/competitions/{slug}/submissions",
                                   files={"file": ("petal_rule.zip", fh, "application/zip")})
    assert resp.status_code == 201, resp.text
    submission_id = resp.json()["id"]

    # The service's dispatcher runs it on the local Dask queue.
    view = wait_for_submission(as_participant, submission_id)
    assert view["status"] == FINISHED, view

    # The leaderboard API has the participant's row with both scores.
    board = as_participant.get(f"api/v1/competitions/{slug}/leaderboard").json()
    rows = [row for row in board["rows"] if row["participant"] == participant]
    assert len(rows) == 1, board
    row = rows[0]
    assert row["submission"] == submission_id
    accuracy = row["scores"]["accuracy"]
    assert 0.5 < accuracy <= 1.0, row
    # Others see it too: the organizer, and a visitor without a login.
    organizer_board = as_organizer.get(f"api/v1/competitions/{slug}/leaderboard").json()
    assert [r["scores"]["accuracy"] for r in organizer_board["rows"] if r["participant"] == participant] == [accuracy]

    # The leaderboard page, in the participant's logged-in browser session, shows the same
    # score in the participant's row, at the column's precision (3 in the bundle).
    session = hub.login(participant, participant_password)
    page = session.get(f"competitions/{slug}/leaderboard")
    assert page.status_code == 200, page.text[:500]
    row_html = re.search(rf'<tr[^>]*data-participant="{re.escape(participant)}"[^>]*>(.*?)</tr>', page.text, re.S)
    assert row_html, f"no row of {participant} on the leaderboard page"
    cell = re.search(r'<td[^>]*data-column="accuracy"[^>]*>(.*?)</td>', row_html.group(1), re.S)
    assert cell, f"no accuracy cell in the row of {participant}: {row_html.group(0)[:500]}"
    shown = html.unescape(re.sub(r"<[^>]+>", " ", cell.group(1))).split()
    assert shown and shown[0] == f"{accuracy:.3f}", f"the page shows {shown}, the API {accuracy}"
    # The CSV has it as well.
    csv_text = as_participant.get(f"api/v1/competitions/{slug}/leaderboard.csv").text
    assert participant in csv_text
