"""Baselines through the service: the button on the organizer's phase page, the API route, and the badge."""
from __future__ import annotations

import re

import pytest

from hub_extension.app import LOCAL_ADMIN
from tests.support import builders
from tests.support.paths import BUNDLE_FIXTURES
from tests.support.service_harness import ok, start_server, visible_text

BUNDLE = BUNDLE_FIXTURES / "solutions_codabench"


@pytest.fixture
def baseline_server(platform):
    slug, _ = platform.create_competition(BUNDLE, builders.ORGANIZER)
    platform.register(slug, "ann", LOCAL_ADMIN)
    server = start_server(platform)
    yield server, slug
    server.stop()


def test_the_phase_page_runs_the_baselines_and_the_board_badges_them(baseline_server):
    server, slug = baseline_server
    olga = server.browser("olga")
    base = f"competitions/{slug}/phases"
    page = ok(olga.get(base)).text
    first = re.search(r'<tr data-phase="1" .*?</tr>', page, re.S).group(0)
    assert f"{base}/1/baselines" in first and "Run 2 baselines" in first
    ok(server.browser("ann").get(base), 403)

    ran = olga.post(f"{base}/1/baselines")
    assert ran.status_code == 302
    with_notice = visible_text(ok(olga.follow(ran)).text)
    ids = [int(i) for i in re.search(r"2 baselines of phase 1 submitted \(([0-9, ]+)\)", with_notice).group(1)
           .split(", ")]
    for sid, value in zip(ids, (0.25, 0.75)):
        builders.finish(server.platform, sid, {"accuracy": value}, with_outputs=False)

    board = ok(server.browser("ann").get(f"competitions/{slug}/leaderboard?phase=1")).text
    rows = re.findall(r"<tr class=\"baseline\".*?</tr>", board, re.S)
    assert len(rows) == 2 and all("data-baseline" in r and ">baseline</span>" in r for r in rows)
    assert "Careful" in rows[0] and "Always circle" in rows[1]
    csv_rows = ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard.csv",
                                           params={"phase": 1})).text.splitlines()[1:]
    assert [r.split(",")[1] for r in csv_rows] == ["Careful (baseline)", "Always circle (baseline)"]
    # The submission's own page says it is a baseline, and so does the API's view.
    assert 'id="submission-baseline"' in ok(olga.get(f"submissions/{ids[0]}")).text
    assert ok(server.client("olga").get(f"api/v1/submissions/{ids[0]}")).json()["baseline"] is True

    api = ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard", params={"phase": 1})).json()
    assert [(r["participant"], r["baseline"], r["solution"]) for r in api["rows"]] == [
        ("olga", True, "Careful"), ("olga", True, "Always circle")]


def test_the_api_lists_and_runs_a_phases_solutions(baseline_server):
    server, slug = baseline_server
    olga = server.client("olga")
    listed = ok(olga.get(f"api/v1/competitions/{slug}/phases/2/baselines")).json()
    assert listed["phase"] == 2 and [s["name"] for s in listed["items"]] == ["Careful", "Always circle"]
    ran = ok(olga.post(f"api/v1/competitions/{slug}/phases/2/baselines"), 201).json()
    assert [(s["solution"], s["kind"]) for s in ran["submissions"]] == [(0, "results"), (1, "results")]
    ok(server.client("ann").post(f"api/v1/competitions/{slug}/phases/2/baselines"), 403)
    ok(olga.get(f"api/v1/competitions/{slug}/phases/9/baselines"), 404)
