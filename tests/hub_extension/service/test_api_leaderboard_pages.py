"""Leaderboard pages through the service: `offset`/`limit` with the viewer's own row, the ETag from the
board's version counter (304 until the board changes), the streamed CSV and the page's pager."""
from __future__ import annotations

import re

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor, leaderboards

from tests.support.builders import finish, results_zip
from tests.support.service_harness import ok


def add_participants(platform, slug: str, tmp_path, count: int) -> dict[str, int]:
    """`count` more participants, each with one finished submission, below ben (0.8) and ann (0.7)."""
    upload = results_zip(tmp_path)
    ids = {}
    for i in range(count):
        user = f"p{i:03d}"
        platform.register(slug, user, LOCAL_ADMIN)
        ids[user] = platform.submit(slug, upload, username=user)
        finish(platform, ids[user], {"accuracy": 0.6 - i / 1000, "secret": 0.0, "private_score": 0.0},
               with_outputs=False)
    return ids


def board_version(platform, slug: str) -> int:
    with platform.db.session() as s:
        comp = s.query(m.Competition).filter_by(slug=slug).one()
        return s.get(m.BoardState, (comp.phases[0].id, comp.leaderboards[0].id)).version


def test_pages_of_the_board_with_the_viewers_own_row(server, world, tmp_path):
    add_participants(server.platform, world.slug, tmp_path, 10)
    url = f"api/v1/competitions/{world.slug}/leaderboard"
    everything = server.client().get(url).json()
    assert everything["total"] == 12 and everything["offset"] == 0 and everything["limit"] is None
    assert [r["rank"] for r in everything["rows"]] == list(range(1, 13))
    assert [r["participant"] for r in everything["rows"][:3]] == ["ben", "ann", "p000"]

    # A page below ann: her row comes with it, marked; nobody else's does.
    ann = server.client("ann").get(f"{url}?offset=4&limit=3").json()
    assert (ann["total"], ann["offset"], ann["limit"]) == (12, 4, 3)
    assert [(r["rank"], r["participant"], r["own"]) for r in ann["rows"]] == [
        (5, "p002", False), (6, "p003", False), (7, "p004", False), (2, "ann", True)]
    assert ann["rows"][:3] == everything["rows"][4:7] and ann["rows"][3]["scores"] == {"accuracy": 0.7}
    anonymous = server.client().get(f"{url}?offset=4&limit=3").json()
    assert [r["rank"] for r in anonymous["rows"]] == [5, 6, 7] and not any(r["own"] for r in anonymous["rows"])
    # On the page already: not twice.
    first = server.client("ann").get(f"{url}?limit=2").json()
    assert [(r["participant"], r["own"]) for r in first["rows"]] == [("ben", False), ("ann", True)]
    # Past the end: no rows of the board, still the viewer's own.
    past = server.client("ann").get(f"{url}?offset=40&limit=5").json()
    assert [(r["rank"], r["participant"]) for r in past["rows"]] == [(2, "ann")]
    # A blind board or a hidden one gives a page nothing.
    hidden = server.client("ann").get(f"{url}?board=private&limit=5").json()
    assert hidden["rows"] == [] and hidden["total"] == 0 and hidden["hidden_for_viewer"] is True
    bad = server.client().get(f"{url}?limit=0")
    assert bad.status_code == 400 and "limit" in bad.json()["error"]["message"]


def test_the_etag_follows_the_boards_version(server, world, tmp_path):
    platform = server.platform
    url = f"api/v1/competitions/{world.slug}/leaderboard"
    ann = server.client("ann")
    first = ann.get(f"{url}?limit=1")
    etag = first.headers["Etag"]
    again = ann.get(f"{url}?limit=1", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.text == ""
    # The ETag belongs to the viewer and the query.
    assert ann.get(f"{url}?limit=2").headers["Etag"] != etag
    assert server.client("ben").get(f"{url}?limit=1").headers["Etag"] != etag
    assert server.client("olga").get(f"{url}?limit=1").headers["Etag"] != etag
    # A change that does not touch the board keeps it; a new score changes it.
    version = board_version(platform, world.slug)
    platform.runs.set_status(world.subs["ann_waiting"], m.RUNNING)
    assert board_version(platform, world.slug) == version
    assert ann.get(f"{url}?limit=1", headers={"If-None-Match": etag}).status_code == 304
    finish(platform, world.subs["ann_waiting"], {"accuracy": 0.95, "secret": 0.0, "private_score": 0.0},
           with_outputs=False)
    assert board_version(platform, world.slug) == version + 1
    changed = ann.get(f"{url}?limit=1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["Etag"] != etag
    assert [(r["participant"], r["own"]) for r in changed.json()["rows"]] == [("ann", True)]
    # Hiding it (an organizer) changes it again.
    platform.set_hidden(world.subs["ann_waiting"], True, Actor("olga", groups=frozenset({"organizers"})))
    assert board_version(platform, world.slug) == version + 2
    assert ann.get(f"{url}?limit=1", headers={"If-None-Match": changed.headers["Etag"]}).status_code == 200


def test_the_csv_streams_every_row_in_batches(server, world, tmp_path, monkeypatch):
    add_participants(server.platform, world.slug, tmp_path, 7)
    monkeypatch.setattr(leaderboards, "CSV_BATCH", 3)
    whole = server.platform.leaderboard_csv(world.slug, actor=Actor("ann"))
    chunks = list(server.platform.leaderboard_csv_chunks(world.slug, actor=Actor("ann")))
    assert len(chunks) == 1 + 3 and "".join(chunks) == whole  # the header, then 9 rows 3 at a time
    resp = server.client().get(f"api/v1/competitions/{world.slug}/leaderboard.csv")
    assert resp.status_code == 200 and resp.text == whole
    lines = whole.splitlines()
    assert lines[0] == "rank,participant,submission,submitted_at,Accuracy"
    assert [line.split(",")[:2] for line in lines[1:4]] == [["1", "ben"], ["2", "ann"], ["3", "p000"]]
    assert len(lines) == 1 + 9
    assert server.client().get(f"api/v1/competitions/{world.slug}/leaderboard.csv?board=nope").status_code == 404


def test_the_page_shows_50_rows_with_next_and_previous(server, world, tmp_path):
    platform = server.platform
    add_participants(platform, world.slug, tmp_path, 57)
    platform.register(world.slug, "nora", LOCAL_ADMIN)
    last = platform.submit(world.slug, results_zip(tmp_path), username="nora")
    finish(platform, last, {"accuracy": 0.01, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
    browser = server.browser("nora")  # ranked last of 60 rows: two pages
    first = ok(browser.get(f"competitions/{world.slug}/leaderboard")).text
    table = re.search(r'<table id="leaderboard".*?</table>', first, re.S).group(0)
    ranks = re.findall(r'<tr class="[^"]*" data-participant="([^"]+)"', table)
    assert len(ranks) == 51 and ranks[:2] == ["ben", "ann"] and ranks[-1] == "nora"  # own row set apart
    assert 'class="mine outside"' in table and 'class="gap"' in table
    assert "Rows 1–50 of 60 (page 1 of 2)" in first and 'rel="prev"' not in first
    next_url = re.search(r'<a class="button" rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "page=2" in next_url
    second = ok(browser.get(next_url)).text
    rows = re.findall(r'<tr class="[^"]*" data-participant="([^"]+)"', second)
    assert len(rows) == 10 and rows[-1] == "nora" and 'class="gap"' not in second
    assert "Rows 51–60 of 60 (page 2 of 2)" in second and 'rel="prev"' in second and 'rel="next"' not in second
    # Sorted by another column: that order, still 50 at a time.
    by_time = ok(browser.get(f"competitions/{world.slug}/leaderboard?sort=submitted_at&order=desc")).text
    rows = re.findall(r'<tr class="[^"]*" data-participant="([^"]+)"', by_time)
    assert rows[0] == "nora" and len(rows) == 50
