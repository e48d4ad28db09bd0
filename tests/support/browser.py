"""Headless Chromium for the browser tests, and what a failing one reports.

`chromium` is a headless Chromium (Debian's, driven by Playwright) for one
test; `browser_page` a fresh page in a fresh context, and `browser_pages()`
makes more (one per person in a test).  A failing test gets the end of the
hub's log and screenshots of its pages in its report.  `browser_login` logs in
on the hub's login page as a person does.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urljoin

import pytest

from .components import require
from .hub import Hub

CHROMIUM = os.environ.get("COMPETE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

@pytest.fixture
def chromium():
    """Headless Chromium (Debian's /usr/bin/chromium) through Playwright.

    One per test, not per session: while Playwright's sync API runs, its event
    loop counts as running in this thread, so a session-long one would break
    every later test that calls `asyncio.run`.  A start takes about 0.5 s.
    """
    require(Path(CHROMIUM).exists(),
            f"{CHROMIUM} is missing: scripts/test.sh installs it (scripts/ensure_chromium.sh)")
    # Playwright loads only for the browser tests (its import is slow).
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
    except Exception:
        playwright.stop()
        raise
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


_PAGES = pytest.StashKey[list]()


@pytest.fixture
def browser_pages(chromium, request, tmp_path):
    """Makes pages, each in a browser context of its own (own cookies: one person each).

    On a failing test, a screenshot of every page is kept (paths in the report).
    """
    contexts = []
    pages: list = []
    request.node.stash[_PAGES] = pages

    def new_page():
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        pages.append((page, tmp_path / f"failure-{len(pages) + 1}.png"))
        return page

    try:
        yield new_page
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def browser_page(browser_pages):
    """One page in a fresh browser context."""
    return browser_pages()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test: the end of the hub's log, and screenshots of the browser's pages."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    hub = getattr(item, "funcargs", {}).get("hub")
    if isinstance(hub, Hub):
        report.sections.append(("hub log (end)", hub.log_tail(40)))
    for page, path in item.stash.get(_PAGES, []):
        try:
            page.screenshot(path=str(path), full_page=True)
            report.sections.append(("browser", f"page {page.url}\nscreenshot {path}"))
        except Exception as exc:  # noqa: BLE001 - the failure itself is what matters
            report.sections.append(("browser", f"no screenshot of {page.url}: {exc}"))


def browser_login(page, hub: Hub, username: str, password: str) -> None:
    """Log in on the hub's login page by typing and clicking, as a person would."""
    page.goto(urljoin(hub.url, "hub/login"))
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)


def browser_register(page, title: str) -> None:
    """From the hub, open the competition `title` and register, accepting its terms when it has any."""
    from playwright.sync_api import expect  # optional: only the browser tests have playwright loaded

    page.click("#competitions-nav-link")
    page.click(f"#competition-list a:has-text('{title}')")
    expect(page.locator(".comp-head h1")).to_have_text(title)
    terms = page.locator("#register-form input[name=accept_terms]")
    if terms.count():
        terms.check()
    page.click("#register-form button[type=submit]")
    expect(page.locator("#registration-status")).to_contain_text("You are registered")
