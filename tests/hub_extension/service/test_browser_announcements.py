"""Headless Chromium through the real hub: an organizer's announcement reaches a real SMTP server and the
participant's Announcements tab.

The participant gives their mail address on their mail settings page; the
organizer opens the competition's Announcements tab, writes a Markdown
announcement and sends it to all participants.  The hub's platform sends
through the tests' SMTP server (aiosmtpd, `tests.support.mail`) from its mail
thread: the mail arrives with its links (the message, one-click unsubscribe);
the participant finds the announcement on the tab, follows the mail's link to
the message, and the unsubscribe link stops the next announcement's mail.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.browser import browser_login
from tests.support.hub import SERVICE_PREFIX, demo_bundle_zip

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


def test_an_announcement_reaches_the_smtp_server_and_the_announcements_tab(hub, smtp_server, browser_pages,
                                                                             tmp_path):
    from playwright.sync_api import expect

    suffix = uuid.uuid4().hex[:6]
    organizer, participant = f"aorg-{suffix}", f"apart-{suffix}"
    password = f"pw-{uuid.uuid4().hex}"
    address = f"{participant}@example.org"
    hub.create_user(organizer, groups=["organizers"], password=password)
    hub.create_user(participant, password=password)
    with open(demo_bundle_zip(tmp_path, f"Announcements {suffix}"), "rb") as fh:
        resp = hub.user_client(organizer).post("api/v1/competitions", files={"file": ("bundle.zip", fh)})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    resp = hub.user_client(participant).post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text

    # The participant gives their address, from their Messages.
    part = browser_pages()
    browser_login(part, hub, participant, password)
    part.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}")
    part.click("#my-messages")
    part.click("#mail-settings-link")
    part.fill("#mail-email", address)
    expect(part.locator("#mail-announcement")).to_be_checked()
    expect(part.locator("#mail-submission_finished")).not_to_be_checked()
    part.click("#mail-save")
    expect(part.locator(".notice").first).to_contain_text("Your mail settings are saved")

    # The organizer sends from the Announcements tab, which says where mail goes.
    org = browser_pages()
    browser_login(org, hub, organizer, password)
    org.goto(f"{hub.service_url}login?next={SERVICE_PREFIX}competitions/{slug}")
    org.click("nav.subnav >> text=Announcements")
    expect(org.locator("#mail-transport")).to_contain_text(f"{smtp_server.host}:{smtp_server.port}")
    subject = f"Deadline extended {suffix}"
    org.fill("#announce-subject", subject)
    org.fill("#announce-body", "The final phase now ends **a week later**.")
    org.click("#announce-send")
    expect(org.locator(".notice").first).to_contain_text("Announcement sent to all participants (1 recipient)")

    mail = smtp_server.wait_for(lambda rcpt, msg: msg["Subject"] == subject, timeout=60)
    assert mail["To"] == address
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "The final phase now ends **a week later**." in text
    link = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("On the platform: "))
    unsubscribe = mail["List-Unsubscribe"].strip("<>")
    assert link.startswith(hub.service_url) and unsubscribe.startswith(f"{hub.service_url}unsubscribe/")

    # The participant's tab shows it; the mail's link opens the message.
    part.goto(f"{hub.service_url}competitions/{slug}")
    part.click("nav.subnav >> text=Announcements")
    item = part.locator("#announcements .announcement", has_text=subject)
    expect(item).to_have_count(1)
    expect(item.locator("strong")).to_have_text("a week later")
    part.goto(link)
    expect(part.locator("#message-subject")).to_have_text(subject)

    # The unsubscribe link, opened from the mail: one click, and the next announcement is not mailed.
    stranger = browser_pages()
    stranger.goto(unsubscribe)
    stranger.click("#unsubscribe")
    expect(stranger.locator("#unsubscribed")).to_contain_text("no more mail about announcements")
    org.fill("#announce-subject", f"Second {suffix}")
    org.fill("#announce-body", "Again.")
    org.click("#announce-send")
    expect(org.locator(".notice").first).to_contain_text("0 mail queued")
    expect(org.locator("#announcements .announcement", has_text=f"Second {suffix}")).to_contain_text("1 unsubscribed")
