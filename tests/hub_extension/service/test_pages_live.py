"""The submissions pages in headless Chromium: live status through the JSON API, and reading without JavaScript."""
from __future__ import annotations

import pytest

from hub_extension import models as m
from tests.support import builders

pytestmark = pytest.mark.chromium


def log_in(page, server, user: str) -> None:
    page.context.add_cookies([{**server.login_cookie(user), "url": server.base}])


def test_the_status_of_a_running_submission_updates_without_a_reload(world_server, browser_page):
    server, world = world_server
    page = browser_page
    log_in(page, server, "ann")
    sid = world.subs["ann_waiting"]
    page.goto(server.base + f"competitions/{world.slug}/submissions")
    row = page.locator(f'tr[data-submission="{sid}"]')
    assert row.locator("[data-status]").inner_text() == m.SUBMITTED
    page.evaluate("window.__same_page = true")

    assert server.platform.runs.set_status(sid, m.RUNNING, note="test-worker")
    page.wait_for_function(
        f"document.querySelector('tr[data-submission=\"{sid}\"] [data-status]').textContent === 'Running'",
        timeout=15_000,
    )
    assert page.evaluate("window.__same_page === true")  # updated in place, not reloaded

    builders.finish(server.platform, sid, {"accuracy": 0.55, "secret": 0.45, "private_score": 0.1})
    # Finished: the page reloads itself to show the scores and actions from the server.
    page.wait_for_function("window.__same_page !== true", timeout=15_000)
    row = page.locator(f'tr[data-submission="{sid}"]')
    assert row.locator("[data-status]").inner_text() == m.FINISHED
    assert row.get_attribute("data-terminal") == "yes"
    assert row.locator('[data-score="accuracy"]').inner_text() == "0.55"  # the column's precision
    assert page.locator('[data-score="secret"]').count() == 0


def test_the_submission_page_reads_the_same_without_javascript(world_server, chromium):
    server, world = world_server
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, server, "ann")
        page.goto(server.base + f"submissions/{world.subs['ann']}")
        assert page.locator('[data-score="accuracy"]').inner_text() == "0.70"  # the column's precision
        assert page.locator("[data-status]").first.inner_text() == m.FINISHED
        page.goto(server.base + f"competitions/{world.slug}/leaderboard")
        assert page.locator("#leaderboard tbody tr").count() == 2
        assert page.locator("#leaderboard tr.mine").get_attribute("data-participant") == "ann"
        page.click("text=Accuracy")  # sorting is a plain link
        assert "sort=accuracy" in page.url
        assert page.locator("#best-score-chart svg circle").count() == 2
    finally:
        context.close()
