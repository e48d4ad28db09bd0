"""Headless Chromium through the real hub: a forum thread with a reply and an organizer's pin.

An organizer uploads the demo bundle (a Codabench bundle: its forum is on unless it
says otherwise).  A registered participant logs in on the hub's login page, opens
the Forum tab, writes a thread whose Markdown the live preview renders (and
sanitizes) as it is typed, and posts it.  The organizer replies in the thread and
pins it; the participant marks the reply as the answer; a user who is not
registered reads it all, pinned and answered, and is offered no reply form.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.browser import browser_login
from tests.support.hub import SERVICE_PREFIX, demo_bundle_zip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


def test_a_thread_with_a_reply_and_an_organizers_pin_through_the_real_hub(hub, browser_pages, tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, participant, reader = f"forg-{suffix}", f"fpart-{suffix}", f"fread-{suffix}"
    passwords = {name: f"pw-{uuid.uuid4().hex}" for name in (organizer, participant, reader)}
    hub.create_user(organizer, groups=["organizers"], password=passwords[organizer])
    hub.create_user(participant, password=passwords[participant])
    hub.create_user(reader, password=passwords[reader])
    bundle = demo_bundle_zip(tmp_path, f"Forum {suffix}").read_bytes()
    resp = hub.user_client(organizer).post("api/v1/competitions", files={"file": ("bundle.zip", bundle)})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    resp = hub.user_client(participant).post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201 and resp.json()["status"] == "approved", resp.text

    # -- the participant opens a thread ---------------------------------------------------------
    part = browser_pages()
    browser_login(part, hub, participant, passwords[participant])
    part.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}")
    expect(part.locator("header .who")).to_contain_text(participant)
    part.click("#forum-tab")
    expect(part.locator("#no-threads")).to_be_visible()
    part.click("#new-thread")
    part.fill("#thread-title-input", "How is accuracy computed?")
    part.fill("#page-content", "Is it **macro** or micro? <script>window.pwned = 1</script>")
    # The live preview: rendered and sanitized by the service as a competition page is.
    expect(part.locator("#page-preview strong")).to_have_text("macro")
    assert part.locator("#page-preview script").count() == 0
    part.click("#forum-form button[type=submit]")
    expect(part.locator("#thread-title")).to_have_text("How is accuracy computed?")
    expect(part.locator(".forum-post .page-content strong").first).to_have_text("macro")
    assert part.evaluate("window.pwned === undefined")
    expect(part.locator("#moderation")).to_have_count(0)
    thread_url = part.url

    # -- the organizer replies and pins it ------------------------------------------------------
    org = browser_pages()
    browser_login(org, hub, organizer, passwords[organizer])
    org.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}/forum")
    expect(org.locator("#forum-threads tr[data-thread]")).to_have_count(1)
    org.click("#forum-threads >> text=How is accuracy computed?")
    org.fill("#page-content", "Macro: see the *Evaluation* page.")
    org.click("#reply-form button[type=submit]")
    expect(org.locator(".forum-post")).to_have_count(2)
    expect(org.locator(".forum-post .page-content em").last).to_have_text("Evaluation")
    org.click("#thread-pin")
    expect(org.locator(".notice").first).to_contain_text("The thread is pinned.")
    expect(org.locator("#thread-pinned")).to_have_text("pinned")

    # -- the participant marks the reply as the answer ------------------------------------------
    part.goto(thread_url)
    part.locator(".forum-post").nth(1).locator("button[data-mark-answer]").click()
    expect(part.locator("#thread-answered")).to_have_text("answered")
    expect(part.locator(".forum-post.answer")).to_contain_text("Macro: see the Evaluation page.")

    # -- someone not registered reads it, and may not reply --------------------------------------
    read = browser_pages()
    browser_login(read, hub, reader, passwords[reader])
    read.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}/forum")
    row = read.locator("#forum-threads tr[data-thread]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-pinned]")).to_have_count(1)
    expect(row.locator("[data-answered]")).to_have_count(1)
    expect(read.locator("#forum-read-only")).to_contain_text("register for the competition")
    read.click("#forum-threads >> text=How is accuracy computed?")
    expect(read.locator(".forum-post")).to_have_count(2)
    expect(read.locator("#reply-form")).to_have_count(0)
    expect(read.locator("#forum-read-only")).to_be_visible()
