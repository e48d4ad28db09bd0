"""A waiting submission's place in the queue on its page: as served, and kept up to date by the page's script."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.chromium


def log_in(page, server, user: str) -> None:
    page.context.add_cookies([{**server.login_cookie(user), "url": server.base}])


def test_the_submission_page_shows_the_queue_position(world_server, chromium):
    server, world = world_server
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, server, "ann")
        page.goto(server.base + f"submissions/{world.subs['ann_waiting']}")
        assert page.locator("#queue-position").inner_text() == "#1 in the queue"
        waiting = page.locator("[data-waiting]").inner_text()
        assert waiting.startswith("#1 in the queue — waiting on queue 'default'"), waiting
    finally:
        context.close()


def test_the_live_status_writes_the_position_not_an_object(world_server, browser_page):
    server, world = world_server
    page = browser_page
    log_in(page, server, "ann")
    page.goto(server.base + f"submissions/{world.subs['ann_waiting']}")
    page.evaluate("document.querySelector('[data-waiting]').textContent = ''")
    # The next poll of the JSON API writes it again, from `queue_position` and `waiting.note`.
    page.wait_for_function("document.querySelector('[data-waiting]').textContent !== ''", timeout=15_000)
    text = page.locator("[data-waiting]").inner_text()
    assert text.startswith("#1 in the queue — ") and "object" not in text, text
