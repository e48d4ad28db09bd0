"""Profiles and anonymous leaderboards through the service: the profile page and API, and no route that
gives away a name.

The leak walk calls every GET route of the service (API, pages, editor,
files) with the data of an anonymous board, as a participant and as an
anonymous visitor, and looks for another participant's username, display name
or affiliation in every response body and header.  A route added later without
a place in the walk fails `test_the_walk_covers_every_get_route`.
"""
from __future__ import annotations

import re

import pytest

from hub_extension.app import Actor
from hub_extension.app.names import PSEUDONYM_PREFIX
from hub_extension.service import (
    api,
    bulk_pages,
    editor_pages,
    pages,
    probing_pages,
    profile_pages,
    reproduce_pages,
    run_data,
    similarity_pages,
)
from tests.support.builders import ANN, BEN, ORGANIZER, build_world
from tests.support.service_harness import PREFIX, ok, start_server

BEN_NAME, BEN_AFFILIATION = "Benedict Zebra-Quill", "Quillfield Institute"
ANN_NAME, ANN_AFFILIATION = "Annika Lark-Vole", "Larkspur College"
# Every GET route, with {slug}, {own} (the viewer's submission) and {theirs} (the other participant's).
WALK = [
    "api/v1/health", "api/v1/openapi.json", "api/v1/me", "api/v1/competitions", "api/v1/competitions/{slug}",
    "api/v1/competitions/{slug}/logo", "api/v1/competitions/{slug}/yaml", "api/v1/competitions/{slug}/export",
    "api/v1/competitions/{slug}/phases", "api/v1/competitions/{slug}/phases/1/migrate",
    "api/v1/competitions/{slug}/phases/1/starting_kit", "api/v1/competitions/{slug}/phases/1/baselines",
    "api/v1/competitions/{slug}/participants", "api/v1/competitions/{slug}/organizers",
    "api/v1/competitions/{slug}/submissions", "api/v1/competitions/{slug}/submissions_left",
    "api/v1/competitions/{slug}/leaderboard", "api/v1/competitions/{slug}/leaderboard?board=private",
    "api/v1/competitions/{slug}/leaderboard?limit=1&offset=1", "api/v1/competitions/{slug}/leaderboard.csv",
    "api/v1/competitions/{slug}/leaderboard/history", "api/v1/submissions/{theirs}", "api/v1/submissions/{own}",
    "api/v1/submissions/{theirs}/logs/0/scoring/stdout", "api/v1/submissions/{theirs}/artifacts/detailed_results",
    "api/v1/submissions/{theirs}/file", "api/v1/queues", "api/v1/queues/no-such-queue",
    "api/v1/queues/no-such-queue/credentials", "api/v1/admin/storage", "api/v1/competitions/{slug}/statistics",
    "api/v1/admin/statistics", "api/v1/competitions/{slug}/phases/1/rerun",
    "api/v1/competitions/{slug}/phases/1/submissions.zip", "api/v1/submissions/{theirs}/bundle.zip",
    "api/v1/competitions/{slug}/lifecycle", "api/v1/competitions/{slug}/spec", "api/v1/profile",
    "api/v1/runs/a.b/data/" + "0" * 64,
    "competitions/{slug}/edit/overview", "competitions/{slug}/edit/pages", "competitions/{slug}/edit/phases",
    "competitions/{slug}/edit/phases/1", "competitions/{slug}/edit/leaderboards",
    "competitions/{slug}/edit/leaderboards/main", "competitions/{slug}/edit/tasks", "competitions/{slug}/edit/tasks/0",
    "", "login", "new", "competitions/{slug}", "competitions/{slug}/logo",
    "competitions/{slug}/phases/1/starting-kit", "competitions/{slug}/leaderboard",
    "competitions/{slug}/leaderboard?sort=participant", "competitions/{slug}/leaderboard?board=private",
    "competitions/{slug}/leaderboard.csv", "competitions/{slug}/submit", "competitions/{slug}/submissions",
    "competitions/{slug}/submissions?username=ben", "competitions/{slug}/edit", "competitions/{slug}/phases",
    "competitions/{slug}/participants", "competitions/{slug}/export", "competitions/{slug}/export.zip",
    "submissions/{theirs}", "submissions/{own}", "submissions/{theirs}/files/detailed_results",
    "submissions/{theirs}/download", "submissions/{theirs}/logs/0/scoring/stdout", "queues",
    "queues/no-such-queue", "queues/no-such-queue/credentials", "admin", "competitions/{slug}/statistics",
    "competitions/{slug}/statistics.csv", "admin/statistics", "admin/statistics.csv",
    "competitions/{slug}/lifecycle", "competitions/{slug}/phases/1/confirm/migrate",
    "submissions/{theirs}/delete", "profile",
    "api/v1/competitions/{slug}/teams", "api/v1/competitions/{slug}/teams/1",
    "api/v1/competitions/{slug}/forum/threads", "api/v1/competitions/{slug}/forum/threads/1",
    "api/v1/competitions/{slug}/announcements", "api/v1/messages", "api/v1/messages/1", "api/v1/me/mail",
    "api/v1/admin/mail", "api/v1/competitions/{slug}/fact_sheet", "api/v1/competitions/{slug}/phases/1/fact_sheets.csv",
    "competitions/{slug}/teams", "competitions/{slug}/forum", "competitions/{slug}/announcements", "messages",
    "messages/settings", "admin/mail",
    "api/v1/competitions/{slug}/similarity", "api/v1/competitions/{slug}/similarity/1",
    "competitions/{slug}/similarity", "competitions/{slug}/similarity/1", "api/v1/submissions/{theirs}/provenance",
    "api/v1/submissions/{theirs}/manifest", "api/v1/submissions/{theirs}/comparison",
    "api/v1/submissions/{own}/comparison", "api/v1/manifest-key",
]


def get_routes() -> list[str]:
    routes = [*api.api_routes(PREFIX), *run_data.run_data_routes(PREFIX), *editor_pages.editor_page_routes(PREFIX),
              *pages.page_routes(PREFIX), *bulk_pages.bulk_page_routes(PREFIX),
              *profile_pages.profile_page_routes(PREFIX), *similarity_pages.similarity_page_routes(PREFIX),
              *reproduce_pages.reproduce_page_routes(PREFIX), *probing_pages.probing_page_routes(PREFIX)]
    return [pattern for pattern, handler in routes
            if any("get" in vars(k) for k in handler.__mro__ if k.__module__.startswith("hub_extension"))]


def test_the_walk_covers_every_get_route():
    walked = [f"{PREFIX}{path.split('?')[0]}".format(slug="secrets", own=1, theirs=2) for path in WALK]
    for pattern in get_routes():
        assert any(re.fullmatch(pattern, path) for path in walked), f"the leak walk does not call {pattern}"


@pytest.fixture
def anonymous_world(platform, tmp_path):
    world = build_world(platform, tmp_path)
    platform.save_profile(BEN, {"display_name": BEN_NAME, "affiliation": BEN_AFFILIATION})
    platform.save_profile(ANN, {"display_name": ANN_NAME, "affiliation": ANN_AFFILIATION})
    edit = platform.save_overview(world.slug, {"anonymous_leaderboard": True}, ORGANIZER)
    assert edit.saved, edit.problems
    server = start_server(platform)
    yield server, world
    server.stop()


def leaks(text: str, names: list[str]) -> list[str]:
    """The names found in `text` (a username counts as a whole word only)."""
    found = []
    for name in names:
        pattern = re.escape(name) if " " in name or "-" in name else rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"
        if re.search(pattern, text, re.I):
            found.append(name)
    return found


def walk(client, world, names: list[str]) -> list[str]:
    problems = []
    for path in WALK:
        url = path.format(slug=world.slug, own=world.subs["ann"], theirs=world.subs["ben"])
        resp = client.get(url)
        assert resp.status_code < 500, (url, resp.status_code, resp.text[:500])
        headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items() if k.lower() != "set-cookie")
        body = resp.content.decode("utf-8", "replace")
        for name in leaks(body + "\n" + headers, names):
            problems.append(f"GET {url} ({resp.status_code}) shows {name!r}")
    return problems


def test_no_route_gives_a_name_away_to_a_participant_or_a_visitor(anonymous_world):
    server, world = anonymous_world
    board = ok(server.client("ann").get(f"api/v1/competitions/{world.slug}/leaderboard")).json()
    assert board["anonymous"] and len(board["rows"]) == 2  # the walk reads a board with both entrants on it
    assert [r["participant"] == ANN_NAME for r in board["rows"]] == [False, True]
    assert board["rows"][0]["participant"].startswith(PSEUDONYM_PREFIX)

    problems = walk(server.client("ann"), world, ["ben", BEN_NAME, BEN_AFFILIATION])
    problems += walk(server.browser("ann"), world, ["ben", BEN_NAME, BEN_AFFILIATION])
    everyone = ["ann", "ben", ANN_NAME, BEN_NAME, ANN_AFFILIATION, BEN_AFFILIATION]
    problems += [f"anonymous: {p}" for p in walk(server.client(), world, everyone)]
    problems += [f"anonymous browser: {p}" for p in walk(server.browser(), world, everyone)]
    assert not problems, "\n".join(problems)


def test_the_etag_of_an_anonymous_board_is_one_for_every_visitor(anonymous_world):
    server, world = anonymous_world
    url = f"api/v1/competitions/{world.slug}/leaderboard"
    first, second = server.client().get(url), server.client().get(url)
    assert first.headers["ETag"] == second.headers["ETag"]
    again = server.client().get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content


def test_organizers_see_names_on_an_anonymous_board(anonymous_world):
    server, world = anonymous_world
    board = ok(server.client("olga").get(f"api/v1/competitions/{world.slug}/leaderboard")).json()
    assert [(r["participant"], r["username"]) for r in board["rows"]] == [(BEN_NAME, "ben"), (ANN_NAME, "ann")]
    page = ok(server.browser("olga").get(f"competitions/{world.slug}/leaderboard")).text
    assert BEN_NAME in page and "(ben)" in page and 'id="anonymous-note"' in page
    people = ok(server.browser("olga").get(f"competitions/{world.slug}/participants")).text
    assert BEN_NAME in people and BEN_AFFILIATION in people
    listing = ok(server.browser("olga").get(f"competitions/{world.slug}/submissions")).text
    assert BEN_NAME in listing and "(ben)" in listing
    csv_text = ok(server.client("olga").get(f"api/v1/competitions/{world.slug}/leaderboard.csv")).text
    assert BEN_NAME in csv_text


def test_the_editor_sets_a_boards_own_anonymity(anonymous_world):
    server, world = anonymous_world
    browser = server.browser("olga")
    form = ok(browser.get(f"competitions/{world.slug}/edit/leaderboards")).text
    assert 'id="anonymity-main"' in form
    ok(browser.post(f"competitions/{world.slug}/edit/leaderboards/main/anonymity", {"anonymous": "off"}))
    shown = ok(server.client().get(f"api/v1/competitions/{world.slug}/leaderboard")).json()
    assert [r["participant"] for r in shown["rows"]] == [BEN_NAME, ANN_NAME] and not shown["anonymous"]
    resp = server.client("olga").put(f"api/v1/competitions/{world.slug}/leaderboards/main/anonymity",
                                     json={"anonymous": "sometimes"})
    assert resp.status_code == 400 and "anonymous: must be true, false or null" in resp.text
    ok(server.client("olga").put(f"api/v1/competitions/{world.slug}/leaderboards/main/anonymity",
                                 json={"anonymous": None}))
    assert ok(server.client().get(f"api/v1/competitions/{world.slug}/leaderboard")).json()["anonymous"]
    overview = ok(browser.get(f"competitions/{world.slug}/edit/overview")).text
    assert re.search(r'name="anonymous_leaderboard" id="ov-anonymous" checked', overview)
    exported = ok(server.client("olga").get(f"api/v1/competitions/{world.slug}/yaml")).json()["yaml"]
    assert "anonymous_leaderboard: true" in exported


# -- profiles --------------------------------------------------------------------------------------
def test_the_profile_page_is_linked_from_the_header_and_saves(server):
    browser = server.browser("nora")
    home = ok(browser.get("")).text
    assert f'href="{PREFIX}profile" id="profile-link"' in home
    assert 'id="profile-link"' not in ok(server.browser().get("")).text
    saved = browser.post("profile", {"display_name": "Nora N.", "affiliation": "Tests Lab"})
    assert saved.status_code == 302
    page = ok(browser.follow(saved)).text
    assert "Profile saved." in page and 'value="Nora N."' in page and 'value="Tests Lab"' in page
    refused = browser.post("profile", {"display_name": "x" * 61, "affiliation": "Elsewhere"})
    assert refused.status_code == 400 and "at most 60 characters, got 61" in refused.text
    assert 'value="Elsewhere"' in refused.text  # the form as typed
    assert server.platform.profile(Actor("nora"))["affiliation"] == "Tests Lab"  # nothing of the refused form
    assert server.browser().get("profile").status_code == 302  # to the login


def test_the_profile_api(server):
    client = server.client("nora")
    assert ok(client.get("api/v1/profile")).json()["shown_as"] == "nora"
    body = ok(client.put("api/v1/profile", json={"display_name": "Nora N."})).json()
    assert body["display_name"] == "Nora N." and body["shown_as"] == "Nora N."
    refused = client.put("api/v1/profile", json={"display_name": "Nora\u200b"})
    assert refused.status_code == 400
    assert "control or invisible character (U+200B)" in refused.json()["error"]["message"]
    assert server.client().get("api/v1/profile").status_code == 401
