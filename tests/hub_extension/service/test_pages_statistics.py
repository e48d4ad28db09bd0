"""The statistics pages, their CSV files and their API: charts with tables, "No data yet", who may see them.

A competition's statistics are for its organizers (and hub admins), the
platform's for hub admins; each chart is an inline SVG with a title, followed
by the table of its numbers and that table's CSV; an empty competition says
"No data yet" instead of drawing.  The statements a page makes do not grow
with the submissions the database holds.
"""
from __future__ import annotations

import csv
import io
import re

from bench.scale import bulk_insert
from hub_extension.service.pages import best_score_chart
from tests.hub_extension.test_hot_path import statements
from tests.support import builders
from tests.support.service_harness import ok, visible_text


def svgs(page: str) -> dict[str, str]:
    """Each chart of a page by its section: the SVG's accessible name."""
    found = {}
    for section, svg in re.findall(r'<figure class="chart" id="chart-([a-z_]+)">\s*(<svg.*?</svg>)', page, re.S):
        assert svg.count("<title>") >= 1 and "<script" not in svg
        found[section] = re.search(r'aria-label="([^"]+)"', svg).group(1)
    return found


def table_rows(page: str, name: str) -> list[list[str]]:
    body = re.search(rf'<table id="table-{name}".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [[visible_text(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_organizers_statistics_page_draws_each_chart_above_its_table(world_server, tmp_path):
    server, world = world_server
    platform = server.platform
    failed = platform.submit(world.slug, builders.results_zip(tmp_path), username="ben", actor=builders.BEN)
    assert platform.runs.record_result(failed, {"status": "Failed", "error": "scoring program exited with code 2",
                                                "scores": {}, "tasks": []})
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/statistics")).text
    assert page.rstrip().endswith("</html>") and "Traceback" not in page
    assert re.search(r'id="statistics-as-of">Figures as of <time datetime="[0-9T:-]+">', page)
    assert svgs(page) == {"per_day": "Submissions per day, by status now",
                          "participants": "Participants over time",
                          "failures": "Most common failure reasons"}
    # No submission was picked up by a worker in this world: no durations to draw.
    assert re.search(r'<section id="histogram".*?No data yet: Time waiting in the queue and running\.', page, re.S)
    per_day = table_rows(page, "per_day")
    assert len(per_day) == 1 and per_day[0][1:] == ["1", "0", "0", "0", "2", "1", "0", "4"]
    assert table_rows(page, "failures")[0][:3] == ["scoring program exited with code N", "1", "100.0 %"]
    assert f'href="/services/competitions/submissions/{failed}"' in page
    summary = visible_text(re.search(r'<dl class="facts" id="statistics-summary">.*?</dl>', page, re.S).group(0))
    assert "Failure rate 33.3 %" in summary and "Submissions 4" in summary
    # The competition's page links here.
    assert f'href="/services/competitions/competitions/{world.slug}/statistics"' in ok(
        olga.get(f"competitions/{world.slug}")).text

    # Each table is a CSV download, numbers as they are.
    link = re.search(r'<a href="([^"]+table=per_day)" download>CSV</a>', page).group(1)
    download = ok(olga.get(link.replace("/services/competitions/", "", 1)))
    assert download.headers["Content-Type"].startswith("text/csv")
    assert 'filename="secrets-statistics-per_day.csv"' in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["day", "submitted", "preparing", "running", "scoring", "finished", "failed", "cancelled",
                       "total"]
    assert rows[1][1:] == ["1", "0", "0", "0", "2", "1", "0", "4"]
    for name in ("participants", "failures", "durations", "histogram", "summary"):
        text = ok(olga.get(f"competitions/{world.slug}/statistics.csv?table={name}")).text
        assert text.splitlines()[0].split(",") == platform.statistics_table(name, builders.ORGANIZER, world.slug)["columns"]
    unknown = olga.get(f"competitions/{world.slug}/statistics.csv?table=everything")
    assert unknown.status_code == 404 and "the tables are summary, per_day" in unknown.text
    assert olga.get(f"competitions/{world.slug}/statistics.csv").status_code == 400


def test_a_failure_message_is_drawn_as_text_never_as_markup_or_mathtext(world_server, tmp_path):
    server, world = world_server
    platform = server.platform
    hostile = "cost $\\frac{1}{$ --><script>alert(1)</script><!-- & \"quotes\""
    sid = platform.submit(world.slug, builders.results_zip(tmp_path), username="ben", actor=builders.BEN)
    assert platform.runs.record_result(sid, {"status": "Failed", "error": hostile, "scores": {}, "tasks": []})
    page = ok(server.browser("olga").get(f"competitions/{world.slug}/statistics")).text
    assert "<script" not in page and "alert(1)</script>" not in page
    assert "Most common failure reasons" in svgs(page).values()
    assert "&lt;script&gt;alert(N)&lt;/script&gt;" in page  # in the table, as text
    text = ok(server.browser("olga").get(f"competitions/{world.slug}/statistics.csv?table=failures")).text
    assert "cost $\\frac{N}{$ --><script>alert(N)</script>" in text


def test_an_empty_competition_says_no_data_yet(world_server):
    server, world = world_server
    page = ok(server.browser("oscar").get(f"competitions/{world.other_slug}/statistics")).text
    assert "<svg" not in page
    for title in ("Submissions per day, by status now", "Participants over time", "Most common failure reasons",
                  "Time waiting in the queue and running"):
        assert f"No data yet: {title}." in page
    assert 'id="table-per_day"' not in page and 'data-measure="submissions">0<' in page


def test_statistics_are_for_organizers_and_the_platforms_for_admins(world_server):
    server, world = world_server
    comp = f"competitions/{world.slug}/statistics"
    expected = {"ann": 403, "nora": 403, "oscar": 403, "olga": 200, "root": 200}
    for user, status in expected.items():
        browser = server.browser(user)
        assert browser.get(comp).status_code == status, user
        assert browser.get(f"{comp}.csv?table=per_day").status_code == status, user
        assert browser.get("admin/statistics").status_code == (200 if user == "root" else 403), user
        assert browser.get("admin/statistics.csv?table=queues").status_code == (200 if user == "root" else 403)
    anonymous = server.browser(None).get(comp)
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]
    assert server.browser("olga").get("competitions/nope/statistics").status_code == 404

    admin = ok(server.browser("root").get("admin/statistics")).text
    assert {"competitions", "per_day"} <= {s for s in re.findall(r'<section id="([a-z_]+)"', admin)}
    assert [row[0] for row in table_rows(admin, "competitions")] == ["other", "secrets"]
    assert f'href="/services/competitions/competitions/{world.slug}/statistics"' in admin
    assert 'id="platform-statistics"' in ok(server.browser("root").get("admin")).text


def test_the_api_gives_the_same_tables(world_server):
    server, world = world_server
    found = ok(server.client("olga").get(f"api/v1/competitions/{world.slug}/statistics")).json()
    assert found == server.platform.competition_statistics(world.slug, builders.ORGANIZER)
    assert found["per_day"]["rows"][0][-1] == 3 and found["scope"] == "competition"
    assert server.client("ann").get(f"api/v1/competitions/{world.slug}/statistics").status_code == 403
    assert server.client().get(f"api/v1/competitions/{world.slug}/statistics").status_code == 401
    platform = ok(server.client("root").get("api/v1/admin/statistics")).json()
    assert platform["scope"] == "platform" and platform["queues"]["columns"][:3] == ["queue", "connected", "workers"]
    assert server.client("olga").get("api/v1/admin/statistics").status_code == 403


def test_a_statistics_page_makes_the_same_statements_with_ten_times_the_submissions(world_server):
    server, world = world_server
    platform = server.platform
    olga, root = server.browser("olga"), server.browser("root")
    pages = {"competition": lambda: ok(olga.get(f"competitions/{world.slug}/statistics")),
             "platform": lambda: ok(root.get("admin/statistics"))}

    def counted() -> dict[str, int]:
        found = {}
        for name, view in pages.items():
            platform.statistics._cache.clear()
            with statements(platform.db.engine) as seen:
                view()
            found[name] = len(seen)
        return found

    bulk_insert(platform, 0, 200, template=world.subs["ben"])
    small = counted()
    bulk_insert(platform, 200, 2200, template=world.subs["ben"])
    large = counted()
    assert large == small and all(n <= 40 for n in large.values()), large
    # Viewed again with nothing changed: the tables are kept (one statement says so), the charts too.
    pages["competition"]()
    with statements(platform.db.engine) as seen:
        page = pages["competition"]().text
    assert len(seen) < small["competition"] and not any("GROUP BY" in st for st, _ in seen), seen
    assert sum(int(row[-1]) for row in table_rows(page, "per_day")) == 3 + 2200


# -- the leaderboard's best-score chart --------------------------------------------------------------
def test_the_best_score_chart_of_one_point_starts_at_it_and_of_none_is_empty():
    assert best_score_chart([], title="t") == ""
    assert best_score_chart([{"at": "2030-03-01T10:00:00", "value": None, "username": "ann"}], title="t") == ""
    one = str(best_score_chart([{"at": "2030-03-01T10:00:00", "value": 0.5, "username": "ann"}], title="Best"))
    assert re.findall(r'<circle class="dot" cx="([0-9.]+)"', one) == ["64.0"]
    assert re.search(r'<path class="line" d="M64\.0,[0-9.]+ H624\.0"/>', one)
    assert one.count("2030-03-01 10:00") == 2  # the axis label once, the point's own title once
    assert ">now</text>" in one and "0.5 by ann" in one


def test_an_empty_board_says_no_data_yet(world_server):
    server, world = world_server
    board = ok(server.browser("oscar").get(f"competitions/{world.other_slug}/leaderboard")).text
    assert 'id="no-chart"' in board and "No data yet" in board and "<svg" not in board
    shown = ok(server.browser("ann").get(f"competitions/{world.slug}/leaderboard")).text
    assert 'id="best-score-chart"' in shown and 'id="no-chart"' not in shown
