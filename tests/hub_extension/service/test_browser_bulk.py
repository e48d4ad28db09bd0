"""Headless Chromium through the real hub: a participant deletes a submission; the organizer downloads the phase.

The participant clicks Delete on their submissions list, is asked once more,
and the submission is gone (API and leaderboard agree).  The organizer clicks
"Download all (zip)" on the phases page; every entry of the zip is checked
against the manifest it carries (size and SHA-256), and the manifest against
what the platform holds.
"""
from __future__ import annotations

import hashlib
import json
import uuid
import zipfile

import pytest

from tests.support.browser import browser_login
from tests.support.hub import demo_bundle_zip, sample_predictions_zip, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.chromium]




def _open_competition(page, title: str, section: str) -> None:
    from playwright.sync_api import expect  # only the browser tests load playwright

    page.click("#competitions-nav-link")
    page.click(f"#competition-list a:has-text('{title}')")
    expect(page.locator(".comp-head h1")).to_have_text(title)
    page.click(f"nav.subnav >> text={section}")


def test_participant_deletes_a_submission_and_organizer_downloads_the_phase(hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, organizer_password = f"zorg-{suffix}", f"pw-{uuid.uuid4().hex}"
    participant, participant_password = f"zpart-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(organizer, groups=["organizers"], password=organizer_password)
    hub.create_user(participant, password=participant_password)
    title = f"Bulk in the browser {suffix}"
    olga, ann = hub.user_client(organizer), hub.user_client(participant)
    created = olga.post("api/v1/competitions",
                        files={"file": ("bundle.zip", demo_bundle_zip(tmp_path, title).read_bytes())})
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]
    assert ann.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True}).status_code == 201
    ids = []
    for sample in ("constant", "petal_rule"):
        upload = sample_predictions_zip(tmp_path, sample)
        resp = ann.post(f"api/v1/competitions/{slug}/submissions", files={"file": (upload.name, upload.read_bytes())})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    for sid in ids:
        assert wait_finished(ann, sid)["status"] == "Finished"
    first, kept = ids

    # -- the participant deletes their first submission ---------------------------------------
    page = browser_pages()
    browser_login(page, hub, participant, participant_password)
    _open_competition(page, title, "Submissions")
    expect(page.locator(f"#submissions tbody tr[data-submission='{first}']")).to_have_count(1)
    page.click(f"[data-delete='{first}']")
    expect(page.locator("#confirm-title")).to_have_text(f"Delete submission {first}")
    page.click("#confirm-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text(f"Submission {first} is deleted.")
    assert page.url.endswith(f"/competitions/{slug}/submissions"), page.url
    expect(page.locator(f"#submissions tbody tr[data-submission='{first}']")).to_have_count(0)
    expect(page.locator(f"#submissions tbody tr[data-submission='{kept}']")).to_have_count(1)
    assert ann.get(f"api/v1/submissions/{first}").status_code == 404
    board = ann.get(f"api/v1/competitions/{slug}/leaderboard").json()
    assert [r["submission"] for r in board["rows"]] == [kept]

    # -- the organizer downloads every submission of the phase ---------------------------------
    page = browser_pages()
    browser_login(page, hub, organizer, organizer_password)
    _open_competition(page, title, "Phases")
    with page.expect_download() as download:
        page.click("[data-download-all='1']")
    target = tmp_path / "phase.zip"
    download.value.save_as(target)
    assert download.value.suggested_filename == f"{slug}-phase1-submissions.zip"

    archive = zipfile.ZipFile(target)
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    entries = {e["path"]: e for e in manifest["entries"]}
    assert set(archive.namelist()) == set(entries) | {"manifest.json"}
    for path, entry in entries.items():
        content = archive.read(path)
        assert len(content) == entry["size"], path
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], path
        assert entry["submission"] == kept and entry["participant"] == participant, entry

    view = olga.get(f"api/v1/submissions/{kept}").json()
    assert [s["id"] for s in manifest["submissions"]] == [kept]
    assert manifest["submissions"][0]["scores"] == view["scores"]
    folder = f"submissions/{kept}-{participant}"
    kinds = {e["kind"] for e in entries.values()}
    assert {"submitted", "log", "prediction_output", "scoring_output"} <= kinds
    submitted = archive.read(f"{folder}/submitted/petal_rule.zip")
    assert submitted == sample_predictions_zip(tmp_path, "petal_rule").read_bytes()
    assert any(p.startswith(f"{folder}/logs/task-") and p.endswith("/stdout.txt") for p in entries)
    scores = next(p for p in entries if p.startswith(f"{folder}/scoring_output/task-") and p.endswith("scores.json"))
    written = json.loads(archive.read(scores))
    assert written["accuracy"] == pytest.approx(view["scores"]["accuracy"])
