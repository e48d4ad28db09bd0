"""Headless Chromium takes a competition through its lifecycle on the real hub: draft, published, archived, deleted.

An organizer uploads a bundle without `published: true`: a draft, which a
second user finds nowhere (list, page, API) while the organizer
submits to test it (a first submission enters an organizer).  Published from its Lifecycle page, the second user finds
it in the list; archived, its page and leaderboard stay readable and
registration is closed; deleted with the typed slug, it is gone for everyone
and so are its submission's files and the stored data only it used.
"""
from __future__ import annotations

import re
import shutil
import uuid

import pytest
import yaml

from hub_extension.app import Platform
from tests.support.browser import browser_login
from tests.support.bundles import zip_folder
from tests.support.hub import sample_predictions_zip, wait_finished
from tests.support.paths import DEMO as DEMO_BUNDLE

pytestmark = [pytest.mark.slow, pytest.mark.chromium]



def draft_bundle(tmp_path, title: str):
    """The demo bundle under `title` without its `published: true` (so it uploads as a draft), with a scoring
    program no other competition has."""
    folder = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, folder)
    doc = yaml.safe_load((folder / "competition.yaml").read_text())
    doc["title"] = title
    del doc["published"]
    (folder / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (folder / "scoring_program" / "owner.txt").write_text(f"only {title} has this file\n")
    return zip_folder(folder, tmp_path / "bundle.zip")



def test_draft_publish_archive_delete_through_the_real_hub(hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, organizer_password = f"lorg-{suffix}", f"pw-{uuid.uuid4().hex}"
    visitor, visitor_password = f"lvis-{suffix}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(organizer, groups=["organizers"], password=organizer_password)
    hub.create_user(visitor, password=visitor_password)
    title = f"Lifecycle {suffix}"

    # -- the organizer uploads a draft --------------------------------------------------------
    org = browser_pages()
    browser_login(org, hub, organizer, organizer_password)
    org.click("#competitions-home-link")
    expect(org.locator("header .who")).to_contain_text(organizer)
    org.click("header nav >> text=New competition")
    org.set_input_files("#bundle-file", str(draft_bundle(tmp_path, title)))
    org.click("#create-form button[type=submit]")
    expect(org.locator(".comp-head h1")).to_have_text(title)
    expect(org.locator("#lifecycle")).to_have_text("draft")
    expect(org.locator(".notice", has_text="a draft: only its organizers see it")).to_contain_text(
        "the Publish button of its Lifecycle page opens it to everyone")
    slug = re.search(r"/competitions/([^/?#]+)$", org.url).group(1)
    page_url = org.url
    # Organizers test a draft: they are not offered to register; their own first submission enters them.
    expect(org.locator("#registration-status")).to_contain_text("You organize this competition")
    assert org.locator("#register-form").count() == 0
    organizer_api = hub.user_client(organizer)
    scoring_key = yaml.safe_load(organizer_api.get(f"api/v1/competitions/{slug}/yaml").json()["yaml"])[
        "tasks"][0]["scoring_program"]
    resp = organizer_api.post(f"api/v1/competitions/{slug}/submissions",
                              files={"file": ("predictions.zip", sample_predictions_zip(tmp_path).read_bytes())})
    assert resp.status_code == 201, resp.text
    submission = resp.json()["id"]
    assert wait_finished(organizer_api, submission)["status"] == "Finished", hub.log_tail()

    # -- a second user finds the draft nowhere ------------------------------------------------
    vis = browser_pages()
    browser_login(vis, hub, visitor, visitor_password)
    vis.click("#competitions-home-link")
    expect(vis.locator("main > h1")).to_have_text("Competitions")
    expect(vis.locator("header .who")).to_contain_text(visitor)
    expect(vis.locator(f"[data-slug='{slug}']")).to_have_count(0)
    answer = vis.goto(page_url)
    assert answer.status == 404
    expect(vis.locator("main")).to_contain_text(f"no competition '{slug}'")
    visitor_api = hub.user_client(visitor)
    for path in ("", "/leaderboard", "/leaderboard.csv", "/phases", "/logo"):
        assert visitor_api.get(f"api/v1/competitions/{slug}{path}").status_code == 404, path

    # -- published from the Lifecycle page: the second user finds it --------------------------
    org.click("nav.subnav >> text=Lifecycle")
    expect(org.locator("#lifecycle-status")).to_have_text("draft")
    org.click("#lifecycle-publish")
    expect(org.locator("#lifecycle-status")).to_have_text("published")
    vis.click("header nav >> text=Competitions")
    vis.click(f"#competition-list a:has-text('{title}')")
    expect(vis.locator(".comp-head h1")).to_have_text(title)
    expect(vis.locator("#register-form")).to_be_visible()
    expect(vis.locator("#lifecycle")).to_have_count(0)

    # -- archived: read-only, the board kept, registration closed -----------------------------
    org.click("#lifecycle-archive")
    expect(org.locator("#lifecycle-status")).to_have_text("archived")
    vis.reload()
    expect(vis.locator("#lifecycle")).to_have_text("archived")
    expect(vis.locator("#registration-status")).to_contain_text("archived")
    expect(vis.locator("#register-form")).to_have_count(0)
    resp = visitor_api.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 409 and "archived" in resp.json()["error"]["message"], resp.text
    vis.click("nav.subnav >> text=Leaderboard")
    expect(vis.locator(f"#leaderboard tr[data-participant='{organizer}']")).to_have_count(1)

    # -- deleted, with the typed slug ---------------------------------------------------------
    platform = Platform(home=str(hub.home))
    try:
        program = platform.store.dataset_path(scoring_key)
        folder = platform.store.file_path(f"submissions/{submission}")
        assert program.is_file() and folder.is_dir()
        org.fill("#confirm", slug)
        org.click("#lifecycle-delete")
        expect(org.locator("main > h1")).to_have_text("Competitions")
        expect(org.locator(".notice", has_text=f"{slug} is deleted with its 1 submission(s)")).to_have_count(1)
        assert not program.exists(), "the scoring program only it used is still stored"
        assert not folder.exists(), "the submission's files are still stored"
    finally:
        platform.close()
    for client in (visitor_api, organizer_api):
        assert client.get(f"api/v1/competitions/{slug}").status_code == 404
    assert vis.goto(page_url).status == 404
